// Differential test (issue 12): the same xDS server feeds @grpc/grpc-js-xds (a real third-party
// client, in a child process) and our client; both must reach the same backends in the same
// proportions, and both must NACK the same invalid resources, or the difference is documented.
//
// The harness (test/helpers/xds/):
// - resources.ts: istiod-shaped Listener / RouteConfiguration / Cluster / ClusterLoadAssignment
//   builders over the project's codecs (names as istiod: `payments.default.svc.cluster.local:8080`,
//   `outbound|8080||…`, `outbound|8080|v1|…`).
// - xds-server.ts: a SotW ADS server with one resource set for every client, on a TLS port (dev CA
//   root in a file, bearer token 'tok': our client) and a plaintext port (grpc-js-xds); it records
//   every client's requests, ACKs and NACKs (with error_detail) by node id.
// - backends.ts: one TCP port per backend, demultiplexed on the first byte: TLS → a mesh server
//   (mTLS, HTTP/1.1), `PRI` → a plaintext grpc-js server; both answer the backend's name. So EDS
//   carries one address per backend for both clients.
// - grpc-xds-client.mjs (+ grpc-xds-child.ts): the grpc-js-xds child; N unary calls per call set,
//   one JSON line per phase with per-backend counts and errors.
//
// Each SCENARIO is a resource set (built from the backends' addresses) and probes (a gRPC method
// path = the HTTP path, optional headers = metadata, and the expected share per backend); `then`
// is a second phase after `server.update(...)`. For each scenario there are two tests:
// "grpc-js-xds: …" and "ours: …" (createMesh with controlPlane, mesh.fetch, the backend named by
// the body; the second also compares its counts with the child's). One grpc-js-xds child runs
// through every scenario, one phase each (its ~1 s start paid once): the server is updated and the
// next phase starts once the child has ACKed the current version of every type. Ours gets a new
// mesh per scenario (so each scenario also covers on-demand discovery from nothing). Each NACK
// case gets a server and a fresh child of its own, all run side by side; ours then connects to that
// case's server. To add a scenario: append to SCENARIOS; a NACK case: append to NACKS (the valid
// set one field off, the type judged, grpc-js-xds's answer as observed, `ours` and why where ours
// differs).
//
// Tolerance: for an expected share p over n calls, the count must be within 5 binomial standard
// deviations (+1) of n·p (a correct random picker fails that with probability < 1e-6); shares 0
// and 1 are exact. Our share and the child's must differ by at most 5 standard deviations of the
// difference of two binomial proportions (pooled p) + 1/n.
//
// Known HTTP-vs-gRPC differences the scenarios avoid asserting on: the clusters carry no
// UpstreamTlsContext (grpc-js-xds would then need certificate providers and would talk TLS to the
// gRPC side), so grpc-js-xds talks plaintext while ours still talks mTLS, with the SPIFFE ID
// derived from the service (never plaintext); the gRPC path `/pkg.Service/Method` is the HTTP path.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { type Backend, startBackends } from '../../helpers/xds/backends.js';
import { type CallSet, type GrpcXdsRun, type SetResult, runGrpcXdsClient } from '../../helpers/xds/grpc-xds-child.js';
import { HEALTH, TYPE, type XdsResource, cluster, clusterName, endpoints, listener, routeConfiguration, service } from '../../helpers/xds/resources.js';
import { type XdsClient, type XdsEvent, type XdsServer, lastAnswer, startXdsServer } from '../../helpers/xds/xds-server.js';
import { devCa, quiet } from '../../outbound/e2e/replicas.js';

const V1 = clusterName('v1');
const V2 = clusterName('v2');
const M1 = '/payments.v1.Payments/Charge';
const M2 = '/payments.v2.Payments/Charge';
const N = 300;
const PAYMENTS_ID = 'spiffe://cluster.local/ns/default/sa/payments';
const URL_BASE = 'http://payments.default.svc.cluster.local:8080';

type Addr = Record<string, string>;

interface Probe {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly n: number;
  /** Expected share per backend (the rest: 0). */
  readonly expect: Readonly<Record<string, number>>;
}

interface Phase {
  readonly resources: (a: Addr) => XdsResource[];
  readonly probes: readonly Probe[];
}

interface Scenario extends Phase {
  readonly name: string;
  readonly then?: Phase;
}

const split = (weights: Record<string, number>) => (a: Addr) => [listener(), routeConfiguration([{ to: weights, timeoutMs: 5_000 }]), ...service(V1, [a.a!]), ...service(V2, [a.b!])];

const SCENARIOS: readonly Scenario[] = [
  { name: 'weighted clusters 80/20', resources: split({ [V1]: 80, [V2]: 20 }), probes: [{ method: M1, n: N, expect: { a: 0.8, b: 0.2 } }] },
  { name: 'weighted clusters 50/50', resources: split({ [V1]: 50, [V2]: 50 }), probes: [{ method: M1, n: N, expect: { a: 0.5, b: 0.5 } }] },
  {
    name: 'route by path prefix (a plain string prefix): v2 methods to v2, the rest to v1',
    resources: (a) => [listener(), routeConfiguration([{ prefix: '/payments.v2.', to: V2 }, { prefix: '', to: V1 }]), ...service(V1, [a.a!]), ...service(V2, [a.b!])],
    probes: [
      { method: M1, n: 30, expect: { a: 1 } },
      { method: M2, n: 30, expect: { b: 1 } },
    ],
  },
  {
    name: 'route by exact header x-canary: yes',
    resources: (a) => [listener(), routeConfiguration([{ headers: { 'x-canary': 'yes' }, to: V2 }, { to: V1 }]), ...service(V1, [a.a!]), ...service(V2, [a.b!])],
    probes: [
      { method: M1, headers: { 'x-canary': 'yes' }, n: 30, expect: { b: 1 } },
      { method: M1, headers: { 'x-canary': 'no' }, n: 30, expect: { a: 1 } },
      { method: M1, n: 30, expect: { a: 1 } },
    ],
  },
  {
    name: 'locality weights 3:1 (one endpoint each)',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1), endpoints(V1, [{ zone: 'z1', weight: 3, endpoints: [{ address: a.a! }] }, { zone: 'z2', weight: 1, endpoints: [{ address: a.b! }] }])],
    probes: [{ method: M1, n: N, expect: { a: 0.75, b: 0.25 } }],
  },
  {
    name: 'an UNHEALTHY endpoint gets nothing; HEALTHY and UNKNOWN share',
    resources: (a) => [
      listener(),
      routeConfiguration([{ to: V1 }]),
      cluster(V1),
      endpoints(V1, [{ endpoints: [{ address: a.a!, health: HEALTH.HEALTHY }, { address: a.b!, health: HEALTH.UNHEALTHY }, { address: a.c!, health: HEALTH.UNKNOWN }] }]),
    ],
    probes: [{ method: M1, n: 200, expect: { a: 0.5, c: 0.5 } }],
  },
  {
    name: 'priorities: priority 0 is used whole while it has a healthy endpoint',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1), endpoints(V1, [{ priority: 0, endpoints: [{ address: a.a! }] }, { priority: 1, endpoints: [{ address: a.b! }] }])],
    probes: [{ method: M1, n: 30, expect: { a: 1 } }],
  },
  {
    name: 'priority failover: priority 0 all UNHEALTHY → priority 1',
    resources: (a) => [
      listener(),
      routeConfiguration([{ to: V1 }]),
      cluster(V1),
      endpoints(V1, [{ priority: 0, endpoints: [{ address: a.a!, health: HEALTH.UNHEALTHY }] }, { priority: 1, endpoints: [{ address: a.b! }] }]),
    ],
    probes: [{ method: M1, n: 30, expect: { b: 1 } }],
  },
  {
    name: 'an update moves the split 80/20 → 20/80',
    resources: split({ [V1]: 80, [V2]: 20 }),
    probes: [{ method: M1, n: N, expect: { a: 0.8, b: 0.2 } }],
    then: { resources: split({ [V1]: 20, [V2]: 80 }), probes: [{ method: M1, n: N, expect: { a: 0.2, b: 0.8 } }] },
  },
];

/** Invalid resources: each a valid set with one thing wrong. `grpcJsXds` is what the child answers (observed, asserted). */
interface NackCase {
  readonly name: string;
  readonly resources: (a: Addr) => XdsResource[];
  /** The type URL whose answer is judged. */
  readonly type: string;
  readonly grpcJsXds: { readonly answer: 'ack' | 'nack'; readonly error?: RegExp };
  /** Ours, where it differs from grpc-js-xds, and why (HTTP-vs-gRPC semantics); default: the same answer. */
  readonly ours?: { readonly answer: 'ack' | 'nack'; readonly why: string };
}

const NACKS: readonly NackCase[] = [
  {
    name: 'a route whose safe_regex is "(?i)/payments.*" (RE2 flags)',
    resources: (a) => [listener(), routeConfiguration([{ regex: '(?i)/payments.*', to: V1 }]), ...service(V1, [a.a!])],
    type: TYPE.route,
    grpcJsXds: { answer: 'ack' },
    ours: { answer: 'nack', why: 'RE2 syntax that JS RegExp would read differently is refused, not guessed (issue 12); grpc-js-xds runs real RE2 (re2-wasm)' },
  },
  {
    name: 'weighted clusters whose weights sum to 0',
    resources: (a) => [listener(), routeConfiguration([{ to: { [V1]: 0, [V2]: 0 } }]), ...service(V1, [a.a!]), ...service(V2, [a.b!])],
    type: TYPE.route,
    grpcJsXds: { answer: 'nack', error: /weighted_clusters sum of weights is 0/ },
  },
  {
    name: 'a Cluster of type STATIC',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1, { type: 0 }), endpoints(V1, [{ endpoints: [{ address: a.a! }] }])],
    type: TYPE.cluster,
    grpcJsXds: { answer: 'nack', error: /Unsupported type STATIC/ },
  },
  {
    name: 'an endpoint address that is a hostname',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1), endpoints(V1, [{ endpoints: [{ address: `localhost:${a.a!.split(':')[1]}` }] }])],
    type: TYPE.endpoints,
    grpcJsXds: { answer: 'nack', error: /endpoint: address is not a valid IPv4 or IPv6 address: localhost/ },
  },
  {
    name: 'two endpoints with the same address',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1), endpoints(V1, [{ zone: 'z1', endpoints: [{ address: a.a! }] }, { zone: 'z2', endpoints: [{ address: a.a! }] }])],
    type: TYPE.endpoints,
    grpcJsXds: { answer: 'nack', error: /endpoints\[1\]\.lb_endpoints\[0\]\.endpoint: address is a duplicate of another address/ },
  },
  {
    name: 'two localities that are the same (region, zone, priority)',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1), endpoints(V1, [{ zone: 'z1', endpoints: [{ address: a.a! }] }, { zone: 'z1', endpoints: [{ address: a.b! }] }])],
    type: TYPE.endpoints,
    grpcJsXds: { answer: 'nack', error: /endpoints\[1\]\.locality is a duplicate of another locality/ },
  },
  {
    name: 'a Listener with no HTTP filter (no router)',
    resources: (a) => [listener({ httpFilters: [] }), routeConfiguration([{ to: V1 }]), ...service(V1, [a.a!])],
    type: TYPE.listener,
    // research §6.1 trap 4: grpc-js-xds accepts it, gRPC C-core NACKs it ("expected at least one HTTP filter")
    grpcJsXds: { answer: 'ack' },
    ours: { answer: 'nack', why: 'as C-core: a client listener whose last HTTP filter is not the router is refused (istio#36150); istiod always sends [fault, router]' },
  },
  {
    name: "a Cluster with istiod's ISTIO_MUTUAL UpstreamTlsContext (certificate provider 'default', exact SPIFFE SAN)",
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1, { sans: [PAYMENTS_ID] }), endpoints(V1, [{ endpoints: [{ address: a.a! }] }])],
    type: TYPE.cluster,
    // grpc-js-xds resolves instance names against its bootstrap's certificate_providers (istio-agent's defines 'default'; this one none)
    grpcJsXds: { answer: 'nack', error: /Unmatched UpstreamTlsContext\.tls_certificate_provider_instance\.instance_name: default/ },
    ours: { answer: 'ack', why: "certificate provider instances are names local to a bootstrap: the mesh's certificates and trust come from its X509Source, the SAN gives the expected SPIFFE ID" },
  },
  {
    name: 'a Cluster with lb_policy RING_HASH',
    resources: (a) => [listener(), routeConfiguration([{ to: V1 }]), cluster(V1, { lbPolicy: 2 }), endpoints(V1, [{ endpoints: [{ address: a.a! }] }])],
    type: TYPE.cluster,
    grpcJsXds: { answer: 'ack' },
    ours: { answer: 'nack', why: 'no consistent-hash balancer in the mesh (P2C, round robin, least request, random); refused rather than balanced otherwise' },
  },
];

// ---- assertions -------------------------------------------------------------------------------

const sigma5 = (n: number, p: number) => 5 * Math.sqrt(n * p * (1 - p)) + 1;

function assertShares(r: SetResult, probe: Probe, who: string): void {
  assert.deepEqual(r.errors, {}, `${who}: every call must succeed`);
  const names = new Set([...Object.keys(probe.expect), ...Object.keys(r.counts)]);
  for (const name of names) {
    const p = probe.expect[name] ?? 0;
    const k = r.counts[name] ?? 0;
    const ok = p === 0 || p === 1 ? k === probe.n * p : Math.abs(k - probe.n * p) <= sigma5(probe.n, p);
    assert.ok(ok, `${who}: ${probe.method} ${JSON.stringify(probe.headers ?? {})}: backend ${name} got ${k}/${probe.n}, expected ${p} of them; counts ${JSON.stringify(r.counts)}`);
  }
}

function assertSameShares(ours: SetResult, theirs: SetResult, n: number): void {
  for (const name of new Set([...Object.keys(ours.counts), ...Object.keys(theirs.counts)])) {
    const a = (ours.counts[name] ?? 0) / n;
    const b = (theirs.counts[name] ?? 0) / n;
    const p = (a + b) / 2;
    assert.ok(Math.abs(a - b) <= 5 * Math.sqrt(p * (1 - p) * (2 / n)) + 1 / n, `backend ${name}: ours ${a}, grpc-js-xds ${b}`);
  }
}

/** Per-backend hits between two snapshots (backends with none left out). */
function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]).filter(([, n]) => n !== 0));
}

/** Per-backend counts summed over phases and call sets. */
function total(results: readonly (readonly SetResult[])[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results.flat()) for (const [k, n] of Object.entries(r.counts)) out[k] = (out[k] ?? 0) + n;
  return out;
}

// ---- our client -------------------------------------------------------------------------------

async function ourMesh(server: XdsServer): Promise<Mesh> {
  return createMesh({
    service: 'client',
    namespace: 'default',
    identity: { ca: await devCa() },
    logger: quiet,
    controlPlane: { address: server.address, root: server.rootFile, token: server.token },
    outbound: { pendingTimeout: '5s' },
  });
}

async function ourProbe(mesh: Mesh, probe: Probe): Promise<SetResult> {
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let failed = 0;
  for (let i = 0; i < probe.n && failed < 3; i++) {
    try {
      const r = await mesh.fetch(`${URL_BASE}${probe.method}`, { headers: probe.headers ?? {} });
      const body = await r.text();
      const key = r.status === 200 ? body : `status ${r.status}: ${body.slice(0, 200)}`;
      if (r.status === 200) counts[key] = (counts[key] ?? 0) + 1;
      else (errors[key] = (errors[key] ?? 0) + 1), failed++;
    } catch (e) {
      const err = e as Error & { code?: string; cause?: Error & { code?: string } };
      const key = `${err.code ?? err.name}: ${err.message}${err.cause ? ` (cause: ${err.cause.code ?? ''} ${err.cause.message})` : ''}`;
      errors[key] = (errors[key] ?? 0) + 1;
      failed++;
    }
  }
  return { counts, errors };
}


// ---- the tests --------------------------------------------------------------------------------

/** A NACK case's own server (the cases run side by side) and what grpc-js-xds answered there. */
interface NackRun {
  readonly server: XdsServer;
  readonly answer?: XdsEvent;
  readonly error?: Error;
}

/** What the tests share: one server and backends for the scenarios, one grpc-js-xds child through them all. */
interface Rig {
  server: XdsServer;
  backends: Record<string, Backend>;
  addr: Addr;
  readonly t: { after(fn: () => Promise<void>): void };
  /** The child, started by the first scenario; its phases are every scenario's, in order. */
  child?: GrpcXdsRun;
  /** Phases the child has reported. */
  phase: number;
  readonly theirs: Map<string, SetResult[][]>;
  nackRuns?: Promise<Map<string, NackRun>>;
}

const TYPES = [TYPE.listener, TYPE.route, TYPE.cluster, TYPE.endpoints];
const phasesOf = (s: Scenario): Phase[] => [s, ...(s.then ? [s.then] : [])];
const firstPhase = (s: Scenario) => SCENARIOS.slice(0, SCENARIOS.indexOf(s)).reduce((n, x) => n + phasesOf(x).length, 0);
const hits = (rig: Rig, of: (b: Backend) => number) => Object.fromEntries(Object.values(rig.backends).map((b) => [b.name, of(b)]));
const toCallSets = (p: Phase) => p.probes.map(({ method, headers, n }): CallSet => ({ method, metadata: headers ?? {}, n }));

/** Resolves once `client` has ACKed the server's current version of every type (the update is in). */
const converged = (server: XdsServer, find: () => XdsClient | undefined, who: string) =>
  server.waitFor(`${who} to ACK the current version of every type (${TYPES.map((x) => server.version(x)).join(', ')})`, () => {
    const c = find();
    return c && TYPES.every((type) => lastAnswer(c, type)?.kind === 'ack' && lastAnswer(c, type)?.version === server.version(type));
  });

/** The child's result for the next phase, once the server holds `resources` and the child has them. */
async function childPhase(rig: Rig, resources: XdsResource[]): Promise<SetResult[]> {
  const { server } = rig;
  server.update(resources);
  const phases = SCENARIOS.flatMap(phasesOf).map(toCallSets);
  rig.child ??= runGrpcXdsClient(rig.t, { server: server.plaintextAddress, pod: 'grpc-client', phases, deadlineMs: 10_000, timeoutMs: 150_000 });
  const run = rig.child;
  if (rig.phase > 0) {
    await converged(server, () => server.clients.find((x) => x.nodeId === run.nodeId && !x.ended), 'grpc-js-xds');
    run.proceed();
  }
  const r = await run.next();
  rig.phase++;
  return r;
}

async function grpcJsXdsScenario(rig: Rig, s: Scenario): Promise<void> {
  for (let behind = firstPhase(s) - rig.phase; behind > 0; behind--) await childPhase(rig, s.resources(rig.addr)); // an earlier scenario failed mid-way
  const hitsBefore = hits(rig, (b) => b.grpcHits());
  const results: SetResult[][] = [];
  for (const phase of phasesOf(s)) {
    const r = await childPhase(rig, phase.resources(rig.addr));
    results.push(r);
    phase.probes.forEach((probe, j) => assertShares(r[j]!, probe, 'grpc-js-xds'));
  }
  assert.deepEqual(delta(hitsBefore, hits(rig, (b) => b.grpcHits())), total(results), 'the backends counted (over gRPC) what the child saw');
  const client = rig.server.clients.find((x) => x.nodeId === rig.child!.nodeId)!;
  assert.deepEqual(client.events.filter((e) => e.kind === 'nack'), [], 'grpc-js-xds NACKed nothing');
  rig.theirs.set(s.name, results);
}

async function ourScenario(rig: Rig, s: Scenario): Promise<void> {
  const { server } = rig;
  server.update(s.resources(rig.addr));
  const known = new Set(server.clients);
  const mesh = await ourMesh(server);
  const isOurs = (c: XdsClient) => !known.has(c) && c.via === 'tls' && !c.ended;
  const hitsBefore = hits(rig, (b) => b.httpHits());
  const seen: SetResult[][] = [];
  try {
    for (const [i, phase] of phasesOf(s).entries()) {
      if (i > 0) {
        server.update(phase.resources(rig.addr));
        await converged(server, () => server.clients.find(isOurs), 'our client');
      }
      const results: SetResult[] = [];
      for (const probe of phase.probes) {
        const r = await ourProbe(mesh, probe);
        assertShares(r, probe, 'ours');
        results.push(r);
      }
      const child = rig.theirs.get(s.name)?.[i];
      assert.ok(child, 'the grpc-js-xds half of this scenario passed first');
      phase.probes.forEach((probe, j) => assertSameShares(results[j]!, child[j]!, probe.n));
      seen.push(results);
    }
    assert.deepEqual(delta(hitsBefore, hits(rig, (b) => b.httpHits())), total(seen), 'the backends counted (over mTLS HTTP/1.1) what the mesh saw');
    const mine = server.clients.filter(isOurs);
    assert.equal(mine.length, 1, 'our mesh holds one ADS stream');
    assert.deepEqual(mine[0]!.events.filter((e) => e.kind === 'nack'), [], 'our client NACKed nothing');
  } finally {
    await mesh.close();
  }
}

/** The client's first answer to the current version of `type`: a NACK, or an ACK of that version. */
const answerTo = (client: XdsClient | undefined, type: string, version: string) => {
  const e = client && lastAnswer(client, type);
  return e && (e.kind === 'nack' || e.version === version) ? e : undefined;
};

/** Every NACK case at once, each on a server of its own, each with a fresh grpc-js-xds child. */
async function nackCorpus(rig: Rig): Promise<Map<string, NackRun>> {
  const one = async (c: NackCase, i: number): Promise<[string, NackRun]> => {
    const server = await startXdsServer(rig.t, { resources: c.resources(rig.addr) });
    const version = server.version(c.type);
    // One call starts resolution; the empty second phase (never started) keeps the channel, so its xDS
    // client, alive until stop(), however long the child takes to load.
    const run = runGrpcXdsClient(rig.t, { server: server.plaintextAddress, pod: `grpc-nack-${i}`, phases: [[{ method: M1, n: 1 }], []], deadlineMs: 5_000 });
    try {
      const answer = await server.waitFor(`grpc-js-xds to answer ${c.type} v${version}`, () => answerTo(server.clients.find((x) => x.nodeId === run.nodeId), c.type, version), 30_000);
      return [c.name, { server, answer }];
    } catch (error) {
      return [c.name, { server, error: new Error(`${(error as Error).message}; the child's stderr: ${run.stderr() || '(none)'}`) }];
    } finally {
      await run.stop();
    }
  };
  return new Map(await Promise.all(NACKS.map(one)));
}

async function grpcJsXdsNack(rig: Rig, c: NackCase): Promise<void> {
  const { answer, error } = (await (rig.nackRuns ??= nackCorpus(rig))).get(c.name)!;
  if (!answer) throw error;
  assert.equal(answer.kind, c.grpcJsXds.answer, `grpc-js-xds answered ${answer.kind}: ${answer.error?.message ?? ''}`);
  if (answer.kind === 'nack') {
    assert.ok(answer.error && answer.error.message.length > 0, 'a NACK carries error_detail with a message');
    if (c.grpcJsXds.error) assert.match(answer.error.message, c.grpcJsXds.error);
  }
}

async function ourNack(rig: Rig, c: NackCase): Promise<void> {
  const { server, answer: theirs } = (await (rig.nackRuns ??= nackCorpus(rig))).get(c.name)!;
  const version = server.version(c.type);
  const known = new Set(server.clients);
  const mesh = await ourMesh(server);
  try {
    // The first request makes the mesh subscribe to the Listener and its tree; its outcome is not judged here.
    void mesh.fetch(`${URL_BASE}${M1}`).then((r) => r.text(), () => undefined);
    const client = await server.waitFor('our client to open an ADS stream on the TLS port', () => server.clients.find((x) => !known.has(x) && x.via === 'tls'), 3_000);
    const answer = await server.waitFor(`our client to answer ${c.type} v${version}`, () => answerTo(client, c.type, version));
    const expected = c.ours?.answer ?? c.grpcJsXds.answer;
    assert.equal(answer.kind, expected, `ours answered ${answer.kind} (${answer.error?.message ?? ''}); grpc-js-xds: ${theirs?.kind} ${theirs?.error?.message ?? ''}`);
    if (answer.kind === 'nack') assert.ok(answer.error && answer.error.message.length > 0, 'a NACK carries error_detail with a message');
  } finally {
    await mesh.close();
  }
}

describe('differential: grpc-js-xds and our client fed by the same xDS server', () => {
  const cleanups: Array<() => Promise<void>> = [];
  const rig = { t: { after: (fn: () => Promise<void>) => void cleanups.push(fn) }, phase: 0, theirs: new Map() } as unknown as Rig;
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  before(async () => {
    rig.server = await startXdsServer(rig.t);
    rig.backends = await startBackends(rig.t, ['a', 'b', 'c'], { ca: await devCa(), methods: [M1, M2] });
    rig.addr = Object.fromEntries(Object.values(rig.backends).map((b) => [b.name, b.address]));
  });
  for (const s of SCENARIOS) {
    it(`grpc-js-xds: ${s.name}`, () => grpcJsXdsScenario(rig, s));
    it(`ours: ${s.name}`, () => ourScenario(rig, s));
  }
  for (const c of NACKS) {
    it(`grpc-js-xds NACK corpus: ${c.name}`, () => grpcJsXdsNack(rig, c));
    it(`ours NACK corpus: ${c.name}`, () => ourNack(rig, c));
  }
});
