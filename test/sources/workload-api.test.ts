// The Workload API source against a server on the second gRPC stack (Python, gRPC C-core:
// test/helpers/py/workload_server.py), over a real Unix socket (and one TCP case). Timing is on a
// VirtualClock: the backoff's timers are the source's clock's, so "no retry" and "the next attempt
// at 2 s" are exact statements about pending timers, while the socket traffic is real.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/clock.js';
import { type DevCa, type IssuedSvid, createDevCa } from '../../src/identity/dev-ca.js';
import { type SvidLifecycleEvent, describeLifecycle } from '../../src/sources/lifecycle.js';
import { type WorkloadApiSource, createWorkloadApiSource, workloadApiBackoff } from '../../src/sources/workload-api.js';
import { type WorkloadServer, WorkloadServer as Server, federated, wireSvid } from '../helpers/workload-server.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/ns/default/sa/orders`;
const OTHER_ID = `spiffe://${TD}/ns/default/sa/batch`;
let ca: DevCa;
let partner: DevCa;
let third: DevCa;
before(async () => {
  [ca, partner, third] = await Promise.all([createDevCa({ trustDomain: TD }), createDevCa({ trustDomain: 'partner.org' }), createDevCa({ trustDomain: 'third.org' })]);
});

const servers: WorkloadServer[] = [];
after(() => Promise.all(servers.map((s) => s.stop())));

async function serve(o: { tcp?: boolean } = {}): Promise<WorkloadServer> {
  const s = await Server.start(o);
  servers.push(s);
  return s;
}

interface Rig {
  server: WorkloadServer;
  source: WorkloadApiSource;
  clock: VirtualClock;
  errors: string[];
}

/** A server with `svids` as its state (none: it holds the first message back) and a source on a VirtualClock. */
async function rig(t: { after(fn: () => Promise<void>): void }, svids: IssuedSvid[] | undefined, o: { hint?: string; tcp?: boolean; random?: () => number; onLifecycle?: (e: SvidLifecycleEvent) => void } = {}): Promise<Rig> {
  const server = await serve(o);
  if (svids) await server.state(svids.map((s) => wireSvid(s)));
  const clock = new VirtualClock(Date.now());
  const errors: string[] = [];
  const source = createWorkloadApiSource({
    address: server.address,
    clock,
    random: o.random ?? (() => 0),
    onError: (e) => errors.push(e.message),
    ...(o.hint !== undefined && { hint: o.hint }),
    ...(o.onLifecycle && { onLifecycle: o.onLifecycle }),
  });
  t.after(() => source.close());
  return { server, source, clock, errors };
}

/** Real time passes until `pred` holds (socket traffic is real; only the source's timers are virtual). */
async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The due times of the source's timers other than SourceCore's renewal/expiry watch, relative to now. */
function retryTimers(r: Rig): number[] {
  const now = r.clock.now();
  return r.clock.pending().map((at) => at - now).filter((d) => d <= 30_000);
}

test('backoff: 1 s doubling to 30 s, at most 20 % earlier, never above the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((n) => workloadApiBackoff(n, () => 0)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(workloadApiBackoff(0, () => 0.999999), 800);
  assert.equal(workloadApiBackoff(5, () => 0.5), 27000);
  for (let i = 0; i < 1000; i++) {
    const d = workloadApiBackoff(i % 10, Math.random);
    assert.ok(d >= 800 && d <= 30_000, String(d));
  }
});

test('every call carries workload.spiffe.io: true; the first message makes the source ready with kind, serial, expiry', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  assert.equal(r.source.status().state, 'starting');
  await r.source.ready(5_000);
  const st = r.source.status();
  assert.equal(st.state, 'ready');
  assert.equal(st.kind, 'workload-api');
  assert.equal(st.spiffeId, ID);
  assert.equal(st.serialNumber, svid.serialNumber);
  assert.equal(st.notAfter, new Date(svid.notAfter).toISOString());
  assert.equal(st.hint, undefined, 'no hint sent, none shown');
  assert.equal(st.lastError, undefined);
  assert.deepEqual(st.trustDomains, [TD]);
  assert.equal(r.source.getX509Svid().keyPem.includes('BEGIN PRIVATE KEY'), true);
  await r.server.waitForCalls(1);
  assert.equal(r.server.calls.length, 1);
  const md = r.server.calls[0]!.metadata.filter(([k]) => k === 'workload.spiffe.io');
  assert.deepEqual(md, [['workload.spiffe.io', 'true']]);
  assert.equal(r.server.calls[0]!.outcome, 'stream');
});

test('several SVIDs: the first by default; hint picks one (duplicates: the first); a missing hint names those offered', async (t) => {
  const [a, b, c] = await Promise.all([ca.issue({ spiffeId: ID }), ca.issue({ spiffeId: ID }), ca.issue({ spiffeId: OTHER_ID })]);
  const server = await serve();
  await server.state([wireSvid(c, { hint: 'batch' }), wireSvid(a, { hint: 'internal' }), wireSvid(b, { hint: 'internal' })]);
  const clock = new VirtualClock(Date.now());
  const open = (hint?: string) => {
    const s = createWorkloadApiSource({ address: server.address, clock, random: () => 0, ...(hint !== undefined && { hint }) });
    t.after(() => s.close());
    return s;
  };
  const first = open();
  await first.ready(5_000);
  assert.equal(first.status().spiffeId, OTHER_ID, 'the first SVID is the default');
  assert.equal(first.status().hint, 'batch');
  const internal = open('internal');
  await internal.ready(5_000);
  assert.equal(internal.status().serialNumber, a.serialNumber, 'of two with the same hint, the first');
  assert.equal(internal.getX509Svid().hint, 'internal');
  const missing = open('external');
  await until(() => missing.status().lastError !== undefined, 'the refusal');
  assert.equal(missing.status().state, 'starting');
  assert.match(missing.status().lastError!, /no SVID has the hint "external"; the Workload API offered "batch" \(spiffe:\/\/example\.org\/ns\/default\/sa\/batch\), "internal" \(.*\), "internal" \(.*\)\. Set identity\.workloadApi\.hint/);
  const waiting = missing.ready(10);
  clock.advance(10);
  await assert.rejects(waiting, /after 10 ms: the SPIFFE Workload API at .* sent an X509SVIDResponse that was refused: no SVID has the hint "external"/);
});

test('federated bundles join the own bundle; a bundle the next message leaves out is dropped; one stream throughout', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, undefined);
  await r.server.state([wireSvid(svid)], federated(partner, third));
  await r.source.ready(5_000);
  assert.deepEqual([...r.source.getBundles().keys()].sort(), [TD, 'partner.org', 'third.org']);
  assert.equal(r.source.getBundle('partner.org')!.roots[0]!.fingerprint, partner.root.fingerprint);
  assert.equal(r.source.getBundle(TD)!.roots[0]!.fingerprint, ca.root.fingerprint);
  let updates = 0;
  r.source.onUpdate(() => updates++);
  await r.server.state([wireSvid(svid)], federated(third));
  await until(() => updates === 1, 'the update');
  assert.deepEqual([...r.source.getBundles().keys()].sort(), [TD, 'third.org'], 'partner.org was redacted');
  assert.equal(r.source.getBundle('partner.org'), undefined);
  await r.server.state([wireSvid(svid)]);
  await until(() => updates === 2, 'the second update');
  assert.deepEqual([...r.source.getBundles().keys()], [TD]);
  assert.equal(r.server.calls.length, 1, 'all on the one stream');
});

test('rotation on the same stream: each new SVID is served, rotations counted, no new call', async (t) => {
  const first = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [first]);
  await r.source.ready(5_000);
  const serials = [first.serialNumber];
  for (let i = 0; i < 3; i++) {
    const next = await ca.issue({ spiffeId: ID });
    await r.server.state([wireSvid(next)]);
    await until(() => r.source.status().serialNumber === next.serialNumber, `rotation ${i + 1}`);
    serials.push(next.serialNumber);
  }
  assert.equal(new Set(serials).size, 4);
  assert.equal(r.source.status().rotations, 3);
  assert.equal(r.server.calls.length, 1);
});

test('a message that changes only the bundles is an update but no rotation; the same state again is neither (a SPIRE agent resends its whole state)', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  await r.source.ready(5_000);
  let updates = 0;
  r.source.onUpdate(() => updates++);
  await r.server.state([wireSvid(svid)], federated(partner));
  await until(() => updates === 1, 'the bundle update');
  await r.server.state([wireSvid(svid)], federated(partner)); // the same state again: nothing to tell
  await r.server.state([wireSvid(svid)]); // then the partner bundle dropped: told
  await until(() => r.source.getBundle(partner.trustDomain) === undefined, 'the redaction');
  assert.equal(updates, 2, 'the resend in between told nobody');
  assert.equal(r.source.status().rotations, 0);
  const next = await ca.issue({ spiffeId: ID });
  await r.server.state([wireSvid(next)], federated(partner));
  await until(() => r.source.status().serialNumber === next.serialNumber, 'the rotation');
  assert.equal(r.source.status().rotations, 1);
});

test('PermissionDenied then Unavailable at start: retries at 1 s, 2 s, 4 s on the clock; starting → ready; a message resets the backoff', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const server = await serve();
  await server.state([wireSvid(svid)]);
  await server.fail('PERMISSION_DENIED', 'no identity issued', 2);
  const clock = new VirtualClock(Date.now());
  const source = createWorkloadApiSource({ address: server.address, clock, random: () => 0 });
  t.after(() => source.close());
  const r: Rig = { server, source, clock, errors: [] };
  const ready = source.ready(60_000);
  await until(() => source.status().lastError !== undefined, 'the first failure');
  assert.equal(source.status().state, 'starting');
  assert.match(source.status().lastError!, /answered PERMISSION_DENIED \(7\): no identity issued; reconnecting in 1\.0 s/);
  assert.deepEqual(retryTimers(r), [1000]);
  clock.advance(999);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(server.calls.length, 1, 'nothing before the backoff ends');
  clock.advance(1);
  await server.waitForCalls(2);
  await until(() => /reconnecting in 2\.0 s/.test(source.status().lastError ?? ''), 'the second failure');
  assert.deepEqual(retryTimers(r), [2000]);
  await server.fail('UNAVAILABLE', 'workload attestation failed', 1);
  clock.advance(2000);
  await server.waitForCalls(3);
  await until(() => /UNAVAILABLE \(14\): workload attestation failed; reconnecting in 4\.0 s/.test(source.status().lastError ?? ''), 'the third failure');
  clock.advance(4000);
  await ready;
  await server.waitForCalls(4); // the server logs the call on its own pipe: it may come after the message
  assert.equal(server.calls.length, 4);
  assert.deepEqual(server.calls.map((c) => c.outcome), ['PERMISSION_DENIED', 'PERMISSION_DENIED', 'UNAVAILABLE', 'stream']);
  assert.equal(source.status().state, 'ready');
  assert.equal(source.status().lastError, undefined);
  // A message came: the next failure starts again at 1 s.
  await server.end();
  await until(() => source.status().state === 'stale', 'stale after the end');
  assert.match(source.status().lastError!, /ended the stream; the last good SVID stays in use until it expires; reconnecting in 1\.0 s/);
  assert.deepEqual(retryTimers(r), [1000]);
});

test('a server that sends only refused messages and drops the stream: the backoff grows (only a message taken resets it)', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  await r.source.ready(5_000);
  await r.server.clear(); // new streams get no good state
  const garbage = Buffer.from('not an X509SVIDResponse');
  const waits: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const refusals = r.errors.filter((e) => /refused/.test(e)).length;
    await r.server.raw(garbage);
    await until(() => r.errors.filter((e) => /refused/.test(e)).length > refusals || /refused/.test(r.source.status().lastError ?? ''), `refusal ${i}`);
    await r.server.end();
    await until(() => retryTimers(r).length === 1, `the wait after end ${i}`);
    waits.push(retryTimers(r)[0]!);
    r.clock.advance(waits.at(-1)!);
    await r.server.waitForCalls(i + 1);
  }
  assert.deepEqual(waits, [1000, 2000, 4000]);
  assert.equal(r.source.getX509Svid().chain[0]!.serialNumber, svid.serialNumber, 'the last good SVID serves throughout');
  // A good message resets it.
  await r.server.state([wireSvid(svid)]);
  await until(() => r.source.status().state === 'ready', 'ready again');
  await r.server.end();
  await until(() => retryTimers(r).length === 1, 'the wait after a good message');
  assert.deepEqual(retryTimers(r), [1000]);
});

test('ready → stale → ready: a stream the server ends, an outage, then the server back; the last good SVID serves throughout', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  await r.source.ready(5_000);
  const states = [r.source.status().state];
  await r.server.fail('UNAVAILABLE', 'agent restarting', -1);
  await r.server.abort('UNAVAILABLE', 'agent shutting down');
  await until(() => r.source.status().state === 'stale', 'stale');
  states.push(r.source.status().state);
  assert.match(r.source.status().lastError!, /answered UNAVAILABLE \(14\): agent shutting down/);
  assert.equal(r.source.getX509Svid().chain[0]!.serialNumber, svid.serialNumber, 'the last good SVID is still served');
  const expected = [1000, 2000, 4000, 8000, 16000, 30000, 30000];
  assert.deepEqual(retryTimers(r), [expected[0]]);
  for (let i = 0; i < 6; i++) {
    r.clock.advance(expected[i]!);
    await r.server.waitForCalls(i + 2);
    await until(() => retryTimers(r).length === 1 && retryTimers(r)[0] === expected[i + 1], `the wait after failure ${i + 2}`);
  }
  assert.equal(r.source.status().state, 'stale');
  await r.server.heal();
  r.clock.advance(retryTimers(r)[0]!);
  await until(() => r.source.status().state === 'ready', 'ready again');
  states.push(r.source.status().state);
  assert.deepEqual(states, ['ready', 'stale', 'ready']);
  assert.equal(r.source.status().rotations, 0, 'the same SVID again after a reconnect: accepted, but no rotation');
});

test('InvalidArgument: no retry, ever; ready() and status() say the server refused the request', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const server = await serve();
  await server.state([wireSvid(svid)]);
  await server.fail('INVALID_ARGUMENT', 'security header missing from request', -1);
  const clock = new VirtualClock(Date.now());
  const source = createWorkloadApiSource({ address: server.address, clock, random: () => 0 });
  t.after(() => source.close());
  await assert.rejects(source.ready(60_000), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(e.message, new RegExp(`the SPIFFE Workload API at ${server.address.replace(/[/.]/g, '\\$&')} answered INVALID_ARGUMENT \\(3\\): security header missing from request; the server refused the request`));
    assert.match(e.message, /Not retrying/);
    return true;
  });
  assert.deepEqual(clock.pending(), [], 'no retry timer (and the ready() deadline was cancelled)');
  clock.advance(10 * 60_000);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(server.calls.length, 1, 'one call, no retry');
  assert.match(source.status().lastError!, /INVALID_ARGUMENT/);
  await assert.rejects(source.ready(), /Not retrying/, 'later ready() calls get the same answer');
});

test('InvalidArgument after a good start: the last good SVID stays (stale), no reconnect', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  await r.source.ready(5_000);
  await r.server.abort('INVALID_ARGUMENT', 'bad request');
  await until(() => r.source.status().state === 'stale', 'stale');
  assert.deepEqual(retryTimers(r), []);
  r.clock.advance(60_000);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(r.server.calls.length, 1);
  assert.equal(r.source.getX509Svid().chain[0]!.serialNumber, svid.serialNumber);
  await r.source.ready(0); // it has an SVID
});

test('Unimplemented: not retried either', async (t) => {
  const r = await rig(t, undefined);
  await r.server.fail('UNIMPLEMENTED', 'method not found', -1);
  await assert.rejects(r.source.ready(60_000), /answered UNIMPLEMENTED \(12\).*does not implement FetchX509SVID.*Not retrying/);
  r.clock.advance(60_000);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(r.server.calls.length, 1);
});

test('a delayed first message: ready() waits for it; with none, it rejects at its deadline naming the socket', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, undefined);
  await r.server.waitForCalls(1);
  let settled = false;
  const ready = r.source.ready(5_000).finally(() => (settled = true));
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(settled, false);
  assert.equal(r.source.status().state, 'starting');
  await r.server.state([wireSvid(svid)]);
  await ready;
  assert.equal(r.source.status().state, 'ready');

  const late = await rig(t, undefined);
  await late.server.waitForCalls(1);
  const p = late.source.ready(3_000);
  late.clock.advance(3_000);
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, new RegExp(`no X\\.509-SVID from the SPIFFE Workload API at ${late.server.address.replace(/[/.]/g, '\\$&')} after 3000 ms \\(the stream is open, no message came\\)`));
    return true;
  });
});

test('nothing listening: Unavailable (the socket does not exist), retried; ready() names the address and the error', async (t) => {
  const clock = new VirtualClock(Date.now());
  const address = `unix:///tmp/sidecarless-no-such-dir-${process.pid}/agent.sock`;
  const source = createWorkloadApiSource({ address, clock, random: () => 0 });
  t.after(() => source.close());
  await until(() => source.status().lastError !== undefined, 'the failure');
  assert.match(source.status().lastError!, /answered UNAVAILABLE \(14\):.*reconnecting in 1\.0 s/);
  const p = source.ready(500);
  clock.advance(500);
  await assert.rejects(p, new RegExp(`no X\\.509-SVID from the SPIFFE Workload API at ${address.replace(/[/.]/g, '\\$&')} after 500 ms: .*UNAVAILABLE`));
});

test('the last good SVID is served until it expires, then refused (state expired)', async (t) => {
  const svid = await ca.issue({ spiffeId: ID, ttlMs: 60_000 });
  const logged: string[] = [];
  const r = await rig(t, [svid], { onLifecycle: (e) => logged.push(describeLifecycle(e).message) });
  await r.source.ready(5_000);
  await r.server.fail('UNAVAILABLE', 'down', -1);
  await r.server.abort('UNAVAILABLE', 'down');
  await until(() => r.source.status().state === 'stale', 'stale');
  r.clock.set(svid.notAfter);
  assert.equal(r.source.getX509Svid().chain[0]!.serialNumber, svid.serialNumber, 'still valid at notAfter');
  r.clock.set(svid.notAfter + 1);
  assert.equal(r.source.status().state, 'expired');
  assert.throws(() => r.source.getX509Svid(), /expired at .* no renewal arrived from the SPIFFE Workload API .*UNAVAILABLE/);
  assert.equal(logged.length, 2, logged.join('\n'));
  assert.match(logged[0]!, /passed its renewal point .* Check the SPIRE agent behind the SPIFFE Workload API at unix:\/\/\/.*svid inspect --workload-api/);
  assert.match(logged[1]!, /has expired/);
});

test('close(): the server sees the stream cancelled; no timer is left, also when closed during a backoff', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid]);
  await r.source.ready(5_000);
  await r.source.close();
  await r.server.waitFor(() => r.server.cancelled.length === 1, 'the cancellation');
  assert.deepEqual(r.clock.pending(), []);
  assert.equal(r.source.status().state, 'closed');

  const b = await rig(t, undefined);
  await b.server.fail('UNAVAILABLE', 'down', -1);
  await until(() => retryTimers(b).length === 1, 'the backoff');
  const p = b.source.ready(60_000);
  await b.source.close();
  await assert.rejects(p, /closed/);
  assert.deepEqual(b.clock.pending(), []);
  await b.server.waitForCalls(1); // the server's record of the first call may lag its answer
  b.clock.advance(60_000);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(b.server.calls.length, 1, 'no call after close');
});

test('an onError that throws changes nothing (it runs inside grpc-js stream events)', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const server = await serve();
  await server.state([wireSvid(svid)]);
  const clock = new VirtualClock(Date.now());
  let told = 0;
  const source = createWorkloadApiSource({ address: server.address, clock, random: () => 0, onError: () => {
    told++;
    throw new Error('listener bug');
  } });
  t.after(() => source.close());
  await source.ready(5_000);
  await server.raw(Buffer.from('garbage'));
  await server.end();
  await until(() => told === 2, 'both reports');
  clock.advance(1_000);
  await server.waitForCalls(2);
  await until(() => source.status().state === 'ready', 'ready after the reconnect');
});

test('TCP: tcp://127.0.0.1:<port> works the same, header included', async (t) => {
  const svid = await ca.issue({ spiffeId: ID });
  const r = await rig(t, [svid], { tcp: true });
  assert.match(r.server.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  await r.source.ready(5_000);
  assert.equal(r.source.status().serialNumber, svid.serialNumber);
  await r.server.waitForCalls(1);
  assert.deepEqual(r.server.calls[0]!.metadata.filter(([k]) => k === 'workload.spiffe.io'), [['workload.spiffe.io', 'true']]);
  const next = await ca.issue({ spiffeId: ID });
  await r.server.state([wireSvid(next)]);
  await until(() => r.source.status().serialNumber === next.serialNumber, 'rotation over TCP');
});

test('the server refuses a call without the header with InvalidArgument, as SPIRE does (the peer the source is tested against)', async () => {
  const server = await serve();
  const grpc = await import('@grpc/grpc-js');
  const { SpiffeWorkloadAPI } = await import('../../src/proto/workload.js');
  const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  const def = SpiffeWorkloadAPI.FetchX509SVID;
  const status = await new Promise<{ code: number; details: string }>((resolve) => {
    const call = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, {}, new grpc.Metadata());
    call.on('error', () => {});
    call.on('status', resolve);
  });
  client.close();
  assert.deepEqual({ code: status.code, details: status.details }, { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
  await server.waitForCalls(1);
  assert.equal(server.calls[0]!.outcome, 'INVALID_ARGUMENT');
});
