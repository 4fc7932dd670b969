// The ADS server's protocol (ads-session.ts), with no socket: SotW versions, nonces, ACK/NACK,
// stale nonces, wildcard and unsubscription, removal by absence, pushes only where bytes change.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../../src/clock.js';
import type { DiscoveryRequest } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { type OutboundResources, reuseUnchanged, TYPE_URLS } from '../../../src/server/xds/outbound-resources.js';
import { type AdsClient, AdsSession, firstRequestProblem, GRPC_STATUS, MAX_NAMES_PER_REQUEST, type DigestCache, type ResourceSource, versionOf } from '../../../src/server/xds/ads-session.js';

const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.routes;
const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoints;
const bytes = (s: string) => new TextEncoder().encode(s);

/** A source over a mutable table type → name → bytes; records what it was asked. */
function table(init: Record<string, Record<string, string>> = {}) {
  const data = new Map<string, Map<string, Uint8Array>>();
  const set = (type: string, name: string, value: string | undefined) => {
    const m = data.get(type) ?? new Map<string, Uint8Array>();
    data.set(type, m);
    if (value === undefined) m.delete(name);
    else m.set(name, bytes(value));
  };
  for (const [type, rs] of Object.entries(init)) for (const [n, v] of Object.entries(rs)) set(type, n, v);
  const asked: Array<{ client: string; type: string; names: string[] | '*' }> = [];
  const source: ResourceSource = {
    resolve(client, type, names) {
      asked.push({ client: client.id, type, names: names === '*' ? '*' : [...names].sort() });
      const m = data.get(type) ?? new Map<string, Uint8Array>();
      return names === '*' ? new Map(m) : new Map([...m].filter(([n]) => names.includes(n)));
    },
  };
  return { source, set, asked };
}

const client = (id = 'c1'): AdsClient => ({ id, node: { id: `sidecar~1.2.3.4~${id}.default~default.svc.cluster.local`, cluster: 'x.default', userAgentName: '', clientFeatures: [] }, identity: undefined, plaintext: true });
const req = (typeUrl: string, names: string[], o: Partial<DiscoveryRequest> = {}): DiscoveryRequest => ({ versionInfo: '', resourceNames: names, typeUrl, responseNonce: '', ...o });
const namesOf = (r: { resources: { value: Uint8Array }[] }) => r.resources.map((x) => new TextDecoder().decode(x.value));

function session(init: Record<string, Record<string, string>>, id = 'c1') {
  const t = table(init);
  const clock = new VirtualClock(1_000);
  return { ...t, clock, s: new AdsSession(client(id), t.source, clock) };
}

test('a subscription is answered with the named resources that exist, sorted, a content version and a fresh nonce per response', () => {
  const { s } = session({ [LDS]: { b: 'B', a: 'A', c: 'C' } });
  const r = s.receive(req(LDS, ['c', 'a', 'missing']));
  assert.equal(r.responses.length, 1);
  const res = r.responses[0]!;
  assert.equal(res.typeUrl, LDS);
  assert.deepEqual(namesOf(res), ['A', 'C']);
  assert.ok(res.resources.every((x) => x.typeUrl === LDS));
  assert.equal(res.versionInfo, versionOf([['a', bytes('A')], ['c', bytes('C')]]));
  assert.equal(res.nonce, '1');
  assert.deepEqual(r.event, { typeUrl: LDS, names: ['a', 'c', 'missing'], kind: 'subscribe', version: '', nonce: '' });
  // every type its own logical stream: the next response's nonce differs, CDS has its own version
  const c = session({});
  const l = c.s.receive(req(LDS, ['x'])).responses[0]!;
  const k = c.s.receive(req(CDS, ['x'])).responses[0]!;
  assert.notEqual(l.nonce, k.nonce);
  assert.equal(versionOf([]), l.versionInfo);
});

test('an ACK (latest nonce, no error_detail) is recorded and not answered; a changed subscription with it is', () => {
  const { s, clock, set } = session({ [CDS]: { a: 'A', b: 'B' } });
  const first = s.receive(req(CDS, ['a'])).responses[0]!;
  clock.advance(5);
  const ack = s.receive(req(CDS, ['a'], { versionInfo: first.versionInfo, responseNonce: first.nonce }));
  assert.deepEqual(ack.responses, []);
  assert.equal(ack.event?.kind, 'ack');
  const st = s.status().types[0]!;
  assert.deepEqual(st.acked, { version: first.versionInfo, nonce: first.nonce, at: 1_005 });
  assert.deepEqual(st.sent, { version: first.versionInfo, nonce: first.nonce, resources: 1, at: 1_000 });
  // names in another order are the same subscription
  set(CDS, 'c', 'C');
  assert.deepEqual(s.receive(req(CDS, ['a'], { versionInfo: first.versionInfo, responseNonce: first.nonce })).responses, []);
  const grown = s.receive(req(CDS, ['b', 'a'], { versionInfo: first.versionInfo, responseNonce: first.nonce }));
  assert.equal(grown.event?.kind, 'ack');
  assert.deepEqual(namesOf(grown.responses[0]!), ['A', 'B']);
  // shrinking is answered too (LDS/CDS: the absent one is deleted)
  const second = grown.responses[0]!;
  const shrunk = s.receive(req(CDS, ['b'], { versionInfo: second.versionInfo, responseNonce: second.nonce }));
  assert.deepEqual(namesOf(shrunk.responses[0]!), ['B']);
});

test('a request with a stale nonce is not answered and its names are not taken; the ACK of the latest then is', () => {
  const { s, set } = session({ [CDS]: { a: 'A', b: 'B' } });
  const n1 = s.receive(req(CDS, ['a'])).responses[0]!;
  set(CDS, 'a', 'A2');
  const n2 = s.refresh()[0]!;
  assert.notEqual(n2.nonce, n1.nonce);
  // the client ACKs n1 and subscribes b in the same request, before it reads n2: stale
  const stale = s.receive(req(CDS, ['a', 'b'], { versionInfo: n1.versionInfo, responseNonce: n1.nonce }));
  assert.deepEqual(stale, { responses: [] });
  assert.equal(s.status().types[0]!.staleIgnored, 1);
  assert.deepEqual(s.status().types[0]!.names, ['a']);
  // then it reads n2 and ACKs it with its whole subscription: answered with b (had the stale names been taken, this would look unchanged)
  const ack = s.receive(req(CDS, ['a', 'b'], { versionInfo: n2.versionInfo, responseNonce: n2.nonce }));
  assert.deepEqual(namesOf(ack.responses[0]!), ['A2', 'B']);
  // a stale NACK is ignored as well
  assert.deepEqual(s.receive(req(CDS, ['a'], { responseNonce: n2.nonce, errorDetail: { code: 3, message: 'x', details: [] } })), { responses: [] });
  assert.equal(s.status().types[0]!.lastNack, undefined);
});

test('a NACK is recorded, not answered with the same bytes, and the next change pushes again', () => {
  const { s, set, clock } = session({ [RDS]: { r: 'bad' } });
  const sent = s.receive(req(RDS, ['r'])).responses[0]!;
  clock.advance(7);
  const nack = s.receive(req(RDS, ['r'], { versionInfo: '', responseNonce: sent.nonce, errorDetail: { code: 14, message: 'route r: no cluster', details: [] } }));
  assert.deepEqual(nack.responses, []);
  assert.deepEqual(nack.event, { typeUrl: RDS, names: ['r'], kind: 'nack', version: '', nonce: sent.nonce, error: 'route r: no cluster' });
  assert.deepEqual(s.status().types[0]!.lastNack, { version: sent.versionInfo, nonce: sent.nonce, error: 'route r: no cluster', at: 1_007 });
  assert.equal(s.status().types[0]!.acked, undefined);
  // nothing changed: nothing pushed (no loop)
  assert.deepEqual(s.refresh(), []);
  // grpc-js-xds repeats error_detail with every request until a good response: the same subscription stays unanswered
  assert.deepEqual(s.receive(req(RDS, ['r'], { responseNonce: sent.nonce, errorDetail: { code: 14, message: 'route r: no cluster', details: [] } })).responses, []);
  set(RDS, 'r', 'good');
  const fixed = s.refresh();
  assert.equal(fixed.length, 1);
  assert.deepEqual(namesOf(fixed[0]!), ['good']);
  s.receive(req(RDS, ['r'], { versionInfo: fixed[0]!.versionInfo, responseNonce: fixed[0]!.nonce }));
  assert.equal(s.status().types[0]!.acked?.version, fixed[0]!.versionInfo);
  assert.equal(s.status().types[0]!.lastNack?.nonce, sent.nonce, 'the last NACK stays visible after the ACK');
});

test('wildcard: LDS/CDS "*" or a first empty list; once named, an empty list unsubscribes; RDS/EDS have no wildcard', () => {
  const { s, asked, set } = session({ [LDS]: { a: 'A', b: 'B' }, [RDS]: { '*': 'STAR', r: 'R' } });
  const legacy = s.receive(req(LDS, [])).responses[0]!;
  assert.deepEqual(namesOf(legacy), ['A', 'B']);
  assert.deepEqual(asked.at(-1), { client: 'c1', type: LDS, names: '*' });
  assert.equal(s.status().types.find((t) => t.typeUrl === LDS)!.names, '*');
  // still wildcard with the empty list of its ACK; a new listener is pushed
  s.receive(req(LDS, [], { versionInfo: legacy.versionInfo, responseNonce: legacy.nonce }));
  set(LDS, 'c', 'C');
  const pushed = s.refresh()[0]!;
  assert.deepEqual(namesOf(pushed), ['A', 'B', 'C']);
  // naming resources turns the wildcard off; then an empty list is "unsubscribed from all": no response, no pushes
  const named = s.receive(req(LDS, ['a'], { responseNonce: pushed.nonce })).responses[0]!;
  assert.deepEqual(namesOf(named), ['A']);
  const off = s.receive(req(LDS, [], { responseNonce: named.nonce }));
  assert.deepEqual(off.responses, []);
  assert.deepEqual(off.event?.names, []);
  set(LDS, 'a', 'A2');
  assert.deepEqual(s.refresh(), []);
  // '*' explicitly, with names beside it: wildcard again
  assert.deepEqual(namesOf(s.receive(req(LDS, ['*', 'a'], { responseNonce: named.nonce })).responses[0]!), ['A2', 'B', 'C']);
  // after '*', an empty list unsubscribes too
  const c = session({ [CDS]: { k: 'K' } });
  const star = c.s.receive(req(CDS, ['*'])).responses[0]!;
  assert.deepEqual(c.s.receive(req(CDS, [], { responseNonce: star.nonce })).responses, []);
  // RDS: an empty list is nothing, '*' is an ordinary name
  assert.deepEqual(s.receive(req(RDS, [])).responses, []);
  assert.deepEqual(namesOf(s.receive(req(RDS, ['*'])).responses[0]!), ['STAR']);
});

test('removal by absence on LDS/CDS; RDS/EDS carry the subscribed ones that exist', () => {
  const { s, set } = session({ [CDS]: { a: 'A', b: 'B' }, [EDS]: { a: 'EA', b: 'EB' } });
  s.receive(req(CDS, ['a', 'b']));
  s.receive(req(EDS, ['a', 'b']));
  set(CDS, 'b', undefined);
  set(EDS, 'b', undefined);
  const pushes = s.refresh();
  assert.deepEqual(pushes.map((p) => [p.typeUrl, namesOf(p)]), [[CDS, ['A']], [EDS, ['EA']]]);
});

test('refresh pushes only types whose bytes changed, in CDS, EDS, LDS, RDS order; the version is the same for the same bytes', () => {
  const { s, set } = session({ [LDS]: { l: '1' }, [RDS]: { r: '1' }, [CDS]: { c: '1' }, [EDS]: { e: '1' } });
  const first = [s.receive(req(RDS, ['r'])), s.receive(req(LDS, ['l'])), s.receive(req(EDS, ['e'])), s.receive(req(CDS, ['c']))].map((r) => r.responses[0]!);
  assert.deepEqual(s.refresh(), []);
  set(LDS, 'l', '2');
  assert.deepEqual(s.refresh().map((p) => p.typeUrl), [LDS]);
  for (const [t, n] of [[RDS, 'r'], [LDS, 'l'], [EDS, 'e'], [CDS, 'c']] as const) set(t, n, '3');
  const all = s.refresh();
  assert.deepEqual(all.map((p) => p.typeUrl), [CDS, EDS, LDS, RDS]);
  // back to the first bytes: the first versions again (a hash of the content, not a counter)
  for (const [t, n] of [[RDS, 'r'], [LDS, 'l'], [EDS, 'e'], [CDS, 'c']] as const) set(t, n, '1');
  const back = s.refresh();
  assert.deepEqual(back.map((p) => p.versionInfo).sort(), first.map((p) => p.versionInfo).sort());
  assert.equal(new Set([...first, ...all, ...back].map((p) => p.nonce)).size, 12);
});

test('a regenerated source: equal bytes keep the served arrays (reuseUnchanged), so a push hashes and sends only what changed', () => {
  let served: OutboundResources | undefined;
  let hashed = 0;
  const regenerate = (rds: string, eds: string) => {
    const fresh: OutboundResources = new Map([
      [RDS, new Map([['r', bytes(rds)], ['other', bytes('O')]])],
      [EDS, new Map([['e', bytes(eds)]])],
    ]);
    served = reuseUnchanged(fresh, served);
  };
  regenerate('R1', 'E1');
  const source: ResourceSource = { resolve: (_c, type) => served!.get(type)! };
  const s = new AdsSession(client(), source, new VirtualClock(0));
  s.receive(req(RDS, ['r']));
  s.receive(req(EDS, ['e']));
  const firstRds = served!.get(RDS)!.get('r');
  regenerate('R1', 'E2'); // new arrays everywhere, only EDS's content differs
  assert.equal(served!.get(RDS)!.get('r'), firstRds, 'equal bytes are the array already served');
  assert.notEqual(served!.get(EDS)!.get('e'), undefined);
  const cache: DigestCache = new Map();
  const pushed = s.refresh(cache);
  hashed = cache.size;
  assert.deepEqual(pushed.map((r) => [r.typeUrl, namesOf(r)]), [[EDS, ['E2']]]);
  assert.equal(hashed, 1, 'the unchanged RDS resource was not hashed again');
  assert.deepEqual(namesOf(s.receive(req(RDS, ['r', 'other'], { responseNonce: s.status().types.find((x) => x.typeUrl === RDS)!.sent!.nonce })).responses[0]!), ['O', 'R1'].sort());
  assert.deepEqual(s.refresh(), [], 'nothing changed since');
});

test('per client: a source that answers clients differently pushes only to the client whose bytes changed', () => {
  const per = new Map([['c1', 'X'], ['c2', 'X']]);
  const source: ResourceSource = { resolve: (c) => new Map([['n', bytes(per.get(c.id)!)]]) };
  const clock = new VirtualClock(0);
  const a = new AdsSession(client('c1'), source, clock);
  const b = new AdsSession(client('c2'), source, clock);
  const va = a.receive(req(CDS, ['n'])).responses[0]!.versionInfo;
  assert.equal(b.receive(req(CDS, ['n'])).responses[0]!.versionInfo, va);
  per.set('c2', 'Y');
  assert.deepEqual(a.refresh(), []);
  assert.equal(b.refresh().length, 1);
});

test('a request carrying a nonce on a type not seen on this stream is a subscription (a client from another replica)', () => {
  const { s } = session({ [CDS]: { a: 'A' } });
  const r = s.receive(req(CDS, ['a'], { versionInfo: 'old', responseNonce: 'from-another-stream' }));
  assert.equal(r.event?.kind, 'subscribe');
  assert.equal(r.responses.length, 1);
  // and an empty nonce later (the client restarted the type) is answered again
  assert.equal(s.receive(req(CDS, ['a'])).responses.length, 1);
});

test('what a source returns beyond the request is not sent; a throwing source sends nothing, is recorded, and the next refresh retries', () => {
  let broken = true;
  const source: ResourceSource = {
    resolve: () => {
      if (broken) throw new Error('generator failed');
      return new Map([['a', bytes('A')], ['not-asked', bytes('N')]]);
    },
  };
  const clock = new VirtualClock(50);
  const s = new AdsSession(client(), source, clock);
  const r = s.receive(req(EDS, ['a']));
  assert.deepEqual(r.responses, []);
  assert.equal(r.event?.kind, 'subscribe');
  assert.deepEqual(s.status().types[0]!.lastSourceError, { message: 'generator failed', at: 50 });
  broken = false;
  const retried = s.refresh();
  assert.deepEqual(retried.map(namesOf), [['A']]);
});

test('unknown type URLs are ignored; more names than allowed, or a name too long, end the stream', () => {
  const { s } = session({});
  assert.deepEqual(s.receive(req('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', ['x'])), { responses: [] });
  assert.deepEqual(s.receive(req('', ['x'])), { responses: [] });
  assert.deepEqual(s.status().types, []);
  const many = s.receive(req(CDS, Array.from({ length: MAX_NAMES_PER_REQUEST + 1 }, (_, i) => `n${i}`)));
  assert.equal(many.fail?.code, GRPC_STATUS.RESOURCE_EXHAUSTED);
  assert.match(many.fail!.details, /at most 10000/);
  assert.equal(s.receive(req(CDS, Array.from({ length: MAX_NAMES_PER_REQUEST }, (_, i) => `n${i}`))).responses.length, 1);
  assert.equal(s.receive(req(CDS, ['x'.repeat(1_025)])).fail?.code, GRPC_STATUS.INVALID_ARGUMENT);
});

test('the first request must carry a node with an id', () => {
  assert.equal(firstRequestProblem(req(LDS, ['a']))?.code, GRPC_STATUS.INVALID_ARGUMENT);
  assert.equal(firstRequestProblem(req(LDS, ['a'], { node: { id: '', cluster: '', userAgentName: '', clientFeatures: [] } }))?.code, GRPC_STATUS.INVALID_ARGUMENT);
  assert.equal(firstRequestProblem(req(LDS, ['a'], { node: client().node! })), undefined);
});

test('status: node id, cluster, identity, connectedAt, and per type what was sent, ACKed and NACKed', () => {
  const t = table({ [LDS]: { a: 'A' } });
  const clock = new VirtualClock(9_000);
  const s = new AdsSession({ ...client('z'), identity: 'spiffe://cluster.local/ns/default/sa/z', plaintext: false }, t.source, clock);
  s.receive(req(LDS, ['a']));
  const st = s.status();
  assert.equal(st.nodeId, 'sidecar~1.2.3.4~z.default~default.svc.cluster.local');
  assert.equal(st.cluster, 'x.default');
  assert.equal(st.identity, 'spiffe://cluster.local/ns/default/sa/z');
  assert.equal(st.plaintext, false);
  assert.equal(st.connectedAt, 9_000);
  assert.deepEqual(st.types.map((x) => [x.typeUrl, x.names, x.sent?.resources, x.staleIgnored]), [[LDS, ['a'], 1, 0]]);
});

test('versionOf: a digest cache shared by a pass gives the versions computed without it, and names and bytes stay apart', () => {
  const a = bytes('A');
  const cache: DigestCache = new Map();
  assert.equal(versionOf([['a', a], ['b', bytes('B')]], cache), versionOf([['a', a], ['b', bytes('B')]]));
  // the same bytes object under another name is another resource
  assert.equal(versionOf([['x', a]], cache), versionOf([['x', a]]));
  assert.notEqual(versionOf([['x', a]]), versionOf([['a', a]]));
  // where the name ends and the bytes begin is part of the version
  assert.notEqual(versionOf([['ab', bytes('c')]]), versionOf([['a', bytes('bc')]]));
  assert.notEqual(versionOf([['a', a], ['b', a]]), versionOf([['b', a], ['a', a]]));
  // two sessions refreshed with one cache push what they would have pushed alone
  const { source, set } = table({ [CDS]: { n: '1', m: '2' } });
  const clock = new VirtualClock(0);
  const s1 = new AdsSession(client('c1'), source, clock);
  const s2 = new AdsSession(client('c2'), source, clock);
  const v1 = s1.receive(req(CDS, ['n', 'm'])).responses[0]!.versionInfo;
  s2.receive(req(CDS, ['n']));
  set(CDS, 'n', '3');
  const shared: DigestCache = new Map();
  const [p1] = s1.refresh(shared);
  const [p2] = s2.refresh(shared);
  assert.notEqual(p1!.versionInfo, v1);
  assert.equal(p1!.versionInfo, versionOf([['m', bytes('2')], ['n', bytes('3')]]));
  assert.equal(p2!.versionInfo, versionOf([['n', bytes('3')]]));
});
