// validateSnapshot: every cross-reference once, complete vs live snapshots (pending), and what it
// costs when most services are shared with the previous snapshot.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serviceSchema } from '../../src/config.js';
import { serviceFromConfig } from '../../src/control-plane/from-options.js';
import type { MeshSnapshot, ServiceSnapshot } from '../../src/control-plane/snapshot.js';
import { validHostname, validateSnapshot } from '../../src/control-plane/validate.js';
import { loadPolicy } from '../../src/policy/index.js';

const ctx = { trustDomain: 'cluster.local', namespace: 'default' };
const svc = (name: string, cfg: object = {}): ServiceSnapshot => serviceFromConfig(name, serviceSchema.parse(cfg), ctx);
function snap(services: ServiceSnapshot[], complete = true): MeshSnapshot {
  return {
    version: '1',
    source: 'test',
    complete,
    inbound: { mode: 'strict', defaultPolicy: 'all-authenticated', defaultPolicyExplicit: false, policy: loadPolicy({}) },
    services: new Map(services.map((s) => [s.name, s])),
  };
}
const paths = (s: MeshSnapshot) => validateSnapshot(s).issues.map((i) => i.path);

describe('validateSnapshot', () => {
  test('a split backend missing from a complete snapshot is an error; from a live one it is pending', () => {
    const services = [svc('payments', { split: [{ service: 'payments-v2', weight: 1 }] })];
    assert.deepEqual(paths(snap(services, true)), ['payments.split.0.service']);
    const live = validateSnapshot(snap(services, false));
    assert.deepEqual(live.issues, []);
    assert.deepEqual(live.pending, [{ service: 'payments', kind: 'service', missing: 'payments-v2', path: 'payments.split.0.service' }]);
  });

  test('a route split is checked the same way, and a backend may be the service itself', () => {
    const s = svc('payments', { routes: [{ match: { path: { prefix: '/v2' } }, split: [{ service: 'payments', weight: 1 }, { service: 'nope', weight: 1 }] }] });
    assert.deepEqual(paths(snap([s])), ['payments.routes.0.split.1.service']);
  });

  test('a backend with a split of its own is refused, from either side of the change', () => {
    const a = svc('a', { split: [{ service: 'b', weight: 1 }] });
    const b = svc('b', { split: [{ service: 'c', weight: 1 }] });
    assert.deepEqual(paths(snap([a, b, svc('c')])), ['a.split.0.service']);
    assert.match(validateSnapshot(snap([a, b, svc('c')])).issues[0]!.message, /has a split itself/);
  });

  test('endpoints delivered vs pending', () => {
    const pending: ServiceSnapshot = { ...svc('inventory'), endpoints: undefined };
    assert.deepEqual(paths(snap([pending], true)), ['inventory.endpoints']);
    assert.deepEqual(validateSnapshot(snap([pending], false)).pending.map((p) => p.kind), ['endpoints']);
    const twice = { ...svc('inventory'), endpoints: [...svc('x', { endpoints: ['10.0.0.1:8443'] }).endpoints!, ...svc('x', { endpoints: ['10.0.0.1:8443'] }).endpoints!] };
    // Same address, same identity: listed twice. (Same address for two identities is two endpoints.)
    const again = { ...twice, endpoints: twice.endpoints.map((e) => ({ ...e, identity: 'spiffe://cluster.local/ns/default/sa/inventory' })) };
    assert.deepEqual(paths(snap([again])), ['inventory.endpoints.1.address']);
    const bad = { ...svc('inventory'), endpoints: [{ address: 'nowhere', identity: 'spiffe://cluster.local/ns/default/sa/inventory', weight: 1 }] };
    assert.deepEqual(paths(snap([bad])), ['inventory.endpoints.0.address']);
  });

  test('a hostname routes to one service; wildcards are checked for shape', () => {
    const a = svc('a', { hostnames: ['shop.example.com', '*.example.com'] });
    const b = svc('b', { hostnames: ['shop.example.com'] });
    assert.deepEqual(paths(snap([a, b])), ['b.hostnames.0']);
    assert.match(validateSnapshot(snap([a, b])).issues[0]!.message, /also a hostname of "a"/);
    for (const ok of ['payments', 'payments:8080', '*.example.com', '*-eu.example.com', 'example.*', '*', 'a_b.c']) assert.ok(validHostname(ok), ok);
    for (const bad of ['', 'Payments', 'a..b', 'a:0', 'a:99999', '**', 'http://a', 'a b', '.a', '*.']) assert.ok(!validHostname(bad), bad);
  });

  test('route regexes compile, split weights add up to something', () => {
    const s = svc('p');
    const broken = { ...s, routes: [{ name: 'r', match: { path: { regex: '(' }, headers: [{ name: 'x', regex: '[' }] }, policy: s.settings }] };
    assert.deepEqual(paths(snap([broken])), ['p.routes.0.match.path.regex', 'p.routes.0.match.headers.0.regex']);
    const zero = { ...s, split: [{ service: 'p', weight: 0 }] };
    assert.deepEqual(paths(snap([zero])), ['p.split']);
  });

  test('a snapshot that shares its services with the last one is not checked again per service', () => {
    const many = Array.from({ length: 2000 }, (_, i) => svc(`s${i}`, { endpoints: Array.from({ length: 10 }, (_, j) => `10.0.${i % 250}.${j + 1}:8443`) }));
    const first = snap(many);
    assert.deepEqual(validateSnapshot(first).issues, []);
    // The second snapshot shares 1999 services: their endpoint lists are not walked again. Shown by
    // mutating one shared list behind the cache's back: the cached verdict is what is returned.
    const shared = many[5]!;
    (shared.endpoints as unknown as Array<{ address: string }>)[0]!.address = 'broken';
    const next = snap([...many.slice(0, 10), svc('s10-new'), ...many.slice(11)]);
    assert.deepEqual(validateSnapshot(next).issues, [], 'per-service checks are remembered per ServiceSnapshot object');
    assert.deepEqual(paths(snap([{ ...shared }])), ['s5.endpoints.0.address'], 'a new object is checked');
  });
});

test('endpoints: a DNS-like identity and a serverName are taken; a bad identity or an IP/uppercase serverName is refused whole', () => {
  const api = 'api.default.serviceaccount.identity.linkerd.cluster.local';
  const ok = svc('api');
  const good = { ...ok, endpoints: [{ address: '10.0.0.1:4143', identity: api, serverName: api, weight: 1 }] };
  assert.deepEqual(paths(snap([good])), []);
  const bad = {
    ...ok,
    endpoints: [
      { address: '10.0.0.1:4143', identity: 'Api.default.serviceaccount.identity.linkerd.cluster.local', weight: 1 },
      { address: '10.0.0.2:4143', identity: api, serverName: '10.0.0.2', weight: 1 },
      { address: '10.0.0.3:4143', identity: api, serverName: `${api}.`, weight: 1 },
      { address: '10.0.0.4:4143', identity: 'spiffe://cluster.local', weight: 1 },
    ],
  };
  assert.deepEqual(paths(snap([bad])), ['api.endpoints.0.identity', 'api.endpoints.1.serverName', 'api.endpoints.2.serverName', 'api.endpoints.3.identity']);
  // The options spelling takes both too.
  const fromOptions = svc('api', { endpoints: [{ address: '10.0.0.1:4143', identity: api, serverName: api }] });
  assert.deepEqual(fromOptions.endpoints?.[0], { address: '10.0.0.1:4143', identity: api, serverName: api, weight: 1 });
});
