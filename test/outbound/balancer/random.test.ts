import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import { AliasTable, createBalancer, seededRandom } from '../../../src/outbound/balancer/index.js';

function chi2(counts: number[], probs: number[], n: number): number {
  return counts.reduce((acc, c, i) => acc + (c - probs[i]! * n) ** 2 / (probs[i]! * n), 0);
}

test('seededRandom is deterministic and uniform-ish', () => {
  const a = seededRandom(123);
  const b = seededRandom(123);
  for (let i = 0; i < 100; i++) assert.equal(a(), b());
  const r = seededRandom(9);
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]!++;
  }
  assert.ok(chi2(bins, new Array<number>(10).fill(0.1), 100_000) < 27.9); // df 9, p = 0.001
});

test('alias table samples in proportion to weights', () => {
  const weights = [1, 2, 3, 4, 0, 10];
  const t = new AliasTable(weights);
  const r = seededRandom(1);
  const n = 200_000;
  const counts = new Array<number>(weights.length).fill(0);
  for (let i = 0; i < n; i++) counts[t.sample(r())]!++;
  assert.equal(counts[4], 0, 'weight 0 never drawn');
  const total = 20;
  const probs = weights.map((w) => w / total).filter((p) => p > 0);
  const observed = counts.filter((_, i) => weights[i]! > 0);
  assert.ok(chi2(observed, probs, n) < 20.5, `chi2 ${chi2(observed, probs, n)}`); // df 4, p = 0.0004
  assert.throws(() => new AliasTable([0, 0]), RangeError);
});

test('random balancer honours weights (chi-square, fixed seed)', () => {
  const lb = createBalancer('random', { clock: new VirtualClock(0), random: seededRandom(77) });
  lb.setEndpoints([{ key: 'a', weight: 1 }, { key: 'b', weight: 2 }, { key: 'c', weight: 7 }]);
  const n = 100_000;
  const idx: Record<string, number> = { a: 0, b: 1, c: 2 };
  const counts = [0, 0, 0];
  for (let i = 0; i < n; i++) counts[idx[lb.pick()!.key]!]!++;
  const x = chi2(counts, [0.1, 0.2, 0.7], n);
  assert.ok(x < 13.8, `chi2 ${x} counts ${counts.join(',')}`);
});

test('random balancer with equal weights is uniform', () => {
  const lb = createBalancer('random', { clock: new VirtualClock(0), random: seededRandom(78) });
  const keys = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:80`);
  lb.setEndpoints(keys.map((key) => ({ key })));
  const n = 100_000;
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = lb.pick()!.key;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const x = chi2(keys.map((k) => counts.get(k) ?? 0), new Array<number>(10).fill(0.1), n);
  assert.ok(x < 27.9, `chi2 ${x}`);
});
