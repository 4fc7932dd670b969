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
  return { name: 'identity from control planes', rows };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await benchIdentity({ quick: process.argv.includes('--quick') });
  console.log(res.name);
  console.table(res.rows);
}
