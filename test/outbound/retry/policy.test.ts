import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import {
  retryDecision,
  retryPolicySettings,
  parseRetryAfter,
  isIdempotent,
  RetryBudget,
  Deadline,
  DEFAULT_RETRY_POLICY_SETTINGS,
} from '../../../src/outbound/retry/index.js';

const env = { random: () => 0.5, clock: new VirtualClock(Date.parse('2025-01-01T00:00:00Z')) };
const d = (input: Parameters<typeof retryDecision>[0], s = DEFAULT_RETRY_POLICY_SETTINGS) => retryDecision(input, s, env);

test('retryable: connect, reset, per-try timeout, 502/503/504', () => {
  for (const failure of ['connect', 'reset', 'timeout'] as const) {
    assert.deepEqual(d({ method: 'GET', attempt: 1, failure }), { retry: true, delayMs: 12.5, reason: 'retryable-failure' });
  }
  for (const status of [502, 503, 504]) assert.equal(d({ method: 'GET', attempt: 1, status }).reason, 'retryable-status');
  for (const status of [500, 501, 429, 404]) assert.equal(d({ method: 'GET', attempt: 1, status }).retry, false, `${status}`);
  assert.equal(d({ method: 'GET', attempt: 1, status: 500 }).reason, 'not-retryable-status');
  assert.equal(d({ method: 'GET', attempt: 1, status: 200 }).reason, 'success');
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'status', status: 503 }).retry, true);
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'status' }).reason, 'not-retryable-status');
});

test('idempotent methods only, except connect failures (nothing was sent)', () => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'get', 'Put']) assert.equal(isIdempotent(m), true, m);
  for (const m of ['POST', 'PATCH', 'CONNECT']) assert.equal(isIdempotent(m), false, m);
  assert.equal(d({ method: 'POST', attempt: 1, failure: 'reset' }).reason, 'method-not-idempotent');
  assert.equal(d({ method: 'POST', attempt: 1, status: 503 }).reason, 'method-not-idempotent');
  assert.equal(d({ method: 'POST', attempt: 1, failure: 'timeout' }).reason, 'method-not-idempotent');
  assert.equal(d({ method: 'POST', attempt: 1, failure: 'connect' }).retry, true);
  const strict = retryPolicySettings({ retryConnectFailuresForAnyMethod: false });
  assert.equal(d({ method: 'POST', attempt: 1, failure: 'connect' }, strict).reason, 'method-not-idempotent');
  const withPost = retryPolicySettings({ retryableMethods: ['get', 'post'] });
  assert.equal(d({ method: 'POST', attempt: 1, status: 503 }, withPost).retry, true);
});

test('body must be replayable; at most maxRetries retries', () => {
  assert.equal(d({ method: 'PUT', attempt: 1, failure: 'reset', bodyReplayable: false }).reason, 'body-not-replayable');
  assert.equal(d({ method: 'GET', attempt: 2, failure: 'reset' }).retry, true);
  assert.equal(d({ method: 'GET', attempt: 3, failure: 'reset' }).reason, 'max-retries');
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'reset' }, retryPolicySettings({ maxRetries: 0 })).reason, 'max-retries');
});

test('backoff grows with the attempt (full jitter)', () => {
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'reset' }).delayMs, 12.5);
  assert.equal(d({ method: 'GET', attempt: 2, failure: 'reset' }).delayMs, 25);
  const s = retryPolicySettings({ maxRetries: 10, backoff: { baseMs: 100 } });
  assert.equal(d({ method: 'GET', attempt: 5, failure: 'reset' }, s).delayMs, 125, 'capped at maxMs 250');
});

test('Retry-After: seconds', () => {
  const now = 1_000_000;
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter(['3', '5'], now), 3000);
});

test('Retry-After: HTTP-date in all three RFC 9110 forms', () => {
  const now = Date.parse('Sun, 06 Nov 1994 08:49:30 GMT');
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now), 7000);
  assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', now), 7000);
  assert.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994', now), 7000);
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:00 GMT', now), 0, 'a past date means now');
});

test('Retry-After: garbage is ignored', () => {
  for (const v of ['', 'soon', '-5', '1.5', '10s', '0x10', 'Sun, 06 Nov 1994', 'Sun, 32 Foo 1994 08:49:37 GMT', '99999999999999999999', undefined, null]) {
    assert.equal(parseRetryAfter(v as string | undefined, 0), undefined, String(v));
  }
  // ignored in a decision: the backoff applies
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': 'soon' } }).delayMs, 12.5);
});

test('Retry-After replaces the backoff; longer than the cap means no retry', () => {
  assert.deepEqual(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '2' } }), { retry: true, delayMs: 2000, reason: 'retryable-status' });
  const inFiveS = new Date(env.clock.now() + 5000).toUTCString();
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': inFiveS } }).delayMs, 5000);
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '10' } }).delayMs, 10_000, 'at the cap: honoured');
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '11' } }).reason, 'retry-after-too-long');
  const capped = retryPolicySettings({ maxRetryAfterMs: 1000 });
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '2' } }, capped).reason, 'retry-after-too-long');
  const ignore = retryPolicySettings({ honourRetryAfter: false });
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '60' } }, ignore).delayMs, 12.5);
});

test('the delay must fit before the deadline', () => {
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'reset', remainingMs: 10 }).reason, 'deadline');
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'reset', remainingMs: 13 }).retry, true);
  assert.equal(d({ method: 'GET', attempt: 1, status: 503, headers: { 'retry-after': '1' }, remainingMs: 900 }).reason, 'deadline');
});

test('the budget is consulted last and only for retries that would happen', () => {
  const clock = new VirtualClock(0);
  const budget = new RetryBudget({ minRetriesPerSecond: 0.1 }, clock); // reserve: 1 retry
  assert.equal(d({ method: 'POST', attempt: 1, failure: 'reset', budget }).reason, 'method-not-idempotent');
  assert.equal(budget.snapshot().balance, 1, 'not spent on a refusal');
  assert.equal(d({ method: 'GET', attempt: 1, failure: 'reset', budget }).retry, true);
  assert.deepEqual(d({ method: 'GET', attempt: 1, failure: 'reset', budget }), { retry: false, delayMs: 0, reason: 'budget-exhausted' });
});

test('settings validation and defaults', () => {
  assert.equal(DEFAULT_RETRY_POLICY_SETTINGS.maxRetries, 2);
  assert.deepEqual([...DEFAULT_RETRY_POLICY_SETTINGS.retryOnStatuses], [502, 503, 504]);
  assert.throws(() => retryPolicySettings({ maxRetries: -1 }), RangeError);
  assert.throws(() => retryPolicySettings({ backoff: { multiplier: 0.5 } }), RangeError);
  assert.equal(retryPolicySettings({ backoff: { maxMs: 1000 } }).backoff.baseMs, 25);
});

test('Deadline: remaining time and per-try timeouts', () => {
  const clock = new VirtualClock(1000);
  const none = new Deadline({}, clock);
  assert.equal(none.remainingMs(), Infinity);
  assert.equal(none.tryTimeoutMs(), undefined);
  assert.equal(none.expired(), false);
  const dl = new Deadline({ requestMs: 1000, perTryMs: 300 }, clock);
  assert.equal(dl.tryTimeoutMs(), 300);
  assert.equal(dl.perTryBound(), true);
  clock.advance(800);
  assert.equal(dl.remainingMs(), 200);
  assert.equal(dl.tryTimeoutMs(), 200);
  assert.equal(dl.perTryBound(), false, 'the request deadline binds: not retryable');
  clock.advance(500);
  assert.equal(dl.remainingMs(), 0);
  assert.equal(dl.expired(), true);
  assert.equal(new Deadline({ perTryMs: 50 }, clock).tryTimeoutMs(), 50);
  assert.equal(new Deadline({ requestMs: 70 }, clock).tryTimeoutMs(), 70);
});
