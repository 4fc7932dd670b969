import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/clock.js';
import { createBalancer, seededRandom, type StateChange } from '../../src/outbound/balancer/index.js';
import {
  EndpointAccrual,
  failureAccrualSettings,
  DEFAULT_FAILURE_ACCRUAL_SETTINGS,
} from '../../src/outbound/balancer/failure-accrual.js';

function fail(lb: ReturnType<typeof createBalancer>, key: string, n: number) {
  for (let i = 0; i < n; i++) lb.get(key)!.start().end({ ok: false, failure: 'connect' });
}

test('defaults are Linkerd’s: 7 failures, 1 s … 60 s, jitter 0.5', () => {
  assert.deepEqual({ ...DEFAULT_FAILURE_ACCRUAL_SETTINGS }, { consecutiveFailures: 7, minMs: 1000, maxMs: 60_000, jitterRatio: 0.5 });
  assert.throws(() => failureAccrualSettings({ consecutiveFailures: 0 }), RangeError);
  assert.throws(() => failureAccrualSettings({ minMs: 10, maxMs: 5 }), RangeError);
});

test('7 consecutive failures eject; a success in between resets the count', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(1) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 6);
  lb.get('a')!.start().end({ ok: true, latencyMs: 5 });
  fail(lb, 'a', 6);
  assert.equal(lb.get('a')!.snapshot().state, 'ready');
  assert.equal(lb.get('a')!.snapshot().consecutiveFailures, 6);
  fail(lb, 'a', 1);
  const s = lb.get('a')!.snapshot();
  assert.equal(s.state, 'ejected');
  assert.equal(s.ejections, 1);
  assert.ok(s.probeAt! >= 1000 && s.probeAt! <= 1500, `first penalty in [1 s, 1.5 s]: ${s.probeAt}`);
  for (let i = 0; i < 200; i++) assert.equal(lb.pick()!.key, 'b');
  assert.equal(lb.stats().ejected, 1);
});

test('after the penalty one probe is admitted; success readmits and resets the penalty', () => {
  const clock = new VirtualClock(0);
  const changes: StateChange[] = [];
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(2), onStateChange: (c) => changes.push(c) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 7);
  const probeAt = lb.get('a')!.snapshot().probeAt!;
  clock.set(probeAt - 1);
  assert.equal(lb.pick()!.key, 'b');
  clock.set(probeAt);
  const probe = lb.pick()!;
  assert.equal(probe.key, 'a', 'the next request is the probe');
  assert.equal(probe.snapshot().state, 'probing');
  const t = probe.start();
  assert.equal(t.probe, true);
  // while the probe is in flight, nothing else goes to a
  for (let i = 0; i < 100; i++) assert.equal(lb.pick()!.key, 'b');
  clock.advance(20);
  t.end({ ok: true });
  const s = lb.get('a')!.snapshot();
  assert.equal(s.state, 'ready');
  assert.equal(s.ewmaMs, 20, 'history reset to the probe latency');
  assert.deepEqual(changes.map((c) => `${c.key}:${c.from}->${c.to}`), ['a:ready->ejected', 'a:ejected->probing', 'a:probing->ready']);
  assert.ok(changes[0]!.penaltyMs! >= 1000);
  // the streak was reset: the next ejection starts again at 1 s
  fail(lb, 'a', 7);
  const pen = lb.get('a')!.snapshot().probeAt! - clock.now();
  assert.ok(pen >= 1000 && pen <= 1500, `penalty ${pen}`);
});

test('a failed probe ejects again with a longer penalty, growing to a 60 s cap', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('round-robin', { clock, random: seededRandom(3) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 7);
  const penalties: number[] = [];
  penalties.push(lb.get('a')!.snapshot().probeAt! - clock.now());
  for (let k = 0; k < 10; k++) {
    clock.set(lb.get('a')!.snapshot().probeAt!);
    const p = lb.pick()!;
    assert.equal(p.key, 'a');
    p.start().end({ ok: false, failure: 'reset' });
    const s = lb.get('a')!.snapshot();
    assert.equal(s.state, 'ejected');
    penalties.push(s.probeAt! - clock.now());
  }
  // k-th ejection: [min(60 s, 2^(k-1) s), min(60 s, 1.5 × 2^(k-1) s)]
  penalties.forEach((p, i) => {
    const base = Math.min(60_000, 1000 * 2 ** i);
    assert.ok(p >= base && p <= Math.min(60_000, base * 1.5), `penalty ${i + 1}: ${p}`);
  });
  assert.equal(penalties.at(-1), 60_000);
  assert.equal(lb.get('a')!.snapshot().ejections, 11);
});

test('never ejects the last ready endpoint', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(4) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 7);
  fail(lb, 'b', 30);
  assert.equal(lb.get('a')!.snapshot().state, 'ejected');
  assert.equal(lb.get('b')!.snapshot().state, 'ready');
  assert.equal(lb.get('b')!.snapshot().consecutiveFailures, 30);
  assert.equal(lb.pick()!.key, 'b');
  // a single endpoint is never ejected
  const one = createBalancer('p2c-ewma', { clock, random: seededRandom(5) });
  one.setEndpoints([{ key: 'x' }]);
  fail(one, 'x', 100);
  assert.equal(one.get('x')!.snapshot().state, 'ready');
});

test('late outcomes of tries started before an ejection do not change it', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(6) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  const late = lb.get('a')!.start();
  fail(lb, 'a', 7);
  late.end({ ok: true });
  assert.equal(lb.get('a')!.snapshot().state, 'ejected');
  assert.equal(lb.get('a')!.snapshot().pending, 0);
});

test('panic: when nothing is ready (the ready one was removed), a non-ready endpoint is used', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(7) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 7);
  lb.setEndpoints([{ key: 'a' }]);
  const p = lb.pick()!;
  assert.equal(p.key, 'a');
  assert.equal(lb.stats().panicPicks, 1);
  const t = p.start();
  assert.equal(t.probe, true);
  t.end({ ok: true, latencyMs: 3 });
  assert.equal(lb.get('a')!.snapshot().state, 'ready');
});

test('accrual: false never ejects', () => {
  const lb = createBalancer('p2c-ewma', { clock: new VirtualClock(0), random: seededRandom(8), accrual: false });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  fail(lb, 'a', 50);
  assert.equal(lb.get('a')!.snapshot().state, 'ready');
});

test('EndpointAccrual alone: the state machine', () => {
  const a = new EndpointAccrual(failureAccrualSettings({ consecutiveFailures: 2, jitterRatio: 0 }), () => 0.5);
  assert.equal(a.record(false, false, 0, () => true), 'none');
  assert.equal(a.record(false, false, 0, () => true), 'ejected');
  assert.equal(a.probeAt, 1000);
  assert.equal(a.poll(999), false);
  assert.equal(a.poll(1000), true);
  assert.equal(a.state, 'probing');
  assert.equal(a.record(false, true, 1000, () => true), 'ejected');
  assert.equal(a.probeAt, 3000);
  a.poll(3000);
  assert.equal(a.record(true, true, 3000, () => true), 'readmitted');
  assert.equal(a.record(false, false, 3000, () => false), 'none');
  assert.equal(a.record(false, false, 3000, () => false), 'kept');
});
