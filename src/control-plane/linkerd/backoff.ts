/**
 * The reconnect delay of a Linkerd stream: 1 s doubling per failed attempt up to 30 s, plus 0–20 %
 * jitter from `random` (never past 30 s), so a controller restart is not met by every workload at once.
 */
export const BACKOFF_MIN_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;
export const BACKOFF_JITTER = 0.2;

/** The wait before attempt `attempt + 1` (attempt 0: the first reconnect). */
export function backoffDelay(attempt: number, random: () => number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 16));
  return Math.min(BACKOFF_MAX_MS, base * (1 + BACKOFF_JITTER * random()));
}
