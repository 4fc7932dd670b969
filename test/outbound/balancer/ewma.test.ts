import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeakEwma, ewmaSettings, DEFAULT_EWMA_SETTINGS } from '../../../src/outbound/balancer/index.js';

const s = ewmaSettings();

test('defaults are linkerd2-proxy’s: 30 ms default RTT, 10 s decay', () => {
  assert.equal(DEFAULT_EWMA_SETTINGS.defaultRttMs, 30);
  assert.equal(DEFAULT_EWMA_SETTINGS.decayMs, 10_000);
  assert.equal(new PeakEwma(s, 0).get(0), 30);
});

test('a sample above the estimate replaces it at once (peak)', () => {
  const e = new PeakEwma(s, 0);
  e.observe(500, 1);
  assert.equal(e.get(1), 500);
});

test('a sample below the estimate blends in with weight exp(-Δt/τ)', () => {
  const e = new PeakEwma(s, 0);
  e.observe(1000, 0);
  e.observe(100, 10_000); // Δt = τ: w = e^-1
  const w = Math.exp(-1);
  assert.ok(Math.abs(e.get(10_000) - (1000 * w + 100 * (1 - w))) < 1e-9);
  // Δt = 0: the sample has no weight
  const f = new PeakEwma(s, 0);
  f.observe(1000, 5);
  f.observe(100, 5);
  assert.equal(f.get(5), 1000);
});

test('decay is by time, not by sample count', () => {
  const many = new PeakEwma(s, 0);
  many.observe(1000, 0);
  for (let t = 10; t <= 5000; t += 10) many.observe(100, t);
  const one = new PeakEwma(s, 0);
  one.observe(1000, 0);
  one.observe(100, 5000);
  assert.ok(Math.abs(many.get(5000) - one.get(5000)) < 1e-6, `${many.get(5000)} vs ${one.get(5000)}`);
});

test('read without samples decays toward 0 (an idle endpoint gets re-measured)', () => {
  const e = new PeakEwma(s, 0);
  e.observe(2000, 0);
  assert.ok(Math.abs(e.get(10_000) - 2000 * Math.exp(-1)) < 1e-9);
  assert.ok(e.get(60_000) < 10);
  // reading did not change the stored state
  assert.equal(e.get(0), 2000);
});

test('a failure counts as at least twice the estimate, capped', () => {
  const e = new PeakEwma(s, 0);
  e.observe(100, 0);
  e.observeFailure(1, 0); // fast failure: must not look fast
  assert.equal(e.get(0), 200);
  e.observeFailure(1500, 0); // slow failure: its latency counts
  assert.equal(e.get(0), 1500);
  for (let i = 0; i < 20; i++) e.observeFailure(0, 0);
  assert.equal(e.get(0), 10_000);
});

test('reset forgets the history', () => {
  const e = new PeakEwma(s, 0);
  e.observe(5000, 0);
  e.reset(20, 100);
  assert.equal(e.get(100), 20);
});

test('settings are validated', () => {
  assert.throws(() => ewmaSettings({ decayMs: 0 }), RangeError);
  assert.throws(() => ewmaSettings({ failurePenaltyFactor: 0.5 }), RangeError);
  assert.equal(ewmaSettings({ decayMs: undefined }).decayMs, 10_000);
});
