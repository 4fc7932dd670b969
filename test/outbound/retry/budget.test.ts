import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import { RetryBudget, DEFAULT_RETRY_BUDGET_SETTINGS } from '../../../src/outbound/retry/index.js';

function drain(b: RetryBudget): number {
  let n = 0;
  while (b.tryWithdraw()) n++;
  return n;
}

test('defaults are Linkerd’s: 20 % + 10/s over 10 s', () => {
  assert.deepEqual({ ...DEFAULT_RETRY_BUDGET_SETTINGS }, { retryRatio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000, slots: 10 });
});

test('exactly ratio × requests + min/s × window retries', () => {
  for (const requests of [0, 1, 4, 5, 15, 1000, 12_345]) {
    const b = new RetryBudget({}, new VirtualClock(0));
    for (let i = 0; i < requests; i++) b.deposit();
    assert.equal(drain(b), Math.floor(0.2 * requests + 1e-9) + 100, `${requests} requests`);
    assert.equal(b.canRetry(), false);
    assert.equal(b.snapshot().exhausted, true);
  }
  const c = new RetryBudget({ retryRatio: 0.5, minRetriesPerSecond: 2, windowMs: 5_000 }, new VirtualClock(0));
  for (let i = 0; i < 7; i++) c.deposit();
  assert.equal(drain(c), 3 + 10);
});

test('snapshot: balance, exhaustion and counters', () => {
  const b = new RetryBudget({}, new VirtualClock(0));
  for (let i = 0; i < 50; i++) b.deposit();
  assert.deepEqual(b.snapshot(), { balance: 110, exhausted: false, windowRequests: 50, windowRetries: 0, totalRequests: 50, totalRetries: 0, totalRejected: 0 });
  drain(b);
  const s = b.snapshot();
  assert.equal(s.balance, 0);
  assert.equal(s.exhausted, true);
  assert.equal(s.totalRetries, 110);
  assert.equal(s.totalRejected, 1);
});

test('the window slides: deposits and withdrawals expire after 10 s', () => {
  const clock = new VirtualClock(0);
  const b = new RetryBudget({ minRetriesPerSecond: 0 }, clock);
  for (let i = 0; i < 100; i++) b.deposit(); // slot 0
  clock.set(5_000);
  for (let i = 0; i < 100; i++) b.deposit(); // slot 5
  assert.equal(b.snapshot().balance, 40);
  clock.set(9_999);
  assert.equal(b.snapshot().balance, 40, 'slot 0 still inside the window');
  clock.set(10_000);
  assert.equal(b.snapshot().balance, 20, 'slot 0 expired');
  clock.set(15_000);
  assert.equal(b.snapshot().balance, 0, 'slot 5 expired');
});

test('exhaustion and recovery', () => {
  const clock = new VirtualClock(0);
  const b = new RetryBudget({}, clock);
  for (let i = 0; i < 100; i++) b.deposit();
  assert.equal(drain(b), 120);
  clock.advance(3_000);
  assert.equal(b.canRetry(), false, 'still exhausted inside the window');
  for (let i = 0; i < 5; i++) b.deposit();
  assert.equal(drain(b), 1, 'new traffic earns 20 %');
  clock.set(10_000);
  // the first slot's 100 deposits and 120 withdrawals expired together: the rest balance
  // reserve 100 + 0.2 × 5 − 1 = 100
  assert.equal(b.snapshot().balance, 100);
  clock.set(13_000);
  assert.equal(b.snapshot().balance, 100);
  assert.equal(drain(b), 100);
});

test('a long idle period clears everything, O(1)', () => {
  const clock = new VirtualClock(0);
  const b = new RetryBudget({}, clock);
  for (let i = 0; i < 10; i++) b.deposit();
  drain(b);
  clock.set(1e12);
  assert.equal(b.snapshot().balance, 100);
  clock.set(1e12 - 5_000); // a clock that goes backwards changes nothing
  assert.equal(b.snapshot().balance, 100);
});

test('invalid settings', () => {
  assert.throws(() => new RetryBudget({ retryRatio: -1 }), RangeError);
  assert.throws(() => new RetryBudget({ windowMs: 0 }), RangeError);
  assert.throws(() => new RetryBudget({ slots: 1.5 }), RangeError);
});
