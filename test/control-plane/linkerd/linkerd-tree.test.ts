// The tree the Linkerd control plane composes (pure): a target is composed only when its policy and
// every Destination path it names have answered; a changed policy that waits for a new backend keeps
// the last complete tree; backends are named `backend:<path>`; objects are reused when nothing changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOutboundPolicy, encodeOutboundPolicy, type OutboundPolicy } from '../../../src/proto/linkerd/outbound.js';
import type { DeepPartial } from '../../../src/proto/wire.js';
import { translateOutbound } from '../../../src/control-plane/linkerd/translate/outbound.js';
import { DestinationState } from '../../../src/control-plane/linkerd/translate/destination.js';
import { LinkerdTree, renameBackends } from '../../../src/control-plane/linkerd/linkerd-tree.js';

const A = 'web.default.svc.cluster.local:8080';
const B = 'web-v2.default.svc.cluster.local:8080';
const C = 'web-v3.default.svc.cluster.local:8080';
const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const dst = (path: string) => ({ kind: { kind: 'balancer' as const, balancer: { discovery: { kind: { kind: 'dst' as const, dst: { path } } } } } });
const policy = (...b: [string, number][]): OutboundPolicy =>
  decodeOutboundPolicy(
    encodeOutboundPolicy({
      protocol: { kind: { kind: 'http1', http1: { routes: [{ metadata: { kind: { kind: 'default', default: 'http' } }, rules: [{ matches: [{ path: { kind: { kind: 'prefix', prefix: '/' } } }], backends: { kind: { kind: 'randomAvailable', randomAvailable: { backends: b.map(([p, weight]) => ({ weight, backend: { backend: dst(p) } })) } } } }] }] } } },
    } as DeepPartial<OutboundPolicy> as never),
  );
const translated = (p: OutboundPolicy) => {
  const t = translateOutbound(p, { authority: A, namespace: 'default', hostnames: ['web:8080'], identity: ID });
  assert.ok(t.ok);
  return renameBackends(t.value);
};
const dest = (path: string, port: number) => {
  const d = new DestinationState(path);
  const r = d.apply({ update: { kind: 'add', add: { addrs: [{ addr: { ip: { ip: { kind: 'ipv4', ipv4: 0x7f000001 } }, port }, weight: 1, tlsIdentity: { strategy: { kind: 'dnsLikeIdentity', dnsLikeIdentity: { name: ID } } } }], metricLabels: new Map() } } } as never);
  assert.ok(r.ok, JSON.stringify(r));
  return d;
};

test('a target waits for every path, then is composed whole; backends are named backend:<path>', () => {
  const tree = new LinkerdTree();
  const t = translated(policy([A, 90], [B, 10]));
  const a = dest(A, 1001);
  let r = tree.build([{ authority: A, translation: t }], new Map([[A, a.view()]]));
  assert.equal(r.services.size, 0, 'half a tree was composed');
  assert.deepEqual(r.states.get(A), { kind: 'pending', waitingFor: `the endpoints of ${B} (Destination.Get)` });
  assert.deepEqual([...r.paths].sort(), [A, B].sort());
  const b = dest(B, 1002);
  r = tree.build([{ authority: A, translation: t }], new Map([[A, a.view()], [B, b.view()]]));
  assert.deepEqual([...r.services.keys()].sort(), [A, `backend:${B}`].sort());
  assert.deepEqual(r.services.get(A)!.routes[0]!.split, [{ service: A, weight: 90 }, { service: `backend:${B}`, weight: 10 }]);
  assert.deepEqual(r.services.get(A)!.endpoints!.map((e) => e.address), ['127.0.0.1:1001']);
  assert.deepEqual(r.services.get(`backend:${B}`)!.endpoints!.map((e) => e.address), ['127.0.0.1:1002']);
  assert.deepEqual(r.states.get(A), { kind: 'found' });
  const again = tree.build([{ authority: A, translation: t }], new Map([[A, a.view()], [B, b.view()]]));
  assert.equal(again.services.get(A), r.services.get(A), 'nothing changed: the same object');
  // A new policy naming a backend not answered yet: the last complete tree stays, its paths stay open.
  const t2 = translated(policy([A, 50], [C, 50]));
  const r2 = tree.build([{ authority: A, translation: t2 }], new Map([[A, a.view()], [B, b.view()]]));
  assert.equal(r2.services.get(A), r.services.get(A));
  assert.deepEqual([...r2.paths].sort(), [A, B, C].sort());
  const c = dest(C, 1003);
  const r3 = tree.build([{ authority: A, translation: t2 }], new Map([[A, a.view()], [B, b.view()], [C, c.view()]]));
  assert.deepEqual([...r3.services.keys()].sort(), [A, `backend:${C}`].sort());
  assert.deepEqual([...r3.paths].sort(), [A, C].sort(), 'B is no longer named: its stream may close');
});

test('absent and pending targets compose nothing', () => {
  const tree = new LinkerdTree();
  const r = tree.build([{ authority: A, translation: undefined, absent: 'NOT_FOUND' }, { authority: B, translation: undefined, problem: 'refused: x' }], new Map());
  assert.equal(r.services.size, 0);
  assert.deepEqual(r.states.get(A), { kind: 'absent', why: 'NOT_FOUND' });
  assert.deepEqual(r.states.get(B), { kind: 'pending', waitingFor: 'refused: x' });
});
