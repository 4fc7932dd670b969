/**
 * Exponential backoff with jitter. Two flavours, one per anchor:
 *
 * - `backoff()` — between retries of one request: "full jitter", uniform in
 *   [0, min(maxMs, baseMs · multiplier^(attempt−1))], exactly gRPC A6's formula. Full jitter spreads
 *   the retries of many clients that failed together, so they do not hit the recovering server in
 *   lock-step.
 * - `penaltyBackoff()` — how long a failing endpoint stays ejected: linkerd2-proxy's
 *   `ExponentialBackoff`, min · 2^(n−1) plus up to `jitterRatio` of that, capped at max. It never
 *   goes below the minimum, so the bounds "1 s … 60 s" hold exactly.
 */

/** Settings of the retry backoff (gRPC A6: initialBackoff, maxBackoff, backoffMultiplier). */
export interface BackoffSettings {
  /** Upper bound of the first retry's delay. Default 25 ms (linkerd2-proxy's retry backoff floor). */
  baseMs: number;
  /** Upper bound of any delay. Default 250 ms: a retry exists to hide a blip from the caller, so
   *  it must fit well inside typical request deadlines. */
  maxMs: number;
  /** Growth per retry. Default 2 (gRPC A6 examples use 1.5–2). */
  multiplier: number;
}

export const DEFAULT_BACKOFF_SETTINGS: Readonly<BackoffSettings> = Object.freeze({
  baseMs: 25,
  maxMs: 250,
  multiplier: 2,
});

/**
 * Delay before retry number `attempt` (1 = the first retry): uniform in [0, cap) where
 * cap = min(maxMs, baseMs · multiplier^(attempt−1)). `random` returns numbers in [0, 1).
 */
export function backoff(
  attempt: number,
  opts: Partial<BackoffSettings> & { random?: () => number } = {},
): number {
  const baseMs = opts.baseMs ?? DEFAULT_BACKOFF_SETTINGS.baseMs;
  const maxMs = opts.maxMs ?? DEFAULT_BACKOFF_SETTINGS.maxMs;
  const multiplier = opts.multiplier ?? DEFAULT_BACKOFF_SETTINGS.multiplier;
  const random = opts.random ?? Math.random;
  return random() * backoffCap(attempt, baseMs, maxMs, multiplier);
}

/** The un-jittered ceiling min(maxMs, baseMs · multiplier^(attempt−1)), for attempt >= 1. */
export function backoffCap(attempt: number, baseMs: number, maxMs: number, multiplier: number): number {
  const n = Math.max(1, Math.floor(attempt));
  // Math.pow overflows to Infinity for huge n, and min() then yields maxMs: no special case needed.
  return Math.min(maxMs, baseMs * Math.pow(multiplier, n - 1));
}

/** Settings of the ejection penalty (Linkerd `failure-accrual-consecutive-*` annotations). */
export interface PenaltyBackoffSettings {
  /** First penalty. Default 1 s (Linkerd `min-penalty`). */
  minMs: number;
  /** Largest penalty. Default 60 s (Linkerd `max-penalty`). */
  maxMs: number;
  /** Up to this fraction of the penalty is added at random. Default 0.5 (Linkerd `jitter-ratio`). */
  jitterRatio: number;
}

/**
 * Penalty for the `n`-th consecutive ejection (1 = first): min(maxMs, p + p·jitterRatio·random())
 * with p = min(maxMs, minMs · 2^(n−1)). Always within [minMs, maxMs].
 */
export function penaltyBackoff(n: number, s: PenaltyBackoffSettings, random: () => number = Math.random): number {
  const p = backoffCap(n, s.minMs, s.maxMs, 2);
  return Math.min(s.maxMs, p + p * s.jitterRatio * random());
}
