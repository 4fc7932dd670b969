// DevCaSource: renewal at 50 % ± 10 % of the lifetime, real rotation, use-time renewal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/clock.js';
import { IdentityUnavailableError } from '../../src/errors.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { DevCaSource, createDevCaSource } from '../../src/sources/dev-ca.js';
import { retryDelay, rotationTime } from '../../src/sources/source.js';
import { TD, idOf } from '../helpers/certs.js';

const ID = idOf('orders');
const MAX_RANDOM = 1 - Number.EPSILON;

test('rotationTime: 40 % with random 0, 50 % with 0.5, just under 60 % with ~1', () => {
  const nb = 1_000_000;
  const na = nb + 100_000;
  assert.equal(rotationTime(nb, na, () => 0), nb + 40_000);
  assert.equal(rotationTime(nb, na, () => 0.5), nb + 50_000);
  const hi = rotationTime(nb, na, () => MAX_RANDOM);
  assert.ok(hi <= nb + 60_000 && hi > nb + 59_999, String(hi));
  for (let i = 0; i < 1000; i++) {
    const t = rotationTime(nb, na);
    assert.ok(t >= nb + 40_000 && t <= nb + 60_000, String(t));
  }
});

test('retryDelay: jittered exponential backoff, capped', () => {
  assert.equal(retryDelay(0, () => 0.5), 500);
  assert.equal(retryDelay(1, () => 0.5), 1000);
  assert.equal(retryDelay(3, () => 0), 2000);
  assert.equal(retryDelay(100, () => 0.5), 30_000);
  assert.ok(retryDelay(100, () => MAX_RANDOM) <= 45_000);
});

/** A dev CA source keeps two timers: its renewal, and its core's lifecycle check (renewal point, expiry). */
function assertTimers(clock: VirtualClock, source: DevCaSource, what = 'two timers: the renewal, and the lifecycle check'): void {
  const pending = clock.pending();
  assert.equal(pending.length, 2, `${what}: ${pending.map((at) => at - clock.now()).join(', ')} ms ahead`);
  assert.ok(pending.includes(Math.ceil(source.rotateAt)), what);
}

async function virtualSource(ttlMs: number, random: () => number) {
  const clock = new VirtualClock(Date.UTC(2030, 0, 1));
  const ca = await createDevCa({ trustDomain: TD, clock });
  const source = await createDevCaSource({ ca, spiffeId: ID, ttlMs, clock, random });
  return { clock, ca, source };
}

for (const ttlMs of [1_500, 60_000, 3_600_000]) {
  test(`the renewal is scheduled at 40 %–60 % of a ${ttlMs} ms lifetime after issuance (injected random)`, async (t) => {
    for (const [r, fraction] of [[0, 0.4], [0.5, 0.5], [MAX_RANDOM, 0.6]] as const) {
      const { clock, source } = await virtualSource(ttlMs, () => r);
      t.after(() => source.close());
      const issuedAt = clock.now();
      const svid = source.getX509Svid();
      // X.509 times have whole seconds: notAfter is the ttl after issuance, truncated (the back-dating adds to the front).
      const life = Math.ceil((issuedAt + ttlMs) / 1000) * 1000 - issuedAt;
      assert.equal(svid.notAfter, issuedAt + life);
      const delay = source.rotateAt - issuedAt;
      // A renewal scheduled in the past would re-issue in a loop: it must be ahead, at the fraction of the lifetime left.
      assert.ok(delay > 0, `renewal is ${delay} ms after issuance`);
      assert.ok(Math.abs(delay - fraction * life) <= 1, `random ${r}: renewal ${delay} ms after issuance, expected ${fraction * life}`);
      await source.close();
    }
  });
}

test('a short ttl renews on its timer, once per renewal, not in a loop (virtual time: exact)', async (t) => {
  const clock = new VirtualClock(Date.UTC(2030, 0, 1));
  const ca = await createDevCa({ trustDomain: TD, clock });
  const source = new DevCaSource({ ca, spiffeId: ID, ttlMs: 2_000, clock });
  t.after(() => source.close());
  let updates = 0;
  source.onUpdate(() => updates++);
  await source.start();
  const serials = new Set([source.status().serialNumber]);
  await source.ready(100);
  for (let i = 1; i <= 5; i++) {
    const due = Math.ceil(source.rotateAt);
    assert.ok(due > clock.now(), `renewal ${i} is ahead (${due - clock.now()} ms)`);
    assertTimers(clock, source);
    await clock.setAsync(due - 1);
    assert.equal(source.status().rotations, i - 1, `no renewal before its time (${i})`);
    await clock.setAsync(due);
    assert.equal(source.status().rotations, i, `renewal ${i} at its time, once`);
    serials.add(source.status().serialNumber);
  }
  const s = source.status();
  assert.equal(serials.size, 6, 'every renewal is a new SVID');
  assert.equal(updates, s.rotations + 1, 'every accepted SVID, the first included, is announced');
  assert.equal(s.state, 'ready');
  assert.equal(s.kind, 'dev-ca');
  assert.equal(s.spiffeId, ID);
  // 20 s of a 2–3 s lifetime (X.509 whole seconds) renewed at 40–60 % of it: 11 to 25 renewals, not hundreds.
  await clock.advanceAsync(20_000);
  const more = source.status().rotations - s.rotations;
  assert.ok(more >= 11 && more <= 25, `${more} renewals in 20 s`);
});

test('use-time renewal: the clock jumps past rotateAt (a frozen process) → the next getX509Svid renews', async (t) => {
  const { clock, source } = await virtualSource(3_600_000, () => 0.5);
  t.after(() => source.close());
  const before = source.getX509Svid();
  const updated = new Promise<void>((resolve) => source.onUpdate(resolve));
  clock.jump(source.rotateAt + 1 - clock.now()); // frozen past the renewal time: its timer has not run
  // Still valid: served now, renewal starts behind it.
  assert.equal(source.getX509Svid(), before);
  await updated;
  const after = source.getX509Svid();
  assert.notEqual(after.chain[0]!.serialNumber, before.chain[0]!.serialNumber);
  assert.equal(after.notAfter, Math.ceil((clock.now() + 3_600_000) / 1000) * 1000);
  assert.ok(source.rotateAt > clock.now());
  assert.equal(source.status().rotations, 1);
  // No further renewals until the new rotateAt: the overdue timer was replaced by one timer, ahead.
  source.getX509Svid();
  source.getX509Svid();
  assertTimers(clock, source);
  await clock.setAsync(Math.ceil(source.rotateAt) - 1);
  assert.equal(source.status().rotations, 1);
});

test('frozen past expiry: the expired SVID is refused at use time, then renewed', async (t) => {
  const { clock, source } = await virtualSource(60_000, () => 0.5);
  t.after(() => source.close());
  const first = source.getX509Svid();
  const updated = new Promise<void>((resolve) => source.onUpdate(resolve));
  clock.jump(first.notAfter + 1_000 - clock.now()); // frozen past expiry: no timer has run
  assert.throws(() => source.getX509Svid(), (e: unknown) => e instanceof IdentityUnavailableError && /expired/.test(e.message));
  assert.equal(source.status().state, 'expired');
  await updated;
  assert.notEqual(source.getX509Svid().chain[0]!.serialNumber, first.chain[0]!.serialNumber);
  assert.equal(source.status().state, 'ready');
});

test('a CA that cannot issue: ready() rejects saying why, onError is told, retries back off (virtual time: exact)', async (t) => {
  const clock = new VirtualClock(Date.UTC(2030, 0, 1));
  let calls = 0;
  const broken = {
    trustDomain: TD,
    clock,
    signCsr: async () => {
      calls++;
      throw new Error('the CA is down');
    },
  } as unknown as DevCa;
  const errors: Error[] = [];
  const source = new DevCaSource({ ca: broken, spiffeId: ID, onError: (e) => errors.push(e), random: () => 0 });
  t.after(() => source.close());
  await source.start();
  assert.equal(calls, 1);
  assert.equal(errors.length, 1);
  const s = source.status();
  assert.equal(s.state, 'starting');
  assert.equal(s.lastError, 'the CA is down');
  assert.throws(() => source.getX509Svid(), (e: unknown) => e instanceof IdentityUnavailableError && /the CA is down/.test(e.message));
  let outcome: unknown = 'pending';
  source.ready(100).then(() => (outcome = 'resolved'), (e: unknown) => (outcome = e));
  await clock.advanceAsync(99);
  assert.equal(outcome, 'pending');
  await clock.advanceAsync(1);
  const e = outcome as unknown; // set by the callbacks above
  assert.ok(e instanceof IdentityUnavailableError && /after 100 ms: the CA is down/.test(e.message), String(e));
  // Retries with random 0: 250 ms, then 500 ms, then 1 s later (retryDelay), each told to onError.
  const t0 = clock.now() - 100;
  for (const [at, n] of [[250, 2], [750, 3], [1_750, 4]] as const) {
    await clock.setAsync(t0 + at - 1);
    assert.equal(calls, n - 1, `no retry before ${at} ms`);
    await clock.setAsync(t0 + at);
    assert.equal(calls, n, `retry ${n - 1} at ${at} ms`);
  }
  assert.equal(errors.length, 4);
});

test('close stops renewals and refuses further use', async () => {
  const clock = new VirtualClock(Date.UTC(2030, 0, 1));
  const ca = await createDevCa({ trustDomain: TD, clock });
  const source = await createDevCaSource({ ca, spiffeId: ID, ttlMs: 500, clock });
  assertTimers(clock, source);
  await source.close();
  const rotations = source.status().rotations;
  assert.equal(source.status().state, 'closed');
  assert.throws(() => source.getX509Svid(), /closed/);
  assert.deepEqual(clock.pending(), [], 'no timer left: nothing can renew');
  await clock.advanceAsync(60_000);
  assert.equal(source.status().rotations, rotations);
});

test('a clock with now() only (enough for a DevCa, in JavaScript) is refused by the source at once, saying what to pass', async () => {
  const ca = await createDevCa({ trustDomain: TD, clock: { now: () => Date.now() } as never });
  assert.throws(
    () => new DevCaSource({ ca, spiffeId: ID }),
    (e: unknown) => e instanceof TypeError && /the clock given to the dev CA of cluster\.local source has no setTimeout\(\)\/setInterval\(\): pass a full Clock/.test(e.message),
  );
});
