/**
 * The xDS control plane (issue 12), against baselines measured in the same run:
 *   - push → applied: a loopback ADS server (TLS, token; istiod-shaped resources) flips a weighted
 *     split 100/0 ↔ 0/100; timed from the server's write to the mesh's snapshot event, and to the
 *     first request answered by the new backend (goal ≤ 50 ms p99), beside one request's own latency;
 *   - an EDS update of 10,000 endpoints: decode + ADS session + tree + reconcile into a real Outbound,
 *     in process, step by step (goal ≤ 100 ms); the same through the real stream; the heap kept per
 *     1,000 endpoints (a fresh `--expose-gc` child, after GC);
 *   - load cost, fresh processes of the built package: without controlPlane no grpc-js (and a src
 *     run lists no xDS module); with it, the CPU a first xDS-routed request costs over the same
 *     request to a static service (goal ≤ 80 ms).
 * The machine is shared: medians with min–max, children alternate.
 *
 *   node --import tsx bench/xds.ts [--quick] [--profile DIR]
 */
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { systemClock } from '../src/clock.js';
import { AdsSession } from '../src/control-plane/xds/ads-state.js';
import { xdsDecoder } from '../src/control-plane/xds/decode.js';
import { CLUSTER_LOAD_ASSIGNMENT_TYPE_URL as EDS, CLUSTER_TYPE_URL as CDS, LISTENER_TYPE_URL as LDS, ROUTE_CONFIGURATION_TYPE_URL as RDS } from '../src/control-plane/xds/discovery.js';
import { XdsTree } from '../src/control-plane/xds/xds-tree.js';
import type { ServiceSnapshot } from '../src/control-plane/snapshot.js';
import { createMesh, type Mesh } from '../src/mesh.js';
import { DEFAULT_SERVICE_SETTINGS } from '../src/outbound/settings.js';
import { DiscoveryResponseCodec } from '../src/proto/envoy/service/discovery/v3/discovery.js';
import { CHANNELS, type SnapshotMessage } from '../src/telemetry/events.js';
import { filesOf, writeSvidDir } from '../test/helpers/certs.js';
import { RECORD_MODULES, xdsModules } from '../test/helpers/loaded-modules.js';
import { startXdsResponder, type XdsResponder } from '../test/helpers/xds-responder.js';
import { FQDN, LISTENER, ROUTES, cluster, edsCluster, endpoints, listener, routes, serveIstiodShaped as serve, weighted } from '../test/helpers/xds-istiod.js';
import { devCa, ok, quiet, startReplica } from '../test/outbound/e2e/replicas.js';
import { arg, flag, quantile, round, spread, type Spread } from './lib/common.js';
import { ROOT } from './lib/proc.js';
import { outboundRig, snapshot } from './snapshot.js';

type Row = Record<string, number | string>;
const N_ENDPOINTS = 10_000;
const URL_XDS = `http://${FQDN}:8080/`;
const ms = (x: number) => round(x, 2);
const spreadRow = (s: Spread) => ({ medianMs: ms(s.median), minMs: ms(s.min), maxMs: ms(s.max), n: s.n });
const tail = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50Ms: ms(quantile(s, 0.5)), p99Ms: ms(quantile(s, 0.99)), maxMs: ms(s.at(-1)!), n: s.length };
};
const met = (x: number, goal: number) => (x <= goal ? 'yes' : 'NO');

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/** `n` distinct addresses, `salt` tells sets apart. */
const addresses = (n: number, salt: number) => Array.from({ length: n }, (_, i) => `10.${salt & 255}.${(i >> 8) & 255}.${i & 255}:8080`);

// ---------------------------------------------------------------------------------------------
// In process: decode → ADS session → tree → reconcile, over the real classes (no network).

const response = (typeUrl: string, version: number, items: Uint8Array[]) =>
  DiscoveryResponseCodec.encode({ versionInfo: String(version), typeUrl, nonce: String(version), resources: items.map((value) => ({ typeUrl, value })) });

/** What XdsControlPlane does with one response, one step at a time, into a real Outbound. */
class Pipeline {
  readonly session = new AdsSession({ node: {}, clock: systemClock, logger: quiet });
  readonly #stream;
  readonly #decode = xdsDecoder({ baseSettings: DEFAULT_SERVICE_SETTINGS });
  readonly #tree = new XdsTree({ trustDomain: 'cluster.local', namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS });
  #version = 0;

  constructor(readonly rec: { apply(s: ReturnType<typeof snapshot>): void }) {
    for (const [t, n] of [[LDS, LISTENER], [RDS, ROUTES], [CDS, cluster('v1')], [EDS, cluster('v1')]] as const) this.session.subscribe(t, [n]);
    this.#stream = this.session.connect(() => {});
  }

  /** Returns the ms each step took: decode (DiscoveryResponse + resources + session cache), tree, reconcile. */
  step(bytes: Uint8Array): { decode: number; tree: number; reconcile: number; cpu: number; services: ReadonlyMap<string, unknown> } {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    this.receive(bytes);
    const t1 = performance.now();
    const services = this.build();
    const t2 = performance.now();
    this.apply(services);
    return { decode: t1 - t0, tree: t2 - t1, reconcile: performance.now() - t2, cpu: cpuMs(c0), services };
  }

  receive(bytes: Uint8Array): void {
    this.#stream.receive(DiscoveryResponseCodec.decode(bytes), this.#decode);
  }

  build(): ReadonlyMap<string, unknown> {
    const s = this.session;
    const none = new Set<string>();
    const input = { listeners: s.resources(LDS), routes: s.resources(RDS), clusters: s.resources(CDS), endpoints: s.resources(EDS), missing: { listeners: none, routes: none, clusters: none, endpoints: none } };
    return this.#tree.build([{ host: `${FQDN}:8080`, candidates: [LISTENER] }], input).services;
  }

  apply(services: ReadonlyMap<string, unknown>): void {
    if (services.size > 0) this.rec.apply(snapshot(services as Map<string, ServiceSnapshot>, ++this.#version));
  }

  /** Listener, routes and Cluster of `cluster('v1')`, then its endpoints `eds`. */
  start(eds: Uint8Array): void {
    this.step(response(LDS, 1, [listener()]));
    this.step(response(RDS, 1, [routes([weighted([[cluster('v1'), 100]])])]));
    this.step(response(CDS, 1, [edsCluster(cluster('v1'))]));
    this.step(eds);
  }
}

const edsResponse = (version: number, list: string[]) => response(EDS, version, [endpoints(cluster('v1'), list)]);

export async function benchEdsInProcess(rounds: number): Promise<Row[]> {
  const rig = await outboundRig();
  const cases = { first: [] as number[][], replaced: [] as number[][], oneChanged: [] as number[][] };
  const sets = [addresses(N_ENDPOINTS, 1), addresses(N_ENDPOINTS, 2)];
  const oneOff = [...sets[1]!.slice(0, -1), '10.250.0.1:8080'];
  try {
    for (let r = 0; r < rounds; r++) {
      const { outbound, rec } = rig.fresh();
      const p = new Pipeline(rec);
      p.start(edsResponse(1, ['10.0.0.1:8080']));
      const take = (bytes: Uint8Array) => {
        const x = p.step(bytes);
        const svc = x.services.get(cluster('v1')) as { endpoints?: unknown[] } | undefined;
        if (svc?.endpoints?.length !== N_ENDPOINTS) throw new Error(`the tree holds ${svc?.endpoints?.length} endpoints, not ${N_ENDPOINTS}`);
        return [x.decode, x.tree, x.reconcile, x.decode + x.tree + x.reconcile, x.cpu];
      };
      cases.first.push(take(edsResponse(2, sets[0]!)));
      cases.replaced.push(take(edsResponse(3, sets[1]!)));
      cases.oneChanged.push(take(edsResponse(4, oneOff)));
      await outbound.destroy();
    }
  } finally {
    await rig.close();
  }
  const label = { first: '1 → 10,000 endpoints', replaced: '10,000 → 10,000 others', oneChanged: '10,000, one of them changed' };
  return (Object.keys(cases) as Array<keyof typeof cases>).map((k) => {
    const col = (i: number) => ms(spread(cases[k].map((x) => x[i]!)).median);
    const total = spread(cases[k].map((x) => x[3]!));
    // CPU: the process's (GC threads included); on a loaded machine wall time also counts the waits for a core.
    return { what: `EDS in process, ${label[k]}: decode + session / tree / reconcile = total`, ...spreadRow(total), decodeMs: col(0), treeMs: col(1), reconcileMs: col(2), cpuMs: col(4), goal: '≤ 100 ms', met: met(total.median, 100) };
  });
}

/** `--heap-child`: the heap kept by 10,000 endpoints over 1, after GC (run with --expose-gc). */
async function heapChild(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const heap = () => {
    for (let i = 0; i < 4; i++) gc();
    return process.memoryUsage().heapUsed;
  };
  const rig = await outboundRig();
  const { rec } = rig.fresh();
  const p = new Pipeline(rec);
  p.start(edsResponse(1, ['10.0.0.1:8080']));
  const h1 = heap();
  p.receive(edsResponse(2, addresses(N_ENDPOINTS, 1)));
  const services = p.build();
  // Session and tree apart are not told apart reliably (what one frees the other's measurement gets).
  const hXds = heap();
  p.apply(services);
  const h10k = heap();
  const per = (a: number, b: number) => (b - a) / 1024 / ((N_ENDPOINTS - 1) / 1000);
  console.log(JSON.stringify({ perThousandKB: per(h1, h10k), xdsKB: per(h1, hXds), outboundKB: per(hXds, h10k), totalMB: (h10k - h1) / 2 ** 20 }));
  process.exit(0);
}

function node(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 60_000, env: { ...process.env, NODE_ENV: 'production', ...env } }, (err, stdout, stderr) =>
      err ? reject(new Error(`child failed: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout.trim().split('\n').at(-1)!)),
    );
  });
}

async function benchHeap(runs: number): Promise<Row> {
  const out: Array<{ perThousandKB: number; xdsKB: number; outboundKB: number; totalMB: number }> = [];
  for (let i = 0; i < runs; i++) out.push((await node(['--expose-gc', '--import', 'tsx', join(ROOT, 'bench/xds.ts'), '--heap-child'])) as never);
  const s = spread(out.map((x) => x.perThousandKB));
  const kb = (k: 'xdsKB' | 'outboundKB') => round(spread(out.map((x) => x[k])).median, 1);
  return {
    what: 'heap kept per 1,000 endpoints (after GC, fresh child): total = xDS (ADS session cache + tree) + Outbound',
    medianKB: round(s.median, 1),
    minKB: round(s.min, 1),
    maxKB: round(s.max, 1),
    n: s.n,
    xdsKB: kb('xdsKB'),
    outboundKB: kb('outboundKB'),
    totalMB: round(spread(out.map((x) => x.totalMB)).median, 2),
  };
}

// ---------------------------------------------------------------------------------------------
// Through the real stream: a loopback ADS server, two dev-CA replicas, a client mesh, one process.

interface Rig {
  x: XdsResponder;
  mesh: Mesh;
  v1: string;
  close(): Promise<void>;
}

async function rig(): Promise<Rig> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const t = { after: (fn: () => Promise<unknown>) => void cleanups.push(fn) };
  const x = await startXdsResponder(t);
  const [v1, v2] = await Promise.all([startReplica('v1', ok), startReplica('v2', ok)]);
  cleanups.push(() => v1.close(), () => v2.close());
  serve(x, { v1, v2 }, [weighted([[cluster('v1'), 100], [cluster('v2'), 0]])]);
  const mesh = await createMesh(
    { service: 'client', identity: { ca: await devCa() }, controlPlane: { address: x.server.address, root: x.server.rootFile, token: 'good-token' }, logger: quiet },
    { env: { INSTANCE_IP: '10.0.0.9' } },
  );
  cleanups.push(() => mesh.close());
  return { x, mesh, v1: v1.address, close: async () => void (await Promise.all(cleanups.reverse().map((c) => c().catch(() => {})))) };
}

const who = async (m: Mesh) => (await m.fetch(URL_XDS)).text();

/** performance.now() of the next accepted snapshot of the client mesh that satisfies `until`. */
function nextSnapshot(until: () => boolean = () => true): Promise<number> {
  return new Promise((resolve) => {
    const on = (msg: unknown) => {
      const m = msg as SnapshotMessage;
      if (m.mesh !== 'client' || m.result !== 'accepted' || !until()) return;
      unsubscribe(CHANNELS.snapshot, on);
      resolve(performance.now());
    };
    subscribe(CHANNELS.snapshot, on);
  });
}

async function benchPush(r: Rig, n: number): Promise<Row[]> {
  const { x, mesh } = r;
  for (let i = 0; i < 50; i++) if ((await who(mesh)) !== 'v1') throw new Error('the first config routes to v1');
  // Baseline: one request on a config that does not change (wall and this process's CPU: server, client and replicas).
  const request = { wall: [] as number[], cpu: [] as number[] };
  for (let i = 0; i < Math.max(100, n); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await who(mesh);
    request.wall.push(performance.now() - t0);
    request.cpu.push(cpuMs(c0));
  }
  const push = { snapshot: [] as number[], wall: [] as number[], cpu: [] as number[] };
  let stale = 0;
  const warm = 5;
  for (let i = 0; i < warm + n; i++) {
    const target = i % 2 === 0 ? 'v2' : 'v1';
    x.set(RDS, ROUTES, routes([weighted(target === 'v2' ? [[cluster('v1'), 0], [cluster('v2'), 100]] : [[cluster('v1'), 100], [cluster('v2'), 0]])]));
    const applied = nextSnapshot();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    x.push();
    let answered = 0;
    for (;;) {
      const got = await who(mesh);
      answered = performance.now();
      if (got === target) break;
      stale++;
      if (answered - t0 > 5_000) throw new Error(`push ${i}: still ${got} after 5 s`);
    }
    const cpu = cpuMs(c0);
    const snap = await applied;
    if (i >= warm) {
      push.snapshot.push(snap - t0);
      push.wall.push(answered - t0);
      push.cpu.push(cpu);
    }
  }
  // Back to the first config: the load children expect v1.
  const back = nextSnapshot();
  x.set(RDS, ROUTES, routes([weighted([[cluster('v1'), 100], [cluster('v2'), 0]])]));
  x.push();
  await back;
  const p99 = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.99);
  return [
    { what: 'one request, config unchanged (the baseline)', ...tail(request.wall), cpuP50Ms: ms(quantile([...request.cpu].sort((a, b) => a - b), 0.5)) },
    { what: 'push RouteConfiguration (100/0 ↔ 0/100) → snapshot applied (event)', ...tail(push.snapshot) },
    {
      what: `push → first request answered by the new backend (${stale} answered by the old one: the request in flight)`,
      ...tail(push.wall),
      cpuP50Ms: ms(quantile([...push.cpu].sort((a, b) => a - b), 0.5)),
      cpuP99Ms: ms(p99(push.cpu)),
      goal: '≤ 50 ms p99',
      met: met(p99(push.wall), 50),
    },
  ];
}

async function benchEdsStream(r: Rig, rounds: number): Promise<Row> {
  const { x, mesh } = r;
  await who(mesh); // the host is discovered (its tree subscribed) before the first push
  const took: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const list = addresses(N_ENDPOINTS, 100 + (k % 2));
    x.set(EDS, cluster('v1'), endpoints(cluster('v1'), list)); // encoded before the clock starts
    const first = list[0]!.split(':')[0];
    const applied = nextSnapshot(() => {
      const eps = (mesh.snapshot().services.get(cluster('v1')) as { endpoints?: Array<{ host?: string; address?: string }> } | undefined)?.endpoints;
      return eps?.length === N_ENDPOINTS && JSON.stringify(eps[0]).includes(first!);
    });
    const t0 = performance.now();
    x.push();
    const t = await Promise.race([applied, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('the 10,000 endpoints were not applied in 10 s')), 10_000))]);
    took.push(t - t0);
  }
  x.set(EDS, cluster('v1'), endpoints(cluster('v1'), [r.v1]));
  x.push();
  return { what: 'EDS of 10,000 endpoints through the stream: push → snapshot applied (server encode excluded)', ...spreadRow(spread(took)), goal: '≤ 100 ms', met: met(spread(took).median, 100) };
}

// ---------------------------------------------------------------------------------------------
// Load cost: fresh processes of the built package, alternating with and without controlPlane.

const DIST = pathToFileURL(join(ROOT, 'dist/index.js')).href;

/** One child: import, createMesh, one request to payments (static service, or through xDS). CPU µs since process start at each step. */
const LOAD_CHILD = `
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const [mode, dir, address, root, v1] = process.argv.slice(-5);
const { createRequire } = await import('node:module');
const require = createRequire(import.meta.url);
const out = { bootCpuMs: cpu() };
const { createMesh } = await import(${JSON.stringify(DIST)});
out.importCpuMs = cpu();
if (mode === 'grpc') {
  await import(${JSON.stringify(pathToFileURL(join(ROOT, 'node_modules/@grpc/grpc-js/build/src/index.js')).href)});
  out.grpcImportCpuMs = cpu() - out.importCpuMs;
  console.log(JSON.stringify(out));
  process.exit(0);
}
const silent = { info() {}, warn() {}, error() {} };
const mesh = await createMesh({ service: 'client', identity: { dir }, logger: silent,
  ...(mode === 'xds'
    ? { controlPlane: { address, root, token: 'good-token' } }
    : { outbound: { services: { payments: { endpoints: [v1], identity: 'spiffe://cluster.local/ns/default/sa/payments' } } } }) });
out.meshCpuMs = cpu();
out.grpcAfterMesh = Object.keys(require.cache).some((k) => k.includes('/@grpc/grpc-js/'));
const res = await mesh.fetch(mode === 'xds' ? ${JSON.stringify(URL_XDS)} : 'http://payments/');
out.body = await res.text();
out.firstResponseCpuMs = cpu();
await mesh.close();
console.log(JSON.stringify(out));
process.exit(0);
`;

/** src under tsx, with every module recorded: a mesh without controlPlane lists no xDS module. */
const SRC_CHILD = `${RECORD_MODULES}
const { createMesh } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/index.ts')).href)});
const [dir] = process.argv.slice(-1);
const mesh = await createMesh({ service: 'client', identity: { dir }, logger: { info() {}, warn() {}, error() {} } });
const m = await loaded();
await mesh.close();
console.log(JSON.stringify({ modules: m.length, src: m.filter((u) => u.includes('/src/')).length, xds: m }));
process.exit(0);
`;

async function benchLoad(r: Rig, runs: number, profile: string | undefined): Promise<Row[]> {
  const ca = await devCa();
  const dir = join(resolve(r.x.server.rootFile, '..'), 'client-svid');
  await mkdir(dir, { recursive: true });
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/client' })));
  const args = (mode: string) => [mode, dir, r.x.server.address, r.x.server.rootFile, r.v1];
  const runs2: Record<'static' | 'xds' | 'grpc', Array<Record<string, any>>> = { static: [], xds: [], grpc: [] };
  for (let i = 0; i < runs; i++) {
    const order = ['static', 'xds', 'grpc'] as const;
    for (const mode of [...order.slice(i % 3), ...order.slice(0, i % 3)]) {
      const prof = profile && mode === 'xds' ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
      const o = await node([...prof, '--input-type=module', '-e', LOAD_CHILD, '--', ...args(mode)], { INSTANCE_IP: '10.0.0.9' });
      if (mode !== 'grpc' && o.body !== 'v1') throw new Error(`load child (${mode}) got ${o.body}`);
      runs2[mode].push(o);
    }
  }
  const med = (mode: 'static' | 'xds' | 'grpc', k: string) => spread(runs2[mode].map((o) => o[k] as number));
  const paired = (k: string) => spread(runs2.xds.map((o, i) => (o[k] as number) - (runs2.static[i]![k] as number)));
  const src = await node(['--import', 'tsx', '--input-type=module', '-e', SRC_CHILD, '--', dir]);
  const found = xdsModules(src.xds as string[]);
  const added = paired('firstResponseCpuMs');
  return [
    {
      what: 'without controlPlane: createMesh + one request (dist); grpc-js loaded',
      ...spreadRow(med('static', 'firstResponseCpuMs')),
      unit: 'CPU ms since spawn',
      grpcLoaded: runs2.static.some((o) => o.grpcAfterMesh) ? 'YES (goal: no)' : 'no',
    },
    {
      what: `without controlPlane (src, every module recorded): xDS modules / Envoy codecs / grpc-js among ${src.src} src modules`,
      loaded: `${found.xds.length} / ${found.envoy.length} / ${found.grpc.length}`,
      met: found.xds.length + found.envoy.length + found.grpc.length === 0 ? 'yes' : 'NO',
    },
    { what: 'with controlPlane: createMesh + first request routed by xDS (dist)', ...spreadRow(med('xds', 'firstResponseCpuMs')), unit: 'CPU ms since spawn' },
    { what: '  of which createMesh (xDS modules, stream opened), over the static mesh', ...spreadRow(paired('meshCpuMs')), unit: 'CPU ms' },
    { what: 'the xDS stack: CPU it adds to the first request (import + stream + tree), paired runs', ...spreadRow(added), unit: 'CPU ms', goal: '≤ 80 ms', met: met(added.median, 80) },
    { what: '  of which importing @grpc/grpc-js alone (after the package, fresh processes)', ...spreadRow(spread(runs2.grpc.map((o) => o.grpcImportCpuMs as number))), unit: 'CPU ms' },
  ];
}

/** `only`: one part (`eds`, `heap`, `push`, `stream`, `load`), for profiling it. */
export async function benchXds(opts: { quick: boolean; profile?: string; only?: string }): Promise<{ name: string; rows: Row[] }> {
  const on = (part: string) => opts.only === undefined || opts.only === part;
  const rows: Row[] = [];
  if (on('eds')) rows.push(...(await benchEdsInProcess(opts.quick ? 3 : 9)));
  if (on('heap')) rows.push(await benchHeap(opts.quick ? 1 : 3));
  if (!on('push') && !on('stream') && !on('load')) return { name: NAME, rows };
  const r = await rig();
  try {
    if (on('push')) rows.push(...(await benchPush(r, opts.quick ? 30 : 150)));
    if (on('stream')) rows.push(await benchEdsStream(r, opts.quick ? 3 : 9));
    if (on('load')) rows.push(...(await benchLoad(r, opts.quick ? 2 : 9, opts.profile)));
  } finally {
    await r.close();
  }
  return { name: NAME, rows };
}
const NAME = 'xDS control plane (loopback ADS server, TLS + token)';

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (flag('--heap-child')) await heapChild();
  else {
    const profile = arg('--profile');
    const only = arg('--only');
    const res = await benchXds({ quick: flag('--quick'), ...(profile && { profile: resolve(profile) }), ...(only && { only }) });
    console.log(res.name);
    console.table(res.rows);
    process.exit(0);
  }
}
