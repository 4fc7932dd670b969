import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLbSim } from '../../../bench/lb-sim.js';

// Regression guard for the classic experiment (see bench/lb-sim.ts and docs/traffic.md).
test('lb-sim: p2c-ewma keeps ≥ 99.95 % success; least-request ≈ 99 %; round robin ≈ 95 %', () => {
  const p2c = runLbSim('p2c-ewma', { seed: 1, accrual: true });
  assert.ok(p2c.successPct >= 99.95, `p2c-ewma ${p2c.successPct}`);
  assert.ok(p2c.p999Ms < 1000, `p2c-ewma p99.9 ${p2c.p999Ms}`);
  const lr = runLbSim('least-request', { seed: 1, accrual: false });
  assert.ok(lr.successPct > 98.5 && lr.successPct < 99.5, `least-request ${lr.successPct}`);
  const rr = runLbSim('round-robin', { seed: 1, accrual: false });
  assert.ok(rr.successPct > 94.5 && rr.successPct < 96, `round-robin ${rr.successPct}`);
});

test('lb-sim is deterministic for a seed', () => {
  const params = { durationMs: 20_000, slowFromMs: 5_000, slowUntilMs: 15_000 };
  assert.deepEqual(runLbSim('p2c-ewma', { seed: 9, accrual: true, params }), runLbSim('p2c-ewma', { seed: 9, accrual: true, params }));
});
