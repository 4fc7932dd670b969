// The ADS protocol state machine in virtual time: ACK/NACK (whole responses, previous version kept),
// the stale-nonce trap (research §6.1 trap 1) as a regression, wildcard vs named subscriptions,
// deletion by absence for LDS/CDS only, the 15 s does-not-exist timer, reconnect with the last
// ACKed versions, backoff growth and reset, the last good resources kept through outages, and
// hostile responses. Resources are JSON in these tests (the decoder is injected by design; the real
// codecs are generated from the project's .proto files), so a test can say exactly what it sends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualClock } from '../../../src/clock.js';
import {
  AdsSession,
  DOES_NOT_EXIST_TIMEOUT_MS,
  reconnectDelay,
  type AdsEvent,
  type AdsStream,
} from '../../../src/control-plane/xds/ads-state.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL as EDS,
  CLUSTER_TYPE_URL as CDS,
  INVALID_ARGUMENT,
  LISTENER_TYPE_URL as LDS,
  ResourceRejection,
  ROUTE_CONFIGURATION_TYPE_URL as RDS,
  type Any,
  type Decode,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../../src/control-plane/xds/discovery.js';
import { MAX_NACK_MESSAGE } from '../../../src/control-plane/xds/response-check.js';
import { seededRandom } from '../../../src/random.js';

interface Node {
  id: string;
}
const NODE: Node = { id: 'sidecar~10.0.0.1~orders-1.default~default.svc.cluster.local' };

/** A resource: JSON `{ name, ...fields }`. `bad: reason` makes the decoder throw; `badNamed` throws a ResourceRejection. */
function res(typeUrl: string, name: string, fields: Record<string, unknown> = {}): Any {
  return { typeUrl, value: new TextEncoder().encode(JSON.stringify({ name, ...fields })) };
}

const decode: Decode = (typeUrl, resource) => {
  const v = JSON.parse(new TextDecoder().decode(resource.value)) as { name: string; bad?: string; badNamed?: string };
  if (v.bad) throw new Error(v.bad);
  if (v.badNamed) throw new ResourceRejection(v.name, v.badNamed);
  return { name: v.name, value: { typeUrl, ...v } };
};

function resp(typeUrl: string, versionInfo: string, nonce: string, resources: Any[]): DiscoveryResponse {
  return { typeUrl, versionInfo, nonce, resources };
}

class Rig {
  readonly clock = new VirtualClock(0);
  readonly writes: Array<DiscoveryRequest<Node> & { stream: number }> = [];
  readonly events: AdsEvent[] = [];
  reconnects = 0;
  readonly session: AdsSession<Node>;
  stream!: AdsStream<Node>;

  constructor(random: () => number = () => 0.5) {
    this.session = new AdsSession<Node>({ node: NODE, clock: this.clock, random, reconnect: () => this.reconnects++ });
    this.session.on((e) => this.events.push(e));
  }

  /** Opens a stream (and marks it ready unless told not to). */
  open(ready = true): AdsStream<Node> {
    let id = 0;
    this.stream = this.session.connect((r) => this.writes.push({ ...r, stream: id }));
    id = this.stream.id;
    for (const w of this.writes) if (w.stream === 0) w.stream = id;
    if (ready) this.stream.ready();
    return this.stream;
  }

  last(): DiscoveryRequest<Node> & { stream: number } {
    const w = this.writes.at(-1);
    assert.ok(w, 'nothing was written');
    return w;
  }

  take(): DiscoveryRequest<Node>[] {
    return this.writes.splice(0).map(({ stream: _, ...r }) => r);
  }

  kinds(): string[] {
    return this.events.splice(0).map((e) => (e.kind === 'changed' ? `changed ${e.type} ${[...e.resources.keys()].join(',')}` : e.kind === 'nacked' ? `nacked ${e.type}` : `dne ${e.type} ${e.name}`));
  }
}

test('first request: node once per stream, empty version and nonce, the full name list', () => {
  const r = new Rig();
  r.open();
  assert.equal(r.writes.length, 0, 'nothing to ask for yet: nothing written');
  r.session.subscribe(LDS, ['payments.default.svc.cluster.local:8080']);
  r.session.subscribe(CDS, ['outbound|8080||payments.default.svc.cluster.local']);
  r.session.subscribe(LDS, ['inventory:80']);
  assert.deepEqual(r.take(), [
    { versionInfo: '', node: NODE, resourceNames: ['payments.default.svc.cluster.local:8080'], typeUrl: LDS, responseNonce: '' },
    { versionInfo: '', resourceNames: ['outbound|8080||payments.default.svc.cluster.local'], typeUrl: CDS, responseNonce: '' },
    { versionInfo: '', resourceNames: ['payments.default.svc.cluster.local:8080', 'inventory:80'], typeUrl: LDS, responseNonce: '' },
  ]);
  assert.equal(r.session.subscribe(LDS, ['inventory:80']), undefined, 'already subscribed: no request');
  assert.equal(r.writes.length, 0);
});

test('ACK: the response version and nonce; the full set is emitted after the ACK is written', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(CDS, ['a', 'b']);
  r.take();
  let writtenBeforeEvent = -1;
  r.session.on(() => (writtenBeforeEvent = r.writes.length));
  const ack = r.stream.receive(resp(CDS, 'v1', 'n1', [res(CDS, 'a'), res(CDS, 'b', { port: 1 })]), decode);
  assert.deepEqual(ack, { versionInfo: 'v1', resourceNames: ['a', 'b'], typeUrl: CDS, responseNonce: 'n1' });
  assert.deepEqual(r.take(), [ack]);
  assert.equal(writtenBeforeEvent, 1, 'the ACK was written before the event');
  const [changed] = r.events;
  assert.ok(changed?.kind === 'changed');
  assert.equal(changed.version, 'v1');
  assert.deepEqual([...changed.resources.keys()], ['a', 'b']);
  assert.deepEqual(changed.added, ['a', 'b']);
  assert.deepEqual(changed.resources.get('b'), { typeUrl: CDS, name: 'b', port: 1 });
  const st = r.session.status().types[0]!;
  assert.equal(st.ackedVersion, 'v1');
  assert.deepEqual(st.pending, []);
  assert.deepEqual(st.resources, [{ name: 'a', version: 'v1' }, { name: 'b', version: 'v1' }]);
});

test('NACK: whole response rejected, previous version, new nonce, INVALID_ARGUMENT naming each bad resource; cache kept', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(EDS, ['a', 'b', 'c']);
  r.stream.receive(resp(EDS, 'v1', 'n1', [res(EDS, 'a', { ep: 1 }), res(EDS, 'b', { ep: 1 })]), decode);
  r.take();
  r.kinds();
  const nack = r.stream.receive(resp(EDS, 'v2', 'n2', [
    res(EDS, 'a', { ep: 2 }), // valid on its own: still not applied
    res(EDS, 'b', { bad: 'socket_address.address "localhost" is not an IP address' }),
    res(EDS, 'c', { badNamed: 'priority 3 leaves a gap after priority 1' }),
  ]), decode);
  assert.ok(nack);
  assert.equal(nack.versionInfo, 'v1', 'the previous ACKed version');
  assert.equal(nack.responseNonce, 'n2', 'the rejected response nonce');
  assert.equal(nack.errorDetail?.code, INVALID_ARGUMENT);
  assert.equal(nack.errorDetail?.code, 3);
  assert.match(nack.errorDetail!.message, /^EDS response version "v2" \(nonce "n2"\) rejected whole, 2 problems: /);
  assert.match(nack.errorDetail!.message, /resource 1: socket_address\.address "localhost" is not an IP address/);
  assert.match(nack.errorDetail!.message, /resource 2 \("c"\): priority 3 leaves a gap after priority 1/);
  assert.deepEqual(r.kinds(), ['nacked EDS']);
  assert.deepEqual((r.session.resources(EDS).get('a') as { ep: number }).ep, 1, 'the valid resource of the rejected response was not applied');
  const st = r.session.status().types[0]!;
  assert.equal(st.ackedVersion, 'v1');
  assert.equal(st.nacked, true);
  assert.equal(st.lastNack?.version, 'v2');
  assert.equal(st.lastNack?.message, nack.errorDetail!.message);
  assert.deepEqual(st.rejected, ['c'], 'c was sent, unusable: it exists');
  assert.deepEqual(st.resources.map((x) => x.version), ['v1', 'v1']);

  // error_detail goes in the NACK only; a later subscription change carries the nonce, not the error.
  r.take();
  const sub = r.session.subscribe(EDS, ['d']);
  assert.deepEqual(sub, { versionInfo: 'v1', resourceNames: ['a', 'b', 'c', 'd'], typeUrl: EDS, responseNonce: 'n2' });

  // A good response later: ACKed, NACK state cleared, last NACK still shown.
  const ack = r.stream.receive(resp(EDS, 'v3', 'n3', [res(EDS, 'a', { ep: 3 }), res(EDS, 'c')]), decode);
  assert.equal(ack?.versionInfo, 'v3');
  assert.equal(ack?.errorDetail, undefined);
  const after = r.session.status().types[0]!;
  assert.equal(after.nacked, false);
  assert.equal(after.lastNack?.version, 'v2');
  assert.deepEqual(after.rejected, []);
  assert.deepEqual(after.resources, [{ name: 'a', version: 'v3' }, { name: 'b', version: 'v1' }, { name: 'c', version: 'v3' }]);
});

test('NACK before any ACK: version stays empty; nothing is emitted as changed', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(LDS, ['x:80']);
  r.take();
  const nack = r.stream.receive(resp(LDS, '1', 'A', [res(LDS, 'x:80', { bad: 'no api_listener' })]), decode);
  assert.equal(nack?.versionInfo, '');
  assert.equal(nack?.responseNonce, 'A');
  assert.equal(r.session.status().types[0]!.ackedVersion, undefined);
  assert.deepEqual(r.kinds(), ['nacked LDS']);
  assert.equal(r.session.resources(LDS).size, 0);
});

test('stale nonce (regression, research §6.1 trap 1): a response on a lost stream gets no reply and changes nothing', () => {
  const r = new Rig();
  const old = r.open();
  r.session.subscribe(CDS, ['a', 'b']);
  old.receive(resp(CDS, 'v1', 'n1', [res(CDS, 'a'), res(CDS, 'b')]), decode);
  old.lost('UNAVAILABLE: connection reset');
  r.clock.advance(1_000);
  const fresh = r.open();
  r.take();
  r.kinds();
  // The old stream's transport delivers one more response, late: it must not be answered on any stream.
  assert.equal(old.receive(resp(CDS, 'v2', 'n2', [res(CDS, 'a')]), decode), undefined);
  assert.deepEqual(r.writes, []);
  assert.deepEqual(r.events, []);
  assert.equal(r.session.status().types[0]!.ackedVersion, 'v1');
  assert.equal(r.session.resources(CDS).size, 2, 'b was not deleted by the dead stream\'s response');
  // A subscription change on the new stream carries the new stream's (empty) nonce, not n1 or n2.
  assert.equal(r.session.subscribe(CDS, ['c'])?.responseNonce, '');
  assert.equal(old.lost(), undefined, 'losing a dead stream again does nothing');
  assert.equal(fresh.receive(resp(CDS, 'v2', 'm1', [res(CDS, 'a'), res(CDS, 'b'), res(CDS, 'c')]), decode)?.responseNonce, 'm1');
});

test('stale nonce: each request carries the latest nonce when it is written; a listener\'s subscribe follows the ACK', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(CDS, ['a']);
  r.session.subscribe(CDS, ['b']); // the trap's "two clusters in quick succession"
  r.take();
  // The listener reacts to CDS by asking for more CDS names from inside the event.
  const off = r.session.on((e) => {
    if (e.kind === 'changed' && e.type === 'CDS' && !e.resources.has('c')) r.session.subscribe(CDS, ['c']);
  });
  r.stream.receive(resp(CDS, 'v1', 'n1', [res(CDS, 'a')]), decode); // answers the first request
  r.stream.receive(resp(CDS, 'v2', 'n2', [res(CDS, 'a'), res(CDS, 'b')]), decode); // the second
  off();
  assert.deepEqual(r.take().map((w) => [w.versionInfo, w.responseNonce, w.resourceNames.join(',')]), [
    ['v1', 'n1', 'a,b'], // the ACK of n1 first...
    ['v1', 'n1', 'a,b,c'], // ...then the listener's subscribe: the same (latest) nonce, one more name
    ['v2', 'n2', 'a,b,c'], // the ACK of n2 keeps c (the listener's second call added nothing: no request)
  ]);
});

test('stale nonce, property: over random operations every request carries the latest nonce and the last ACKed version', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = seededRandom(seed);
    const r = new Rig(rnd);
    const latest = new Map<string, string>(); // per type, on the current stream
    const acked = new Map<string, string>();
    let stream = r.open();
    let checked = 0;
    const check = () => {
      for (const w of r.writes.splice(0)) {
        assert.equal(w.stream, stream.id, `seed ${seed}: written on the current stream`);
        assert.equal(w.responseNonce, latest.get(w.typeUrl) ?? '', `seed ${seed}: latest nonce`);
        assert.equal(w.versionInfo, acked.get(w.typeUrl) ?? '', `seed ${seed}: last ACKed version`);
        checked++;
      }
    };
    const types = [LDS, CDS, RDS, EDS];
    for (let step = 0; step < 200; step++) {
      const typeUrl = types[Math.floor(rnd() * 4)]!;
      const names = ['a', 'b', 'c'].filter(() => rnd() < 0.5);
      const op = rnd();
      if (op < 0.25) r.session.subscribe(typeUrl, names);
      else if (op < 0.35) r.session.unsubscribe(typeUrl, names);
      else if (op < 0.85) {
        const nonce = `s${stream.id}-${step}`;
        const bad = names.length > 0 && rnd() < 0.3;
        const version = `v${step}`;
        const sent = stream.receive(resp(typeUrl, version, nonce, names.map((n) => res(typeUrl, n, bad ? { bad: 'no' } : {}))), decode);
        if (sent) {
          latest.set(typeUrl, nonce);
          if (!bad) acked.set(typeUrl, version);
        }
        if (sent && bad) assert.ok(sent.errorDetail, `seed ${seed}: a NACK has error_detail`);
        if (sent && !bad) assert.equal(sent.errorDetail, undefined, `seed ${seed}: an ACK has none`);
      } else if (op < 0.93) {
        stream.lost('reset');
        latest.clear();
        r.clock.advance(30_000);
        stream = r.open(rnd() < 0.8);
      } else {
        r.clock.advance(Math.floor(rnd() * 20_000));
      }
      check();
    }
    assert.ok(checked > 50, `seed ${seed}: only ${checked} requests written`);
  }
});

test('wildcard (LDS/CDS) vs named: "*" is sent explicitly; named subscriptions ignore what was not asked for', () => {
  const r = new Rig();
  r.open();
  assert.throws(() => r.session.subscribe(RDS, ['*']), /RDS has no wildcard subscription/);
  assert.throws(() => r.session.subscribe(EDS, ['*']), /EDS has no wildcard subscription/);
  assert.throws(() => r.session.subscribe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', ['x']), /not an xDS type/);
  assert.throws(() => r.session.subscribe(CDS, ['']), /non-empty string/);
  r.session.subscribe(CDS, ['*']);
  assert.deepEqual(r.last().resourceNames, ['*']);
  r.stream.receive(resp(CDS, '1', 'c1', [res(CDS, 'x'), res(CDS, 'y')]), decode);
  assert.deepEqual([...r.session.resources(CDS).keys()], ['x', 'y'], 'wildcard: every resource is kept');
  r.session.subscribe(CDS, ['x']);
  assert.deepEqual(r.last().resourceNames, ['*', 'x'], 'wildcard and a name together');
  r.session.unsubscribe(CDS, ['*']);
  assert.deepEqual(r.last().resourceNames, ['x']);
  assert.deepEqual([...r.session.resources(CDS).keys()], ['x'], 'leaving the wildcard drops what only it covered');

  r.session.subscribe(LDS, ['a:80']);
  r.stream.receive(resp(LDS, '1', 'l1', [res(LDS, 'a:80'), res(LDS, 'not-asked:80')]), decode);
  assert.deepEqual([...r.session.resources(LDS).keys()], ['a:80'], 'a resource not asked for is ignored (xds_protocol.rst)');
  assert.equal(r.last().versionInfo, '1', 'and the response is still ACKed');
});

test('deletion by absence: LDS and CDS delete what a response leaves out; RDS and EDS do not', () => {
  for (const [typeUrl, short] of [[LDS, 'LDS'], [CDS, 'CDS']] as const) {
    const r = new Rig();
    r.open();
    r.session.subscribe(typeUrl, ['a', 'b']);
    r.stream.receive(resp(typeUrl, '1', 'n1', [res(typeUrl, 'a'), res(typeUrl, 'b')]), decode);
    r.kinds();
    r.stream.receive(resp(typeUrl, '2', 'n2', [res(typeUrl, 'a')]), decode);
    const events = r.events.splice(0);
    assert.deepEqual(events.map((e) => e.kind), ['changed', 'does-not-exist'], short);
    assert.ok(events[0]?.kind === 'changed');
    assert.deepEqual(events[0].removed, ['b']);
    assert.deepEqual([...events[0].resources.keys()], ['a']);
    assert.deepEqual(events[1], { kind: 'does-not-exist', typeUrl, type: short, name: 'b' });
    assert.deepEqual(r.session.status().types[0]!.doesNotExist, ['b']);
    r.stream.receive(resp(typeUrl, '3', 'n3', []), decode);
    assert.equal(r.session.resources(typeUrl).size, 0, `${short}: an empty response deletes all`);
  }
  for (const [typeUrl, short] of [[RDS, 'RDS'], [EDS, 'EDS']] as const) {
    const r = new Rig();
    r.open();
    r.session.subscribe(typeUrl, ['a', 'b']);
    r.stream.receive(resp(typeUrl, '1', 'n1', [res(typeUrl, 'a'), res(typeUrl, 'b')]), decode);
    r.kinds();
    r.stream.receive(resp(typeUrl, '2', 'n2', [res(typeUrl, 'a', { changed: true })]), decode);
    assert.deepEqual([...r.session.resources(typeUrl).keys()], ['a', 'b'], `${short}: b stays`);
    assert.deepEqual(r.kinds(), [`changed ${short} a,b`]);
    r.stream.receive(resp(typeUrl, '3', 'n3', []), decode);
    assert.equal(r.session.resources(typeUrl).size, 2, `${short}: an empty response is a no-op`);
    assert.deepEqual(r.kinds(), [], 'nothing changed: no event');
    assert.equal(r.last().versionInfo, '3', 'but it is ACKed');
    r.session.unsubscribe(typeUrl, ['b']);
    assert.deepEqual([...r.session.resources(typeUrl).keys()], ['a'], `${short}: b goes when the caller stops naming it`);
  }
});

test('deletion by absence needs the resource seen before: a name just added is not deleted by an older response', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(LDS, ['a']);
  r.stream.receive(resp(LDS, '1', 'n1', [res(LDS, 'a')]), decode);
  r.session.subscribe(LDS, ['b']);
  r.kinds();
  // Built from the first request (the server had not seen b yet): b is not concluded missing.
  r.stream.receive(resp(LDS, '2', 'n2', [res(LDS, 'a')]), decode);
  assert.deepEqual(r.kinds(), []);
  assert.deepEqual(r.session.status().types[0]!.pending, ['b']);
});

test('does-not-exist: exactly 15 s after the request on a ready stream, not 14.999 s; a late arrival exists again', () => {
  const r = new Rig();
  r.open();
  r.clock.advance(5_000);
  r.session.subscribe(CDS, ['ghost', 'real']);
  r.stream.receive(resp(CDS, '1', 'n1', [res(CDS, 'real')]), decode);
  r.kinds();
  r.clock.advance(DOES_NOT_EXIST_TIMEOUT_MS - 1);
  assert.deepEqual(r.kinds(), [], 'at 14.999 s: still pending');
  assert.deepEqual(r.session.status().types[0]!.pending, ['ghost']);
  r.clock.advance(1);
  assert.equal(r.clock.now(), 20_000);
  assert.deepEqual(r.kinds(), ['dne CDS ghost']);
  assert.deepEqual(r.session.status().types[0]!.doesNotExist, ['ghost']);
  assert.deepEqual(r.clock.pending(), [], 'no timer left: real arrived, ghost expired');
  r.clock.advance(60_000);
  assert.deepEqual(r.kinds(), [], 'reported once');
  r.stream.receive(resp(CDS, '2', 'n2', [res(CDS, 'real'), res(CDS, 'ghost')]), decode);
  const [changed] = r.events.splice(0);
  assert.ok(changed?.kind === 'changed');
  assert.deepEqual(changed.added, ['ghost']);
  assert.deepEqual(r.session.status().types[0]!.doesNotExist, []);
});

test('does-not-exist: no timer until the channel is ready; a lost stream stops the timers; the next stream starts fresh ones', () => {
  const r = new Rig();
  const s1 = r.open(false);
  r.session.subscribe(RDS, ['route-a']);
  r.clock.advance(60_000);
  assert.deepEqual(r.kinds(), [], 'a control plane that cannot be reached makes nothing "not exist"');
  s1.ready();
  r.clock.advance(10_000);
  s1.lost('UNAVAILABLE');
  r.clock.advance(60_000);
  assert.deepEqual(r.kinds(), [], 'the timer stopped with the stream');
  assert.equal(r.reconnects, 1);
  const s2 = r.open(false);
  r.clock.advance(3_000);
  s2.ready();
  r.clock.advance(DOES_NOT_EXIST_TIMEOUT_MS - 1);
  assert.deepEqual(r.kinds(), []);
  r.clock.advance(1);
  assert.deepEqual(r.kinds(), ['dne RDS route-a']);
});

test('does-not-exist: a response implies the stream is ready; a name subscribed later gets its own 15 s', () => {
  const r = new Rig();
  const s = r.open(false);
  r.session.subscribe(EDS, ['e1']);
  s.receive(resp(EDS, '1', 'n1', []), decode);
  r.clock.advance(7_000);
  r.session.subscribe(EDS, ['e2']);
  r.clock.advance(8_000);
  assert.deepEqual(r.kinds(), ['changed EDS ', 'dne EDS e1']);
  r.clock.advance(6_999);
  assert.deepEqual(r.kinds(), []);
  r.clock.advance(1);
  assert.deepEqual(r.kinds(), ['dne EDS e2']);
});

test('does-not-exist is not reported while the type is NACKed; a named rejection counts as delivered (fail closed)', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(LDS, ['hidden:80', 'broken:80']);
  r.stream.receive(resp(LDS, '1', 'n1', [res(LDS, 'broken:80', { badNamed: 'RE2 syntax JS would read differently' }), res(LDS, 'x', { bad: 'unreadable' })]), decode);
  r.clock.advance(60_000);
  assert.deepEqual(r.kinds(), ['nacked LDS'], 'hidden:80 may have been the unreadable resource: not reported as missing');
  const st = r.session.status().types[0]!;
  assert.deepEqual(st.rejected, ['broken:80']);
  assert.deepEqual(st.pending, ['hidden:80']);
  // The next good (full-state) response has neither: now both are known not to exist.
  r.stream.receive(resp(LDS, '2', 'n2', []), decode);
  assert.deepEqual(r.kinds(), ['changed LDS ', 'dne LDS hidden:80', 'dne LDS broken:80']);

  // Under a wildcard, a name nobody asked for explicitly has no does-not-exist state at all.
  r.session.subscribe(CDS, ['*']);
  r.stream.receive(resp(CDS, '1', 'c1', [res(CDS, 'z', { badNamed: 'unsupported' })]), decode);
  r.stream.receive(resp(CDS, '2', 'c2', []), decode);
  assert.deepEqual(r.kinds(), ['nacked CDS', 'changed CDS ']);
  assert.deepEqual(r.session.status().types[1]!.rejected, []);
});

test('reconnect: every subscription re-sent with the last ACKed versions, empty nonces, node on the first only', () => {
  const r = new Rig();
  const s1 = r.open();
  r.session.subscribe(LDS, ['a:80']);
  r.session.subscribe(RDS, ['route-a']);
  r.session.subscribe(CDS, ['c1']);
  r.session.subscribe(EDS, ['c1-eds']);
  s1.receive(resp(LDS, 'L1', 'n1', [res(LDS, 'a:80')]), decode);
  s1.receive(resp(RDS, 'R1', 'n2', [res(RDS, 'route-a')]), decode);
  s1.receive(resp(CDS, 'C1', 'n3', [res(CDS, 'c1')]), decode);
  s1.receive(resp(CDS, 'C2', 'n4', [res(CDS, 'c1', { bad: 'lb_policy MAGLEV is not supported' })]), decode); // NACKed
  r.session.unsubscribe(EDS, ['c1-eds']); // EDS asked for nothing now
  r.take();
  assert.equal(s1.lost('stream closed by peer'), 1_000);
  assert.equal(r.session.status().stream.state, 'backoff');
  r.clock.advance(999);
  assert.equal(r.reconnects, 0);
  r.clock.advance(1);
  assert.equal(r.reconnects, 1);
  r.open();
  assert.deepEqual(r.take(), [
    { versionInfo: 'L1', node: NODE, resourceNames: ['a:80'], typeUrl: LDS, responseNonce: '' },
    { versionInfo: 'R1', resourceNames: ['route-a'], typeUrl: RDS, responseNonce: '' },
    { versionInfo: 'C1', resourceNames: ['c1'], typeUrl: CDS, responseNonce: '' }, // C1, not the NACKed C2
    // EDS: no names and not asked on this stream: no request (an empty first list would be a wildcard)
  ]);
  assert.equal(r.session.status().stream.state, 'connected');
});

test('unsubscribe: the request drops the name; an empty list only on a stream that asked before', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(EDS, ['a', 'b']);
  r.stream.receive(resp(EDS, '1', 'n1', [res(EDS, 'a'), res(EDS, 'b')]), decode);
  r.take();
  assert.deepEqual(r.session.unsubscribe(EDS, ['a'])?.resourceNames, ['b']);
  assert.equal(r.session.unsubscribe(EDS, ['a']), undefined, 'not subscribed: nothing to say');
  assert.equal(r.session.unsubscribe(RDS, ['zzz']), undefined, 'a type never subscribed: nothing to say');
  assert.deepEqual(r.session.unsubscribe(EDS, ['b']), { versionInfo: '1', resourceNames: [], typeUrl: EDS, responseNonce: 'n1' });
  assert.equal(r.session.resources(EDS).size, 0);
  assert.deepEqual(r.session.status().types[0]!.pending, []);
  // Subscribe and unsubscribe while no stream is up: nothing is written, and the next stream asks for nothing of EDS.
  r.stream.lost();
  assert.equal(r.session.subscribe(EDS, ['c']), undefined);
  r.session.unsubscribe(EDS, ['c']);
  r.take();
  r.clock.advance(1_000);
  r.open();
  assert.deepEqual(r.take(), []);
});

test('backoff: 1 s doubling to 30 s, jitter ±20 % within [1 s, 30 s], reset by an ACK and not by a NACK', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map((n) => reconnectDelay(n, () => 0.5)), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  assert.equal(reconnectDelay(1, () => 0), 1_000, 'never under 1 s');
  assert.equal(reconnectDelay(3, () => 0), 3_200);
  assert.equal(reconnectDelay(3, () => 0.75), 4_400);
  assert.equal(reconnectDelay(6, () => 0.999_999), 30_000, 'never over 30 s');

  const r = new Rig();
  r.session.subscribe(CDS, ['a']);
  const waits: number[] = [];
  for (let i = 0; i < 7; i++) {
    const s = r.open();
    if (i === 3) s.receive(resp(CDS, 'x', `bad${i}`, [res(CDS, 'a', { bad: 'no' })]), decode); // a NACK: no reset
    const wait = s.lost('UNAVAILABLE')!;
    waits.push(wait);
    const before = r.reconnects;
    r.clock.advance(wait - 1);
    assert.equal(r.reconnects, before, 'not a millisecond early');
    r.clock.advance(1);
    assert.equal(r.reconnects, before + 1);
  }
  assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  assert.equal(r.session.status().stream.failures, 7);
  const s = r.open();
  s.receive(resp(CDS, 'v1', 'ok', [res(CDS, 'a')]), decode);
  assert.equal(r.session.status().stream.failures, 0);
  assert.equal(s.lost(), 1_000, 'an ACK reset the backoff');
});

test('latch through an outage: resources kept, no event on loss, a re-sent identical state changes nothing, a change is emitted after its ACK', () => {
  const r = new Rig();
  const s1 = r.open();
  r.session.subscribe(CDS, ['a', 'b']);
  s1.receive(resp(CDS, '1', 'n1', [res(CDS, 'a'), res(CDS, 'b')]), decode);
  r.kinds();
  s1.lost('UNAVAILABLE');
  for (let i = 0; i < 10; i++) {
    r.clock.advance(30_000);
    r.open(false).lost('connection refused');
  }
  assert.deepEqual(r.kinds(), [], 'an outage emits nothing');
  assert.deepEqual([...r.session.resources(CDS).keys()], ['a', 'b'], 'the last good resources stay');
  const st = r.session.status();
  assert.equal(st.stream.state, 'backoff');
  assert.equal(st.stream.lastError, 'connection refused');
  assert.equal(st.types[0]!.ackedVersion, '1');
  r.clock.advance(30_000);
  const s2 = r.open();
  s2.receive(resp(CDS, '1', 'm1', [res(CDS, 'a'), res(CDS, 'b')]), decode);
  assert.deepEqual(r.kinds(), [], 'the same state again after reconnect: no change');
  s2.receive(resp(CDS, '2', 'm2', [res(CDS, 'a', { lb: 'LEAST_REQUEST' }), res(CDS, 'b')]), decode);
  const [changed] = r.events.splice(0);
  assert.ok(changed?.kind === 'changed');
  assert.deepEqual(changed.updated, ['a']);
  assert.equal(changed.version, '2');
});

test('hostile: an unknown type URL, or a type not asked for on this stream, gets no reply', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(LDS, ['a']);
  r.take();
  const secret = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
  assert.equal(r.stream.receive(resp(secret, '1', 'x1', [res(secret, 'default')]), decode), undefined);
  assert.equal(r.stream.receive(resp(CDS, '1', 'x2', [res(CDS, 'c')]), decode), undefined, 'CDS never asked for: a reply would be a wildcard request');
  assert.deepEqual(r.writes, []);
  assert.deepEqual(r.events, []);
  const st = r.session.status();
  assert.equal(st.ignored.count, 2);
  assert.match(st.ignored.last!, /Cluster.*not asked for/);
  assert.deepEqual(st.types.map((t) => t.type), ['LDS'], 'no state made up for them');
});

test('hostile: resources of another type, duplicate names, no name or "*" → NACK naming each; an empty version is ACKed as such', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(CDS, ['a', 'b']);
  r.take();
  const nack = r.stream.receive(resp(CDS, 'v1', 'n1', [
    res(CDS, 'a'),
    res(LDS, 'a:80'),
    res(CDS, 'b'),
    res(CDS, 'a', { other: true }),
    res(CDS, ''),
    res(CDS, '*'),
  ]), decode);
  const message = nack!.errorDetail!.message;
  assert.match(message, /4 problems/);
  assert.match(message, /resource 1: its type "type\.googleapis\.com\/envoy\.config\.listener\.v3\.Listener" is not the response's type "type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster"/);
  assert.match(message, /resource 3 \("a"\): the same name as resource 0/);
  assert.match(message, /resource 4: it has no name/);
  assert.match(message, /resource 5: the name "\*" is reserved/);
  assert.equal(r.session.resources(CDS).size, 0, 'nothing of it applied, not even b');

  const ack = r.stream.receive(resp(CDS, '', 'n2', [res(CDS, 'a')]), decode);
  assert.deepEqual(ack, { versionInfo: '', resourceNames: ['a', 'b'], typeUrl: CDS, responseNonce: 'n2' });
  const st = r.session.status().types[0]!;
  assert.equal(st.ackedVersion, '', 'ACKed, at the empty version (not "never ACKed")');
  assert.notEqual(st.ackedAt, undefined);
});

test('hostile: a decoder that throws anything, thousands of bad resources, huge names: the NACK stays bounded', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(EDS, ['a']);
  const nasty: Decode = (_t, resource) => {
    const n = resource.value[0];
    if (n === 1) throw { toString: () => { throw new Error('gotcha'); } };
    if (n === 2) throw 'a bare string';
    if (n === 3) throw new Error('');
    if (n === 4) throw new ResourceRejection('x'.repeat(1_000_000), 'r'.repeat(1_000_000));
    return undefined as never;
  };
  const bytes = (n: number): Any => ({ typeUrl: EDS, value: Uint8Array.of(n) });
  const many = [bytes(1), bytes(2), bytes(3), bytes(4), bytes(5), ...Array.from({ length: 5_000 }, () => bytes(2))];
  const nack = r.stream.receive(resp(EDS, 'v'.repeat(100_000), 'n1', many), nasty);
  const message = nack!.errorDetail!.message;
  assert.ok(message.length <= MAX_NACK_MESSAGE, `message is ${message.length} characters`);
  assert.match(message, /5005 problems/);
  assert.match(message, /resource 0: the decoder threw a value that cannot be shown/);
  assert.match(message, /resource 1: a bare string/);
  assert.match(message, /resource 2: rejected by the decoder \(no reason given\)/);
  assert.match(message, /resource 3 \("x{200}…"\): r{500}…/);
  assert.match(message, /resource 4: it has no name/);
  assert.match(message, /… and \d+ more$/);
  const status = r.session.status().types[0]!;
  assert.ok(status.lastNack!.message === message);
});

test('a listener that throws: the request was written, the state is consistent, the error reaches the caller', () => {
  const r = new Rig();
  r.open();
  r.session.subscribe(CDS, ['a']);
  r.take();
  let calls = 0;
  r.session.on(() => {
    throw new Error('listener bug');
  });
  r.session.on(() => calls++);
  assert.throws(() => r.stream.receive(resp(CDS, '1', 'n1', [res(CDS, 'a')]), decode), /listener bug/);
  assert.equal(calls, 1, 'the other listener was still called');
  assert.deepEqual(r.take().map((w) => w.responseNonce), ['n1'], 'the ACK went out');
  assert.equal(r.session.status().types[0]!.ackedVersion, '1');
});

test('close: every timer stops; the session takes no more calls', () => {
  const r = new Rig();
  const s = r.open();
  r.session.subscribe(LDS, ['a', 'b']);
  s.lost();
  r.open();
  assert.ok(r.clock.pending().length > 0);
  r.session.close();
  assert.deepEqual(r.clock.pending(), []);
  assert.equal(r.session.status().stream.state, 'closed');
  assert.throws(() => r.session.subscribe(LDS, ['c']), /closed/);
  assert.throws(() => r.open(), /closed/);
  assert.equal(r.stream.receive(resp(LDS, '1', 'n', [res(LDS, 'a')]), decode), undefined);
  r.session.close();
});

test('errors with no caller: a listener throwing from a timer is logged; a reconnect that throws is retried after the next wait', () => {
  const clock = new VirtualClock(0);
  const logged: string[] = [];
  const logger = { info: () => {}, warn: () => {}, error: (m: string, f?: Record<string, unknown>) => logged.push(`${m} ${JSON.stringify(f)}`) };
  let attempts = 0;
  const session = new AdsSession<Node>({
    node: NODE, clock, random: () => 0.5, logger,
    reconnect: () => {
      attempts++;
      if (attempts === 1) throw new Error('EMFILE: too many open files');
      session.connect(() => {}).ready();
    },
  });
  session.on(() => {
    throw new Error('listener bug');
  });
  const s = session.connect(() => {});
  s.ready();
  session.subscribe(CDS, ['ghost']);
  clock.advance(DOES_NOT_EXIST_TIMEOUT_MS); // the listener throws inside the timer: the clock (the process) survives
  assert.match(logged.shift()!, /threw on "CDS ghost does not exist".*listener bug/);
  assert.deepEqual(session.status().types[0]!.doesNotExist, ['ghost']);
  s.lost('reset');
  clock.advance(1_000);
  assert.equal(attempts, 1);
  assert.match(logged.shift()!, /could not open a new ADS stream.*EMFILE/);
  assert.equal(session.status().stream.state, 'backoff');
  assert.equal(session.status().stream.failures, 2);
  clock.advance(1_999);
  assert.equal(attempts, 1);
  clock.advance(1);
  assert.equal(attempts, 2);
  assert.equal(session.status().stream.state, 'connected');
});
