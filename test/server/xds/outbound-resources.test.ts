// The outbound generator, pure: generate → decode with our codecs → translate with our translators
// → build with XdsTree gives back the input (services, routes, splits, settings, endpoints), with
// no NACK reason and no note; the bytes are deterministic; what xDS cannot express is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  generateOutboundResources,
  TYPE_URLS,
  XdsGenerateError,
  type OutboundResources,
  type OutboundServiceInput,
} from '../../../src/server/xds/outbound-resources.js';
import { ListenerCodec } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import { RouteConfigurationCodec } from '../../../src/proto/envoy/config/route/v3/route.js';
import { ClusterCodec } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { ClusterLoadAssignmentCodec } from '../../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { translateListener } from '../../../src/control-plane/xds/translate/listener.js';
import { translateRouteConfiguration } from '../../../src/control-plane/xds/translate/route.js';
import { translateCluster } from '../../../src/control-plane/xds/translate/cluster.js';
import { translateEndpoints } from '../../../src/control-plane/xds/translate/endpoints.js';
import type { Translation } from '../../../src/control-plane/xds/translate/result.js';
import { XdsTree, type TreeBuild } from '../../../src/control-plane/xds/xds-tree.js';
import { listenerCandidates, searchDomains } from '../../../src/control-plane/xds/host-candidates.js';
import { DEFAULT_SERVICE_SETTINGS, type RequestPolicy, type RouteSpec, type ServiceSettings, type ServiceSpec } from '../../../src/outbound/settings.js';
import { retryPolicySettings } from '../../../src/outbound/retry/policy.js';
import { failureAccrualSettings } from '../../../src/outbound/balancer/failure-accrual.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from '../../../src/outbound/retry/replay-body.js';

const TD = 'cluster.local';
const id = (ns: string, sa: string) => `spiffe://${TD}/ns/${ns}/sa/${sa}`;
const fqdn = (name: string, ns = 'default') => `${name}.${ns}.svc.cluster.local`;
const clusterName = (name: string, port: number, ns = 'default') => `outbound|${port}||${fqdn(name, ns)}`;
const policy = (p: Partial<RequestPolicy> = {}): RequestPolicy => ({ retry: null, maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES, timeout: {}, ...p });

const retry = retryPolicySettings({ maxRetries: 3, retryOnFailures: ['connect', 'reset', 'timeout'], retryOnStatuses: [502, 503, 504], backoff: { baseMs: 20, maxMs: 400 } });
const PAYMENTS_ROUTES: RouteSpec[] = [
  { name: 'exact', match: { path: { exact: '/health' }, methods: ['GET'] }, policy: policy({ timeout: { requestMs: 1500 } }) },
  { name: 'segment', match: { path: { prefix: '/api.v1' }, headers: [{ name: 'x-canary', exact: '1' }] }, policy: policy({ retry, timeout: { requestMs: 3000, perTryMs: 700 } }), split: [{ service: 'payments-v2', weight: 90 }, { service: 'payments', weight: 10 }] },
  { name: 'string', match: { path: { stringPrefix: '/static' }, headers: [{ name: 'x-debug', present: true }, { name: 'x-absent', present: false }] }, policy: policy({ timeout: { perTryMs: 250 } }) },
  { name: 'regex', match: { path: { regex: '/users/[0-9]+' }, headers: [{ name: 'x-tenant', regex: 'a(b|c)d' }] }, policy: policy({ retry: retryPolicySettings({ maxRetries: 1, retryOnFailures: ['connect'], retryOnStatuses: [409, 429], backoff: { baseMs: 25, maxMs: 250 } }) }) },
  { name: 'all5xx', match: { path: { exact: '/pay' }, methods: ['POST'] }, policy: policy({ retry: retryPolicySettings({ maxRetries: 2, retryOnFailures: ['connect', 'reset', 'timeout'], retryOnStatuses: [...Array.from({ length: 100 }, (_, i) => 500 + i)], backoff: { baseMs: 10, maxMs: 100 } }) }) },
  { name: 'other-ns', match: { path: { prefix: '/' } }, policy: policy(), split: [{ service: 'ledger.finance', weight: 1 }] },
];

const settings = (s: Partial<ServiceSettings>): ServiceSettings => ({ ...DEFAULT_SERVICE_SETTINGS, ...s });
function svc(name: string, ns: string, port: number, over: Partial<ServiceSpec> = {}, identities?: string[]): OutboundServiceInput {
  const spec: ServiceSpec = { name, namespace: ns, hostnames: [], identity: id(ns, name), settings: DEFAULT_SERVICE_SETTINGS, routes: [], endpoints: [], ...over };
  return { spec, port, ...(identities && { identities }) };
}

function input(): OutboundServiceInput[] {
  return [
    svc('payments', 'default', 8080, {
      settings: settings({ balancer: 'round-robin', accrual: failureAccrualSettings({ consecutiveFailures: 3, minMs: 2000, maxMs: 90_000 }), retry: null, timeout: { requestMs: 5000 } }),
      routes: PAYMENTS_ROUTES,
      endpoints: [
        { address: '10.0.0.2:8080', identity: id('default', 'payments'), weight: 2, zone: 'us-central1-b' },
        { address: '10.0.0.1:8080', identity: id('default', 'payments'), weight: 1, zone: 'us-central1-a' },
        { address: '[fd00::3]:8080', identity: id('default', 'payments'), weight: 3, zone: 'us-central1-a' },
      ],
    }),
    svc('payments-v2', 'default', 8080, {
      settings: settings({ balancer: 'random', accrual: false, protocol: 'http2', retry: retryPolicySettings({ maxRetries: 2, retryOnFailures: ['connect', 'reset'], retryOnStatuses: [503], backoff: { baseMs: 25, maxMs: 250 } }) }),
      split: [{ service: 'payments', weight: 1 }, { service: 'payments-v2', weight: 3 }],
      endpoints: [{ address: '10.0.1.1:9090', identity: id('default', 'payments-v2'), identities: [id('default', 'payments-v2'), id('default', 'payments')], weight: 1 }],
    }, [id('default', 'payments-v2'), id('default', 'payments')]),
    svc('ledger', 'finance', 7000, { settings: settings({ balancer: 'least-request', protocol: 'grpc' }), endpoints: [{ address: '10.0.2.1:7000', identity: id('finance', 'ledger'), weight: 5 }] }),
    svc('pending', 'default', 80, { endpoints: undefined }),
  ];
}

/** Every resource through its translator: no reason, no note, and the typed values by type. */
function translateAll(res: OutboundResources): { byType: Map<string, Map<string, unknown>>; notes: string[] } {
  const notes: string[] = [];
  const take = <T>(name: string, t: Translation<T>): T => {
    assert.ok(t.ok, `${name}: ${t.ok ? '' : JSON.stringify(t.reasons)}`);
    notes.push(...t.notes.map((n) => `${n.resource} ${n.field}: ${n.message}`));
    return t.value;
  };
  const byType = new Map<string, Map<string, unknown>>();
  for (const [type, map] of res) {
    const out = new Map<string, unknown>();
    for (const [name, bytes] of map) {
      if (type === TYPE_URLS.listener) out.set(name, take(name, translateListener(ListenerCodec.decode(bytes))));
      else if (type === TYPE_URLS.routes) out.set(name, take(name, translateRouteConfiguration(RouteConfigurationCodec.decode(bytes))));
      else if (type === TYPE_URLS.cluster) out.set(name, take(name, translateCluster(ClusterCodec.decode(bytes), DEFAULT_SERVICE_SETTINGS)));
      else {
        const cla = ClusterLoadAssignmentCodec.decode(bytes);
        assert.equal(cla.clusterName, name);
        out.set(name, { clusterName: name, endpoints: take(name, translateEndpoints(cla, '')) });
      }
    }
    byType.set(type, out);
  }
  return { byType, notes };
}

function readBack(res: OutboundResources, hosts: string[]): { build: TreeBuild; notes: string[] } {
  const { byType, notes } = translateAll(res);
  const none = new Set<string>();
  const tree = new XdsTree({ trustDomain: TD, namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS });
  const search = searchDomains({ namespace: 'default' });
  const bindings = hosts.map((host) => ({ host, candidates: listenerCandidates(host, 'http:', search) }));
  const build = tree.build(bindings, {
    listeners: byType.get(TYPE_URLS.listener)!,
    routes: byType.get(TYPE_URLS.routes)!,
    clusters: byType.get(TYPE_URLS.cluster)!,
    endpoints: byType.get(TYPE_URLS.endpoints)!,
    missing: { listeners: none, routes: none, clusters: none, endpoints: new Set([clusterName('pending', 80)]) },
  });
  return { build, notes };
}

/** A match as the tree gives it: a segment prefix travels as the regex of the same paths; none is every path. */
function expectedMatch(m: RouteSpec['match']): RouteSpec['match'] {
  if (!m.path && !m.methods && !m.headers) return { path: { stringPrefix: '' } };
  const p = m.path;
  if (p && 'prefix' in p) return { ...m, path: p.prefix === '/' ? { stringPrefix: '/' } : { regex: `${p.prefix.replace(/\./g, '\\.')}(/[^\\n]*)?` } };
  return m;
}

/** A split as the tree gives it: cluster names; no split is the service's own cluster. */
function expectedSplit(r: { split?: readonly { service: string; weight: number }[] }, own: string, ns: string, ports: Record<string, number>) {
  if (!r.split) return [{ service: own, weight: 1 }];
  return r.split.map((b) => {
    const [n, bns = ns] = b.service.split('.');
    return { service: clusterName(n!, ports[`${n}.${bns}`]!, bns), weight: b.weight };
  });
}

test('generate → our codecs, translators and XdsTree give back the services, routes, splits, settings and endpoints', () => {
  const services = input();
  const ports = Object.fromEntries(services.map((s) => [`${s.spec.name}.${s.spec.namespace}`, s.port]));
  const res = generateOutboundResources(services);
  const { build, notes } = readBack(res, ['payments:8080', 'payments-v2:8080', 'ledger.finance:7000', 'pending']);
  assert.deepEqual(notes, [], 'no field accepted with no effect');
  for (const s of services.slice(0, 3)) {
    const { spec, port } = s;
    const own = clusterName(spec.name, port, spec.namespace);
    // The front: the virtual host `fqdn:port`, the host bound to it, the routes in order, then the catch-all.
    const front = build.services.get(`${fqdn(spec.name, spec.namespace)}:${port}`);
    assert.ok(front, `front of ${spec.name}`);
    assert.equal(front.namespace, spec.namespace);
    const want = [...spec.routes, { name: 'default', match: { path: { stringPrefix: '' } }, policy: { retry: spec.settings.retry, maxReplayBodyBytes: spec.settings.maxReplayBodyBytes, timeout: spec.settings.timeout }, split: spec.split }];
    assert.equal(front.routes.length, want.length);
    want.forEach((r, i) => {
      const got = front.routes[i]!;
      assert.equal(got.name, r.name);
      assert.deepEqual(got.match, expectedMatch(r.match), `${spec.name} route ${r.name} match`);
      assert.deepEqual(got.policy, r.policy, `${spec.name} route ${r.name} policy`);
      assert.deepEqual(got.split, expectedSplit(r, own, spec.namespace, ports), `${spec.name} route ${r.name} split`);
    });
    // The backend: settings carried by the Cluster (balancer, accrual), identity, endpoints.
    const backend = build.services.get(own);
    assert.ok(backend, `backend ${own}`);
    const ids = s.identities ?? [spec.identity];
    assert.equal(backend.identity, ids[0]);
    assert.equal(backend.settings.balancer, spec.settings.balancer);
    assert.deepEqual(backend.settings.accrual, spec.settings.accrual);
    // HTTP/2 travels as the Cluster's explicit h2 options; xDS has no word for gRPC: it reads back as http2.
    assert.equal(backend.settings.protocol, spec.settings.protocol === 'http' ? 'http' : 'http2', `${spec.name} protocol`);
    const key = (e: { address: string }) => e.address;
    const sortBy = <T extends { address: string }>(l: readonly T[]) => [...l].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    assert.deepEqual(
      sortBy(backend.endpoints!).map((e) => ({ ...e })),
      sortBy(spec.endpoints!).map(({ labels: _l, ...e }) => ({ ...e, identity: ids[0], ...(ids.length > 1 && { identities: ids }) })),
    );
  }
  // p2c-ewma has no lb_policy: it is LEAST_REQUEST, read back as least-request (documented).
  assert.equal(build.hosts.get('pending')?.kind, 'found');
  assert.deepEqual(build.services.get(clusterName('pending', 80))?.endpoints, [], 'no assignment yet: none sent, the client waits (here: told it does not exist)');
  assert.equal(build.services.get(clusterName('pending', 80))?.settings.balancer, 'least-request');
  assert.equal(res.get(TYPE_URLS.endpoints)!.has(clusterName('pending', 80)), false);
});

test('names and shapes are istiod\'s: Listener fqdn:port, RDS over ADS, domains, HEALTHY, locality weight = sum', () => {
  const res = generateOutboundResources(input());
  const l = ListenerCodec.decode(res.get(TYPE_URLS.listener)!.get(`${fqdn('payments')}:8080`)!);
  assert.equal(l.name, `${fqdn('payments')}:8080`);
  const rc = RouteConfigurationCodec.decode(res.get(TYPE_URLS.routes)!.get(clusterName('payments', 8080))!);
  assert.equal(rc.virtualHosts[0]!.name, `${fqdn('payments')}:8080`);
  assert.deepEqual(rc.virtualHosts[0]!.domains, ['payments', 'payments:8080', 'payments.default', 'payments.default:8080', 'payments.default.svc', 'payments.default.svc:8080', fqdn('payments'), `${fqdn('payments')}:8080`]);
  assert.equal(rc.virtualHosts[0]!.routes[1]!.match!.safeRegex!.regex, '/api\\.v1(/.*)?');
  assert.equal(rc.virtualHosts[0]!.routes[5]!.match!.prefix, '/');
  assert.equal(rc.virtualHosts[0]!.routes[1]!.route!.retryPolicy!.retryOn, 'gateway-error');
  const c = ClusterCodec.decode(res.get(TYPE_URLS.cluster)!.get(clusterName('payments', 8080))!);
  assert.equal(c.edsClusterConfig!.serviceName, clusterName('payments', 8080));
  const cla = ClusterLoadAssignmentCodec.decode(res.get(TYPE_URLS.endpoints)!.get(clusterName('payments', 8080))!);
  assert.deepEqual(cla.endpoints.map((x) => [x.locality?.zone, x.loadBalancingWeight, x.lbEndpoints.map((e) => e.healthStatus)]), [['us-central1-a', 4, [1, 1]], ['us-central1-b', 2, [1]]]);
  // Every Kubernetes form of the host, with the service's port, reaches the one front.
  const forms = ['payments:8080', 'payments.default:8080', 'payments.default.svc:8080', `${fqdn('payments')}:8080`];
  const { build } = readBack(res, forms);
  assert.deepEqual(build.services.get(`${fqdn('payments')}:8080`)?.hostnames, [...forms].sort());
});

test('portableLbPolicy: every Cluster says ROUND_ROBIN (the one lb_policy grpc-js-xds takes); otherwise the balancer', () => {
  const lb = (o: { portableLbPolicy?: boolean }) => [...generateOutboundResources(input(), o).get(TYPE_URLS.cluster)!.values()].map((b) => ClusterCodec.decode(b).lbPolicy);
  assert.deepEqual(lb({ portableLbPolicy: true }), [0, 0, 0, 0]);
  // By name.ns: ledger (least-request), payments-v2 (random), payments (round-robin), pending (p2c-ewma → LEAST_REQUEST).
  assert.deepEqual(lb({}), [1, 3, 0, 1]);
});

test('the catch-all is `default`, or `default#2` when a route of the service is called default', () => {
  const res = generateOutboundResources([svc('a', 'default', 80, { routes: [R({ name: 'default', match: { path: { exact: '/x' } } })] })]);
  const rc = RouteConfigurationCodec.decode(res.get(TYPE_URLS.routes)!.get(clusterName('a', 80))!);
  assert.deepEqual(rc.virtualHosts[0]!.routes.map((r) => r.name), ['default', 'default#2']);
});

test('deterministic: same input → same bytes, in any order; one endpoint changed → only that assignment changes', () => {
  const a = generateOutboundResources(input());
  const b = generateOutboundResources([...input()].reverse().map((s) => ({ ...s, spec: { ...s.spec, endpoints: s.spec.endpoints && [...s.spec.endpoints].reverse() } })));
  const flat = (r: OutboundResources) => [...r].flatMap(([t, m]) => [...m].map(([n, v]) => [t, n, Buffer.from(v).toString('hex')]));
  assert.deepEqual(flat(b), flat(a));
  const changed = input();
  const p = changed[0]!.spec;
  changed[0] = { ...changed[0]!, spec: { ...p, endpoints: p.endpoints!.map((e, i) => (i === 0 ? { ...e, weight: 7 } : e)) } };
  const c = generateOutboundResources(changed);
  const diff = flat(c).filter(([t, n, v]) => !flat(a).some(([t2, n2, v2]) => t === t2 && n === n2 && v === v2));
  assert.deepEqual(diff.map(([t, n]) => [t, n]), [[TYPE_URLS.endpoints, clusterName('payments', 8080)]]);
});

const R = (over: Partial<RouteSpec>): RouteSpec => ({ name: 'r', match: {}, policy: policy(), ...over });
const REFUSED: Array<[string, OutboundServiceInput[], RegExp]> = [
  ['a split to an unknown service', [svc('a', 'default', 80, { routes: [R({ split: [{ service: 'nowhere', weight: 1 }] })] })], /routes\[0\]\.split\[0\]\.service: "nowhere" is not a service/],
  ['a service split to an unknown namespace', [svc('a', 'default', 80, { split: [{ service: 'a.other', weight: 1 }] })], /split\[0\]\.service/],
  ['an endpoint with a hostname', [svc('a', 'default', 80, { endpoints: [{ address: 'db.internal:80', identity: id('default', 'a'), weight: 1 }] })], /endpoints\[0\]\.address: "db\.internal:80" is not ip:port/],
  ['an unspecified endpoint address', [svc('a', 'default', 80, { endpoints: [{ address: '0.0.0.0:80', identity: id('default', 'a'), weight: 1 }] })], /unspecified/],
  ['an endpoint weight 0', [svc('a', 'default', 80, { endpoints: [{ address: '10.0.0.1:80', identity: id('default', 'a'), weight: 0 }] })], /weight: 0 is not an integer/],
  ['an endpoint of another identity', [svc('a', 'default', 80, { endpoints: [{ address: '10.0.0.1:80', identity: id('default', 'b'), weight: 1 }] })], /endpoints\[0\]\.identity: accepts \["spiffe:\/\/cluster.local\/ns\/default\/sa\/b"\], not the service's expected identities/],
  ['an endpoint port with a leading zero', [svc('a', 'default', 80, { endpoints: [{ address: '10.0.0.1:080', identity: id('default', 'a'), weight: 1 }] })], /not ip:port/],
  ['an IPv6 zone index', [svc('a', 'default', 80, { endpoints: [{ address: '[fe80::1%eth0]:80', identity: id('default', 'a'), weight: 1 }] })], /not ip:port/],
  ['an endpoint accepting fewer identities than the Cluster names', [svc('a', 'default', 80, { endpoints: [{ address: '10.0.0.1:80', identity: id('default', 'a'), weight: 1 }] }, [id('default', 'a'), id('default', 'b')])], /endpoints\[0\]\.identity: accepts/],
  ['an expected identity listed twice', [svc('a', 'default', 80, { endpoints: [] }, [id('default', 'a'), id('default', 'a')])], /twice/],
  ['a timeout of 1.5 ms', [svc('a', 'default', 80, { routes: [R({ policy: policy({ timeout: { requestMs: 1.5 } }) })] })], /routes\[0\]\.policy\.timeout\.requestMs: 1\.5 is not whole/],
  ['a service timeout longer than 31 days', [svc('a', 'default', 80, { settings: settings({ timeout: { requestMs: 32 * 86_400_000 } }) })], /^service "a\.default" settings\.timeout\.requestMs/],
  ['a service retry xDS cannot say', [svc('a', 'default', 80, { settings: settings({ retry: retryPolicySettings({ retryOnFailures: ['timeout', 'connect'] }) }) })], /settings\.retry\.retryOnFailures/],
  ['an accrual whose max is below its min', [svc('a', 'default', 80, { settings: settings({ accrual: failureAccrualSettings({ minMs: 5000, maxMs: 6000 }) && { ...failureAccrualSettings(), minMs: 5000, maxMs: 10 } }) })], /accrual\.maxMs: must not be shorter/],
  ['a regex RE2 refuses', [svc('a', 'default', 80, { routes: [R({ match: { path: { regex: '(a)\\1' } } })] })], /routes\[0\]\.match\.path: .*refused by the RE2 check/],
  ['a lookahead', [svc('a', 'default', 80, { routes: [R({ match: { headers: [{ name: 'x', regex: '(?=a)a' }] } })] })], /headers\[0\]\.regex/],
  ['two methods on one route', [svc('a', 'default', 80, { routes: [R({ match: { methods: ['GET', 'HEAD'] } })] })], /one method/],
  ['a pseudo-header', [svc('a', 'default', 80, { routes: [R({ match: { headers: [{ name: ':authority', exact: 'x' }] } })] })], /not a lower-case header name/],
  ['a JavaScript regex RE2 reads differently (. also matches \\r in RE2)', [svc('a', 'default', 80, { routes: [R({ match: { path: { regex: '/users/.*' } } })] })], /means something else in RE2/],
  ['a segment prefix ending in /', [svc('a', 'default', 80, { routes: [R({ match: { path: { prefix: '/api/' } } })] })], /segment prefix/],
  ['retrying timeouts without resets', [svc('a', 'default', 80, { routes: [R({ policy: policy({ retry: retryPolicySettings({ retryOnFailures: ['timeout'] }) }) })] })], /timeouts only together/],
  ['a backoff multiplier of 3', [svc('a', 'default', 80, { routes: [R({ policy: policy({ retry: retryPolicySettings({ backoff: { multiplier: 3 } }) }) })] })], /multiplier/],
  ['eleven retries', [svc('a', 'default', 80, { routes: [R({ policy: policy({ retry: retryPolicySettings({ maxRetries: 11 }) }) })] })], /11 is more than/],
  ['retryable methods xDS cannot carry', [svc('a', 'default', 80, { routes: [R({ policy: policy({ retry: retryPolicySettings({ retryableMethods: ['POST'] }) }) })] })], /retryableMethods/],
  ['an accrual jitter xDS cannot carry', [svc('a', 'default', 80, { settings: settings({ accrual: failureAccrualSettings({ jitterRatio: 0.1 }) }) })], /accrual\.jitterRatio/],
  ['a split of zero weight', [svc('a', 'default', 80, { split: [{ service: 'a', weight: 0 }] })], /weight > 0/],
  ['a backend listed twice', [svc('a', 'default', 80, { split: [{ service: 'a', weight: 1 }, { service: 'a.default', weight: 1 }] })], /listed twice/],
  ['a service name that is not a label', [svc('A_b', 'default', 80)], /name: must be a Kubernetes service name/],
  ['a port out of range', [svc('a', 'default', 0)], /port: 0 is not a port/],
  ['a service given twice', [svc('a', 'default', 80), svc('a', 'default', 81)], /given twice/],
  ['an identity that is not a SPIFFE ID', [svc('a', 'default', 80, { identity: 'https://a' })], /not a SPIFFE ID/],
];

for (const [what, services, message] of REFUSED) {
  test(`refused, nothing emitted: ${what}`, () => {
    assert.throws(() => generateOutboundResources(services), (e: unknown) => {
      assert.ok(e instanceof XdsGenerateError, String(e));
      assert.equal(e.code, 'ERR_SIDECARLESS_XDS_GENERATE');
      assert.match(e.message, message);
      return true;
    });
  });
}

test('protocol http2/grpc: the Cluster carries istiod\'s HTTP/2 signal, as the real Envoy protos read it; http carries none', async () => {
  const { loadReal } = await import('../../helpers/xds-protos.js');
  const real = loadReal();
  const C = real.lookupType('envoy.config.cluster.v3.Cluster');
  const H = real.lookupType('envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
  const res = generateOutboundResources(input());
  const read = (name: string) => C.toObject(C.decode(res.get(TYPE_URLS.cluster)!.get(name)!), { defaults: false }) as { typed_extension_protocol_options?: Record<string, { type_url: string; value: Uint8Array }> };
  for (const name of [clusterName('payments-v2', 8080), clusterName('ledger', 7000, 'finance')]) {
    const opts = read(name).typed_extension_protocol_options;
    assert.deepEqual(Object.keys(opts ?? {}), ['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'], name);
    const entry = opts!['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']!;
    assert.equal(entry.type_url, 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    assert.deepEqual(H.toObject(H.decode(entry.value), { defaults: false, oneofs: true }), { explicit_http_config: { http2_protocol_options: {}, protocol_config: 'http2_protocol_options' }, upstream_protocol_options: 'explicit_http_config' });
  }
  assert.equal(read(clusterName('payments', 8080)).typed_extension_protocol_options, undefined);
});
