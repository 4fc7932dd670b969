// An outsider's attacks on the xDS tree, pure: whatever names a control plane picks, the services
// it builds form a snapshot the mesh accepts (a refused one freezes every delivered service), and
// each bound host is routed to the front of the virtual host the server chose for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XdsTree, type TreeInput } from '../../../src/control-plane/xds/xds-tree.js';
import { listenerCandidates, searchDomains } from '../../../src/control-plane/xds/host-candidates.js';
import { validateSnapshot } from '../../../src/control-plane/validate.js';
import { DEFAULT_SERVICE_SETTINGS, type RouteSpec } from '../../../src/outbound/settings.js';
import type { ClusterSpec } from '../../../src/control-plane/xds/translate/cluster.js';
import type { RouteTable } from '../../../src/control-plane/xds/translate/route.js';
import type { MeshSnapshot } from '../../../src/control-plane/snapshot.js';

const CTX = { trustDomain: 'cluster.local', namespace: 'default', baseSettings: DEFAULT_SERVICE_SETTINGS };
const SEARCH = searchDomains({ namespace: 'default' });
const policy = DEFAULT_SERVICE_SETTINGS;
const route = (clusters: string[]): RouteSpec => ({
  name: 'r',
  match: { path: { stringPrefix: '/' } },
  policy: { retry: policy.retry, maxReplayBodyBytes: policy.maxReplayBodyBytes, timeout: {} },
  split: clusters.map((service) => ({ service, weight: 1 })),
});
const table = (name: string, vhost: string, clusters: string[]): RouteTable => ({ name, virtualHosts: [{ name: vhost, domains: ['*'], routes: [route(clusters)] }] });
const cluster = (name: string): ClusterSpec => ({ name, edsName: name, settings: DEFAULT_SERVICE_SETTINGS, identities: [] });
const eps = (name: string, address: string) => ({ clusterName: name, endpoints: [{ address, identity: '', weight: 1 }] });
const L = (name: string, rds: string) => [name, { name, routes: { rds } }] as [string, unknown];
const bind = (host: string) => ({ host, candidates: listenerCandidates(host, 'http:', SEARCH) });

function input(p: Record<'listeners' | 'routes' | 'clusters' | 'endpoints', Array<[string, unknown]>>, missingClusters: string[] = []): TreeInput {
  const none = new Set<string>();
  return {
    listeners: new Map(p.listeners), routes: new Map(p.routes), clusters: new Map(p.clusters), endpoints: new Map(p.endpoints),
    missing: { listeners: none, routes: none, clusters: new Set(missingClusters), endpoints: none },
  };
}

function snapshotOf(services: ReadonlyMap<string, unknown>): MeshSnapshot {
  return { version: '1', source: 'xds:test', complete: false, inbound: {} as MeshSnapshot['inbound'], services: services as MeshSnapshot['services'] };
}

/** The service a host resolves to, and the services its split reaches. */
function routedBy(services: MeshSnapshot['services'], host: string): { front: string; backends: string[] } | undefined {
  const front = [...services.values()].find((s) => s.hostnames.includes(host));
  if (!front) return undefined;
  return { front: front.name, backends: front.routes.flatMap((r) => (r.split ?? []).map((b) => b.service)) };
}

test('a virtual host named like a Cluster another front routes to: both hosts routed as the server said, the snapshot accepted', () => {
  // a's routes go to Cluster "x"; b's virtual host is called "x" and goes to Cluster "bx".
  const tree = new XdsTree(CTX);
  const built = tree.build([bind('a.default.svc.cluster.local:80'), bind('b.default.svc.cluster.local:80')], input({
    listeners: [L('a.default.svc.cluster.local:80', 'ra'), L('b.default.svc.cluster.local:80', 'rb')],
    routes: [['ra', table('ra', 'a', ['x'])], ['rb', table('rb', 'x', ['bx'])]],
    clusters: [['x', cluster('x')], ['bx', cluster('bx')]],
    endpoints: [['x', eps('x', '10.0.0.1:80')], ['bx', eps('bx', '10.0.0.2:80')]],
  }));
  const check = validateSnapshot(snapshotOf(built.services));
  assert.deepEqual(check.issues, []);
  const a = routedBy(built.services, 'a.default.svc.cluster.local:80');
  const b = routedBy(built.services, 'b.default.svc.cluster.local:80');
  assert.ok(a && b, `a: ${JSON.stringify(a)}, b: ${JSON.stringify(b)}; services ${[...built.services.keys()].join(', ')}`);
  assert.deepEqual(built.services.get(a.backends[0]!)?.endpoints?.map((e) => e.address), ['10.0.0.1:80']);
  assert.deepEqual(built.services.get(b.backends[0]!)?.endpoints?.map((e) => e.address), ['10.0.0.2:80']);
});

test('…and when the Cluster it names is known not to exist, the other front is not taken for it', () => {
  const tree = new XdsTree(CTX);
  const built = tree.build([bind('a.default.svc.cluster.local:80'), bind('b.default.svc.cluster.local:80')], input({
    listeners: [L('a.default.svc.cluster.local:80', 'ra'), L('b.default.svc.cluster.local:80', 'rb')],
    routes: [['ra', table('ra', 'a', ['x'])], ['rb', table('rb', 'x', ['bx'])]],
    clusters: [['bx', cluster('bx')]],
    endpoints: [['bx', eps('bx', '10.0.0.2:80')]],
  }, ['x']));
  const check = validateSnapshot(snapshotOf(built.services));
  assert.deepEqual(check.issues, [], 'a refused snapshot freezes every delivered service');
  const a = routedBy(built.services, 'a.default.svc.cluster.local:80');
  if (a) assert.ok(!a.backends.some((n) => built.services.get(n)?.hostnames.length), `a's traffic reaches a front: ${JSON.stringify(a)}`);
});

test('a virtual host named like its own Cluster: its host stays routed', () => {
  const tree = new XdsTree(CTX);
  const built = tree.build([bind('c.default.svc.cluster.local:80')], input({
    listeners: [L('c.default.svc.cluster.local:80', 'rc')],
    routes: [['rc', table('rc', 'c', ['c'])]],
    clusters: [['c', cluster('c')]],
    endpoints: [['c', eps('c', '10.0.0.3:80')]],
  }));
  assert.deepEqual(validateSnapshot(snapshotOf(built.services)).issues, []);
  const c = routedBy(built.services, 'c.default.svc.cluster.local:80');
  assert.ok(c, `c is not routed; services ${[...built.services.keys()].join(', ')}`);
  assert.deepEqual(built.services.get(c.backends[0]!)?.endpoints?.map((e) => e.address), ['10.0.0.3:80']);
});
