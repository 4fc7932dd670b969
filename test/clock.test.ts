// The Clock boundary: VirtualClock runs timers exactly (order, cancel, nesting, set, intervals,
// async work between timers); systemClock wraps Node's timers, unref()ed unless asked, and waits
// beyond Node's 2^31 − 1 ms limit without firing early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMER_MS, VirtualClock, systemClock } from '../src/clock.js';
import { run } from './e2e/process.js';

test('VirtualClock: now() moves only when told; advance and set as before', () => {
  const c = new VirtualClock(1_000);
  assert.equal(c.now(), 1_000);
  c.advance(250);
  assert.equal(c.now(), 1_250);
  c.set(5_000);
  assert.equal(c.now(), 5_000);
  c.advance(-1_000);
  assert.equal(c.now(), 4_000, 'a clock may be moved back');
  assert.equal(new VirtualClock().now(), 0);
});

test('VirtualClock: due timers fire in time order, ties in scheduling order, with now() at their due time', () => {
  const c = new VirtualClock(0);
  const fired: Array<[string, number]> = [];
  const at = (name: string) => () => void fired.push([name, c.now()]);
  c.setTimeout(at('c'), 30);
  c.setTimeout(at('a'), 10);
  c.setTimeout(at('b1'), 20);
  c.setTimeout(at('b2'), 20);
  c.setTimeout(at('late'), 31);
  c.advance(29);
  assert.deepEqual(fired, [['a', 10], ['b1', 20], ['b2', 20]]);
  assert.equal(c.now(), 29);
  c.advance(1);
  assert.deepEqual(fired.at(-1), ['c', 30], 'a timer fires when the clock reaches its due time exactly');
  assert.deepEqual(c.pending(), [31]);
  c.advance(100);
  assert.deepEqual(fired.map(([n]) => n), ['a', 'b1', 'b2', 'c', 'late']);
  assert.deepEqual(c.pending(), []);
});

test('VirtualClock: a cancelled timer never fires; cancel is idempotent, and harmless after firing', () => {
  const c = new VirtualClock(0);
  let n = 0;
  const t = c.setTimeout(() => n++, 10);
  const u = c.setTimeout(() => n++, 10);
  t.cancel();
  t.cancel();
  assert.deepEqual(c.pending(), [10]);
  c.advance(10);
  assert.equal(n, 1);
  u.cancel();
  c.advance(1_000);
  assert.equal(n, 1);
  // A timer cancelled by one firing just before it, in the same advance.
  let hit = false;
  const victim = c.setTimeout(() => (hit = true), 20);
  c.setTimeout(() => victim.cancel(), 10);
  c.advance(50);
  assert.equal(hit, false);
});

test('VirtualClock: a timer scheduled by a timer fires in the same advance when it falls due in it', () => {
  const c = new VirtualClock(0);
  const fired: number[] = [];
  c.setTimeout(() => {
    fired.push(c.now());
    c.setTimeout(() => {
      fired.push(c.now());
      c.setTimeout(() => fired.push(c.now()), 100); // due at 115: beyond this advance
    }, 5);
  }, 10);
  c.advance(20);
  assert.deepEqual(fired, [10, 15]);
  assert.deepEqual(c.pending(), [115]);
  // A zero delay, scheduled by a timer, runs after it, at the same time.
  c.setTimeout(() => c.setTimeout(() => fired.push(c.now()), 0), 1);
  c.advance(1);
  assert.deepEqual(fired, [10, 15, 21]);
});

test('VirtualClock: set() fires what falls due on the way; moving back fires nothing', () => {
  const c = new VirtualClock(100);
  const fired: number[] = [];
  c.setTimeout(() => fired.push(c.now()), 50); // due at 150
  c.set(149);
  assert.deepEqual(fired, []);
  c.set(50);
  assert.deepEqual(fired, [], 'back in time: nothing');
  assert.deepEqual(c.pending(), [150], 'due times are absolute');
  c.set(10_000);
  assert.deepEqual(fired, [150]);
  assert.equal(c.now(), 10_000);
});

test('VirtualClock: jump() is a frozen process: time passes, no timer runs; the overdue ones run late, in order, on thaw', () => {
  const c = new VirtualClock(0);
  const fired: Array<[string, number]> = [];
  c.setTimeout(() => fired.push(['b', c.now()]), 20);
  c.setTimeout(() => fired.push(['a', c.now()]), 10);
  c.setTimeout(() => fired.push(['later', c.now()]), 5_000);
  c.jump(1_000);
  assert.equal(c.now(), 1_000);
  assert.deepEqual(fired, []);
  assert.deepEqual(c.pending(), [10, 20, 5_000]);
  c.advance(0);
  assert.deepEqual(fired, [['a', 1_000], ['b', 1_000]], 'overdue timers see the time they run at, as Node\'s do after a freeze');
  c.advance(4_000);
  assert.deepEqual(fired.at(-1), ['later', 5_000]);
});

test('VirtualClock: negative, NaN and fractional delays; Infinity never fires', () => {
  const c = new VirtualClock(0);
  const fired: string[] = [];
  c.setTimeout(() => fired.push('neg'), -5);
  c.setTimeout(() => fired.push('nan'), Number.NaN);
  c.setTimeout(() => fired.push('never'), Infinity);
  c.setTimeout(() => fired.push('half'), 0.5);
  assert.deepEqual(c.pending(), [0, 0, 0.5]);
  c.advance(0);
  assert.deepEqual(fired, ['neg', 'nan']);
  c.advance(1e12);
  assert.deepEqual(fired, ['neg', 'nan', 'half']);
});

test('VirtualClock: intervals fire once per period until cancelled (a 0 ms interval is 1 ms, not a spin)', () => {
  const c = new VirtualClock(0);
  const ticks: number[] = [];
  const iv = c.setInterval(() => ticks.push(c.now()), 100);
  c.advance(350);
  assert.deepEqual(ticks, [100, 200, 300]);
  c.advance(50);
  assert.deepEqual(ticks, [100, 200, 300, 400]);
  iv.cancel();
  c.advance(1_000);
  assert.equal(ticks.length, 4);
  let n = 0;
  const zero = c.setInterval(() => n++, 0);
  c.advance(10);
  assert.equal(n, 10);
  zero.cancel();
  // An interval that cancels itself from its own callback.
  let k = 0;
  const self = c.setInterval(() => {
    if (++k === 3) self.cancel();
  }, 10);
  c.advance(1_000);
  assert.equal(k, 3);
  assert.deepEqual(c.pending(), []);
});

test('VirtualClock: a timer that re-arms itself with no delay is reported, not an endless loop', () => {
  const c = new VirtualClock(0);
  const spin = () => void c.setTimeout(spin, 0);
  c.setTimeout(spin, 1);
  assert.throws(() => c.advance(10), /100000 timers fired at 1 ms without the clock moving; a timer keeps re-arming itself without a delay/);
  // Many firings over time are fine: a 1 ms interval across 200 s.
  const d = new VirtualClock(0);
  let n = 0;
  d.setInterval(() => n++, 1);
  d.advance(200_000);
  assert.equal(n, 200_000);
});

test('VirtualClock: a timer that throws stops the move there, and the error reaches the caller', () => {
  const c = new VirtualClock(0);
  let after = false;
  c.setTimeout(() => {
    throw new Error('boom');
  }, 10);
  c.setTimeout(() => (after = true), 20);
  assert.throws(() => c.advance(100), /boom/);
  assert.equal(c.now(), 10);
  assert.equal(after, false);
  c.advance(90);
  assert.equal(after, true);
});

test('VirtualClock: hostile moves are refused, saying why (NaN, Infinity, a move from inside a timer, an unawaited advanceAsync)', async () => {
  const c = new VirtualClock(0);
  c.setInterval(() => {}, 10);
  for (const bad of [Number.NaN, Infinity, -Infinity]) {
    assert.throws(() => c.advance(bad), RangeError);
    assert.throws(() => c.set(bad), RangeError);
    assert.throws(() => c.jump(bad), RangeError);
    await assert.rejects(c.advanceAsync(bad), RangeError);
  }
  assert.equal(c.now(), 0, 'nothing moved');
  c.setTimeout(() => c.advance(5), 5);
  assert.throws(() => c.advance(10), /already moving \(advance\/set called from a timer/);
  c.advance(0); // the clock is usable again
  const d = new VirtualClock(0);
  d.setTimeout(() => new Promise((r) => setTimeout(r, 5)), 1);
  const first = d.advanceAsync(10);
  assert.throws(() => d.advance(1), /already moving .*advanceAsync\/setAsync not awaited/);
  await first;
  assert.equal(d.now(), 10);
});

test('VirtualClock.advanceAsync: awaits each timer\'s work before the next, so async chains run in order', async () => {
  const c = new VirtualClock(0);
  const log: string[] = [];
  c.setTimeout(async () => {
    log.push(`start ${c.now()}`);
    await new Promise((r) => setTimeout(r, 5)); // real async work (I/O, crypto)
    log.push('done');
    c.setTimeout(() => log.push(`follow-up ${c.now()}`), 10); // scheduled when the work ended: due at 20
  }, 10);
  c.setTimeout(() => log.push(`second ${c.now()}`), 15);
  await c.advanceAsync(30);
  assert.deepEqual(log, ['start 10', 'done', 'second 15', 'follow-up 20']);
  assert.equal(c.now(), 30);

  const sync = new VirtualClock(0);
  const order: string[] = [];
  sync.setTimeout(async () => {
    await new Promise((r) => setTimeout(r, 5));
    order.push('work');
  }, 1);
  sync.advance(10); // the plain advance does not wait
  order.push('advanced');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['advanced', 'work']);
});

test('VirtualClock.setAsync and a rejected timer', async () => {
  const c = new VirtualClock(0);
  c.setTimeout(() => Promise.reject(new Error('the work failed')), 10);
  await assert.rejects(c.setAsync(100), /the work failed/);
  assert.equal(c.now(), 10);
  await c.setAsync(100);
  assert.equal(c.now(), 100);
});

test('systemClock: timeouts and intervals fire, cancel stops them', async () => {
  assert.ok(Math.abs(systemClock.now() - Date.now()) <= 1);
  const fired = await new Promise<number>((resolve) => {
    const t0 = Date.now();
    systemClock.setTimeout(() => resolve(Date.now() - t0), 20, { keepAlive: true });
  });
  assert.ok(fired >= 19, `fired after ${fired} ms`);
  let n = 0;
  const cancelled = systemClock.setTimeout(() => n++, 5, { keepAlive: true });
  cancelled.cancel();
  let ticks = 0;
  const iv = systemClock.setInterval(() => ticks++, 5, { keepAlive: true });
  await new Promise((r) => setTimeout(r, 40));
  iv.cancel();
  const seen = ticks;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(n, 0);
  assert.ok(seen >= 2, `${seen} ticks`);
  assert.equal(ticks, seen, 'no tick after cancel');
});

test('systemClock: a wait beyond 2^31 − 1 ms does not fire early, and Node warns of no overflow', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  let fired = 0;
  const long = systemClock.setTimeout(() => fired++, MAX_TIMER_MS + 10_000);
  const never = systemClock.setTimeout(() => fired++, Infinity);
  const iv = systemClock.setInterval(() => fired++, 3 * MAX_TIMER_MS);
  await new Promise((r) => setTimeout(r, 50));
  long.cancel();
  never.cancel();
  iv.cancel();
  assert.equal(fired, 0);
  assert.deepEqual(warnings.map((w) => w.name), []);
});

test('systemClock: its timers keep no process alive unless keepAlive is set', async () => {
  const clock = new URL('../src/clock.ts', import.meta.url).href;
  const script = (keepAlive: boolean) =>
    `import { systemClock } from ${JSON.stringify(clock)};` +
    `systemClock.setTimeout(() => console.log('timeout fired'), 300, { keepAlive: ${keepAlive} });` +
    `systemClock.setInterval(() => console.log('interval fired'), 60_000);` +
    `systemClock.setTimeout(() => console.log('long fired'), ${MAX_TIMER_MS} * 2);`;
  const unref = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(false)], { timeoutMs: 20_000 });
  assert.equal(unref.code, 0, unref.stderr);
  assert.equal(unref.stdout, '', 'the process exited before any timer fired');
  const kept = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(true)], { timeoutMs: 20_000 });
  assert.equal(kept.code, 0, kept.stderr);
  assert.equal(kept.stdout.trim(), 'timeout fired', 'keepAlive held the process until its timer fired, and no longer');
});
