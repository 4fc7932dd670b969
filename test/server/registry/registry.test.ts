// Registration, pure: node → workload, ACK of an own inbound Listener → endpoint, grace on
// disconnect, reconnect takes it back, withdraw, eligibility (plaintext, undeclared, identity),
// restore after restart, and the saved file (0600, bad file set aside).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { VirtualClock } from '../../../src/clock.js';
import type { Node } from '../../../src/proto/envoy/config/core/v3/base.js';
import type { Value } from '../../../src/proto/google/protobuf/struct.js';
import { Registry } from '../../../src/server/registry/registry.js';
import { LISTENER_TYPE, Registrar, type RegistrarClient } from '../../../src/server/registry/registrar.js';
import { loadRegistrations, saveRegistrations } from '../../../src/server/registry/saved.js';
import { isRefused, workloadOf } from '../../../src/server/registry/workload-node.js';
import { inboundListenerName } from '../../../src/control-plane/xds/translate/inbound.js';

const ID = 'spiffe://cluster.local/ns/default/sa/payments';
const str = (stringValue: string): Value => ({ stringValue });

function node(o: { cluster?: string; ips?: string; labels?: Record<string, string>; advertise?: string; ns?: string } = {}): Node {
  const fields = new Map<string, Value>([['INSTANCE_IPS', str(o.ips ?? '10.0.0.5')]]);
  if (o.ns !== undefined) fields.set('NAMESPACE', str(o.ns));
  if (o.labels) fields.set('LABELS', { structValue: { fields: new Map(Object.entries(o.labels).map(([k, v]) => [k, str(v)])) } });
  if (o.advertise !== undefined) fields.set('SIDECARLESS_ADVERTISE', str(o.advertise));
  return { id: 'sidecar~10.0.0.5~p.default~default.svc.cluster.local', cluster: o.cluster ?? 'payments.default', metadata: { fields }, locality: { region: 'eu', zone: 'eu-1', subZone: '' }, userAgentName: 'x', clientFeatures: [] };
}

function rig(o: { graceMs?: number } = {}) {
  const clock = new VirtualClock(1_000);
  let changes = 0;
  const registry = new Registry({ clock, ...(o.graceMs !== undefined && { graceMs: o.graceMs }), onChange: () => changes++ });
  const registrar = new Registrar({ registry, declared: (s, ns) => (s === 'payments' && ns === 'default' ? { identities: [ID] } : undefined) });
  const client = (id: string, n: Node = node(), identity: string | undefined = ID, plaintext = false): RegistrarClient => {
    const c = { id, node: n, identity, plaintext };
    registrar.connected(c);
    return c;
  };
  const ack = (id: string, names: string[]) => registrar.request(id, { typeUrl: LISTENER_TYPE, names, kind: 'ack' });
  return { clock, registry, registrar, client, ack, changes: () => changes };
}

test('workloadOf reads service, namespace, IPs, labels (app added), zone and advertise; refuses what is malformed', () => {
  const w = workloadOf(node({ labels: { version: 'v2' }, advertise: 'payments.example:443' }));
  assert.ok(!isRefused(w));
  assert.deepEqual(w, { service: 'payments', namespace: 'default', ips: ['10.0.0.5'], labels: { app: 'payments', version: 'v2' }, advertise: ['payments.example:443'], locality: { region: 'eu', zone: 'eu-1', subZone: '' } });
  assert.equal((workloadOf(node({ labels: { app: 'other' } })) as { labels: Record<string, string> }).labels.app, 'other', 'an explicit app label is kept');
  assert.equal((workloadOf(node({ ns: 'shop' })) as { namespace: string }).namespace, 'shop', 'NAMESPACE wins over the cluster');
  for (const [bad, why] of [
    [node({ cluster: 'Payments.default' }), /cluster/],
    [node({ ips: '10.0.0.5,not-an-ip' }), /INSTANCE_IPS/],
    [node({ advertise: 'no-port' }), /SIDECARLESS_ADVERTISE/],
    [node({ advertise: 'h:99999' }), /SIDECARLESS_ADVERTISE/],
    [node({ cluster: 'payments' }), /namespace/],
  ] as const) {
    const r = workloadOf(bad);
    assert.ok(isRefused(r), JSON.stringify(bad.cluster));
    assert.match(r.refused, why);
  }
  assert.ok(isRefused(workloadOf(undefined)));
});

test('an ACKed own inbound Listener registers the address; a disconnect leaves it for the grace, then it goes', () => {
  const r = rig();
  r.client('s1');
  r.ack('s1', ['payments.default.svc.cluster.local:8443']);
  assert.deepEqual(r.registry.endpoints('payments', 'default'), [], 'outbound Listeners register nothing');
  r.ack('s1', ['payments.default.svc.cluster.local:8443', inboundListenerName('10.0.0.5', 9001)]);
  const [e] = r.registry.endpoints('payments', 'default');
  assert.deepEqual({ address: e!.address, identity: e!.identity, zone: e!.locality?.zone, app: e!.labels.app }, { address: '10.0.0.5:9001', identity: ID, zone: 'eu-1', app: 'payments' });
  const before = r.changes();
  r.ack('s1', ['payments.default.svc.cluster.local:8443', inboundListenerName('10.0.0.5', 9001)]);
  assert.equal(r.changes(), before, 'the same ACK again changes nothing (no push storm)');
  r.registrar.disconnected('s1');
  assert.equal(r.registry.list()[0]!.state, 'leaving');
  assert.equal(r.registry.list()[0]!.removeAt, 11_000, 'the default grace is 10 s');
  r.clock.advance(9_999);
  assert.equal(r.registry.endpoints('payments', 'default').length, 1, 'still served during the grace');
  r.clock.advance(1);
  assert.deepEqual(r.registry.endpoints('payments', 'default'), []);
});

test('a workload reconnecting within the grace keeps its registration; unsubscribing withdraws at once', () => {
  const r = rig();
  r.client('s1');
  r.ack('s1', [inboundListenerName('10.0.0.5', 9001)]);
  r.registrar.disconnected('s1');
  r.clock.advance(5_000);
  r.client('s2');
  r.ack('s2', [inboundListenerName('10.0.0.5', 9001)]);
  r.clock.advance(60_000);
  assert.equal(r.registry.list()[0]!.state, 'up');
  assert.equal(r.registry.list()[0]!.client, 's2');
  r.registrar.disconnected('s1'); // a late end of the old stream takes nothing from the new one
  assert.equal(r.registry.list()[0]!.state, 'up');
  r.ack('s2', []);
  assert.deepEqual(r.registry.endpoints('payments', 'default'), [], 'a server that stops serving leaves at once');
});

test('only an authenticated workload of a declared service, with an identity its clients accept, on its own IP, registers', () => {
  const r = rig();
  r.client('plain', node(), undefined, true);
  r.ack('plain', [inboundListenerName('10.0.0.5', 9001)]);
  assert.match(r.registrar.status('plain')!.notRegistered!, /plaintext/);
  r.client('other', node({ cluster: 'orders.default' }));
  r.ack('other', [inboundListenerName('10.0.0.5', 9002)]);
  assert.match(r.registrar.status('other')!.notRegistered!, /declares no service orders/);
  r.client('thief', node(), 'spiffe://cluster.local/ns/default/sa/orders');
  r.ack('thief', [inboundListenerName('10.0.0.5', 9003)]);
  assert.match(r.registrar.status('thief')!.notRegistered!, /accept only spiffe:\/\/cluster.local\/ns\/default\/sa\/payments/);
  r.client('elsewhere');
  r.ack('elsewhere', [inboundListenerName('10.9.9.9', 9004)]);
  assert.deepEqual(r.registry.endpoints('payments', 'default'), [], 'nothing registered by any of them');
  r.registrar.request('elsewhere', { typeUrl: LISTENER_TYPE, names: [inboundListenerName('10.0.0.5', 9004)], kind: 'nack' });
  assert.deepEqual(r.registry.endpoints('payments', 'default'), [], 'a NACK registers nothing: its policy is not in force');
});

test('advertise registers the advertised addresses instead of the listening ones', () => {
  const r = rig();
  r.client('s1', node({ advertise: 'payments.vm.example:443,10.1.1.1:8443' }));
  r.ack('s1', [inboundListenerName('10.0.0.5', 9001)]);
  assert.deepEqual(r.registry.endpoints('payments', 'default').map((e) => e.address), ['10.1.1.1:8443', 'payments.vm.example:443']);
  const before = r.changes();
  r.ack('s1', [inboundListenerName('10.0.0.5', 9001)]);
  assert.equal(r.changes(), before);
});

test('restored registrations serve until their workloads come back, or the restore grace ends', () => {
  const r = rig();
  r.registry.restore([
    { service: 'payments', namespace: 'default', address: '10.0.0.5:9001', identity: ID, labels: { app: 'payments' } },
    { service: 'payments', namespace: 'default', address: '10.0.0.6:9001', identity: ID, labels: { app: 'payments' } },
  ]);
  assert.equal(r.registry.endpoints('payments', 'default').length, 2);
  r.client('s1');
  r.ack('s1', [inboundListenerName('10.0.0.5', 9001)]);
  r.clock.advance(60_000);
  assert.deepEqual(r.registry.endpoints('payments', 'default').map((e) => e.address), ['10.0.0.5:9001']);
});

test('registrations are saved 0600 and read back; a corrupt file is set aside with a warning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-reg-'));
  const regs = [{ service: 'payments', namespace: 'default', address: '10.0.0.5:9001', identity: ID, labels: { app: 'payments' }, locality: { region: 'eu', zone: 'z', subZone: '' } }];
  await saveRegistrations(dir, regs);
  assert.equal(statSync(join(dir, 'registrations.json')).mode & 0o777, 0o600);
  assert.deepEqual((await loadRegistrations(dir)).registrations, regs);
  writeFileSync(join(dir, 'registrations.json'), '{"version":1,"registrations":[{"service":1}]}');
  const bad = await loadRegistrations(dir);
  assert.deepEqual(bad.registrations, []);
  assert.match(bad.warning!, /register again/);
  assert.ok(existsSync(join(dir, 'registrations.json.bad')));
  assert.deepEqual((await loadRegistrations(dir)).registrations, [], 'no file: nothing');
  assert.ok(readFileSync(join(dir, 'registrations.json.bad'), 'utf8').includes('"service":1'));
});
