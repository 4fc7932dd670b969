/**
 * The one boundary every pure module takes for time. Production code uses `systemClock`; tests pass
 * a virtual clock and advance it by hand, so expiry, rotation, EWMA decay and retry budgets are
 * tested without sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch (like `Date.now()`). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to. For tests and simulations. */
export class VirtualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}
