import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLbSim } from '../../../bench/lb-sim.js';
import { VirtualClock } from '../../../src/clock.js';
import { createBalancer, seededRandom, type InFlight } from '../../../src/outbound/balancer/index.js';

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

/**
 * The traffic e2e test's scenario (test/outbound/e2e/traffic.e2e.test.ts) in virtual time, where a
 * loaded machine cannot move the numbers: three replicas on loopback, two answering in ~1–3 ms and
 * one 150 ms later, called by 10 workers in a closed loop (each sends its next request when the
 * last one returns); 60 requests of warm-up, then 2,000 counted.
 */
function slowReplicaShare(seed: number, slowExtraMs = 150): { share: number; picks: Record<string, number> } {
  const clock = new VirtualClock(0);
  const rng = seededRandom(seed);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(seed ^ 0x5bd1e995) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }, { key: 'slow' }]);
  const latency = (key: string) => 1 + 2 * rng() + (key === 'slow' ? slowExtraMs : 0);
  const picks: Record<string, number> = { a: 0, b: 0, slow: 0 };
  const inflight: Array<{ at: number; key: string; t: InFlight; ms: number }> = [];
  let sent = 0;
  const send = () => {
    const ep = lb.pick()!;
    if (sent++ >= 60) picks[ep.key]!++;
    const ms = latency(ep.key);
    inflight.push({ at: clock.now() + ms, key: ep.key, t: ep.start(), ms });
  };
  for (let w = 0; w < 10; w++) send();
  while (inflight.length > 0) {
    let i = 0;
    for (let j = 1; j < inflight.length; j++) if (inflight[j]!.at < inflight[i]!.at) i = j;
    const [done] = inflight.splice(i, 1);
    clock.set(done!.at);
    done!.t.end({ ok: true, latencyMs: done!.ms });
    if (sent < 2060) send();
  }
  return { share: picks.slow! / 2000, picks };
}

test('the slow replica of the traffic e2e scenario gets under 1 % of 2,000 requests after warm-up (about 0.2 %)', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { share, picks } = slowReplicaShare(seed);
    assert.ok(share < 0.01, `seed ${seed}: slow replica got ${picks.slow} of 2000 (${(share * 100).toFixed(2)} %)`);
    assert.equal(picks.a! + picks.b! + picks.slow!, 2000);
    assert.ok(Math.abs(picks.a! - picks.b!) < 300, `seed ${seed}: the fast replicas split the rest: ${picks.a} / ${picks.b}`);
  }
  // The measure can tell: without the slowdown the same replica gets about a third.
  const even = slowReplicaShare(1, 0);
  assert.ok(even.share > 0.25 && even.share < 0.42, `no slowdown: ${even.picks.slow} of 2000`);
  assert.deepEqual(slowReplicaShare(3), slowReplicaShare(3), 'deterministic for a seed');
});
