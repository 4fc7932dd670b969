/**
 * Which failed tries are retried, after how long, and the timeout arithmetic around them. Pure
 * functions of their inputs: the dispatcher reports what happened, `retryDecision` answers.
 *
 * Rules, in the order they are checked (the first that says no gives the `reason`):
 * 1. Retryable outcome: a connect failure, a reset before the response, a per-try timeout, or a
 *    response status in `retryOnStatuses` (502, 503, 504) — Linkerd's and gRPC A6's set of
 *    "the server did not process it, or says try again". Anything else is returned to the caller.
 * 2. Method: only idempotent methods (GET HEAD OPTIONS PUT DELETE TRACE, RFC 9110 §9.2.2), since a
 *    reset or timeout may hide a request that was processed. Exception: a connect failure means
 *    nothing was sent, so any method may be retried (gRPC A6 "transparent retry"; turn off with
 *    `retryConnectFailuresForAnyMethod: false`).
 * 3. Body: the request body must be replayable (the dispatcher buffers bodies ≤ 64 KiB).
 * 4. Count: at most `maxRetries` retries per request.
 * 5. Delay: a valid `Retry-After` (seconds or HTTP-date) replaces the backoff, as gRPC A6's
 *    server pushback does; one longer than `maxRetryAfterMs` means "not soon": no retry, since
 *    retrying earlier than the server asked only adds load. Otherwise full-jitter backoff.
 * 6. Deadline: the delay must leave time before the request's deadline (`remainingMs`).
 * 7. Budget: last, so that only retries that would really happen spend it.
 */
import { systemClock, type Clock } from '../../clock.js';
import { backoff, DEFAULT_BACKOFF_SETTINGS, type BackoffSettings } from './backoff.js';
import type { RetryBudget } from './budget.js';
import type { FailureKind } from '../balancer/types.js';

/** Settings of the retry policy (one per service or route). */
export interface RetryPolicySettings {
  /** Retries per request after the first try. Default 2, i.e. 3 tries (gRPC A6 `maxAttempts: 3`;
   *  Linkerd's default limit is 1; the budget is what bounds the load). 0 disables retries. */
  maxRetries: number;
  /** Methods retried after a reset, timeout or retryable status. Default: the idempotent methods
   *  of RFC 9110: GET HEAD OPTIONS PUT DELETE TRACE. */
  retryableMethods: readonly string[];
  /** Retry a connect failure whatever the method (nothing was sent). Default true (gRPC A6). */
  retryConnectFailuresForAnyMethod: boolean;
  /** Failures retried. Default connect, reset, timeout (a per-try timeout; the overall request
   *  deadline is never retried). 'status' is governed by `retryOnStatuses`. */
  retryOnFailures: readonly Exclude<FailureKind, 'status'>[];
  /** Response statuses retried. Default 502, 503, 504 (Linkerd, gRPC UNAVAILABLE's HTTP mapping). */
  retryOnStatuses: readonly number[];
  /** Delay between tries when the server does not say. Default 25 ms … 250 ms, ×2, full jitter. */
  backoff: BackoffSettings;
  /** Honour `Retry-After` on retryable responses. Default true. */
  honourRetryAfter: boolean;
  /** Longest `Retry-After` honoured; a longer one ends the retries. Default 10 s. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRYABLE_METHODS: readonly string[] = Object.freeze(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export const DEFAULT_RETRY_POLICY_SETTINGS: Readonly<RetryPolicySettings> = Object.freeze({
  maxRetries: 2,
  retryableMethods: DEFAULT_RETRYABLE_METHODS,
  retryConnectFailuresForAnyMethod: true,
  retryOnFailures: Object.freeze(['connect', 'reset', 'timeout'] as const),
  retryOnStatuses: Object.freeze([502, 503, 504]),
  backoff: DEFAULT_BACKOFF_SETTINGS,
  honourRetryAfter: true,
  maxRetryAfterMs: 10_000,
});

/** Fills in defaults (nested `backoff` merged too) and checks ranges. */
export function retryPolicySettings(
  partial: Partial<Omit<RetryPolicySettings, 'backoff'>> & { backoff?: Partial<BackoffSettings> } = {},
): RetryPolicySettings {
  const d = DEFAULT_RETRY_POLICY_SETTINGS;
  const s: RetryPolicySettings = {
    maxRetries: partial.maxRetries ?? d.maxRetries,
    retryableMethods: (partial.retryableMethods ?? d.retryableMethods).map((m) => m.toUpperCase()),
    retryConnectFailuresForAnyMethod: partial.retryConnectFailuresForAnyMethod ?? d.retryConnectFailuresForAnyMethod,
    retryOnFailures: partial.retryOnFailures ?? d.retryOnFailures,
    retryOnStatuses: partial.retryOnStatuses ?? d.retryOnStatuses,
    backoff: {
      baseMs: partial.backoff?.baseMs ?? d.backoff.baseMs,
      maxMs: partial.backoff?.maxMs ?? d.backoff.maxMs,
      multiplier: partial.backoff?.multiplier ?? d.backoff.multiplier,
    },
    honourRetryAfter: partial.honourRetryAfter ?? d.honourRetryAfter,
    maxRetryAfterMs: partial.maxRetryAfterMs ?? d.maxRetryAfterMs,
  };
  if (!Number.isInteger(s.maxRetries) || s.maxRetries < 0) throw new RangeError(`retry.maxRetries must be an integer >= 0, got ${s.maxRetries}`);
  if (!(s.backoff.baseMs >= 0) || !(s.backoff.maxMs >= 0) || !(s.backoff.multiplier >= 1)) {
    throw new RangeError('retry.backoff needs baseMs >= 0, maxMs >= 0 and multiplier >= 1');
  }
  if (!(s.maxRetryAfterMs >= 0)) throw new RangeError(`retry.maxRetryAfterMs must be >= 0, got ${s.maxRetryAfterMs}`);
  return s;
}

/** Whether `method` is idempotent by RFC 9110 (the default retryable set). Case-insensitive. */
export function isIdempotent(method: string, methods: readonly string[] = DEFAULT_RETRYABLE_METHODS): boolean {
  return methods.includes(method.toUpperCase());
}

const HTTP_DATE_FORMATS = [
  // IMF-fixdate, and the obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7): Date.parse takes all three.
  /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Za-z]+, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/**
 * Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds (`120`) or an HTTP-date. Returns
 * milliseconds from `now` (a date in the past gives 0), or undefined for a missing or malformed
 * value, which is then ignored. Not capped here: the policy decides what a long wait means.
 */
export function parseRetryAfter(value: string | readonly string[] | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const raw = typeof value === 'string' ? value : value[0];
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (/^\d+$/.test(v)) {
    const seconds = Number(v);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  if (!HTTP_DATE_FORMATS.some((re) => re.test(v))) return undefined;
  const at = Date.parse(v.endsWith('GMT') ? v : `${v} GMT`);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Why `retryDecision` answered as it did. */
export type RetryReason =
  | 'retryable-failure'
  | 'retryable-status'
  | 'success'
  | 'not-retryable-failure'
  | 'not-retryable-status'
  | 'method-not-idempotent'
  | 'body-not-replayable'
  | 'max-retries'
  | 'retry-after-too-long'
  | 'deadline'
  | 'budget-exhausted';

export interface RetryInput {
  /** HTTP method of the request. */
  method: string;
  /** The try that just ended, 1-based (1 = the first try; the next one would be retry number 1). */
  attempt: number;
  /** How the try failed, when it produced no response. */
  failure?: FailureKind;
  /** Response status, when there was a response. */
  status?: number;
  /** Response headers (only `retry-after` is read). Lower-case keys, as undici gives them. */
  headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Whether the request body can be sent again (no body, or buffered). Default true. */
  bodyReplayable?: boolean;
  /** Time left before the request's overall deadline. Default: no deadline. */
  remainingMs?: number;
  /** The service's budget: withdrawn from only when everything else says retry. */
  budget?: RetryBudget;
}

export interface RetryDecision {
  retry: boolean;
  /** Wait this long before the next try (0 when not retrying). */
  delayMs: number;
  reason: RetryReason;
}

const no = (reason: RetryReason): RetryDecision => ({ retry: false, delayMs: 0, reason });

/** Decides whether to retry. See the module comment for the rules and their order. */
export function retryDecision(
  input: RetryInput,
  settings: RetryPolicySettings = DEFAULT_RETRY_POLICY_SETTINGS,
  env: { clock?: Clock; random?: () => number } = {},
): RetryDecision {
  let yes: RetryReason;
  if (input.failure !== undefined && input.failure !== 'status') {
    if (!settings.retryOnFailures.includes(input.failure)) return no('not-retryable-failure');
    yes = 'retryable-failure';
  } else if (input.status !== undefined) {
    if (!settings.retryOnStatuses.includes(input.status)) return no(input.status < 400 ? 'success' : 'not-retryable-status');
    yes = 'retryable-status';
  } else {
    return no(input.failure === 'status' ? 'not-retryable-status' : 'success');
  }
  const anyMethod = input.failure === 'connect' && settings.retryConnectFailuresForAnyMethod;
  if (!anyMethod && !isIdempotent(input.method, settings.retryableMethods)) return no('method-not-idempotent');
  if (input.bodyReplayable === false) return no('body-not-replayable');
  if (input.attempt > settings.maxRetries) return no('max-retries');

  let delayMs: number | undefined;
  if (settings.honourRetryAfter && input.headers) {
    const now = (env.clock ?? systemClock).now();
    const after = parseRetryAfter(input.headers['retry-after'], now);
    if (after !== undefined) {
      if (after > settings.maxRetryAfterMs) return no('retry-after-too-long');
      delayMs = after;
    }
  }
  delayMs ??= backoff(input.attempt, { ...settings.backoff, random: env.random ?? Math.random });
  if (input.remainingMs !== undefined && delayMs >= input.remainingMs) return no('deadline');
  if (input.budget && !input.budget.tryWithdraw()) return no('budget-exhausted');
  return { retry: true, delayMs, reason: yes };
}

/** Timeouts of a request (Linkerd `timeout.linkerd.io/request` and the per-try `retry.linkerd.io/timeout`). */
export interface TimeoutSettings {
  /** Whole request, all tries and backoffs included. Default none (Linkerd: no default timeout). */
  requestMs?: number;
  /** Each try; when it fires the try fails with 'timeout' and may be retried. Default none. */
  perTryMs?: number;
}

/**
 * The deadline arithmetic of one request. Create it when the request starts; ask it, before each
 * try, how long that try may take.
 */
export class Deadline {
  readonly startedAt: number;
  constructor(
    private readonly settings: TimeoutSettings = {},
    private readonly clock: Clock = systemClock,
  ) {
    // Without a request timeout nothing reads the start time: no clock read.
    this.startedAt = settings.requestMs === undefined ? 0 : clock.now();
  }

  /** Milliseconds left for the whole request (Infinity without a request timeout, never < 0). */
  remainingMs(): number {
    const t = this.settings.requestMs;
    if (t === undefined) return Infinity;
    return Math.max(0, this.startedAt + t - this.clock.now());
  }

  expired(): boolean {
    return this.remainingMs() <= 0;
  }

  /** Timeout for the next try: min(perTryMs, remaining), or undefined when neither is set. The
   *  caller should report a try cut by this as 'timeout' only if it was the per-try limit
   *  (`perTryBound()`); a request that ran out of time is not retried. */
  tryTimeoutMs(): number | undefined {
    const per = this.settings.perTryMs;
    const rem = this.remainingMs();
    if (per === undefined) return rem === Infinity ? undefined : rem;
    return Math.min(per, rem);
  }

  /** True when the next try's timeout is the per-try limit, not the request deadline. */
  perTryBound(): boolean {
    const per = this.settings.perTryMs;
    return per !== undefined && per < this.remainingMs();
  }
}
