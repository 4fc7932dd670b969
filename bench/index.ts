/**
 * `npm run bench` (a few minutes) / `npm run bench -- --quick` (under a minute): sidecarless against
 * the same traffic without a mesh and against a real sidecar pair (haproxy), in one run, as ratios.
 *
 *   R0  undici → node:http                                   plain HTTP: the ceiling
 *   R1  undici → node:https (server-auth TLS, P-256)         the baseline
 *   R2  sidecarless → mesh.createServer (mTLS, SPIFFE, policy, P2C-EWMA, retries, stats)
 *       on both client paths: mesh.fetch, and undici.request with mesh.dispatcher
 *   R3  undici → haproxy ⇄ mTLS (dev-CA SVIDs) ⇄ haproxy → node:http   a real sidecar pair
 *
 * Client and server run in separate processes (bench/client.ts, bench/server.ts); scenarios
 * alternate round by round; every figure is a median over rounds with its min–max. Absolute
 * numbers depend on the machine; the ratios, measured in the same run, are what the goals judge.
 * Also: handshakes (full and resumed, new connection per request), cold start (spawn → first
 * mTLS response → exit), and the micro-benchmarks (policy, balancer, lb-sim, snapshot, identity, xds, ca,
 * telemetry if present, control-plane: the embedded ADS server with 1,000 clients in another process,
 * cold-start: fresh processes, mesh (files, token bootstrap) ÷ undici and node:https, RSS, warm invocations,
 * grpc: grpc-js and HTTP/2 inbound through the mesh against plain TLS).
 * Writes bench/results/latest.json and bench/results/latest.md.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { cpus, freemem, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ORDERS_ID, PAYMENTS_ID, type RunResult, type RunSpec, type Spread, type Usage, arg, flag, fmt, round, spread } from './lib/common.js';
import { BENCH_DIR, NodeChild, ROOT, procCpuUs, procRss } from './lib/proc.js';

const QUICK = flag('--quick');
/** `--profile DIR`: every child (servers, clients, cold starts) runs with --cpu-prof and writes its profile to DIR. */
const PROFILE = arg('--profile') ? resolve(arg('--profile')!) : undefined;
const T_START = performance.now();

/** Durations and counts; quick keeps the whole `npm run bench -- --quick` (build included) under 60 s. */
const P = QUICK
  ? { rounds: 3, warmupMs: 200, tpWarmMs: 100, tpMs: 400, latWarmMs: 100, latMs: 600, latPaths: ['request'] as const, hsRounds: 3, hsWarmMs: 100, hsMs: 300, coldRuns: 3, coldModes: ['bare', 'devca'] as const }
  : { rounds: 9, warmupMs: 1500, tpWarmMs: 200, tpMs: 1000, latWarmMs: 200, latMs: 1500, latPaths: ['fetch', 'request'] as const, hsRounds: 5, hsWarmMs: 200, hsMs: 1500, coldRuns: 7, coldModes: ['bare', 'devca', 'dir'] as const };
const CONCURRENCY = 32;
const RATE = 1000;
const HS_CONCURRENCY = 8;

const GOALS = {
  // Issue 10: the snapshot redesign must not cost throughput (R2/R1 ≥ 0.95 on both client paths).
  throughputVsR1: 0.95,
  throughputVsR3: 1.3,
  addedP99Ms: 0.2,
  rssIncrementMB: 10,
  coldStartRatio: 1.3,
};

type Path = 'fetch' | 'request';
type ScenarioId = 'R0' | 'R1' | 'R2' | 'R3';

interface Scenario {
  id: ScenarioId;
  label: string;
  paths: Record<Path, string>;
  server: NodeChild;
  client: NodeChild;
  proxies: ChildProcess[];
}

const log = (msg: string) => process.stderr.write(`[bench ${((performance.now() - T_START) / 1000).toFixed(1)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Certificates: the mesh's (sidecarless CLI, one CA shared by every process), R1's (openssl).

function makeCerts(dir: string): { meshCa: string; payments: string; orders: string; tls: string | undefined } {
  const cli = join(ROOT, 'dist', 'cli.js');
  const meshCa = join(dir, 'mesh-ca');
  const payments = join(dir, 'payments');
  const orders = join(dir, 'orders');
  const run = (args: string[]) => execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['ca', 'init', '--trust-domain', 'cluster.local', '--out', meshCa]);
  run(['svid', 'issue', '--ca', meshCa, '--spiffe-id', PAYMENTS_ID, '--out', payments]);
  run(['svid', 'issue', '--ca', meshCa, '--spiffe-id', ORDERS_ID, '--out', orders]);
  // haproxy wants the chain and the key in one file.
  for (const d of [payments, orders]) writeFileSync(join(d, 'haproxy.pem'), readFileSync(join(d, 'svid.pem'), 'utf8') + readFileSync(join(d, 'svid_key.pem'), 'utf8'));

  // R1: an ordinary P-256 server certificate (CA → leaf, SAN 127.0.0.1), like the mesh's chain.
  const tls = join(dir, 'tls');
  mkdirSync(tls);
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca_key.pem']);
    o(['req', '-x509', '-new', '-key', 'ca_key.pem', '-subj', '/CN=bench CA', '-days', '2', '-out', 'ca.pem']);
    o(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'server_key.pem']);
    o(['req', '-new', '-key', 'server_key.pem', '-subj', '/CN=localhost', '-out', 'server.csr']);
    writeFileSync(join(tls, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    o(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca_key.pem', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.pem']);
    return { meshCa, payments, orders, tls };
  } catch (e) {
    log(`openssl failed (${(e as Error).message.split('\n')[0]}): R1 and the bare cold start are skipped`);
    return { meshCa, payments, orders, tls: undefined };
  }
}

// ---------------------------------------------------------------------------------------------
// haproxy (R3)

function haproxyVersion(): string | undefined {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return /version (\S+)/i.exec(r.stdout)?.[1] ?? 'unknown';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

const HAPROXY_DEFAULTS = `
global
  nbthread 1
  maxconn 4096
  tune.ssl.default-dh-param 2048
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
`;

/** Two haproxy processes: the client's sidecar (http in, mTLS out) and the server's (mTLS in, http out). */
async function startHaproxyPair(dir: string, certs: { meshCa: string; payments: string; orders: string }, appPort: number): Promise<{ outPort: number; procs: ChildProcess[] }> {
  const outPort = await freePort();
  const inPort = await freePort();
  const bundle = join(certs.payments, 'svid_bundle.pem');
  const inbound = `${HAPROXY_DEFAULTS}
frontend mtls_in
  bind 127.0.0.1:${inPort} ssl crt ${join(certs.payments, 'haproxy.pem')} ca-file ${bundle} verify required alpn http/1.1
  default_backend app
backend app
  server app 127.0.0.1:${appPort}
`;
  const outbound = `${HAPROXY_DEFAULTS}
frontend app_out
  bind 127.0.0.1:${outPort}
  default_backend payments
backend payments
  server payments 127.0.0.1:${inPort} ssl crt ${join(certs.orders, 'haproxy.pem')} ca-file ${bundle} verify required alpn http/1.1
`;
  const procs: ChildProcess[] = [];
  for (const [name, cfg] of [['haproxy-in.cfg', inbound], ['haproxy-out.cfg', outbound]] as const) {
    const file = join(dir, name);
    writeFileSync(file, cfg);
    const p = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => {
      if (code) log(`haproxy ${name} exited ${code}: ${err.trim()}`);
    });
    procs.push(p);
  }
  await waitForPort(inPort);
  await waitForPort(outPort);
  return { outPort, procs };
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Sample {
  round: number;
  rps: number;
  /** CPU seconds per 1,000 requests: client, server, proxies, total. */
  cpu: { client: number; server: number; proxies: number; total: number };
  lat?: RunResult['latency'];
  service?: RunResult['service'];
  sendLag?: RunResult['sendLag'];
  errors: number;
  dropped: number;
  /** RSS at the end of the run, bytes. */
  rss: { server: number; client: number };
}

async function measure(s: Scenario, spec: RunSpec, round: number): Promise<Sample> {
  const proxyCpu0 = s.proxies.map((p) => procCpuUs(p.pid!));
  const u0 = await s.server.call<Usage>('usage');
  const r = await s.client.call<RunResult>('run', { spec });
  const u1 = await s.server.call<Usage>('usage');
  const proxyCpu = s.proxies.reduce((acc, p, i) => acc + procCpuUs(p.pid!) - proxyCpu0[i]!, 0);
  if (r.errors > 0) log(`${s.id} ${spec.path} ${spec.mode}: ${r.errors} errors (${r.firstError})`);
  const per1k = (us: number) => (r.total > 0 ? (us / 1e6 / r.total) * 1000 : NaN);
  const cpu = { client: per1k(r.cpuUs), server: per1k(u1.cpuUs - u0.cpuUs), proxies: per1k(proxyCpu), total: 0 };
  cpu.total = cpu.client + cpu.server + cpu.proxies;
  return {
    round,
    rps: r.count / (r.windowMs / 1000),
    cpu,
    ...(r.latency && { lat: r.latency, service: r.service!, sendLag: r.sendLag! }),
    errors: r.errors,
    dropped: r.dropped,
    rss: { server: u1.rss, client: r.rss },
  };
}

function rotate<T>(xs: readonly T[], k: number): T[] {
  const n = xs.length;
  return xs.map((_, i) => xs[(i + k) % n]!);
}

/** Paired per-round ratios a/b (or differences a−b) of a metric. */
function paired(a: Sample[], b: Sample[], f: (s: Sample) => number, op: 'ratio' | 'diff'): Spread {
  const out: number[] = [];
  for (const x of a) {
    const y = b.find((s) => s.round === x.round);
    if (y) out.push(op === 'ratio' ? f(x) / f(y) : f(x) - f(y));
  }
  return spread(out);
}

function summarize(samples: Sample[]) {
  const sp = (f: (s: Sample) => number | undefined) => spread(samples.map((s) => f(s) ?? NaN));
  return {
    rps: sp((s) => s.rps),
    cpuTotal: sp((s) => s.cpu.total),
    cpuClient: sp((s) => s.cpu.client),
    cpuServer: sp((s) => s.cpu.server),
    cpuProxies: sp((s) => s.cpu.proxies),
    rssServerMB: sp((s) => MB(s.rss.server)),
    rssClientMB: sp((s) => MB(s.rss.client)),
    p50: sp((s) => s.lat?.p50),
    p90: sp((s) => s.lat?.p90),
    p99: sp((s) => s.lat?.p99),
    max: sp((s) => s.lat?.max),
    serviceP50: sp((s) => s.service?.p50),
    serviceP99: sp((s) => s.service?.p99),
    sendLagP99: sp((s) => s.sendLag?.p99),
    errors: samples.reduce((a, s) => a + s.errors, 0),
    dropped: samples.reduce((a, s) => a + s.dropped, 0),
  };
}

// ---------------------------------------------------------------------------------------------

function machine() {
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGBAtStart: round(freemem() / 2 ** 30, 1),
    os: `${osType()} ${release()}`,
    node: process.version,
    openssl: process.versions.openssl,
    undici: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'undici', 'package.json'), 'utf8')).version as string,
    haproxy: haproxyVersion() ?? null,
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
  };
}

const MB = (b: number) => b / 2 ** 20;

async function main(): Promise<void> {
  const mach = machine();
  log(`${QUICK ? 'quick' : 'full'} run on ${mach.cpuModel} ×${mach.cores}, Node ${mach.node}`);
  const tmp = mkdtempSync(join(tmpdir(), 'sidecarless-bench-'));
  const certs = makeCerts(tmp);
  const hv = mach.haproxy;
  if (!hv) {
    process.stdout.write(
      '\nR3 (haproxy sidecar pair) skipped: haproxy is not installed.\n' +
        '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y haproxy\n' +
        '  macOS: brew install haproxy    Alpine: apk add haproxy    Fedora: dnf install haproxy\n\n',
    );
  }

  // ---- start every process up front (they idle until measured) ----
  const srv = {
    R0: NodeChild.spawn('server R0', 'server.ts', ['--kind', 'plain'], PROFILE),
    R1: certs.tls ? NodeChild.spawn('server R1', 'server.ts', ['--kind', 'tls', '--certs', certs.tls], PROFILE) : undefined,
    R2: NodeChild.spawn('server R2', 'server.ts', ['--kind', 'mesh', '--listeners', '2', '--certs', certs.payments], PROFILE),
    R3: hv ? NodeChild.spawn('app server R3', 'server.ts', ['--kind', 'plain'], PROFILE) : undefined,
    hsPlain: NodeChild.spawn('handshake server mTLS', 'server.ts', ['--kind', 'mtls', '--full-listener', '--certs', certs.payments], PROFILE),
    hsMesh: NodeChild.spawn('handshake server mesh', 'server.ts', ['--kind', 'mesh', '--full-listener', '--certs', certs.payments], PROFILE),
  };
  const ready = async (c: NodeChild | undefined) => (c ? await c.ready : undefined);
  const [r0, r1, r2, r3, hp, hm] = await Promise.all([ready(srv.R0), ready(srv.R1), ready(srv.R2), ready(srv.R3), ready(srv.hsPlain), ready(srv.hsMesh)]);
  const haproxy = hv && r3 ? await startHaproxyPair(tmp, certs, r3.ports![0]!) : undefined;
  const cli = {
    R0: NodeChild.spawn('client R0', 'client.ts', ['--kind', 'plain', '--ports', r0!.ports!.join(',')], PROFILE),
    R1: r1 ? NodeChild.spawn('client R1', 'client.ts', ['--kind', 'tls', '--ports', r1.ports!.join(','), '--certs', certs.tls!], PROFILE) : undefined,
    R2: NodeChild.spawn('client R2', 'client.ts', ['--kind', 'mesh', '--ports', r2!.ports!.join(','), '--certs', certs.orders], PROFILE),
    R3: haproxy ? NodeChild.spawn('client R3', 'client.ts', ['--kind', 'plain', '--ports', String(haproxy.outPort)], PROFILE) : undefined,
    hsPlain: NodeChild.spawn('handshake client mTLS', 'client.ts', ['--kind', 'mtls', '--ports', hp!.ports!.join(','), '--full-port', String(hp!.fullPort), '--certs', certs.orders], PROFILE),
    hsMesh: NodeChild.spawn('handshake client mesh', 'client.ts', ['--kind', 'mesh', '--ports', hm!.ports!.join(','), '--full-port', String(hm!.fullPort), '--certs', certs.orders], PROFILE),
  };
  await Promise.all(Object.values(cli).map((c) => c?.ready));
  log('all processes ready');

  const scenarios: Scenario[] = [];
  const agentPaths = { fetch: 'undici.fetch (Agent)', request: 'undici.request (Agent)' };
  scenarios.push({ id: 'R0', label: 'undici → node:http (plain)', paths: agentPaths, server: srv.R0, client: cli.R0, proxies: [] });
  if (srv.R1 && cli.R1) scenarios.push({ id: 'R1', label: 'undici → node:https (TLS, P-256)', paths: agentPaths, server: srv.R1, client: cli.R1, proxies: [] });
  scenarios.push({
    id: 'R2',
    label: 'sidecarless → mesh.createServer (mTLS + policy)',
    paths: { fetch: 'mesh.fetch', request: 'undici.request (mesh.dispatcher)' },
    server: srv.R2,
    client: cli.R2,
    proxies: [],
  });
  if (haproxy && srv.R3 && cli.R3) {
    scenarios.push({ id: 'R3', label: 'undici → haproxy ⇄ mTLS ⇄ haproxy → node:http', paths: agentPaths, server: srv.R3, client: cli.R3, proxies: haproxy.procs });
  }
  const combos = scenarios.flatMap((s) => (['fetch', 'request'] as const).map((path) => ({ s, path })));
  /**
   * One round's order: the scenarios of one client path back to back (so the pairs the goals compare
   * run seconds apart), the scenario order rotated and the path order swapped every round.
   */
  const order = (round: number, paths: readonly Path[]) =>
    rotate(paths, round).flatMap((path) => rotate(scenarios, round).map((s) => ({ s, path })));

  // ---- sanity + warm-up ----
  for (const { s, path } of combos) {
    const r = await measure(s, { path, mode: 'closed', concurrency: CONCURRENCY, rate: 0, warmupMs: 0, durationMs: P.warmupMs }, -1);
    if (r.errors > 0 && r.rps === 0) throw new Error(`${s.id} ${path}: every request failed during warm-up`);
  }
  log('warm-up done');

  // ---- rounds: throughput (closed loop) then latency (open loop), order rotated each round ----
  const tp = new Map<string, Sample[]>();
  const lat = new Map<string, Sample[]>();
  const key = (id: string, path: string) => `${id}/${path}`;
  for (let round = 0; round < P.rounds; round++) {
    for (const { s, path } of order(round, ['fetch', 'request'])) {
      const sample = await measure(s, { path, mode: 'closed', concurrency: CONCURRENCY, rate: 0, warmupMs: P.tpWarmMs, durationMs: P.tpMs }, round);
      (tp.get(key(s.id, path)) ?? tp.set(key(s.id, path), []).get(key(s.id, path))!).push(sample);
    }
    for (const { s, path } of order(round, P.latPaths)) {
      const sample = await measure(s, { path, mode: 'open', concurrency: 0, rate: RATE, warmupMs: P.latWarmMs, durationMs: P.latMs }, round);
      (lat.get(key(s.id, path)) ?? lat.set(key(s.id, path), []).get(key(s.id, path))!).push(sample);
    }
    log(`round ${round + 1}/${P.rounds} done`);
  }

  // ---- memory: peak RSS of every process after the traffic rounds ----
  // Also the RSS each process had when it was ready (modules loaded, mesh created, no traffic yet).
  const rss: Record<string, { server: number; client: number; serverAtReady: number; clientAtReady: number; proxies?: number[] }> = {};
  for (const s of scenarios) {
    const [su, cu, sr, cr] = await Promise.all([s.server.call<Usage>('usage'), s.client.call<Usage>('usage'), s.server.ready, s.client.ready]);
    rss[s.id] = { server: su.maxRss, client: cu.maxRss, serverAtReady: sr.rss, clientAtReady: cr.rss, ...(s.proxies.length && { proxies: s.proxies.map((p) => procRss(p.pid!).maxRss) }) };
  }
  const meshStats = await srv.R2.call<{ inbound: { authz: { allowed: number; denied: number } }; outbound?: unknown }>('stats');
  const clientMeshUsage = await cli.R2.call<Usage>('usage');

  // ---- cold start: spawn → first response → exit, alternating ----
  const cold: Record<string, Array<{ wallMs: number; firstResponse: number; imported?: number; meshReady?: number; maxRss: number }>> = {};
  const coldModes = P.coldModes.filter((m) => m !== 'bare' || certs.tls);
  for (let run = 0; run < P.coldRuns; run++) {
    for (const mode of rotate(coldModes, run)) {
      const args =
        mode === 'bare'
          ? [join(BENCH_DIR, 'cold', 'bare.mjs'), String(r1!.ports![0]), join(certs.tls!, 'ca.pem')]
          : [join(BENCH_DIR, 'cold', 'mesh.mjs'), mode, r2!.ports!.join(','), mode === 'devca' ? certs.meshCa : certs.orders];
      const t0 = performance.now();
      const prof = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(PROFILE, `cold-${mode}-${run}`)] : [];
      const child = spawn(process.execPath, [...prof, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d));
      child.stderr!.on('data', (d: Buffer) => (err += d));
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      clearTimeout(killer);
      const wallMs = performance.now() - t0;
      if (code !== 0) {
        log(`cold start ${mode} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`);
        continue;
      }
      const j = JSON.parse(out.trim().split('\n').pop()!);
      (cold[mode] ??= []).push({ wallMs, ...j });
    }
  }
  log('cold start done');

  // ---- handshakes: a new connection per request, full (server refuses resumption) and resumed ----
  const hsScenarios: Scenario[] = [
    { id: 'R1', label: 'plain Node mTLS (https + undici Agent, same SVIDs)', paths: agentPaths, server: srv.hsPlain, client: cli.hsPlain, proxies: [] },
    { id: 'R2', label: 'sidecarless (ClientTls ⇄ ServerTls)', paths: agentPaths, server: srv.hsMesh, client: cli.hsMesh, proxies: [] },
  ];
  const hsCombos = hsScenarios.flatMap((s) => (['full', 'main'] as const).map((target) => ({ s, target })));
  const hs = new Map<string, Array<Sample & { full: number; resumed: number }>>();
  for (let round = -1; round < P.hsRounds; round++) {
    for (const { s, target } of rotate(hsCombos, Math.max(0, round))) {
      const h0 = (await s.server.call<Usage>('usage')).handshakes!;
      const spec: RunSpec = { path: 'request', mode: 'closed', concurrency: HS_CONCURRENCY, rate: 0, warmupMs: round < 0 ? 0 : P.hsWarmMs, durationMs: round < 0 ? P.hsWarmMs * 2 : P.hsMs, reset: true, target };
      const sample = await measure(s, spec, round);
      const h1 = (await s.server.call<Usage>('usage')).handshakes!;
      if (round < 0) continue;
      const k = key(s.id, target);
      (hs.get(k) ?? hs.set(k, []).get(k)!).push({ ...sample, full: h1.full - h0.full, resumed: h1.resumed - h0.resumed });
    }
  }
  log('handshakes done');

  await Promise.all([...Object.values(cli), ...Object.values(srv)].map((c) => c?.close()));
  for (const p of haproxy?.procs ?? []) p.kill('SIGTERM');

  // ---- micro-benchmarks (in this process, nothing else running) ----
  const micro: Array<{ name: string; rows: Array<Record<string, number | string>> }> = [];
  const microMods: Array<[string, string]> = [
    ['policy.ts', 'benchPolicy'],
    ['balancer.ts', 'benchBalancer'],
    ['lb-sim.ts', 'benchLbSim'],
    ['snapshot.ts', 'benchSnapshot'],
    ['identity.ts', 'benchIdentity'],
    ['xds.ts', 'benchXds'],
    ['ca.ts', 'benchCa'],
    ['telemetry.ts', 'benchTelemetry'], // added by another issue; run when present
    ['control-plane.ts', 'benchControlPlane'], // issue 13: the embedded control plane's ADS server at scale (its own processes)
    ['grpc.ts', 'benchGrpc'], // issue 15: grpc-js through mesh.grpc, and HTTP/2 inbound, against plain TLS (server in its own process)
    ['linkerd.ts', 'benchLinkerd'], // issue 16: the Linkerd control plane, push → applied against the controller's own round trip
    ['cold-start.ts', 'benchColdStart'], // issue 14: cold start (files, token bootstrap) ÷ undici and node:https, RSS, warm invocations
  ];
  for (const [file, fn] of microMods) {
    const path = join(BENCH_DIR, file);
    if (!existsSync(path)) {
      log(`${file} not present: skipped`);
      continue;
    }
    try {
      const mod = (await import(pathToFileURL(path).href)) as Record<string, (o: { quick: boolean }) => Promise<{ name: string; rows: Array<Record<string, number | string>> }>>;
      micro.push(await mod[fn]!({ quick: QUICK }));
    } catch (e) {
      log(`${file}: ${(e as Error).message}`);
      micro.push({ name: `${file} failed`, rows: [{ error: (e as Error).message }] });
    }
  }
  rmSync(tmp, { recursive: true, force: true });

  // ---- results ----
  const results = {
    schema: 'sidecarless-bench/1',
    date: new Date().toISOString(),
    mode: QUICK ? 'quick' : 'full',
    commit: gitCommit(),
    machine: { ...mach, loadavgAtEnd: loadavg().map((x) => round(x, 2)) },
    parameters: { ...P, concurrency: CONCURRENCY, rateRps: RATE, handshakeConcurrency: HS_CONCURRENCY, payloadBytes: 1024, request: 'GET /api/orders/42, HTTP/1.1 keep-alive' },
    scenarios: scenarios.map((s) => ({ id: s.id, label: s.label, paths: s.paths })),
    throughput: Object.fromEntries([...tp].map(([k, v]) => [k, { ...summarize(v), samples: v }])),
    latency: Object.fromEntries([...lat].map(([k, v]) => [k, { ...summarize(v), samples: v }])),
    rssMB: Object.fromEntries(
      Object.entries(rss).map(([k, v]) => [
        k,
        {
          server: round(MB(v.server), 1),
          client: round(MB(v.client), 1),
          serverAtReady: round(MB(v.serverAtReady), 1),
          clientAtReady: round(MB(v.clientAtReady), 1),
          ...(v.proxies && { proxies: v.proxies.map((p) => round(MB(p), 1)) }),
        },
      ]),
    ),
    handshakes: Object.fromEntries(
      [...hs].map(([k, v]) => [k, { ...summarize(v), connectionsPerSec: spread(v.map((s) => s.rps)), serverSawFull: v.reduce((a, s) => a + s.full, 0), serverSawResumed: v.reduce((a, s) => a + s.resumed, 0) }]),
    ),
    coldStart: Object.fromEntries(
      Object.entries(cold).map(([k, v]) => [
        k,
        {
          wallMs: spread(v.map((x) => x.wallMs)),
          firstResponseMs: spread(v.map((x) => x.firstResponse)),
          ...(v[0]?.imported !== undefined && { importMs: spread(v.map((x) => x.imported!)), meshReadyMs: spread(v.map((x) => x.meshReady!)) }),
          maxRssMB: spread(v.map((x) => MB(x.maxRss))),
        },
      ]),
    ),
    meshSanity: { serverAuthz: meshStats.inbound.authz, clientRequests: clientMeshUsage.requests },
    micro,
    ratios: {} as Record<string, unknown>,
    goals: [] as Array<{ goal: string; target: string; measured: string; met: boolean | null; by?: string }>,
    totalSeconds: 0,
  };

  const tps = (id: string, path: Path) => tp.get(key(id, path)) ?? [];
  const lats = (id: string, path: Path) => lat.get(key(id, path)) ?? [];
  const goals = results.goals;
  for (const path of ['fetch', 'request'] as const) {
    const vsR1 = paired(tps('R2', path), tps('R1', path), (s) => s.rps, 'ratio');
    const vsR3 = paired(tps('R2', path), tps('R3', path), (s) => s.rps, 'ratio');
    const r1vsR0 = paired(tps('R1', path), tps('R0', path), (s) => s.rps, 'ratio');
    const cpuVsR1 = paired(tps('R2', path), tps('R1', path), (s) => s.cpu.total, 'ratio');
    const addedP99 = paired(lats('R2', path), lats('R1', path), (s) => s.lat!.p99, 'diff');
    const addedP50 = paired(lats('R2', path), lats('R1', path), (s) => s.lat!.p50, 'diff');
    // Requests per CPU-second is far less sensitive than req/s to how much of the machine the
    // neighbours leave us: the second opinion on the throughput goals.
    const effVsR1 = paired(tps('R2', path), tps('R1', path), (s) => 1 / s.cpu.total, 'ratio');
    const effVsR3 = paired(tps('R2', path), tps('R3', path), (s) => 1 / s.cpu.total, 'ratio');
    results.ratios[path] = {
      throughputR2overR1: vsR1,
      throughputR2overR3: vsR3,
      throughputR1overR0: r1vsR0,
      cpuPerRequestR2overR1: cpuVsR1,
      requestsPerCpuSecondR2overR1: effVsR1,
      requestsPerCpuSecondR2overR3: effVsR3,
      addedP50Ms: addedP50,
      addedP99Ms: addedP99,
    };
    const label = scenarios.find((s) => s.id === 'R2')!.paths[path];
    goals.push(goalAtLeast(`throughput R2/R1, ${label}`, vsR1, GOALS.throughputVsR1));
    goals.push(haproxy ? goalAtLeast(`throughput R2/R3, ${label}`, vsR3, GOALS.throughputVsR3) : skipped(`throughput R2/R3, ${label}`, `≥ ${GOALS.throughputVsR3}`, 'haproxy not installed'));
    if (addedP99.n > 0) goals.push(goalAtMost(`added p99 at ${RATE} req/s (R2 − R1), ${label}`, addedP99, GOALS.addedP99Ms, ' ms'));
    else goals.push(skipped(`added p99 at ${RATE} req/s (R2 − R1), ${label}`, `≤ ${GOALS.addedP99Ms} ms`, 'not measured in --quick (request path only)'));
  }
  if (rss.R1 && rss.R2) {
    // Judged on the RSS right after each saturation run (32 in flight, bounded work), R2 − R1 per
    // round. The lifetime peak is reported too, but a stall during an open-loop run queues
    // hundreds of requests and sets it, so it swings by tens of MB between runs of the same code.
    for (const side of ['server', 'client'] as const) {
      const underLoad = spread(
        (['fetch', 'request'] as const).flatMap((path) => paired(tps('R2', path), tps('R1', path), (s) => MB(s.rss[side]), 'diff').values),
      );
      const peak = MB(rss.R2[side] - rss.R1[side]);
      const atReady = MB(rss.R2[`${side}AtReady`] - rss.R1[`${side}AtReady`]);
      results.ratios[`rssIncrementMB_${side}`] = { underLoad, peak: round(peak, 1), atReady: round(atReady, 1) };
      const inc = underLoad.median;
      goals.push({
        goal: `mesh RSS increment, ${side} process (R2 − R1, RSS after each saturation run)`,
        target: `≤ ${GOALS.rssIncrementMB} MB`,
        measured: `${fmt(underLoad, 1)} MB; before traffic ${atReady.toFixed(1)} MB; lifetime peak ${peak.toFixed(1)} MB`,
        met: inc <= GOALS.rssIncrementMB,
        ...(inc > GOALS.rssIncrementMB && { by: `${(inc - GOALS.rssIncrementMB).toFixed(1)} MB over` }),
      });
    }
  }
  if (cold.bare?.length && cold.devca?.length) {
    for (const mode of ['devca', 'dir'] as const) {
      if (!cold[mode]?.length) continue;
      const ratio = spread(cold[mode]!.map((x, i) => x.wallMs / (cold.bare![i] ?? cold.bare![0]!).wallMs));
      const ofMedians = spread(cold[mode]!.map((x) => x.wallMs)).median / spread(cold.bare.map((x) => x.wallMs)).median;
      results.ratios[`coldStart_${mode}_overBare`] = { paired: ratio, ofMedians: round(ofMedians, 3) };
      if (mode === 'devca') {
        goals.push({
          goal: 'cold start: spawn → first mTLS response → exit, dev CA in process, ÷ bare Node TLS request',
          target: `≤ ${GOALS.coldStartRatio}×`,
          measured: `${ofMedians.toFixed(2)}× (per-run ${fmt(ratio)})`,
          met: ofMedians <= GOALS.coldStartRatio,
          ...(ofMedians > GOALS.coldStartRatio && { by: `${(((ofMedians - GOALS.coldStartRatio) / GOALS.coldStartRatio) * 100).toFixed(0)} % over (${(ofMedians / GOALS.coldStartRatio).toFixed(2)}× the allowed time)` }),
        });
      }
    }
  }
  for (const t of ['full', 'main'] as const) {
    const m = hs.get(key('R2', t));
    const p = hs.get(key('R1', t));
    if (m && p) results.ratios[`handshakes_${t === 'main' ? 'resumed' : 'full'}_meshOverPlain`] = paired(m, p, (s) => s.rps, 'ratio');
  }
  results.totalSeconds = round((performance.now() - T_START) / 1000, 1);

  const md = renderMarkdown(results, scenarios);
  process.stdout.write('\n' + md + '\n');
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  writeFileSync(join(BENCH_DIR, 'results', 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(BENCH_DIR, 'results', 'latest.md'), md + '\n');
  log(`wrote bench/results/latest.json and latest.md (${results.totalSeconds} s)`);
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function goalAtLeast(goal: string, s: Spread, target: number) {
  const met = s.n === 0 ? null : s.median >= target;
  return {
    goal,
    target: `≥ ${target}`,
    measured: s.n ? `${fmt(s, 3)}` : 'not measured',
    met,
    ...(met === false && { by: `${(((target - s.median) / target) * 100).toFixed(1)} % short (${s.median.toFixed(3)} vs ${target})` }),
  };
}

function goalAtMost(goal: string, s: Spread, target: number, unit: string) {
  const met = s.n === 0 ? null : s.median <= target;
  return {
    goal,
    target: `≤ ${target}${unit}`,
    measured: `${fmt(s, 3)}${unit}`,
    met,
    ...(met === false && { by: `${(s.median - target).toFixed(3)}${unit} over` }),
  };
}

function skipped(goal: string, target: string, why: string) {
  return { goal, target, measured: `skipped: ${why}`, met: null };
}

function mdTable(head: string[], rows: Array<Array<string | number>>): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function renderMarkdown(r: any, scenarios: Scenario[]): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`### sidecarless bench — ${r.mode} run, ${r.date.slice(0, 16).replace('T', ' ')} UTC, commit ${r.commit ?? '?'}`);
  out.push('');
  out.push(`Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGB} GB, ${m.os}, Node ${m.node} (OpenSSL ${m.openssl}), undici ${m.undici}, haproxy ${m.haproxy ?? 'not installed'}; load average ${m.loadavgAtStart.join('/')} at start, ${m.loadavgAtEnd.join('/')} at end.`);
  out.push(`Figures: median over ${r.parameters.rounds} alternating rounds (min–max). Throughput: closed loop, ${r.parameters.concurrency} in flight. Latency: open loop at ${r.parameters.rateRps} req/s, from the scheduled send time. CPU: client + server (+ proxies) process CPU seconds per 1,000 requests at saturation.`);
  out.push('');
  const rows: Array<Array<string | number>> = [];
  for (const s of scenarios) {
    for (const path of ['fetch', 'request'] as const) {
      const t = r.throughput[`${s.id}/${path}`];
      const l = r.latency[`${s.id}/${path}`];
      const rss = r.rssMB[s.id];
      rows.push([
        s.id,
        s.paths[path],
        t ? fmt(t.rps, 0) : '—',
        l ? fmt(l.p50, 2) : '—',
        l ? fmt(l.p90, 2) : '—',
        l ? fmt(l.p99, 2) : '—',
        t ? fmt(t.cpuTotal, 3) : '—',
        t && rss ? `${t.rssServerMB.median.toFixed(0)} / ${t.rssClientMB.median.toFixed(0)} (peak ${rss.server} / ${rss.client}${rss.proxies ? `; haproxy ${rss.proxies.join(' + ')}` : ''})` : '—',
      ]);
    }
  }
  out.push(mdTable(['', 'client path', 'req/s (32 in flight)', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU s / 1k req', 'RSS MB under load: server / client (lifetime peak)'], rows));
  out.push('');
  out.push(scenarios.map((s) => `${s.id}: ${s.label}`).join(' · '));
  out.push('');
  out.push('**Goals** (ratios from the same run, paired round by round)');
  out.push('');
  out.push(mdTable(['goal', 'target', 'measured: median (min–max)', 'met'], r.goals.map((g: any) => [g.goal, g.target, g.measured, g.met === null ? 'n/a' : g.met ? 'yes' : `**no** — ${g.by}`])));
  out.push('');
  const ratioRows: Array<Array<string | number>> = [];
  for (const path of ['fetch', 'request'] as const) {
    const x = r.ratios[path];
    ratioRows.push([
      path,
      fmt(x.throughputR1overR0, 3),
      fmt(x.throughputR2overR1, 3),
      fmt(x.throughputR2overR3, 3),
      fmt(x.requestsPerCpuSecondR2overR1, 3),
      fmt(x.requestsPerCpuSecondR2overR3, 3),
      fmt(x.addedP50Ms, 3),
      fmt(x.addedP99Ms, 3),
    ]);
  }
  out.push(mdTable(['path', 'req/s R1/R0', 'req/s R2/R1', 'req/s R2/R3', 'req per CPU-s R2/R1', 'req per CPU-s R2/R3', 'added p50 ms', 'added p99 ms'], ratioRows));
  out.push('');
  const hsRows: Array<Array<string | number>> = [];
  for (const [k, v] of Object.entries(r.handshakes) as Array<[string, any]>) {
    const [id, t] = k.split('/');
    hsRows.push([id === 'R2' ? 'sidecarless' : 'plain Node mTLS', t === 'main' ? 'resumed' : 'full', fmt(v.connectionsPerSec, 0), fmt(v.cpuTotal, 3), `${v.serverSawFull} full / ${v.serverSawResumed} resumed`]);
  }
  out.push(`**Handshakes**: a new mTLS connection per request (undici, \`reset: true\`), ${r.parameters.handshakeConcurrency} at a time.`);
  out.push('');
  out.push(mdTable(['stack', 'handshake', 'connections/s', 'CPU s / 1k conns', 'server saw'], hsRows));
  const hr = (k: string) => (r.ratios[k] ? fmt(r.ratios[k], 3) : '—');
  out.push('');
  out.push(`sidecarless / plain: full ${hr('handshakes_full_meshOverPlain')}, resumed ${hr('handshakes_resumed_meshOverPlain')}.`);
  out.push('');
  const coldRows: Array<Array<string | number>> = [];
  const coldLabel: Record<string, string> = { bare: 'bare Node: one https request', devca: 'sidecarless: createMesh (dev CA in process) + mesh.fetch', dir: 'sidecarless: createMesh (SVID files) + mesh.fetch' };
  for (const [k, v] of Object.entries(r.coldStart) as Array<[string, any]>) {
    coldRows.push([coldLabel[k] ?? k, fmt(v.wallMs, 0), fmt(v.firstResponseMs, 0), v.importMs ? fmt(v.importMs, 0) : '—', v.meshReadyMs ? fmt(v.meshReadyMs, 0) : '—', fmt(v.maxRssMB, 1)]);
  }
  out.push(`**Cold start** (${r.parameters.coldRuns} runs each, alternating)`);
  out.push('');
  out.push(mdTable(['process', 'spawn → exit ms', 'first response at ms', 'import done at ms', 'mesh ready at ms', 'peak RSS MB'], coldRows));
  for (const mb of r.micro) {
    out.push('');
    out.push(`**${mb.name}**`);
    out.push('');
    const cols = [...new Set(mb.rows.flatMap((x: object) => Object.keys(x)))] as string[];
    out.push(mdTable(cols, mb.rows.map((x: Record<string, unknown>) => cols.map((c) => String(x[c] ?? '')))));
  }
  out.push('');
  out.push(`Total ${r.totalSeconds} s (without the build).`);
  return out.join('\n');
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
