/**
 * The one boundary through which time enters: the time now, and timers. Production code uses
 * `systemClock` (Date.now and Node's timers); tests pass a `VirtualClock` and move it by hand, so
 * expiry, rotation, renewal, polling, retries, EWMA decay and retry budgets are tested without
 * sleeping — and "nothing happens" is an exact statement (no timer is due), not a guess after a wait.
 */
export interface Clock {
  /** Milliseconds since the epoch (like `Date.now()`). */
  now(): number;
  /**
   * Calls `fn` once, `ms` from now (negative or NaN: as soon as possible; Infinity: never). What
   * `fn` returns is ignored, except that `VirtualClock.advanceAsync` awaits it.
   */
  setTimeout(fn: () => unknown, ms: number, options?: TimerOptions): Timer;
  /** Calls `fn` every `ms` (at least 1 ms, at most 2^31 − 1 ms) until cancelled. */
  setInterval(fn: () => unknown, ms: number, options?: TimerOptions): Timer;
}

export interface Timer {
  /** Stops the timer. Calling it again, or after a timeout fired, does nothing. */
  cancel(): void;
}

export interface TimerOptions {
  /**
   * Keep the process alive while the timer is pending, as a plain Node timer does. Default false:
   * the mesh's own timers are unref()ed, so no background work keeps a process (or a serverless
   * instance) alive; only a timer that someone is awaiting (a `ready()` deadline, a retry's
   * backoff) sets it.
   */
  readonly keepAlive?: boolean;
}

/** Node fires setTimeout at once (with a warning) for delays beyond 2^31 − 1 ms: longer waits are taken in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A Node timeout, unref()ed unless asked, that can wait longer than MAX_TIMER_MS: such waits are
 * taken in steps against the monotonic clock (a wall-clock change moves no timer, as with Node's).
 */
class SystemTimeout implements Timer {
  #handle: NodeJS.Timeout | undefined;

  constructor(
    private readonly fn: () => unknown,
    ms: number,
    private readonly keepAlive: boolean,
  ) {
    if (ms <= MAX_TIMER_MS) this.#set(ms, fn);
    else this.#step(performance.now() + ms);
  }

  #set(ms: number, fn: () => void): void {
    const handle = setTimeout(fn, ms);
    if (!this.keepAlive) handle.unref();
    this.#handle = handle;
  }

  #step(due: number): void {
    const left = due - performance.now();
    if (left > MAX_TIMER_MS) this.#set(MAX_TIMER_MS, () => this.#step(due));
    else this.#set(Math.max(0, left), this.fn);
  }

  cancel(): void {
    clearTimeout(this.#handle);
    this.#handle = undefined;
  }
}

const NEVER: Timer = Object.freeze({ cancel: () => {} });

/** A delay as a timer can take it: NaN and negatives are 0. */
function delayOf(ms: number): number {
  return ms > 0 ? ms : 0;
}

/** An interval as a timer can take it: at least 1 ms (a 0 ms interval would spin), at most MAX_TIMER_MS. */
function intervalOf(ms: number): number {
  return Math.min(MAX_TIMER_MS, ms >= 1 ? ms : 1);
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, options) {
    const delay = delayOf(ms);
    if (delay === Infinity) return NEVER;
    return new SystemTimeout(fn, delay, options?.keepAlive === true);
  },
  setInterval(fn, ms, options) {
    const handle = setInterval(fn, intervalOf(ms));
    if (options?.keepAlive !== true) handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
};

interface VirtualTimer {
  at: number;
  readonly seq: number;
  readonly fn: () => unknown;
  /** Set for intervals: the period. */
  readonly every: number | undefined;
  cancelled: boolean;
}

/** More timers than this at one instant means a timer re-arms itself without moving time. */
const MAX_FIRINGS_AT_ONE_INSTANT = 100_000;

/**
 * A clock that moves only when told to, and runs its timers as it moves. For tests and simulations.
 *
 * Timers are due at absolute virtual times. `advance(ms)` and `set(ms)` move the clock forward,
 * firing every timer that falls due on the way, in time order (ties: in the order they were
 * scheduled), with `now()` at the timer's due time while it runs; a timer scheduled by a timer, and
 * due within the same move, fires too. Moving the clock backwards fires nothing (and delays what is
 * pending); `jump` moves it without firing (a frozen process). A timer that throws stops the move
 * there: the error reaches the caller.
 *
 * Sources do asynchronous work in their timers (read files, issue certificates): `advanceAsync` and
 * `setAsync` await what each timer returns, and a turn of the event loop, before the next one.
 */
export class VirtualClock implements Clock {
  #t: number;
  #seq = 0;
  #timers: VirtualTimer[] = [];
  #moving = false;

  constructor(t = 0) {
    this.#t = t;
  }

  now(): number {
    return this.#t;
  }

  setTimeout(fn: () => unknown, ms: number): Timer {
    return this.#add(fn, this.#t + delayOf(ms), undefined);
  }

  setInterval(fn: () => unknown, ms: number): Timer {
    const every = intervalOf(ms);
    return this.#add(fn, this.#t + every, every);
  }

  /** Moves the clock `ms` forward (negative: back), firing the timers that fall due. */
  advance(ms: number): void {
    this.#runUntil(this.#t + ms);
  }

  /** Moves the clock to `ms`, firing the timers that fall due on the way. */
  set(ms: number): void {
    this.#runUntil(ms);
  }

  /**
   * Moves the clock `ms` forward without running any timer, as a frozen process (a serverless
   * instance between invocations) sees time pass: what fell due stays pending and runs, late, at
   * the next advance or set — `advance(0)` is the process thawing. For use-time checks.
   */
  jump(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`VirtualClock: cannot jump by ${ms}`);
    this.#t += ms;
  }

  /** advance(), awaiting what each timer returns (and an event-loop turn) before the next. */
  advanceAsync(ms: number): Promise<void> {
    return this.#runUntilAsync(this.#t + ms);
  }

  /** set(), awaiting what each timer returns (and an event-loop turn) before the next. */
  setAsync(ms: number): Promise<void> {
    return this.#runUntilAsync(ms);
  }

  /** The due times of the pending timers, earliest first: `[]` means nothing will ever fire. */
  pending(): number[] {
    return this.#live().map((x) => x.at);
  }

  #add(fn: () => unknown, at: number, every: number | undefined): Timer {
    const timer: VirtualTimer = { at, seq: this.#seq++, fn, every, cancelled: false };
    if (at !== Infinity) this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
        this.#timers = this.#timers.filter((x) => x !== timer);
      },
    };
  }

  #live(): VirtualTimer[] {
    return this.#timers.filter((x) => !x.cancelled).sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Takes the next timer due at or before `target` (re-queueing an interval), and moves the clock to it. */
  #next(target: number): VirtualTimer | undefined {
    const timer = this.#live()[0];
    if (!timer || timer.at > target) return undefined;
    this.#t = Math.max(this.#t, timer.at);
    if (timer.every === undefined) {
      timer.cancelled = true;
      this.#timers = this.#timers.filter((x) => x !== timer);
    } else {
      timer.at += timer.every;
    }
    return timer;
  }

  #runUntil(target: number): void {
    this.#enter(target);
    try {
      this.#fire(target);
    } finally {
      this.#moving = false;
    }
  }

  #fire(target: number): void {
    const spin = this.#spinGuard();
    for (let timer = this.#next(target); timer; timer = this.#next(target)) {
      spin();
      timer.fn();
    }
    this.#t = target;
  }

  async #runUntilAsync(target: number): Promise<void> {
    this.#enter(target);
    try {
      const spin = this.#spinGuard();
      for (let timer = this.#next(target); timer; timer = this.#next(target)) {
        spin();
        await timer.fn();
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      this.#t = target;
    } finally {
      this.#moving = false;
    }
  }

  /** One move at a time: a move started from a timer (or an advanceAsync not awaited) would interleave two timelines. */
  #enter(target: number): void {
    if (Number.isNaN(target) || !Number.isFinite(target)) throw new RangeError(`VirtualClock: cannot move the clock to ${target}`);
    if (this.#moving) throw new Error('VirtualClock: the clock is already moving (advance/set called from a timer, or an advanceAsync/setAsync not awaited)');
    this.#moving = true;
  }

  /** Counts firings at one instant: past the limit, a timer keeps re-arming itself with no delay. */
  #spinGuard(): () => void {
    let at = NaN;
    let n = 0;
    return () => {
      n = this.#t === at ? n + 1 : 0;
      at = this.#t;
      if (n >= MAX_FIRINGS_AT_ONE_INSTANT) {
        throw new Error(`VirtualClock: ${n} timers fired at ${at} ms without the clock moving; a timer keeps re-arming itself without a delay`);
      }
    };
  }
}
