import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import { createBalancer, seededRandom, type Balancer, type InFlight } from '../../../src/outbound/balancer/index.js';

/** Runs `n` requests, one per `stepMs`, each taking latencyOf(key) ms; returns picks per key. */
function simulate(lb: Balancer, clock: VirtualClock, n: number, stepMs: number, latencyOf: (key: string, t: number) => number) {
  const counts = new Map<string, number>();
  const inflight: Array<{ at: number; t: InFlight; ok: boolean }> = [];
  for (let i = 0; i < n; i++) {
    clock.advance(stepMs);
    const now = clock.now();
    for (let j = inflight.length - 1; j >= 0; j--) {
      const f = inflight[j]!;
      if (f.at <= now) {
        f.t.end({ ok: f.ok });
        inflight.splice(j, 1);
      }
    }
    const ep = lb.pick()!;
    counts.set(ep.key, (counts.get(ep.key) ?? 0) + 1);
    const t = ep.start();
    inflight.push({ at: now + latencyOf(ep.key, now), t, ok: true });
  }
  return counts;
}

test('p2c-ewma prefers the endpoint with the lower cost', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(1) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  const a = lb.get('a')!;
  const b = lb.get('b')!;
  a.start().end({ ok: true, latencyMs: 10 });
  b.start().end({ ok: true, latencyMs: 100 });
  for (let i = 0; i < 100; i++) assert.equal(lb.pick()!.key, 'a');
  // a's estimate is still 30 (the default; a 10 ms sample at Δt = 0 has no weight yet).
  // Load moves the cost: with 20 tries pending on a, b (100 × 1) beats a (30 × 21).
  for (let i = 0; i < 20; i++) a.start();
  assert.equal(lb.pick()!.key, 'b');
});

test('p2c-ewma sends (nearly) nothing to a slow endpoint', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(42), accrual: false });
  lb.setEndpoints(['a', 'b', 'c', 'd', 'slow'].map((key) => ({ key })));
  const counts = simulate(lb, clock, 20_000, 1, (k) => (k === 'slow' ? 1000 : 20));
  const slow = counts.get('slow') ?? 0;
  assert.ok(slow < 20_000 * 0.002, `slow endpoint got ${slow} of 20000`);
  for (const k of ['a', 'b', 'c', 'd']) assert.ok((counts.get(k) ?? 0) > 4000, `${k}: ${counts.get(k)}`);
});

test('least-request (p2c by pending) avoids the endpoint with the most tries in flight', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('least-request', { clock, random: seededRandom(3) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  for (let i = 0; i < 3; i++) lb.get('a')!.start();
  for (let i = 0; i < 50; i++) assert.equal(lb.pick()!.key, 'b');
  // in a run: the slow endpoint's share equals its pending capacity, far above p2c-ewma's
  const lb2 = createBalancer('least-request', { clock, random: seededRandom(4), accrual: false });
  lb2.setEndpoints(['a', 'b', 'c', 'd', 'slow'].map((key) => ({ key })));
  const counts = simulate(lb2, clock, 20_000, 1, (k) => (k === 'slow' ? 200 : 20));
  const slow = counts.get('slow') ?? 0;
  assert.ok(slow > 0 && slow < 20_000 * 0.2, `slow got ${slow}`);
});

test('p2c with equal weights never draws the same endpoint twice', () => {
  // two endpoints, one terrible: with distinct candidates it is never forced
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(5) });
  lb.setEndpoints([{ key: 'good' }, { key: 'bad' }]);
  lb.get('bad')!.start().end({ ok: true, latencyMs: 5000 });
  for (let i = 0; i < 1000; i++) assert.equal(lb.pick()!.key, 'good');
});

test('p2c with unequal weights: shares follow weights when costs are equal', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(6) });
  lb.setEndpoints([{ key: 'a', weight: 1 }, { key: 'b', weight: 3 }, { key: 'c', weight: 6 }]);
  const n = 100_000;
  const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < n; i++) counts[lb.pick()!.key]!++; // no start(): costs stay equal
  const expected: Record<string, number> = { a: 0.1 * n, b: 0.3 * n, c: 0.6 * n };
  let chi2 = 0;
  for (const k of ['a', 'b', 'c']) chi2 += (counts[k]! - expected[k]!) ** 2 / expected[k]!;
  assert.ok(chi2 < 13.8, `chi2 ${chi2} (df 2, p=0.001 → 13.8) counts ${JSON.stringify(counts)}`);
});

test('p2c with unequal weights still steers away from a slow endpoint', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(7), accrual: false });
  lb.setEndpoints([{ key: 'a', weight: 2 }, { key: 'b', weight: 2 }, { key: 'c', weight: 1 }, { key: 'slow', weight: 1 }]);
  const counts = simulate(lb, clock, 20_000, 1, (k) => (k === 'slow' ? 1000 : 20));
  const slow = counts.get('slow') ?? 0;
  // only forced picks (both draws = slow, (1/6)² ≈ 2.8 %) reach it, far below its 1/6 weight share
  assert.ok(slow < 20_000 * 0.04, `slow got ${slow}`);
});

test('weight 0 gets no traffic while others are ready', () => {
  for (const kind of ['p2c-ewma', 'least-request', 'round-robin', 'random'] as const) {
    const lb = createBalancer(kind, { clock: new VirtualClock(0), random: seededRandom(8) });
    lb.setEndpoints([{ key: 'a', weight: 1 }, { key: 'zero', weight: 0 }, { key: 'b', weight: 2 }]);
    for (let i = 0; i < 1000; i++) assert.notEqual(lb.pick()!.key, 'zero', kind);
    lb.setEndpoints([{ key: 'zero', weight: 0 }]);
    assert.equal(lb.pick()!.key, 'zero', `${kind}: all-zero weights still route`);
  }
});

test('pickUntried: a retry gets an endpoint it has not tried, whatever the balancer, while one is ready', () => {
  for (const kind of ['p2c-ewma', 'least-request', 'round-robin', 'random'] as const) {
    const lb = createBalancer(kind, { random: seededRandom(7) });
    lb.setEndpoints([{ key: 'a' }, { key: 'b' }, { key: 'c' }]);
    // 'a' looks cheapest (the impostor case: it fails fast, so it is never busy).
    for (let i = 0; i < 200; i++) {
      const tried = new Set(['a']);
      const next = lb.pickUntried(tried)!;
      assert.notEqual(next.key, 'a', kind);
      tried.add(next.key);
      const third = lb.pickUntried(tried)!;
      assert.ok(!tried.has(third.key), kind);
      tried.add(third.key);
      assert.equal(lb.pickUntried(tried), undefined, `${kind}: every endpoint tried`);
    }
  }
});
