/**
 * The embedded control plane's ADS server at scale (issue 13), in two fresh processes:
 *   - the control plane: a grpc-js Server on 127.0.0.1 (PLAINTEXT port: no TLS handshakes, no
 *     authentication; what is measured is the ADS protocol and the pushes) with createAdsService
 *     over a ResourceSource backed by generateOutboundResources for 500 services (2–3 endpoints
 *     each, every fifth with a split), generated once per change and shared by every client;
 *   - the load generator (bench/control-plane-clients.ts): N light ADS clients, one HTTP/2
 *     connection each, each watching K services (LDS → RDS → CDS → EDS by name, every response ACKed).
 * Measured: connect + full sync of all N; then M changes (a split weight: RDS; an endpoint's
 * weight: EDS; each to a service every client watches), each timed from the change (before the
 * resources are regenerated) to the last client's arrival of the new version; the control plane's
 * RSS (after sync, at the end) and CPU seconds (per push; per client = sync CPU / N).
 * Anchor (issue 13): istiod uses about 1 vCPU and 1.5 GB for 1,000 services and 2,000 sidecars.
 * Goals, judged in the same run: push p99 ≤ 2 s, control-plane RSS ≤ 300 MB. The machine is
 * shared: figures are one run's, goals are reported, never asserted.
 *
 *   node --import tsx bench/control-plane.ts [--quick] [--profile DIR] [--tsx]
 * The control-plane process runs this file compiled to JavaScript (a shipped control plane's
 * memory); --tsx runs it under tsx instead.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceSpec } from '../src/outbound/settings.js';
import { systemClock } from '../src/clock.js';
import { encodeDiscoveryResponse } from '../src/proto/envoy/service/discovery/v3/discovery.js';
import { serializeDiscoveryResponse } from '../src/server/xds/ads-encode.js';
import { createAdsService, DEFAULT_COALESCE_MS, type ResourceSource } from '../src/server/xds/ads-service.js';
import { type AdsClient, AdsSession, type DigestCache } from '../src/server/xds/ads-session.js';
import { generateOutboundResources, type OutboundResources, reuseUnchanged, type OutboundServiceInput, TYPE_URLS } from '../src/server/xds/outbound-resources.js';
import { epochMs, hasSplit, PORT, SERVICES, SHARED, splitTargets, subscription, svcName } from './lib/ads-scale.js';
import { arg, flag, quantile, round } from './lib/common.js';
import { BENCH_DIR, ROOT } from './lib/proc.js';

type Row = Record<string, number | string>;
const GOALS = { pushP99Ms: 2_000, rssMB: 300 };
const MB = (b: number) => round(b / 2 ** 20, 1);
const cpuS = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const verdict = (x: number, goal: number, unit: string) => (x <= goal ? 'PASS' : `over by ${round(x - goal, 1)} ${unit}`);

// ---------------------------------------------------------------------------------------------
// The served mesh, and a source that regenerates once per change.

const idOf = (i: number) => `spiffe://cluster.local/ns/default/sa/${svcName(i)}`;

function serviceInput(i: number, splitWeight = 90, epWeight = 1): OutboundServiceInput {
  const endpoints = Array.from({ length: i % 2 === 0 ? 2 : 3 }, (_, e) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.${e + 1}:${PORT}`, identity: idOf(i), weight: e === 0 ? epWeight : 1 }));
  const [a, b] = splitTargets(i);
  const spec: ServiceSpec = {
    name: svcName(i),
    namespace: 'default',
    hostnames: [],
    identity: idOf(i),
    settings: DEFAULT_SERVICE_SETTINGS,
    routes: [],
    endpoints,
    ...(hasSplit(i) && { split: [{ service: svcName(a!), weight: splitWeight }, { service: svcName(b!), weight: 100 - splitWeight }] }),
  };
  return { spec, port: PORT };
}

class Mesh implements ResourceSource {
  readonly services = Array.from({ length: SERVICES }, (_, i) => serviceInput(i));
  resources: OutboundResources = new Map();
  generations = 0;

  /** Regenerates every resource (what a real source does once per change); returns the ms it took. */
  regenerate(): number {
    const t0 = performance.now();
    this.resources = reuseUnchanged(generateOutboundResources(this.services, { portableLbPolicy: true }), this.resources);
    this.generations++;
    return performance.now() - t0;
  }

  resolve(_c: unknown, typeUrl: string): ReadonlyMap<string, Uint8Array> {
    // As MeshResourceSource: the shared map (the session takes only the names it asked for).
    return this.resources.get(typeUrl) ?? new Map<string, Uint8Array>();
  }

  readonly #splitWeight = new Array<number>(SERVICES).fill(90);
  readonly #endpointWeight = new Array<number>(SERVICES).fill(1);

  /** Change `j` (one resource of one type): even, service 0's split weight (RDS); odd, one endpoint's weight of a shared service (EDS). */
  change(j: number): string {
    const [s, typeUrl] = j % 2 === 0 ? [0, TYPE_URLS.routes] : [((j - 1) / 2) % SHARED, TYPE_URLS.endpoints];
    if (typeUrl === TYPE_URLS.routes) this.#splitWeight[s] = 10 + ((this.#splitWeight[s]! - 9) % 80);
    else this.#endpointWeight[s] = this.#endpointWeight[s]! + 1;
    this.services[s] = serviceInput(s, this.#splitWeight[s], this.#endpointWeight[s]);
    return typeUrl;
  }
}

// ---------------------------------------------------------------------------------------------
// The load generator child.

interface ClientEvent {
  event: string;
  [k: string]: unknown;
}

class Clients {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<{ event: string; resolve: (e: ClientEvent) => void }> = [];
  readonly #early: ClientEvent[] = [];
  #stderr = '';

  constructor() {
    this.#proc = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'control-plane-clients.ts')], { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } });
    this.#proc.stderr.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4_000)));
    createInterface({ input: this.#proc.stdout }).on('line', (line) => {
      const e = JSON.parse(line) as ClientEvent;
      const i = this.#waiting.findIndex((w) => w.event === e.event);
      if (i >= 0) this.#waiting.splice(i, 1)[0]!.resolve(e);
      else this.#early.push(e);
    });
  }

  get pid(): number {
    return this.#proc.pid!;
  }

  send(m: object): void {
    this.#proc.stdin.write(JSON.stringify(m) + '\n');
  }

  next<T extends ClientEvent>(event: string, timeoutMs = 60_000): Promise<T> {
    const i = this.#early.findIndex((e) => e.event === event);
    if (i >= 0) return Promise.resolve(this.#early.splice(i, 1)[0] as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator: no ${event} after ${timeoutMs} ms; stderr: ${this.#stderr}`)), timeoutMs);
      const onExit = (code: number | null) => reject(new Error(`load generator exited (${code}) waiting for ${event}; stderr: ${this.#stderr}`));
      this.#proc.once('exit', onExit);
      this.#waiting.push({
        event,
        resolve: (e) => {
          clearTimeout(timer);
          this.#proc.off('exit', onExit);
          resolve(e as T);
        },
      });
    });
  }

  async close(): Promise<ClientEvent | undefined> {
    if (this.#proc.exitCode !== null) return undefined;
    const exited = new Promise<void>((r) => this.#proc.once('exit', () => r()));
    this.send({ op: 'close' });
    const closed = await this.next('closed', 10_000).catch(() => undefined);
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    return closed;
  }
}

// ---------------------------------------------------------------------------------------------
// In process, no network: what one push costs the protocol layer (every session's refresh and the
// serialization of what it returns), as ads-service.ts does it (digests shared by the pass,
// one-buffer serializer) and as a server would without them (digests per session, generated codec).

function refreshInProcess(n: number, k: number, rounds: number): Row[] {
  const mesh = new Mesh();
  mesh.regenerate();
  const sessions = Array.from({ length: n }, (_, c) => {
    const client: AdsClient = { id: `c${c}`, node: undefined, identity: undefined, plaintext: true };
    const s = new AdsSession(client, mesh, systemClock);
    const sub = subscription(c, k);
    const names = { [TYPE_URLS.listener]: sub.listeners, [TYPE_URLS.routes]: sub.routes, [TYPE_URLS.cluster]: sub.clusters, [TYPE_URLS.endpoints]: sub.clusters };
    for (const [typeUrl, resourceNames] of Object.entries(names)) s.receive({ typeUrl, resourceNames, versionInfo: '', responseNonce: '' });
    return s;
  });
  const ways = {
    shared: { cache: (): DigestCache | undefined => new Map(), encode: serializeDiscoveryResponse, ms: [] as number[], bytes: 0 },
    perSession: { cache: (): DigestCache | undefined => undefined, encode: (r: Parameters<typeof encodeDiscoveryResponse>[0]) => Buffer.from(encodeDiscoveryResponse(r)), ms: [] as number[], bytes: 0 },
  };
  for (let j = 0; j < rounds * 2; j++) {
    const w = j % 2 === 0 ? ways.shared : ways.perSession; // alternate: the machine is shared
    mesh.change(1_000 + j);
    mesh.regenerate();
    const u0 = process.cpuUsage();
    const cache = w.cache();
    let bytes = 0;
    let pushed = 0;
    for (const s of sessions) {
      for (const r of s.refresh(cache)) {
        bytes += w.encode(r).length;
        pushed++;
      }
    }
    if (pushed !== n) throw new Error(`in process: ${pushed} responses for ${n} sessions`);
    w.ms.push(cpuS(u0) * 1000);
    w.bytes = bytes;
  }
  const med = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  const shared = med(ways.shared.ms);
  const perSession = med(ways.perSession.ms);
  return [
    { what: `in process, no network: one push to ${n} sessions × ${k} services (refresh every session, serialize its response): shared digests + one-buffer serializer (ads-service.ts)`, cpuMs: round(shared, 1), perClientUs: round((shared / n) * 1000, 1), responseKB: round(ways.shared.bytes / n / 1024, 1), n: rounds },
    { what: 'the same with no digest cache (every session hashes each resource itself) and the generated codec', cpuMs: round(perSession, 1), perClientUs: round((perSession / n) * 1000, 1), ratio: round(perSession / shared, 2), n: rounds },
  ];
}

// ---------------------------------------------------------------------------------------------
// One configuration: N clients watching K services each, M changes.

interface Config {
  n: number;
  k: number;
  pushes: number;
}

async function runConfig(cfg: Config): Promise<Row> {
  const load0 = loadavg()[0]!;
  const rssAtStart = process.memoryUsage().rss;
  const mesh = new Mesh();
  const genMs: number[] = [mesh.regenerate()];
  const ads = createAdsService(grpc, { source: mesh, plaintext: true });
  const server = new grpc.Server();
  server.addService(ads.definition, ads.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const clients = new Clients();
  try {
    const c0 = process.cpuUsage();
    clients.send({ op: 'open', address: `127.0.0.1:${port}`, n: cfg.n, k: cfg.k, concurrency: 100 });
    const synced = await clients.next<ClientEvent & { ms: number; perClient: { p50: number; p99: number }; cpuMs: number; cpuTotalMs: number; incomplete: number; errors: number }>('synced', 90_000);
    const syncCpu = cpuS(c0);
    const connected = ads.clients().length;
    if (connected !== cfg.n || synced.incomplete > 0 || synced.errors > 0) throw new Error(`sync: ${connected} of ${cfg.n} connected, ${synced.incomplete} incomplete, ${synced.errors} with errors`);
    await sleep(200); // the last ACKs land
    const rssSynced = process.memoryUsage().rss;

    const push: number[] = [];
    const pushMedian: number[] = [];
    const pushCpu: number[] = [];
    let missing = 0;
    let sameVersion = 0;
    const loadGenCpu: number[] = [];
    let lastLoadGenCpu = synced.cpuTotalMs;
    for (let j = 0; j < cfg.pushes; j++) {
      const typeUrl = mesh.change(j);
      clients.send({ op: 'mark', id: j, typeUrl });
      await clients.next('marked');
      const u0 = process.cpuUsage();
      const t0 = epochMs();
      genMs.push(mesh.regenerate());
      ads.changed();
      const r = await clients.next<ClientEvent & { arrivals: Array<number | null>; missing: number; sameVersion: number; cpuMs: number }>('pushed', 30_000);
      loadGenCpu.push(r.cpuMs - lastLoadGenCpu);
      lastLoadGenCpu = r.cpuMs;
      sameVersion = r.sameVersion;
      await sleep(100); // the ACKs of this push are handled inside its CPU window
      pushCpu.push(cpuS(u0));
      missing += r.missing;
      const lat = r.arrivals.filter((a): a is number => a !== null).map((a) => a - t0).sort((a, b) => a - b);
      push.push(lat.at(-1) ?? NaN);
      pushMedian.push(quantile(lat, 0.5));
    }
    const mem = process.memoryUsage();
    const rssEnd = mem.rss;
    const rssMax = process.resourceUsage().maxRSS * 1024;
    const sorted = [...push].sort((a, b) => a - b);
    const p99 = quantile(sorted, 0.99);
    const rssJudged = Math.max(rssSynced, rssEnd);
    return {
      what: `${cfg.n} clients (100 connecting at a time) × ${cfg.k} services each (of ${SERVICES}), ${cfg.pushes} changes`,
      clients: cfg.n,
      servicesEach: cfg.k,
      syncAllS: round(synced.ms / 1000, 2),
      syncPerClientP50Ms: round(synced.perClient.p50, 1),
      syncPerClientP99Ms: round(synced.perClient.p99, 1),
      cpuPerClientMs: round((syncCpu / cfg.n) * 1000, 2),
      pushLastClientP50Ms: round(quantile(sorted, 0.5), 1),
      pushLastClientP99Ms: round(p99, 1),
      pushLastClientMaxMs: round(sorted.at(-1)!, 1),
      pushMedianClientP50Ms: round(quantile([...pushMedian].sort((a, b) => a - b), 0.5), 1),
      cpuPerPushS: round(quantile([...pushCpu].sort((a, b) => a - b), 0.5), 3),
      cpuPerPushMaxS: round(Math.max(...pushCpu), 3),
      generateMs: round(quantile([...genMs].sort((a, b) => a - b), 0.5), 1),
      missed: missing,
      rssBeforeMB: MB(rssAtStart),
      rssSyncedMB: MB(rssSynced),
      rssEndMB: MB(rssEnd),
      rssPeakMB: MB(rssMax),
      heapEndMB: MB(mem.heapUsed),
      externalEndMB: MB(mem.external),
      loadGenCpuSyncS: round(synced.cpuMs / 1000, 2),
      loadGenCpuPerPushS: round(quantile([...loadGenCpu].sort((a, b) => a - b), 0.5) / 1000, 3),
      repeatedVersions: sameVersion,
      loadAvg: `${round(load0, 1)} → ${round(loadavg()[0]!, 1)} (${cpus().length} cores)`,
      'push p99 ≤ 2 s': missing > 0 ? `over: ${missing} arrivals missed` : verdict(p99, GOALS.pushP99Ms, 'ms'),
      'RSS ≤ 300 MB': verdict(MB(rssJudged), GOALS.rssMB, 'MB'),
    };
  } finally {
    await clients.close();
    ads.close();
    server.forceShutdown();
  }
}

const CONFIGS = (quick: boolean): Config[] => (quick ? [{ n: 200, k: 50, pushes: 4 }] : [{ n: 1_000, k: 50, pushes: 20 }, { n: 200, k: 500, pushes: 10 }]);

/**
 * The control-plane process's entry: this file compiled to plain JavaScript (esbuild, as dist/ is
 * built; dependencies from node_modules), so its RSS is a shipped control plane's, not that plus
 * tsx's loader thread and source maps (≈ 15 MB); `--tsx` runs the source instead.
 */
async function serverEntry(): Promise<string[]> {
  if (flag('--tsx')) return ['--import', 'tsx', join(BENCH_DIR, 'control-plane.ts')];
  const { build } = await import('esbuild');
  // Under bench/ so that node_modules and BENCH_DIR (one level up from the file) resolve as from the source.
  const outfile = join(BENCH_DIR, '.serve', 'control-plane.mjs');
  await build({ entryPoints: [join(BENCH_DIR, 'control-plane.ts')], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
  return [outfile];
}

/** One configuration in a fresh control-plane process (its RSS is that configuration's alone). */
async function runInChild(c: Config, profile?: string): Promise<Row> {
  const entry = await serverEntry();
  return new Promise<Row>((resolve, reject) => {
    const prof = profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
    const args = [...prof, ...entry, '--serve', `${c.n},${c.k},${c.pushes}`];
    const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1);
      if (code === 0 && last) resolve(JSON.parse(last) as Row);
      else reject(new Error(`control-plane bench (${c.n} × ${c.k}) exited ${code ?? signal}`));
    });
  });
}

export async function benchControlPlane(opts: { quick: boolean; profile?: string }): Promise<{ name: string; rows: Row[] }> {
  const rows: Row[] = refreshInProcess(1_000, 50, opts.quick ? 2 : 7);
  for (const c of CONFIGS(opts.quick)) rows.push(await runInChild(c, opts.profile));
  return { name: NAME, rows };
}
const NAME = `embedded control plane: ADS server (plaintext port, grpc-js; coalesce ${DEFAULT_COALESCE_MS} ms) ↔ light ADS clients in another process; ${SERVICES} services; anchor: istiod ≈ 1 vCPU, 1.5 GB for 1,000 services and 2,000 sidecars`;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = arg('--serve');
  if (only) {
    const [n, k, pushes] = only.split(',').map(Number) as [number, number, number];
    process.stdout.write(JSON.stringify(await runConfig({ n, k, pushes })) + '\n');
    process.exit(0);
  }
  const profile = arg('--profile');
  const res = await benchControlPlane({ quick: flag('--quick'), ...(profile && { profile: resolvePath(profile) }) });
  console.log(res.name);
  for (const r of res.rows) console.log(r);
  process.exit(0);
}
