/**
 * `npm run soak` (issue 17 item 1): a long, bounded run over mTLS on loopback that stops by itself.
 *
 *   client process (this one): one mesh, `orders`; half the requests through mesh.fetch, half
 *     through undici.request with mesh.dispatcher, CONCURRENCY at a time, until --requests are done
 *   replica process (reliability/soak-replicas.ts): three meshes, `payments`, each behind policy
 *   both: SVIDs from one dev CA with a 20 s lifetime (renewed at half-life: a rotation every ~10 s
 *     on both sides); the replicas swap their policy every 5 s (two documents that admit the same
 *     traffic: a swap must never fail a request)
 *
 * Every 10 s it samples the client's RSS, open file descriptors and event-loop delay (p99) and the
 * replicas' RSS; at the end it prints failed requests (goal 0), the slope of RSS and fds against
 * requests after the warm-up (goal: flat; RSS as MB per 100k requests), and writes
 * reliability/results/soak-latest.json.
 *
 *   npm run soak                         1,000,000 requests (a few minutes)
 *   npm run soak -- --requests 100000    shorter
 *   npm run soak -- --control-plane      through the embedded control plane: payments discovered over
 *                                        xDS, the replicas registered with it; its RSS sampled too
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { request } from 'undici';
import { DevCa, createDevCa } from '../src/identity/dev-ca.js';
import { createMesh } from '../src/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const TOTAL = arg('requests', 1_000_000);
const CONCURRENCY = arg('concurrency', 32);
const SAMPLE_MS = arg('sample-ms', 10_000);
const TTL = '20s';
const HERE = new URL('.', import.meta.url).pathname;
const WITH_CP = process.argv.includes('--control-plane');
const CLI = join(HERE, '..', 'dist', 'cli.js');

interface Sample {
  readonly t: number;
  readonly requests: number;
  readonly failed: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly fds: number;
  readonly loopP99Ms: number;
  readonly replicasRssMb: number;
  readonly controlPlaneRssMb?: number;
  readonly rotations: number;
}

/** The embedded control plane in a child process: its address, pinned root, tokens, RSS. */
async function startControlPlane(dir: string): Promise<{ address: string; root: string; token: (sa: string) => string; rss: () => number; stop: () => void }> {
  writeFileSync(join(dir, 'mesh.yaml'), 'trustDomain: cluster.local\nservices:\n  - name: payments\n    port: 8443\n  - name: orders\n    port: 8080\n');
  const proc = spawn(process.execPath, [CLI, 'control-plane', '--config', join(dir, 'mesh.yaml'), '--state', join(dir, 'state'), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const m = /serving ADS \+ CA on (\S+)/.exec(l);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`the control plane exited (${code})`)));
  });
  const token = (sa: string) => {
    const file = join(dir, `${sa}.token`);
    writeFileSync(file, execFileSync(process.execPath, [CLI, 'control-plane', 'token', '--state', join(dir, 'state'), '--namespace', 'default', '--service-account', sa, '--ttl', '2h'], { encoding: 'utf8' }).trim());
    return file;
  };
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  return { address, root: join(dir, 'state', 'root-cert.pem'), token, rss, stop: () => proc.kill('SIGTERM') };
}

/** Least-squares slope of y against x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const fds = () => readdirSync('/proc/self/fd').length;

async function startReplicas(caDir: string, cp?: { address: string; root: string; token: string }): Promise<{ ports: number[]; rss: () => Promise<number>; stop: () => Promise<void> }> {
  const child = fork(join(HERE, 'soak-replicas.ts'), [caDir, TTL, ...(cp ? [cp.address, cp.root, cp.token] : [])], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.once('message', (m: { ports: number[] }) => resolve(m.ports));
    child.once('exit', (code) => reject(new Error(`replicas exited (${code}) before they were ready`)));
  });
  let asked = 0;
  const rss = () =>
    new Promise<number>((resolve) => {
      const id = ++asked;
      const on = (m: { id?: number; rss?: number }) => {
        if (m.id !== id) return;
        child.off('message', on);
        resolve(m.rss ?? 0);
      };
      child.on('message', on);
      child.send({ id, op: 'rss' });
    });
  const stop = () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.send({ op: 'stop' })));
  return { ports, rss, stop };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-soak-'));
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const { certPem, keyPem } = await ca.exportPem();
  writeFileSync(join(dir, 'ca.pem'), certPem);
  writeFileSync(join(dir, 'ca_key.pem'), keyPem, { mode: 0o600 });
  const cp = WITH_CP ? await startControlPlane(dir) : undefined;
  const replicas = await startReplicas(dir, cp && { address: cp.address, root: cp.root, token: cp.token('payments') });
  const orders = await createMesh({
    service: 'orders',
    identity: { ca: await DevCa.fromPem(certPem, keyPem), ttl: TTL },
    ...(cp
      ? { controlPlane: { address: cp.address, root: cp.root, token: { file: cp.token('orders') } } }
      : { outbound: { services: { payments: { endpoints: replicas.ports.map((p) => `127.0.0.1:${p}`) } } } }),
    logger: { info() {}, warn: (m) => console.error(`warn: ${m}`), error: (m) => console.error(`error: ${m}`) },
  });
  // Through the control plane, payments is addressed by its service port (the name xDS answers for).
  const URL_ = cp ? 'http://payments:8443/work' : 'http://payments/work';
  let rotations = 0;
  orders.identity.onUpdate(() => rotations++);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let done = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const started = Date.now();
  const samples: Sample[] = [];
  const sample = async () => {
    const m = process.memoryUsage();
    samples.push({
      t: (Date.now() - started) / 1000,
      requests: done,
      failed,
      rssMb: m.rss / 2 ** 20,
      heapMb: m.heapUsed / 2 ** 20,
      fds: fds(),
      loopP99Ms: loop.percentile(99) / 1e6,
      replicasRssMb: (await replicas.rss()) / 2 ** 20,
      ...(cp && { controlPlaneRssMb: cp.rss() / 2 ** 20 }),
      rotations,
    });
    loop.reset();
    const s = samples.at(-1)!;
    console.log(`${s.t.toFixed(0).padStart(5)} s  ${String(s.requests).padStart(8)} requests  ${s.failed} failed  rss ${s.rssMb.toFixed(1)} MB  heap ${s.heapMb.toFixed(1)} MB  fds ${s.fds}  loop p99 ${s.loopP99Ms.toFixed(1)} ms  replicas ${s.replicasRssMb.toFixed(1)} MB${s.controlPlaneRssMb !== undefined ? `  control plane ${s.controlPlaneRssMb.toFixed(1)} MB` : ''}  rotations ${s.rotations}`);
  };
  await sample();
  const timer = setInterval(() => void sample(), SAMPLE_MS);
  let next = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const i = next++;
      try {
        if (i % 2 === 0) {
          const res = await orders.fetch(URL_, { method: 'POST', body: 'x' });
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          await res.arrayBuffer();
        } else {
          const res = await request(URL_, { dispatcher: orders.dispatcher });
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
          await res.body.arrayBuffer();
        }
      } catch (e) {
        failed++;
        const key = String((e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).message).slice(0, 120);
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearInterval(timer);
  await sample();
  await orders.close();
  await replicas.stop();
  cp?.stop();
  rmSync(dir, { recursive: true, force: true });
  report(samples, errors, (Date.now() - started) / 1000);
  process.exitCode = failed === 0 ? 0 : 1;
}

function report(samples: readonly Sample[], errors: ReadonlyMap<string, number>, seconds: number): void {
  const last = samples.at(-1)!;
  const warm = samples.filter((s) => s.requests >= TOTAL * 0.2);
  const per100k = (pick: (s: Sample) => number) => slope(warm.map((s) => s.requests / 100_000), warm.map(pick));
  const summary = {
    requests: last.requests,
    failed: last.failed,
    errors: Object.fromEntries(errors),
    seconds: Math.round(seconds),
    requestsPerSecond: Math.round(last.requests / seconds),
    rotations: last.rotations,
    rssMbPer100kAfterWarmup: Number(per100k((s) => s.rssMb).toFixed(3)),
    heapMbPer100kAfterWarmup: Number(per100k((s) => s.heapMb).toFixed(3)),
    fdsPer100kAfterWarmup: Number(per100k((s) => s.fds).toFixed(3)),
    replicasRssMbPer100kAfterWarmup: Number(per100k((s) => s.replicasRssMb).toFixed(3)),
    ...(WITH_CP && { controlPlaneRssMbPer100kAfterWarmup: Number(per100k((s) => s.controlPlaneRssMb ?? 0).toFixed(3)) }),
    loopDelayP99MsMax: Number(Math.max(...samples.map((s) => s.loopP99Ms)).toFixed(1)),
    rssMbFirstLast: [Number(samples[0]!.rssMb.toFixed(1)), Number(last.rssMb.toFixed(1))],
    fdsFirstLast: [samples[0]!.fds, last.fds],
    samples,
  };
  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(join(HERE, 'results', WITH_CP ? 'soak-control-plane-latest.json' : 'soak-latest.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`\n${summary.requests} requests in ${summary.seconds} s (${summary.requestsPerSecond}/s), ${summary.failed} failed (goal 0)${errors.size ? ': ' + JSON.stringify(summary.errors) : ''}`);
  console.log(`SVID rotations seen by the client: ${summary.rotations}`);
  console.log(`after warm-up, per 100k requests: RSS ${summary.rssMbPer100kAfterWarmup} MB, heap ${summary.heapMbPer100kAfterWarmup} MB, fds ${summary.fdsPer100kAfterWarmup}; replicas' RSS ${summary.replicasRssMbPer100kAfterWarmup} MB (goal: flat)`);
  if (WITH_CP) console.log(`the control plane's RSS after warm-up, per 100k requests: ${summary.controlPlaneRssMbPer100kAfterWarmup} MB (goal: flat)`);
  console.log(`event-loop delay p99, worst 10 s window: ${summary.loopDelayP99MsMax} ms`);
}

await main();
