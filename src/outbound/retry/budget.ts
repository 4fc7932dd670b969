/**
 * Retry budget, as in Finagle (`RetryBudget`) and linkerd2-proxy (tower `TpsBudget`): retries may
 * add at most `retryRatio` extra load on top of the requests, plus a small floor so that services
 * with little traffic can still retry.
 *
 * Over any window of `windowMs` (slid in `slots` steps):
 *
 *     retries allowed = floor(retryRatio × requests + minRetriesPerSecond × windowMs / 1000)
 *
 * Each request deposits (`deposit()`, once per request, not per try); each retry withdraws
 * (`tryWithdraw()`). Both expire when they leave the window, so the budget recovers by itself.
 * One budget per service: a failing service cannot spend retries that another one earned.
 * Without a budget, retries multiply load exactly when a service is least able to take it
 * (a retry storm); with it, at most +20 % load, plus 10 retries/s.
 */
import { systemClock, type Clock } from '../../clock.js';

/** Settings of a retry budget. Defaults: Linkerd's and Finagle's. */
export interface RetryBudgetSettings {
  /** Retries allowed per request, over the window. Default 0.2 (Linkerd `retryRatio`). */
  retryRatio: number;
  /** Retries per second allowed even without traffic. Default 10 (Linkerd `minRetriesPerSecond`). */
  minRetriesPerSecond: number;
  /** How long deposits and withdrawals count. Default 10 s (Linkerd `ttl`, Finagle `ttl`). */
  windowMs: number;
  /** Granularity of the sliding window: entries expire one slot (windowMs / slots) at a time.
   *  Default 10 (1 s slots, as tower's budget). */
  slots: number;
}

export const DEFAULT_RETRY_BUDGET_SETTINGS: Readonly<RetryBudgetSettings> = Object.freeze({
  retryRatio: 0.2,
  minRetriesPerSecond: 10,
  windowMs: 10_000,
  slots: 10,
});

/** For `mesh.stats()` and metrics. */
export interface RetryBudgetSnapshot {
  /** Retries that may be made now. */
  balance: number;
  /** True when no retry may be made now. */
  exhausted: boolean;
  /** Requests (deposits) and retries (withdrawals) inside the current window. */
  windowRequests: number;
  windowRetries: number;
  /** Totals since creation. */
  totalRequests: number;
  totalRetries: number;
  /** Retries refused because the budget was exhausted. */
  totalRejected: number;
}

// Guards floor() against 0.2 × 15 = 2.9999999999999996.
const EPSILON = 1e-9;

export class RetryBudget {
  readonly settings: RetryBudgetSettings;
  private readonly clock: Clock;
  private readonly slotMs: number;
  private readonly reserve: number;
  private readonly deposits: Float64Array;
  private readonly withdrawals: Float64Array;
  private depositSum = 0;
  private withdrawSum = 0;
  private slot: number;
  private totalRequests = 0;
  private totalRetries = 0;
  private totalRejected = 0;

  constructor(settings: Partial<RetryBudgetSettings> = {}, clock: Clock = systemClock) {
    const s = { ...DEFAULT_RETRY_BUDGET_SETTINGS };
    for (const [k, v] of Object.entries(settings)) if (v !== undefined) (s as Record<string, number>)[k] = v as number;
    if (!(s.retryRatio >= 0) || !Number.isFinite(s.retryRatio)) throw new RangeError(`retry budget retryRatio must be a finite number >= 0, got ${s.retryRatio}`);
    if (!(s.minRetriesPerSecond >= 0) || !Number.isFinite(s.minRetriesPerSecond)) throw new RangeError(`retry budget minRetriesPerSecond must be a finite number >= 0, got ${s.minRetriesPerSecond}`);
    if (!(s.windowMs > 0) || !Number.isFinite(s.windowMs)) throw new RangeError(`retry budget windowMs must be > 0, got ${s.windowMs}`);
    if (!Number.isInteger(s.slots) || s.slots < 1) throw new RangeError(`retry budget slots must be an integer >= 1, got ${s.slots}`);
    this.settings = s;
    this.clock = clock;
    this.slotMs = s.windowMs / s.slots;
    this.reserve = (s.minRetriesPerSecond * s.windowMs) / 1000;
    this.deposits = new Float64Array(s.slots);
    this.withdrawals = new Float64Array(s.slots);
    this.slot = Math.floor(clock.now() / this.slotMs);
  }

  /** Records one request (call once per logical request, before its first try). */
  deposit(): void {
    this.advance();
    this.deposits[this.slot % this.settings.slots]! += 1;
    this.depositSum += 1;
    this.totalRequests++;
  }

  /** Whether a retry may be made now (does not spend it). */
  canRetry(): boolean {
    this.advance();
    return this.available() >= 1;
  }

  /** Spends one retry if the budget allows it. Returns false (and counts a rejection) if not. */
  tryWithdraw(): boolean {
    this.advance();
    if (this.available() < 1) {
      this.totalRejected++;
      return false;
    }
    this.withdrawals[this.slot % this.settings.slots]! += 1;
    this.withdrawSum += 1;
    this.totalRetries++;
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    this.advance();
    const balance = Math.max(0, this.available());
    return {
      balance,
      exhausted: balance < 1,
      windowRequests: this.depositSum,
      windowRetries: this.withdrawSum,
      totalRequests: this.totalRequests,
      totalRetries: this.totalRetries,
      totalRejected: this.totalRejected,
    };
  }

  private available(): number {
    return Math.floor(this.reserve + this.settings.retryRatio * this.depositSum + EPSILON) - this.withdrawSum;
  }

  /** Expires the slots that left the window. At most `slots` steps: O(1). */
  private advance(): void {
    const cur = Math.floor(this.clock.now() / this.slotMs);
    if (cur <= this.slot) return; // same slot, or a clock that went backwards
    const n = this.settings.slots;
    const steps = Math.min(cur - this.slot, n);
    for (let k = 1; k <= steps; k++) {
      const i = (this.slot + k) % n;
      this.depositSum -= this.deposits[i]!;
      this.withdrawSum -= this.withdrawals[i]!;
      this.deposits[i] = 0;
      this.withdrawals[i] = 0;
    }
    this.slot = cur;
  }
}
