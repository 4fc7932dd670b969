import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../src/clock.js';
import { createBalancer, seededRandom } from '../../../src/outbound/balancer/index.js';

test('round-robin cycles through the endpoints in order, from a random offset', () => {
  const lb = createBalancer('round-robin', { clock: new VirtualClock(0), random: seededRandom(1) });
  const keys = ['a', 'b', 'c', 'd'];
  lb.setEndpoints(keys.map((key) => ({ key })));
  const seq = Array.from({ length: 12 }, () => lb.pick()!.key);
  const start = keys.indexOf(seq[0]!);
  seq.forEach((k, i) => assert.equal(k, keys[(start + i) % 4]));
  // different seeds start at different places
  const starts = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const l = createBalancer('round-robin', { clock: new VirtualClock(0), random: seededRandom(seed) });
    l.setEndpoints(keys.map((key) => ({ key })));
    starts.add(l.pick()!.key);
  }
  assert.ok(starts.size > 1);
});

test('weighted round-robin gives each endpoint exactly its weight per cycle, interleaved', () => {
  const lb = createBalancer('round-robin', { clock: new VirtualClock(0), random: seededRandom(2) });
  lb.setEndpoints([{ key: 'a', weight: 3 }, { key: 'b', weight: 1 }, { key: 'c', weight: 2 }]);
  for (let cycle = 0; cycle < 50; cycle++) {
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    const seq: string[] = [];
    for (let i = 0; i < 6; i++) {
      const k = lb.pick()!.key;
      counts[k]!++;
      seq.push(k);
    }
    assert.deepEqual(counts, { a: 3, b: 1, c: 2 }, `cycle ${cycle}: ${seq.join('')}`);
    // earliest deadline first: a due at 1/3, 2/3, 1; c at 1/2, 1; b at 1; ties in list order
    assert.equal(seq.join(''), 'acaabc');
  }
  // interleaving: 'a' never runs 3 times in a row within a cycle of 3:1:2
  const lb2 = createBalancer('round-robin', { clock: new VirtualClock(0), random: seededRandom(2) });
  lb2.setEndpoints([{ key: 'a', weight: 3 }, { key: 'b', weight: 1 }, { key: 'c', weight: 2 }]);
  const seq = Array.from({ length: 6 }, () => lb2.pick()!.key).join('');
  assert.ok(!seq.includes('aaa'), seq);
});

test('weighted round-robin with non-integer weights keeps proportions', () => {
  const lb = createBalancer('round-robin', { clock: new VirtualClock(0), random: seededRandom(3) });
  lb.setEndpoints([{ key: 'a', weight: 0.5 }, { key: 'b', weight: 1.5 }]);
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 4000; i++) counts[lb.pick()!.key]!++;
  assert.ok(Math.abs(counts.a! - 1000) <= 1 && Math.abs(counts.b! - 3000) <= 1, JSON.stringify(counts));
});

test('round-robin skips ejected endpoints', () => {
  const clock = new VirtualClock(0);
  const lb = createBalancer('round-robin', { clock, random: seededRandom(4) });
  lb.setEndpoints([{ key: 'a' }, { key: 'b' }, { key: 'c' }]);
  for (let i = 0; i < 7; i++) lb.get('b')!.start().end({ ok: false, failure: 'connect' });
  assert.equal(lb.get('b')!.snapshot().state, 'ejected');
  for (let i = 0; i < 100; i++) assert.notEqual(lb.pick()!.key, 'b');
});
