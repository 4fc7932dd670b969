import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_MAX_MS, backoffDelay } from '../../../src/control-plane/linkerd/backoff.js';

test('the reconnect backoff: 1 s doubling to 30 s, jitter adding up to 20 % but never past 30 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelay(n, () => 0)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffDelay(0, () => 0.999999), 1000 * (1 + 0.2 * 0.999999));
  assert.equal(backoffDelay(4, () => 0.5), 16000 * 1.1);
  assert.equal(backoffDelay(5, () => 0.99), BACKOFF_MAX_MS, '30 s + jitter stays 30 s');
  assert.equal(backoffDelay(1e9, () => 0.5), BACKOFF_MAX_MS);
});
