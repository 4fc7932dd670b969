/**
 * "Wake me at the next change, or give up after a while": the waiters of something that changes
 * (the outbound service set, an xDS control plane's tree). `next` resolves true at the next
 * `changed()`, false after `ms` on the clock or when `stop` settles. The timer is kept alive: a
 * request waiting here is work in progress (a script awaiting a fetch must not exit).
 */
import { type Clock } from './clock.js';

export class ChangeSignal {
  #waiters: Array<() => void> = [];

  constructor(private readonly clock: Clock) {}

  /** Wakes every waiter. */
  changed(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const wake of w) wake();
  }

  next(ms: number, stop?: Promise<unknown>): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (changed: boolean) => {
        if (done) return;
        done = true;
        timer.cancel();
        if (!changed) this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve(changed);
      };
      const wake = () => finish(true);
      const timer = this.clock.setTimeout(() => finish(false), Math.max(0, ms), { keepAlive: true });
      this.#waiters.push(wake);
      void stop?.then(
        () => finish(false),
        () => finish(false),
      );
    });
  }
}
