/**
 * `npm run chaos` (issue 17 item 2): faults under steady load, on loopback, stopping by itself.
 *
 *   control plane: `sidecarless control-plane` (a child process), its CA the run's own root
 *   replicas: three `payments` processes (reliability/chaos-replica.ts), SVIDs from that CA,
 *     registered with the control plane, policy from a watched file
 *   client (this process): `orders`, identity from a directory (`svid issue`), payments discovered
 *     over xDS; CONCURRENCY requests in flight all the time; the mesh file gives payments a 3 s
 *     request timeout, 500 ms per try and 2 retries
 *
 * Phases, PHASE_MS each: a replica killed with SIGKILL (then restarted); a replica paused with
 * SIGSTOP (a black hole, then SIGCONT); the control plane killed with SIGKILL (then restarted on the
 * same port and state); the client's identity directory deleted (then restored); the replicas'
 * policy file filled with garbage (then restored); and a last quiet phase. Goals: success ≥ 99.9 %
 * in every fault phase and 100 % once recovered; no request outlives the request timeout (no hang);
 * no unhandled rejection anywhere; last good SVID and config kept; recovery by itself. Prints a
 * table per phase, writes reliability/results/chaos-latest.json, exits 1 on a missed goal.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createMesh, type Mesh } from '../src/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const PHASE_MS = arg('phase-ms', 8_000);
const CONCURRENCY = arg('concurrency', 16);
const REQUEST_TIMEOUT_MS = 3_000;
const HERE = new URL('.', import.meta.url).pathname;
const CLI = join(HERE, '..', 'dist', 'cli.js');
const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';
const POLICY = `rules:\n  - name: orders-work\n    action: allow\n    from: { identities: ["${ORDERS}"] }\n    to: { paths: ["/work"] }\n`;
const MESH = `trustDomain: cluster.local
services:
  - name: payments
    port: 8443
    timeout: { request: 3s, perTry: 500ms }
    retry: { maxRetries: 2, retryOn: [connect, reset, timeout, 502, 503, 504] }
  - name: orders
    port: 8080
`;

interface Outcome {
  readonly phase: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

const unhandled: string[] = [];
process.on('unhandledRejection', (e) => unhandled.push(`client: ${(e as Error)?.stack ?? e}`));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `node args`, resolving with the process once a stdout line matches `ready`. */
function start(args: string[], ready: RegExp, name: string): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    if (/UNHANDLED/.test(l)) unhandled.push(`${name}: ${l}`);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after 20 s`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = ready.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, match: m });
      }
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? sig}) before it was ready`));
    });
  });
}

const killed = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-chaos-'));
  const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  // The run's CA: the control plane's root (its state), and the issuer of the client's directory SVID.
  cli(['ca', 'init', '--trust-domain', 'cluster.local', '--out', join(dir, 'ca')]);
  mkdirSync(join(dir, 'state'));
  cpSync(join(dir, 'ca', 'ca.pem'), join(dir, 'state', 'root-cert.pem'));
  cpSync(join(dir, 'ca', 'ca_key.pem'), join(dir, 'state', 'root-key.pem'));
  cli(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', ORDERS, '--out', join(dir, 'orders')]);
  writeFileSync(join(dir, 'mesh.yaml'), MESH);
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  const cpPort = await freePort();
  const address = `127.0.0.1:${cpPort}`;
  const root = join(dir, 'state', 'root-cert.pem');
  const startCp = () => start([CLI, 'control-plane', '--config', join(dir, 'mesh.yaml'), '--state', join(dir, 'state'), '--listen', address, '--admin-listen', '127.0.0.1:0'], /control plane serving/, 'control plane');
  let cp = (await startCp()).proc;
  const token = (sa: string) => {
    const file = join(dir, `${sa}.token`);
    writeFileSync(file, cli(['control-plane', 'token', '--state', join(dir, 'state'), '--namespace', 'default', '--service-account', sa, '--ttl', '2h']).trim());
    return file;
  };
  const paymentsToken = token('payments');
  const startReplica = (name: string) => start(['--import', 'tsx', join(HERE, 'chaos-replica.ts'), address, root, paymentsToken, join(dir, 'policy.yaml'), name], /^ready (\d+)/, name).then((r) => r.proc);
  const replicas = await Promise.all(['a', 'b', 'c'].map(startReplica));
  const orders: Mesh = await createMesh({
    service: 'orders',
    identity: { dir: join(dir, 'orders'), pollInterval: '1s' },
    controlPlane: { address, root, token: { file: token('orders') } },
    logger: { info() {}, warn: (m) => console.error(`orders warn: ${m.slice(0, 200)}`), error: (m) => console.error(`orders error: ${m.slice(0, 200)}`) },
  });

  const outcomes: Outcome[] = [];
  let phase = 'warm-up';
  let running = true;
  const worker = async () => {
    while (running) {
      const t0 = performance.now();
      const p = phase;
      try {
        // GET: retried on another endpoint when a try fails (a POST is not: it may have been processed).
        const res = await orders.fetch('http://payments:8443/work');
        await res.arrayBuffer();
        outcomes.push({ phase: p, ok: res.status === 200, ms: performance.now() - t0, ...(res.status !== 200 && { error: `status ${res.status}` }) });
      } catch (e) {
        const code = (e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
        outcomes.push({ phase: p, ok: false, ms: performance.now() - t0, error: String(code) });
      }
    }
  };
  const load = Array.from({ length: CONCURRENCY }, worker);
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Warm-up: every replica registered and discovered (a few seconds), then the faults.
  await wait(PHASE_MS);

  phase = 'replica SIGKILL';
  replicas[0]!.kill('SIGKILL');
  await wait(PHASE_MS);
  replicas[0] = await startReplica('a2');

  phase = 'replica SIGSTOP';
  replicas[1]!.kill('SIGSTOP');
  await wait(PHASE_MS);
  replicas[1]!.kill('SIGCONT');

  phase = 'control plane SIGKILL';
  cp.kill('SIGKILL');
  await killed(cp);
  await wait(PHASE_MS);
  cp = (await startCp()).proc;

  phase = 'identity dir deleted';
  renameSync(join(dir, 'orders'), join(dir, 'orders.away'));
  await wait(PHASE_MS);
  renameSync(join(dir, 'orders.away'), join(dir, 'orders'));

  phase = 'policy file garbage';
  writeFileSync(join(dir, 'policy.yaml'), '{{{ this is not a policy: [');
  await wait(PHASE_MS);
  writeFileSync(join(dir, 'policy.yaml'), POLICY);

  phase = 'recovered';
  await wait(PHASE_MS);
  running = false;
  await Promise.all(load);
  const st = orders.stats();
  await orders.close();
  for (const r of replicas) r.kill('SIGTERM');
  cp.kill('SIGTERM');
  await Promise.all([...replicas, cp].map(killed));
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = report(outcomes, st.identity.state) ? 0 : 1;
}

function report(outcomes: readonly Outcome[], identityState: string): boolean {
  const phases = [...new Set(outcomes.map((o) => o.phase))];
  const rows = phases.map((p) => {
    const of = outcomes.filter((o) => o.phase === p);
    const ok = of.filter((o) => o.ok).length;
    const ms = of.map((o) => o.ms).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const o of of) if (!o.ok) errors[o.error!] = (errors[o.error!] ?? 0) + 1;
    const success = ok / Math.max(1, of.length);
    const goal = p === 'warm-up' ? 0 : p === 'recovered' ? 1 : 0.999;
    return { phase: p, requests: of.length, ok, success, goal, p99Ms: ms[Math.floor(ms.length * 0.99)] ?? 0, maxMs: ms.at(-1) ?? 0, hung: of.filter((o) => o.ms > REQUEST_TIMEOUT_MS + 1_000).length, errors, met: success >= goal };
  });
  console.log('\nphase                    requests   success   goal     p99 ms   max ms  hung  errors');
  for (const r of rows) console.log(`${r.phase.padEnd(24)} ${String(r.requests).padStart(8)}  ${(r.success * 100).toFixed(2).padStart(7)} %  ${(r.goal * 100).toFixed(1).padStart(5)} %  ${r.p99Ms.toFixed(0).padStart(7)}  ${r.maxMs.toFixed(0).padStart(7)}  ${String(r.hung).padStart(4)}  ${JSON.stringify(r.errors)}`);
  console.log(`\nunhandled rejections/exceptions: ${unhandled.length}${unhandled.length ? '\n' + unhandled.slice(0, 5).join('\n') : ''}`);
  console.log(`client identity at the end: ${identityState}`);
  const ok = rows.every((r) => r.met && r.hung === 0) && unhandled.length === 0 && identityState === 'ready';
  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(join(HERE, 'results', 'chaos-latest.json'), JSON.stringify({ phaseMs: PHASE_MS, concurrency: CONCURRENCY, rows, unhandled, identityState, met: ok }, null, 2) + '\n');
  console.log(ok ? 'every goal met' : 'a goal was missed');
  return ok;
}

await main();
