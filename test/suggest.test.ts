import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, didYouMean, editDistance } from '../src/suggest.js';
import { isSingleLabel } from '../src/outbound/router.js';

test('edit distance counts a swap of neighbours as one edit', () => {
  assert.equal(editDistance('paymnets', 'payments'), 1);
  assert.equal(editDistance('strcit', 'strict'), 1);
  assert.equal(editDistance('egres', 'egress'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('closest offers a name only when it is close for its length', () => {
  assert.equal(closest('paymnets', ['ledger', 'payments', 'orders']), 'payments');
  assert.equal(closest('PAYMENTS', ['payments']), 'payments', 'case is not a difference');
  assert.equal(closest('zzz', ['payments', 'orders']), undefined);
  assert.equal(closest('ab', ['xy']), undefined, 'two edits in two letters is not a typo');
  assert.equal(closest('a', ['b']), 'b', 'one edit is always allowed');
  assert.equal(closest('x', []), undefined);
  assert.equal(didYouMean('srvice', ['service']), ' (did you mean "service"?)');
  assert.equal(didYouMean('qqqqqq', ['service']), '');
});

test('single-label host names: what a mesh service is called, not localhost nor an IP literal', () => {
  for (const h of ['payments', 'paymnets', 'payments.', 'a', 'xn--bcher-kva']) assert.equal(isSingleLabel(h), true, h);
  for (const h of ['localhost', 'LOCALHOST', 'localhost.', 'payments.default', 'example.com', '127.0.0.1', '[::1]', '[fe80::1]', '', '.']) {
    assert.equal(isSingleLabel(h), false, h);
  }
});

test('a word far longer than every candidate is not compared letter by letter', () => {
  const started = performance.now();
  assert.equal(closest('x'.repeat(2_000_000), ['service', 'namespace']), undefined);
  assert.ok(performance.now() - started < 150, 'skipped by length (comparing would take ~300 ms)');
});
