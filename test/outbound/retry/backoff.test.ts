import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff, backoffCap, penaltyBackoff, DEFAULT_BACKOFF_SETTINGS } from '../../../src/outbound/retry/index.js';
import { seededRandom } from '../../../src/outbound/balancer/index.js';

test('defaults: 25 ms base, 250 ms max, ×2', () => {
  assert.deepEqual({ ...DEFAULT_BACKOFF_SETTINGS }, { baseMs: 25, maxMs: 250, multiplier: 2 });
});

test('the cap grows exponentially and stops at maxMs', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 100, 5000].map((a) => backoffCap(a, 25, 250, 2)), [25, 50, 100, 200, 250, 250, 250, 250]);
  assert.equal(backoffCap(0, 25, 250, 2), 25, 'attempt < 1 is treated as 1');
});

test('full jitter: uniform in [0, cap), bounds hold', () => {
  assert.equal(backoff(3, { random: () => 0 }), 0);
  assert.equal(backoff(3, { random: () => 0.5 }), 50);
  assert.ok(backoff(3, { random: () => 0.999999 }) < 100);
  const r = seededRandom(11);
  for (let attempt = 1; attempt <= 8; attempt++) {
    const cap = backoffCap(attempt, 25, 250, 2);
    let sum = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const d = backoff(attempt, { random: r });
      assert.ok(d >= 0 && d < cap, `attempt ${attempt}: ${d}`);
      sum += d;
    }
    assert.ok(Math.abs(sum / n - cap / 2) < cap * 0.03, `mean ≈ cap/2 for attempt ${attempt}`);
  }
  assert.equal(backoff(2, { baseMs: 100, maxMs: 1000, multiplier: 3, random: () => 0.5 }), 150);
});

test('penalty backoff: [p, 1.5 p] with p = min · 2^(n−1), within [min, max]', () => {
  const s = { minMs: 1000, maxMs: 60_000, jitterRatio: 0.5 };
  assert.equal(penaltyBackoff(1, s, () => 0), 1000);
  assert.equal(penaltyBackoff(1, s, () => 0.999999) < 1500, true);
  assert.equal(penaltyBackoff(3, s, () => 0.5), 5000);
  assert.equal(penaltyBackoff(6, s, () => 0.99), 32_000 + 32_000 * 0.5 * 0.99);
  assert.equal(penaltyBackoff(7, s, () => 0), 60_000);
  assert.equal(penaltyBackoff(50, s, () => 0.99), 60_000);
  assert.equal(penaltyBackoff(1e6, s, () => 0.5), 60_000, 'no overflow');
});
