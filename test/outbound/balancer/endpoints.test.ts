import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import { ConfigError } from '../../../src/errors.js';
import { createBalancer, seededRandom, BALANCER_KINDS } from '../../../src/outbound/balancer/index.js';

test('setEndpoints keeps the state of endpoints that remain', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(1) });
  assert.deepEqual(lb.setEndpoints([{ key: 'a' }, { key: 'b' }, { key: 'c' }]), { added: ['a', 'b', 'c'], removed: [], kept: [] });
  const a = lb.get('a')!;
  a.start().end({ ok: true, latencyMs: 400 });
  const inflight = a.start();
  for (let i = 0; i < 7; i++) lb.get('b')!.start().end({ ok: false });
  const diff = lb.setEndpoints([{ key: 'a', weight: 3 }, { key: 'b' }, { key: 'd' }]);
  assert.deepEqual(diff, { added: ['d'], removed: ['c'], kept: ['a', 'b'] });
  const sa = lb.get('a')!.snapshot();
  assert.equal(lb.get('a'), a, 'same handle');
  assert.equal(sa.ewmaMs, 400);
  assert.equal(sa.pending, 1);
  assert.equal(sa.requests, 1);
  assert.equal(sa.weight, 3, 'new weight taken');
  assert.equal(lb.get('b')!.snapshot().state, 'ejected', 'accrual kept');
  assert.equal(lb.get('c'), undefined);
  assert.equal(lb.get('d')!.snapshot().ewmaMs, 30, 'new endpoint starts at the default RTT');
  inflight.end({ ok: true, latencyMs: 10 });
  assert.equal(lb.get('a')!.snapshot().pending, 0);
  assert.equal(lb.size, 3);
});

test('tries in flight on a removed endpoint end harmlessly', () => {
  const lb = createBalancer('least-request', { clock: new VirtualClock(0), random: seededRandom(2) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }]);
  const t = lb.get('a')!.start();
  lb.setEndpoints([{ key: 'b' }]);
  t.end({ ok: false, failure: 'reset' });
  t.end({ ok: false, failure: 'reset' }); // idempotent
  assert.equal(lb.pick()!.key, 'b');
  assert.deepEqual(lb.stats().endpoints.map((e) => e.key), ['b']);
});

test('an empty list: pick returns undefined', () => {
  for (const kind of BALANCER_KINDS) {
    const lb = createBalancer(kind, { clock: new VirtualClock(0) });
    assert.equal(lb.pick(), undefined);
    lb.setEndpoints([{ key: 'a' }]);
    assert.equal(lb.pick()!.key, 'a');
    lb.setEndpoints([]);
    assert.equal(lb.pick(), undefined);
  }
});

test('invalid lists are refused with ConfigError and the old list stays', () => {
  const lb = createBalancer('random', { clock: new VirtualClock(0) });
  lb.setEndpoints([{ key: 'a' }]);
  assert.throws(() => lb.setEndpoints([{ key: 'x' }, { key: 'x' }]), (e: unknown) => e instanceof ConfigError && /duplicate/.test(e.message));
  assert.throws(() => lb.setEndpoints([{ key: 'y', weight: -1 }]), ConfigError);
  assert.throws(() => lb.setEndpoints([{ key: 'y', weight: Number.NaN }]), ConfigError);
  assert.equal(lb.pick()!.key, 'a');
  assert.throws(() => createBalancer('nope' as never), ConfigError);
  assert.throws(() => createBalancer('p2c-ewma', { ewma: { decayMs: -1 } }), ConfigError);
});

test('snapshot and stats carry what mesh.stats() needs', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('p2c-ewma', { clock, random: seededRandom(3) });
  lb.setEndpoints([{ key: '127.0.0.1:9001', weight: 2 }]);
  const ep = lb.pick()!;
  const t = ep.start();
  clock.advance(50);
  assert.equal(ep.snapshot().pending, 1);
  t.end({ ok: false, failure: 'status' }); // latency measured by the clock: 50 ms
  // a failure counts as max(50 ms, 2 × the estimate decayed to now: 30 × e^(-50/10000))
  assert.deepEqual(ep.snapshot(), {
    key: '127.0.0.1:9001', weight: 2, ewmaMs: 60 * Math.exp(-50 / 10_000), pending: 0, requests: 1, failures: 1,
    consecutiveFailures: 1, state: 'ready', ejections: 0,
  });
  const st = lb.stats();
  assert.equal(st.kind, 'p2c-ewma');
  assert.equal(st.ready, 1);
  assert.equal(st.endpoints.length, 1);
});
