// The translators' output composes into a snapshot the mesh's own validator accepts: the watched
// service and its backends pending until their Destination streams answer, then complete.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateSnapshot } from '../../../../src/control-plane/validate.js';
import type { MeshSnapshot, ServiceSnapshot } from '../../../../src/control-plane/snapshot.js';
import { DestinationState, snapshotEndpoints, translateOutbound, unwrap } from '../../../../src/control-plane/linkerd/translate/index.js';
import { decodeOutboundPolicy, encodeOutboundPolicy } from '../../../../src/proto/linkerd/outbound.js';
import { decodeUpdate, encodeUpdate } from '../../../../src/proto/linkerd/destination.js';
import { ipFromString } from '../../../../src/proto/linkerd/net-addr.js';

const AUTH = 'web.default.svc.cluster.local:8080';
const V2 = 'web-v2.default.svc.cluster.local:8080';
const dst = (path: string) => ({ kind: { kind: 'balancer', balancer: { discovery: { kind: { kind: 'dst', dst: { path } } } } } }) as const;
const policy = decodeOutboundPolicy(
  encodeOutboundPolicy({
    protocol: { kind: { kind: 'http1', http1: { routes: [{ rules: [{ backends: { kind: { kind: 'randomAvailable', randomAvailable: { backends: [{ weight: 90, backend: { backend: dst(AUTH) } }, { weight: 10, backend: { backend: dst(V2) } }] } } } }] }] } } },
  }),
);
const snapshot = (services: ServiceSnapshot[]): MeshSnapshot => ({
  version: '1',
  source: 'linkerd:test',
  complete: false,
  inbound: { mode: 'strict', defaultPolicy: 'all-authenticated', defaultPolicyExplicit: false, policy: { rules: [], servers: [] } },
  services: new Map(services.map((s) => [s.name, s])),
});

test('a translated split validates: pending endpoints first, then complete with Destination endpoints', () => {
  const t = unwrap(translateOutbound(policy, { authority: AUTH, name: 'web', namespace: 'default', hostnames: ['web', 'web.default.svc.cluster.local:8080'], identity: 'web.default.serviceaccount.identity.linkerd.cluster.local' }));
  const first = validateSnapshot(snapshot([t.service, ...t.backends.map((b) => b.spec)]));
  assert.deepEqual(first.issues, []);
  assert.deepEqual(first.pending.map((p) => p.missing).sort(), ['web', V2].sort());
  const filled = t.watch.map((w) => {
    const d = new DestinationState(w.path);
    const u = decodeUpdate(encodeUpdate({ update: { kind: 'add', add: { addrs: [{ addr: { ip: ipFromString(w.path === AUTH ? '10.0.0.1' : '10.0.0.2'), port: 8080 }, weight: 1, tlsIdentity: { strategy: { kind: 'dnsLikeIdentity', dnsLikeIdentity: { name: 'web.default.serviceaccount.identity.linkerd.cluster.local' } } } }] } } }));
    unwrap(d.apply(u));
    return { service: w.service, endpoints: snapshotEndpoints(d.view()) };
  });
  const services = [t.service, ...t.backends.map((b) => b.spec)].map((s) => ({ ...s, endpoints: filled.find((f) => f.service === s.name)?.endpoints ?? s.endpoints }));
  const done = validateSnapshot(snapshot(services));
  assert.deepEqual(done.issues, []);
  assert.deepEqual(done.pending, []);
  assert.equal(services[0]!.endpoints?.[0]?.serverName, 'web.default.serviceaccount.identity.linkerd.cluster.local');
});
