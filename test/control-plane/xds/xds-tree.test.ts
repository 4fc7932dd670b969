// The xDS tree → services, pure: candidate precedence, the complete-or-latched rule, clusters and
// endpoints that do not exist, virtual host selection, structural sharing, identities.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XdsTree, hostState, namespaceOf, derivedIdentity, virtualHostFor, type TreeInput } from '../../../src/control-plane/xds/xds-tree.js';
import { listenerCandidates, searchDomains } from '../../../src/control-plane/xds/host-candidates.js';
import { DEFAULT_SERVICE_SETTINGS, type RouteSpec } from '../../../src/outbound/settings.js';
import type { ClusterSpec } from '../../../src/control-plane/xds/translate/cluster.js';
import { type RouteTable, translateRouteConfiguration } from '../../../src/control-plane/xds/translate/route.js';
import { RouteConfigurationCodec } from '../../../src/proto/envoy/config/route/v3/route.js';

const CTX = { trustDomain: 'cluster.local', namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS };
const SEARCH = searchDomains({ namespace: 'default' });
const FQDN = 'payments.default.svc.cluster.local';
const C1 = `outbound|8080|v1|${FQDN}`;
const C2 = `outbound|8080|v2|${FQDN}`;
const policy = DEFAULT_SERVICE_SETTINGS;
const route = (name: string, clusters: string[]): RouteSpec => ({
  name,
  match: { path: { stringPrefix: '/' } },
  policy: { retry: policy.retry, maxReplayBodyBytes: policy.maxReplayBodyBytes, timeout: {} },
  split: clusters.map((service) => ({ service, weight: 1 })),
});
const table = (clusters: string[], domains = ['payments', `${FQDN}:8080`, 'payments:8080']): RouteTable => ({
  name: 'outbound|8080||' + FQDN,
  virtualHosts: [{ name: `${FQDN}:8080`, domains, routes: [route('r', clusters)] }],
});
const clusterSpec = (name: string, identities: string[] = []): ClusterSpec => ({ name, edsName: name, settings: DEFAULT_SERVICE_SETTINGS, identities });
const eps = (name: string, ...addresses: string[]) => ({ clusterName: name, endpoints: addresses.map((address) => ({ address, identity: '', weight: 1 })) });

function input(p: Partial<Record<'listeners' | 'routes' | 'clusters' | 'endpoints', Array<[string, unknown]>>>, missing: Partial<Record<'listeners' | 'routes' | 'clusters' | 'endpoints', string[]>> = {}): TreeInput {
  return {
    listeners: new Map(p.listeners ?? []),
    routes: new Map(p.routes ?? []),
    clusters: new Map(p.clusters ?? []),
    endpoints: new Map(p.endpoints ?? []),
    missing: {
      listeners: new Set(missing.listeners ?? []),
      routes: new Set(missing.routes ?? []),
      clusters: new Set(missing.clusters ?? []),
      endpoints: new Set(missing.endpoints ?? []),
    },
  };
}
const L = (name: string) => [name, { name, routes: { rds: 'outbound|8080||' + FQDN } }] as [string, unknown];
const bind = (host: string) => ({ host, candidates: listenerCandidates(host, 'http:', SEARCH) });

test('candidates: search domains first under five dots, the port always written, IPs as written, localhost and IPv6 never', () => {
  assert.deepEqual(listenerCandidates('payments:8080', 'http:', SEARCH), [
    'payments.default.svc.cluster.local:8080',
    'payments.svc.cluster.local:8080',
    'payments.cluster.local:8080',
    'payments:8080',
  ]);
  assert.deepEqual(listenerCandidates('payments', 'https:', SEARCH).at(-1), 'payments:443');
  assert.deepEqual(listenerCandidates('a.b.c.d.e.f', 'http:', SEARCH)[0], 'a.b.c.d.e.f:80', 'five dots: as written first');
  assert.deepEqual(listenerCandidates('payments.default.svc.cluster.local.:8080', 'http:', SEARCH), ['payments.default.svc.cluster.local:8080'], 'a root dot: only as written');
  assert.deepEqual(listenerCandidates('10.0.0.5:8080', 'http:', SEARCH), ['10.0.0.5:8080']);
  assert.deepEqual(listenerCandidates('localhost:3000', 'http:', SEARCH), []);
  assert.deepEqual(listenerCandidates('[::1]:80', 'http:', SEARCH), []);
});

test('host state: the first candidate in the LDS state of the world wins; all missing is absent; else pending', () => {
  const b = bind('payments:8080');
  assert.deepEqual(hostState(b, input({ listeners: [L(`${FQDN}:8080`), L('payments:8080')] })), { kind: 'found', listener: `${FQDN}:8080` });
  assert.deepEqual(hostState(b, input({ listeners: [L('payments:8080')] })), { kind: 'found', listener: 'payments:8080' }, 'a response carrying a later candidate and not the earlier ones');
  assert.equal(hostState(b, input({}, { listeners: b.candidates.slice(0, 3) })).kind, 'pending');
  assert.equal(hostState(b, input({}, { listeners: b.candidates })).kind, 'absent');
});

test('a front is built only with its whole tree; until then its last complete build stays (latched)', () => {
  const tree = new XdsTree(CTX);
  const b = bind('payments:8080');
  // As the ADS cache holds them: the same objects until their bytes change.
  const c1 = clusterSpec(C1);
  const e1 = eps(C1, '10.0.0.1:8080');
  const t1 = table([C1]);
  const t12 = table([C1, C2]);
  const partial = input({ listeners: [L(`${FQDN}:8080`)], routes: [['outbound|8080||' + FQDN, t1]], clusters: [[C1, c1]] });
  const first = tree.build([b], partial);
  assert.equal(first.services.size, 0, 'no endpoints yet: nothing built');
  assert.match((first.hosts.get('payments:8080') as { waitingFor: string }).waitingFor, /Clusters and endpoints/);
  assert.deepEqual([...first.wanted.endpoints], [C1]);
  const whole = input({ listeners: [L(`${FQDN}:8080`)], routes: [['outbound|8080||' + FQDN, t1]], clusters: [[C1, c1]], endpoints: [[C1, e1]] });
  const second = tree.build([b], whole);
  assert.deepEqual([...second.services.keys()].sort(), [`${FQDN}:8080`, C1].sort());
  const front = second.services.get(`${FQDN}:8080`)!;
  assert.deepEqual(front.hostnames, ['payments:8080']);
  assert.deepEqual(second.services.get(C1)!.endpoints, [{ address: '10.0.0.1:8080', identity: 'spiffe://cluster.local/ns/default/sa/payments', weight: 1 }]);
  // The routes now also name v2, not delivered: the previous front and its backend stay, unchanged objects.
  const moving = input({ listeners: [L(`${FQDN}:8080`)], routes: [['outbound|8080||' + FQDN, t12]], clusters: [[C1, c1]], endpoints: [[C1, e1]] });
  const third = tree.build([b], moving);
  assert.equal(third.services.get(`${FQDN}:8080`), front, 'latched');
  assert.ok(third.wanted.clusters.has(C2), 'and v2 is asked for');
  // v2 known not to exist: the tree is decided, built without it (its requests wait, then fail naming it).
  const decided = tree.build([b], input({ listeners: [L(`${FQDN}:8080`)], routes: [['outbound|8080||' + FQDN, t12]], clusters: [[C1, c1]], endpoints: [[C1, e1]] }, { clusters: [C2] }));
  assert.notEqual(decided.services.get(`${FQDN}:8080`), front);
  assert.equal(decided.services.has(C2), false);
  assert.equal(decided.services.get(C1), second.services.get(C1), 'an unchanged backend keeps its object');
});

test('endpoints known not to exist are none; a Cluster\'s SANs are the identities its endpoints may present', () => {
  const tree = new XdsTree(CTX);
  const ids = ['spiffe://cluster.local/ns/default/sa/payments-a', 'spiffe://cluster.local/ns/default/sa/payments-b'];
  const built = tree.build([bind(`${FQDN}:8080`)], input({ listeners: [L(`${FQDN}:8080`)], routes: [['outbound|8080||' + FQDN, table([C1, C2])]], clusters: [[C1, clusterSpec(C1, ids)], [C2, clusterSpec(C2)]], endpoints: [[C1, eps(C1, '10.0.0.1:8080')]] }, { endpoints: [C2] }));
  assert.deepEqual(built.services.get(C2)!.endpoints, []);
  assert.deepEqual(built.services.get(C1)!.endpoints, [{ address: '10.0.0.1:8080', identity: ids[0], identities: ids, weight: 1 }]);
  assert.equal(built.services.get(C1)!.identity, ids[0]);
});

test('virtual hosts: exact, then suffix, then prefix wildcards, then *; with the port, then without it', () => {
  const t: RouteTable = {
    name: 't',
    virtualHosts: [
      { name: 'exact', domains: ['shop.example.com:8080'], routes: [] },
      { name: 'suffix', domains: ['*.example.com'], routes: [] },
      { name: 'any', domains: ['*'], routes: [] },
    ],
  };
  assert.equal(virtualHostFor(t, 'shop.example.com:8080')?.name, 'exact');
  assert.equal(virtualHostFor(t, 'api.example.com:8080')?.name, 'suffix');
  assert.equal(virtualHostFor(t, 'other:8080')?.name, 'any');
  assert.equal(virtualHostFor({ name: 'u', virtualHosts: [{ name: 'x', domains: ['a'], routes: [] }] }, 'b:80'), undefined);
});

test('names: the namespace from an FQDN or an Istio cluster name, the conventional identity from its first label', () => {
  assert.equal(namespaceOf(`outbound|8080|v1|${FQDN}`), 'default');
  assert.equal(namespaceOf('payments.shop.svc.cluster.local:8080'), 'shop');
  assert.equal(namespaceOf('payments'), undefined);
  assert.equal(derivedIdentity(`outbound|8080|v1|payments.shop.svc.cluster.local`, CTX), 'spiffe://cluster.local/ns/shop/sa/payments');
  assert.equal(derivedIdentity('weird', CTX), 'spiffe://cluster.local/ns/default/sa/weird');
});

test('a host whose RouteConfiguration does not exist, or that no virtual host takes, waits and says for what', () => {
  const tree = new XdsTree(CTX);
  const none = tree.build([bind(`${FQDN}:8080`)], input({ listeners: [L(`${FQDN}:8080`)] }, { routes: ['outbound|8080||' + FQDN] }));
  assert.match((none.hosts.get(`${FQDN}:8080`) as { waitingFor: string }).waitingFor, /does not exist/);
  const other = tree.build([bind('other.default.svc.cluster.local:8080')], input({ listeners: [L('other.default.svc.cluster.local:8080')], routes: [['outbound|8080||' + FQDN, table([C1])]] }));
  assert.match((other.hosts.get('other.default.svc.cluster.local:8080') as { waitingFor: string }).waitingFor, /a virtual host/);
});

test('an RDS route without a timeout takes its Listener\'s HCM default (gRFC A31); one with its own keeps it', () => {
  const rc = RouteConfigurationCodec.decode(
    RouteConfigurationCodec.encode({
      name: 'outbound|8080||' + FQDN,
      virtualHosts: [{ name: 'vh', domains: [`${FQDN}:8080`], routes: [{ match: { prefix: '/own' }, route: { cluster: C1, timeout: { seconds: 2 } } }, { match: { prefix: '/' }, route: { cluster: C1 } }] }],
    } as never),
  );
  const t = translateRouteConfiguration(rc);
  assert.ok(t.ok);
  const listener = { name: `${FQDN}:8080`, routes: { rds: 'outbound|8080||' + FQDN }, defaultTimeoutMs: 4000 };
  const built = new XdsTree(CTX).build([bind(`${FQDN}:8080`)], input({ listeners: [[`${FQDN}:8080`, listener]], routes: [['outbound|8080||' + FQDN, t.value]], clusters: [[C1, clusterSpec(C1)]], endpoints: [[C1, eps(C1)]] }));
  const routes = built.services.get('vh')!.routes;
  assert.deepEqual(routes.map((r) => r.policy.timeout.requestMs), [2000, 4000]);
});

test('an EDS update keeps the objects of the endpoints that did not change (one changed of many costs about one)', () => {
  const tree = new XdsTree(CTX);
  const c1 = clusterSpec(C1);
  const t1 = table([C1]);
  const L1 = L(`${FQDN}:8080`);
  const res = (e: ReturnType<typeof eps>) => input({ listeners: [L1], routes: [['outbound|8080||' + FQDN, t1]], clusters: [[C1, c1]], endpoints: [[C1, e]] });
  const first = tree.build([bind(`${FQDN}:8080`)], res(eps(C1, '10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080'))).services.get(C1)!.endpoints!;
  const next = tree.build([bind(`${FQDN}:8080`)], res(eps(C1, '10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.4:8080'))).services.get(C1)!.endpoints!;
  assert.equal(next[0], first[0]);
  assert.equal(next[1], first[1]);
  assert.equal(next[2]!.address, '10.0.0.4:8080');
  const reweighted = { clusterName: C1, endpoints: [{ address: '10.0.0.1:8080', identity: '', weight: 5 }] };
  assert.notEqual(tree.build([bind(`${FQDN}:8080`)], res(reweighted)).services.get(C1)!.endpoints![0], first[0], 'a new weight is a new object');
});
