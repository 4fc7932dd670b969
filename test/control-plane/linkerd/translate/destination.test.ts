// Destination.Get updates → endpoints: updates built by the generated encoders and read back by
// the decoder; redundant, reordered and bad updates; IPv4 and IPv6; identities and SNI.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeUpdate, encodeUpdate, type Update } from '../../../../src/proto/linkerd/destination.js';
import { ipFromString } from '../../../../src/proto/linkerd/net-addr.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { DestinationState, snapshotEndpoints } from '../../../../src/control-plane/linkerd/translate/destination.js';
import { formatReasons } from '../../../../src/control-plane/linkerd/translate/findings.js';

const PATH = 'web.default.svc.cluster.local:8080';
const ID = (sa: string) => `${sa}.default.serviceaccount.identity.linkerd.cluster.local`;
const tcp = (ip: string, port: number) => ({ ip: ipFromString(ip), port });
const dnsTls = (name: string, sni?: string) => ({ strategy: { kind: 'dnsLikeIdentity', dnsLikeIdentity: { name } }, ...(sni ? { serverName: { name: sni } } : {}) }) as const;
const wa = (ip: string, port: number, o: { weight?: number; tls?: unknown; h2?: boolean; labels?: Record<string, string> } = {}) => ({
  addr: tcp(ip, port),
  weight: o.weight ?? 10_000,
  ...(o.tls === null ? {} : { tlsIdentity: o.tls ?? dnsTls(ID('web')) }),
  ...(o.h2 ? { protocolHint: { protocol: { kind: 'h2', h2: {} } } } : {}),
  ...(o.labels ? { metricLabels: new Map(Object.entries(o.labels)) } : {}),
});
const add = (...addrs: unknown[]): DeepPartial<Update> => ({ update: { kind: 'add', add: { addrs: addrs as never } } });
const remove = (...addrs: ReturnType<typeof tcp>[]): DeepPartial<Update> => ({ update: { kind: 'remove', remove: { addrs } } });
const none = (exists: boolean): DeepPartial<Update> => ({ update: { kind: 'noEndpoints', noEndpoints: { exists } } });
const wire = (u: DeepPartial<Update>) => decodeUpdate(encodeUpdate(u));
function apply(s: DestinationState, u: DeepPartial<Update>) {
  const t = s.apply(wire(u));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value;
}
const addrs = (s: DestinationState) => s.view().endpoints.map((e) => e.address);

test('pending until the first message; add → endpoints with weight, identity, SNI, h2 hint, labels', () => {
  const s = new DestinationState(PATH);
  assert.equal(s.view().status, 'pending');
  assert.equal(snapshotEndpoints(s.view()), undefined);
  const v = apply(s, { update: { kind: 'add', add: { addrs: [wa('10.0.0.2', 8080, { weight: 5, h2: true, labels: { pod: 'web-1' } }) as never], metricLabels: new Map([['namespace', 'default']]) } } });
  assert.equal(v.status, 'ready');
  assert.deepEqual(v.endpoints, [{ address: '10.0.0.2:8080', identity: ID('web'), serverName: ID('web'), weight: 5, labels: { namespace: 'default', pod: 'web-1' } }]);
  assert.deepEqual([...v.h2], ['10.0.0.2:8080']);
  assert.deepEqual(snapshotEndpoints(v), v.endpoints);
});

test('IPv6 in brackets (RFC 5952), server_name as SNI, URI-like identities', () => {
  const s = new DestinationState(PATH);
  const uri = { strategy: { kind: 'uriLikeIdentity', uriLikeIdentity: { uri: 'spiffe://cluster.local/ns/default/sa/web' } }, serverName: { name: ID('web') } };
  apply(s, add(wa('fd00:0:0:0:0:0:0:1', 8080, { tls: dnsTls(ID('web'), 'sni.default.serviceaccount.identity.linkerd.cluster.local') }), wa('2001:db8::a:0:0:1', 9090, { tls: uri })));
  assert.deepEqual(
    s.view().endpoints.map((e) => [e.address, e.identity, e.serverName]),
    [
      ['[2001:db8::a:0:0:1]:9090', 'spiffe://cluster.local/ns/default/sa/web', ID('web')],
      ['[fd00::1]:8080', ID('web'), 'sni.default.serviceaccount.identity.linkerd.cluster.local'],
    ],
  );
});

test('redundant and reordered updates: add replaces, remove of an unknown address is a no-op, the view is stable', () => {
  const s = new DestinationState(PATH);
  apply(s, add(wa('10.0.0.3', 80), wa('10.0.0.1', 80)));
  const before = s.view();
  apply(s, remove(tcp('10.0.0.99', 80)));
  assert.deepEqual(addrs(s), ['10.0.0.1:80', '10.0.0.3:80']);
  assert.deepEqual(s.view().endpoints, before.endpoints);
  apply(s, add(wa('10.0.0.1', 80, { weight: 7 })));
  assert.deepEqual(s.view().endpoints.map((e) => [e.address, e.weight]), [['10.0.0.1:80', 7], ['10.0.0.3:80', 10_000]], 'the same address again: replaced, not doubled');
  apply(s, remove(tcp('10.0.0.1', 80)));
  apply(s, remove(tcp('10.0.0.1', 80)));
  assert.deepEqual(addrs(s), ['10.0.0.3:80']);
  apply(s, remove(tcp('10.0.0.3', 80)));
  assert.equal(s.view().status, 'empty', 'the last one removed ≡ no_endpoints{exists: true}');
  assert.deepEqual(snapshotEndpoints(s.view()), []);
  apply(s, add(wa('10.0.0.3', 80)));
  assert.deepEqual(addrs(s), ['10.0.0.3:80']);
});

test('no_endpoints: exists true (no endpoints) and false (unknown service) both clear, and are told apart', () => {
  const s = new DestinationState(PATH);
  apply(s, add(wa('10.0.0.1', 80)));
  assert.equal(apply(s, none(true)).status, 'empty');
  assert.deepEqual(addrs(s), []);
  apply(s, add(wa('10.0.0.1', 80)));
  assert.equal(apply(s, none(false)).status, 'absent');
  assert.deepEqual(snapshotEndpoints(s.view()), []);
});

test('an endpoint without tls_identity is never dialled: refused with its reason; so are gateway and opaque-transport ones', () => {
  const s = new DestinationState(PATH);
  apply(s, add(wa('10.0.0.1', 80, { tls: null }), wa('10.0.0.2', 80), { ...wa('10.0.0.3', 80), authorityOverride: { authorityOverride: 'web.remote:80' } }, { ...wa('10.0.0.4', 80), protocolHint: { opaqueTransport: { inboundPort: 4143 } } }));
  assert.deepEqual(addrs(s), ['10.0.0.2:80']);
  assert.deepEqual(s.view().refused.map((r) => r.address), ['10.0.0.1:80', '10.0.0.3:80', '10.0.0.4:80']);
  assert.match(s.view().refused[0]!.reason, /not meshed.*plaintext/);
  // The same address meshed later: dialled, no longer refused.
  apply(s, add(wa('10.0.0.1', 80)));
  assert.deepEqual(addrs(s), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.equal(s.view().refused.length, 2);
});

test('a bad update is refused whole and the last good state kept', () => {
  const s = new DestinationState(PATH);
  apply(s, add(wa('10.0.0.1', 80)));
  const good = s.view();
  const bad = (u: DeepPartial<Update>, re: RegExp) => {
    const t = s.apply(wire(u));
    assert.equal(t.ok, false);
    assert.match(t.ok ? '' : formatReasons(t.reasons), re);
    assert.equal(s.view(), good, 'state unchanged');
  };
  bad(add(wa('10.0.0.2', 80), wa('10.0.0.3', 0)), /port 0/);
  bad(add(wa('10.0.0.2', 80, { tls: dnsTls('Web.Default') })), /not a lower-case DNS name/);
  bad(add(wa('10.0.0.2', 80, { tls: dnsTls(ID('web'), '*.evil') })), /server_name/);
  bad(add(wa('10.0.0.2', 80, { tls: { strategy: { kind: 'uriLikeIdentity', uriLikeIdentity: { uri: 'https://evil' } } } })), /not a SPIFFE ID/);
  bad(add({ weight: 1 }), /names no address/);
  bad({}, /names none of add, remove, no_endpoints/);
  bad(remove({ port: 80 } as never), /neither ipv4 nor ipv6/);
  assert.deepEqual(addrs(s), ['10.0.0.1:80']);
});

test('bounded: an update past the endpoint bound is refused whole', () => {
  const s = new DestinationState(PATH, 3);
  apply(s, add(wa('10.0.0.1', 80), wa('10.0.0.2', 80)));
  const t = s.apply(wire(add(wa('10.0.0.3', 80), wa('10.0.0.4', 80))));
  assert.equal(t.ok, false);
  assert.match(t.ok ? '' : formatReasons(t.reasons), /at most 3/);
  assert.deepEqual(addrs(s), ['10.0.0.1:80', '10.0.0.2:80']);
  apply(s, add(wa('10.0.0.1', 80), wa('10.0.0.3', 80)));
  assert.equal(addrs(s).length, 3, 'replacing a known address does not count twice');
});
