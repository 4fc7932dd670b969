/**
 * Identity from control planes (issue 11):
 *   - importing the package does not load @grpc/grpc-js (what it would add, measured alongside);
 *   - with the Workload API configured, createMesh resolves soon after the server's first message
 *     (goal ≤ 30 ms);
 *   - one CSR → SVID round trip against a loopback Istio-compatible CA (goal ≤ 10 ms, P-256).
 * Fresh child processes, alternating, medians with min–max: the machine is shared.
 *
 *   node --import tsx bench/identity.ts [--quick]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createDevCa } from '../src/identity/dev-ca.js';
import { createIstioCaSource } from '../src/sources/istio-ca.js';
import { istioCaIssuer } from '../src/sources/issuers/istio-ca.js';
import { createCsr, generateKeyPair } from '../src/identity/keys.js';
import { istioCaServer, workloadApiServer } from './lib/control-plane-servers.js';
import { ROOT } from './lib/proc.js';

const DIST = pathToFileURL(join(ROOT, 'dist/index.js')).href;

interface ImportRun {
  ms: number;
  grpc: boolean;
}

/** One fresh process: how long `import(what)` takes, and whether grpc-js was loaded by it. */
function importOnce(what: string[]): ImportRun {
  const script = [
    "import { createRequire } from 'node:module';",
    'const t0 = performance.now();',
    ...what.map((w) => `await import(${JSON.stringify(w)});`),
    'const ms = performance.now() - t0;',
    "const grpc = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@grpc/grpc-js'));",
    'console.log(JSON.stringify({ ms, grpc }));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`import child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ImportRun;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

export async function benchIdentity(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const n = opts.quick ? 5 : 15;
  const grpcPath = pathToFileURL(join(ROOT, 'node_modules/@grpc/grpc-js/build/src/index.js')).href;
  const runs: Record<'package' | 'package+grpc', ImportRun[]> = { package: [], 'package+grpc': [] };
  for (let i = 0; i < n; i++) {
    runs.package.push(importOnce([DIST]));
    runs['package+grpc'].push(importOnce([DIST, grpcPath]));
  }
  const pkg = runs.package.map((r) => r.ms);
  const eager = runs['package+grpc'].map((r) => r.ms);
  const rows: Array<Record<string, number | string>> = [
    {
      what: 'import sidecarless (dist), fresh process',
      medianMs: r2(median(pkg)),
      minMs: r2(Math.min(...pkg)),
      maxMs: r2(Math.max(...pkg)),
      grpcLoaded: runs.package.some((r) => r.grpc) ? 'YES (goal: no)' : 'no',
    },
    {
      what: 'same, then @grpc/grpc-js (what an eager load would add)',
      medianMs: r2(median(eager)),
      minMs: r2(Math.min(...eager)),
      maxMs: r2(Math.max(...eager)),
      addedMs: r2(median(eager) - median(pkg)),
      // The detector's own check: here grpc-js must show as loaded.
      grpcLoaded: runs['package+grpc'].every((r) => r.grpc) ? 'yes' : 'NOT SEEN (detector broken)',
    },
  ];
  rows.push(await benchWorkloadApiStart(opts.quick ? 5 : 15));
  rows.push(...(await benchCaRoundTrip(opts.quick ? 30 : 200)));
  return { name: 'identity from control planes', rows };
}

const quiet = { info() {}, warn() {}, error() {} };
const spread = (xs: number[]) => ({ medianMs: r2(median(xs)), minMs: r2(Math.min(...xs)), maxMs: r2(Math.max(...xs)) });

/** createMesh with identity.workloadApi: how long after the server's first message it resolves (goal ≤ 30 ms). */
async function benchWorkloadApiStart(n: number): Promise<Record<string, number | string>> {
  const { createMesh } = (await import(DIST)) as typeof import('../src/index.js');
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const id = 'spiffe://cluster.local/ns/default/sa/orders';
  // The first message is held back 50 ms after the call, so the wait for it is not what is timed.
  const server = await workloadApiServer(ca, id, 50);
  const after: number[] = [];
  try {
    for (let i = 0; i < n + 1; i++) {
      const mesh = await createMesh({ service: 'orders', identity: { workloadApi: { socket: server.address } }, logger: quiet });
      const resolved = performance.now();
      await mesh.close();
      if (i > 0) after.push(resolved - server.lastFirstMessageAt); // the first run pays grpc-js's import
    }
  } finally {
    await server.close();
  }
  const med = median(after);
  return { what: `createMesh resolves after the Workload API's first message (n=${n})`, ...spread(after), goal: '≤ 30 ms', met: med <= 30 ? 'yes' : 'NO' };
}

/** One CSR → SVID round trip against a loopback Istio-compatible CA (goal ≤ 10 ms, P-256), and a whole renewal. */
async function benchCaRoundTrip(n: number): Promise<Array<Record<string, number | string>>> {
  const id = 'spiffe://cluster.local/ns/default/sa/orders';
  const server = await istioCaServer(id);
  const opts = { address: server.address, root: server.rootFile, token: server.token, trustDomain: 'cluster.local' };
  const issuer = istioCaIssuer(opts);
  const source = await createIstioCaSource({ ...opts, spiffeId: id, ttlMs: 3_600_000 });
  const calls: number[] = [];
  const renewals: number[] = [];
  try {
    const keys = await generateKeyPair();
    const csrPem = await createCsr(keys, id);
    await issuer.issue({ csrPem, spiffeId: id, ttlMs: 3_600_000 }); // connect and warm
    await source.ready(10_000);
    for (let i = 0; i < n; i++) {
      let t0 = performance.now();
      await issuer.issue({ csrPem, spiffeId: id, ttlMs: 3_600_000 });
      calls.push(performance.now() - t0);
      t0 = performance.now();
      await source.rotate();
      renewals.push(performance.now() - t0);
    }
    if (source.status().state !== 'ready') throw new Error(`the renewing source is ${source.status().state}: ${source.status().lastError}`);
  } finally {
    issuer.close();
    await source.close();
    await server.close();
  }
  return [
    { what: `CSR → SVID round trip, loopback Istio CA over TLS (P-256, n=${n})`, ...spread(calls), goal: '≤ 10 ms', met: median(calls) <= 10 ? 'yes' : 'NO' },
    { what: '  of which the CA signing the CSR (dev CA, server side)', ...spread(server.signMs.slice(-2 * n)) },
    { what: 'whole renewal: key + CSR + round trip + verify + accept', ...spread(renewals) },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await benchIdentity({ quick: process.argv.includes('--quick') });
  console.log(res.name);
  console.table(res.rows);
}
