// DevCaSource: renewal at 50 % ± 10 % of the lifetime, real rotation, use-time renewal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/clock.js';
import { IdentityUnavailableError } from '../../src/errors.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { DevCaSource, createDevCaSource } from '../../src/sources/dev-ca.js';
import { retryDelay, rotationTime } from '../../src/sources/source.js';
import { TD, idOf } from '../helpers/certs.js';
import { sleep, waitFor } from '../helpers/net.js';

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

test('a short ttl rotates on real timers, once per renewal, not in a loop', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const source = new DevCaSource({ ca, spiffeId: ID, ttlMs: 2_000 });
  t.after(() => source.close());
  let updates = 0;
  source.onUpdate(() => updates++);
  await source.start();
  const first = source.status().serialNumber;
  await source.ready(100);
  await waitFor(() => source.status().rotations >= 1, 4_000, 'a rotation');
  await waitFor(() => source.status().rotations >= 2, 5_000, 'a second rotation');
  const s = source.status();
  assert.notEqual(s.serialNumber, first);
  assert.ok(s.rotations >= 2, `${s.rotations} rotations`);
  // A few seconds at one renewal per 0.4–1.2 s: a handful, not hundreds.
  assert.ok(s.rotations <= 15, `${s.rotations} rotations in ~2 s: the renewal timer is firing in a loop`);
  assert.equal(updates, s.rotations + 1, 'every accepted SVID, the first included, is announced');
  assert.equal(s.state, 'ready');
  assert.equal(s.kind, 'dev-ca');
  assert.equal(s.spiffeId, ID);
});

test('use-time renewal: the clock jumps past rotateAt (a frozen process) → the next getX509Svid renews', async (t) => {
  const { clock, source } = await virtualSource(3_600_000, () => 0.5);
  t.after(() => source.close());
  const before = source.getX509Svid();
  const updated = new Promise<void>((resolve) => source.onUpdate(resolve));
  clock.set(source.rotateAt + 1);
  // Still valid: served now, renewal starts behind it.
  assert.equal(source.getX509Svid(), before);
  await updated;
  const after = source.getX509Svid();
  assert.notEqual(after.chain[0]!.serialNumber, before.chain[0]!.serialNumber);
  assert.equal(after.notAfter, Math.ceil((clock.now() + 3_600_000) / 1000) * 1000);
  assert.ok(source.rotateAt > clock.now());
  assert.equal(source.status().rotations, 1);
  // No further renewals until the new rotateAt.
  source.getX509Svid();
  source.getX509Svid();
  await sleep(50);
  assert.equal(source.status().rotations, 1);
});

test('frozen past expiry: the expired SVID is refused at use time, then renewed', async (t) => {
  const { clock, source } = await virtualSource(60_000, () => 0.5);
  t.after(() => source.close());
  const first = source.getX509Svid();
  const updated = new Promise<void>((resolve) => source.onUpdate(resolve));
  clock.set(first.notAfter + 1_000);
  assert.throws(() => source.getX509Svid(), (e: unknown) => e instanceof IdentityUnavailableError && /expired/.test(e.message));
  assert.equal(source.status().state, 'expired');
  await updated;
  assert.notEqual(source.getX509Svid().chain[0]!.serialNumber, first.chain[0]!.serialNumber);
  assert.equal(source.status().state, 'ready');
});

test('a CA that cannot issue: ready() rejects saying why, onError is told, retries are scheduled', async (t) => {
  const real = await createDevCa({ trustDomain: TD });
  let calls = 0;
  const broken = {
    trustDomain: TD,
    clock: real.clock,
    issue: async () => {
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
  await assert.rejects(source.ready(100), (e: unknown) => e instanceof IdentityUnavailableError && /after 100 ms: the CA is down/.test(e.message));
  // retry after 250 ms (500 × 0.5)
  await waitFor(() => calls >= 2, 3_000, 'a retry');
});

test('close stops renewals and refuses further use', async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const source = await createDevCaSource({ ca, spiffeId: ID, ttlMs: 500 });
  await source.close();
  const rotations = source.status().rotations;
  assert.equal(source.status().state, 'closed');
  assert.throws(() => source.getX509Svid(), /closed/);
  await sleep(600);
  assert.equal(source.status().rotations, rotations);
});
