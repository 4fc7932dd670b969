/**
 * RouteAction timeout and RetryPolicy → our RequestPolicy, with Envoy's HTTP `retry_on` meanings:
 *
 * | retry_on                | our retryOnFailures        | our retryOnStatuses        |
 * | ----------------------- | -------------------------- | -------------------------- |
 * | 5xx                     | connect, reset, timeout    | 500–599                    |
 * | gateway-error           | connect, reset, timeout    | 502, 503, 504              |
 * | reset                   | connect, reset, timeout    |                            |
 * | connect-failure         | connect                    |                            |
 * | refused-stream          | reset (any reset: broader) |                            |
 * | retriable-4xx           |                            | 409                        |
 * | retriable-status-codes  |                            | retriable_status_codes     |
 *
 * gRPC status conditions (cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)
 * never fire on HTTP responses: accepted with a note (istiod's default policy names them). Any
 * other condition is a reason. `num_retries` unset is 1 (Envoy); `retry_back_off` base 25 ms and
 * max 10 × base (Envoy), ×2 full jitter. Stricter than Envoy on purpose: only idempotent methods
 * are retried after a reset, a timeout or a status (a connect failure: any method).
 * Timeout: `max_stream_duration.max_stream_duration` (what istiod sets for proxyless clients,
 * gRFC A31), else `timeout`, else the HttpConnectionManager's default; 0 means none. No implicit
 * 15 s (Envoy's route default): istiod always writes the timeout it means.
 */
import type { RetryPolicy, RouteAction } from '../../../proto/envoy/config/route/v3/route.js';
import type { FailureKind } from '../../../outbound/balancer/types.js';
import { type RetryPolicySettings, type TimeoutSettings, retryPolicySettings } from '../../../outbound/retry/policy.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from '../../../outbound/retry/replay-body.js';
import type { RequestPolicy } from '../../../outbound/settings.js';
import { type Findings, durationMs, quote } from './result.js';
import { typeNameOf } from '../../../proto/any-pack.js';
import { MAX_STREAM_DURATION, RETRY_BACK_OFF, RETRY_HOST_PREDICATE, RETRY_POLICY } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

type Failure = Exclude<FailureKind, 'status'>;
const ALL_FAILURES: readonly Failure[] = ['connect', 'reset', 'timeout'];
const FIVE_XX = Array.from({ length: 100 }, (_, i) => 500 + i);
const CONDITIONS: Record<string, { failures: readonly Failure[]; statuses: readonly number[] }> = {
  '5xx': { failures: ALL_FAILURES, statuses: FIVE_XX },
  'gateway-error': { failures: ALL_FAILURES, statuses: [502, 503, 504] },
  reset: { failures: ALL_FAILURES, statuses: [] },
  'connect-failure': { failures: ['connect'], statuses: [] },
  'refused-stream': { failures: ['reset'], statuses: [] },
  'retriable-4xx': { failures: [], statuses: [409] },
};
const GRPC_CONDITIONS = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);
const MAX_RETRIES = 10;
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/**
 * retry_host_predicate: previous_hosts (istiod's default policy) is what the mesh does anyway,
 * each retry preferring an endpoint the request has not tried; any other predicate is a reason.
 */
function checkHostPredicates(p: RetryPolicy, f: Findings, at: string): void {
  p.retryHostPredicate.forEach((h, i) => {
    const hat = `${at}.retry_host_predicate[${i}]`;
    refuseUnknown(h, f, hat, RETRY_HOST_PREDICATE);
    const type = h.typedConfig ? typeNameOf(h.typedConfig.typeUrl) : '';
    if (type !== '' ? type !== PREVIOUS_HOSTS_TYPE : h.name !== PREVIOUS_HOSTS) {
      f.refuse(hat, `${quote(type || h.name)} is not supported: only previous_hosts (retries prefer an endpoint not yet tried, always)`);
    } else if (h.typedConfig && h.typedConfig.value.length > 0) f.note(`${hat}.typed_config`, 'no effect: previous_hosts options (update_frequency) are not used');
  });
  if (p.hostSelectionRetryMaxAttempts !== 0) f.note(`${at}.host_selection_retry_max_attempts`, 'no effect: a retry takes an untried endpoint when the balancer has one, else a tried one');
}

/** A RetryPolicy as our settings; null when it retries on nothing. */
export function retryOf(p: RetryPolicy, f: Findings, at: string): { retry: RetryPolicySettings | null; perTryMs?: number } {
  refuseUnknown(p, f, at, RETRY_POLICY);
  refuseUnknown(p.retryBackOff, f, `${at}.retry_back_off`, RETRY_BACK_OFF);
  checkHostPredicates(p, f, at);
  const failures = new Set<Failure>();
  const statuses = new Set<number>();
  const tokens = p.retryOn.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of tokens) {
    const c = CONDITIONS[t];
    if (c) {
      c.failures.forEach((x) => failures.add(x));
      c.statuses.forEach((x) => statuses.add(x));
    } else if (t === 'retriable-status-codes') {
      p.retriableStatusCodes.forEach((s, i) => (s >= 100 && s <= 599 ? statuses.add(s) : f.refuse(`${at}.retriable_status_codes[${i}]`, `${s} is not an HTTP status`)));
    } else if (GRPC_CONDITIONS.has(t)) f.note(`${at}.retry_on`, `"${t}" is a gRPC status condition: it never fires on an HTTP response`);
    else f.refuse(`${at}.retry_on`, `${JSON.stringify(t.slice(0, 60))} is not supported (supported: ${[...Object.keys(CONDITIONS), 'retriable-status-codes'].join(', ')})`);
  }
  if (p.retriableStatusCodes.length > 0 && !tokens.includes('retriable-status-codes')) {
    f.note(`${at}.retriable_status_codes`, 'unused: retry_on does not name retriable-status-codes');
  }
  const maxRetries = p.numRetries ?? 1;
  if (maxRetries > MAX_RETRIES) f.refuse(`${at}.num_retries`, `${maxRetries} is more than the ${MAX_RETRIES} retries sidecarless allows`);
  const b = p.retryBackOff;
  const baseMs = b?.baseInterval ? durationMs(b.baseInterval, f, `${at}.retry_back_off.base_interval`) : undefined;
  const maxMs = b?.maxInterval ? durationMs(b.maxInterval, f, `${at}.retry_back_off.max_interval`) : undefined;
  if (b && !b.baseInterval) f.refuse(`${at}.retry_back_off.base_interval`, 'is required when retry_back_off is set (Envoy\'s rule)');
  const base = baseMs ?? 25;
  const max = maxMs ?? 10 * base;
  if (base === 0 && b?.baseInterval) f.refuse(`${at}.retry_back_off.base_interval`, 'must be greater than 0');
  if (max < base) f.refuse(`${at}.retry_back_off.max_interval`, 'must not be shorter than base_interval');
  const perTryMs = p.perTryTimeout ? durationMs(p.perTryTimeout, f, `${at}.per_try_timeout`) : undefined;
  const retry =
    (failures.size === 0 && statuses.size === 0) || maxRetries === 0
      ? null
      : retryPolicySettings({
          maxRetries: Math.min(maxRetries, MAX_RETRIES),
          retryOnFailures: ALL_FAILURES.filter((x) => failures.has(x)),
          retryOnStatuses: [...statuses].sort((x, y) => x - y),
          backoff: { baseMs: base, maxMs: Math.max(base, max) },
        });
  return { retry, ...(perTryMs !== undefined && perTryMs > 0 && { perTryMs }) };
}

/** The request policy of a RouteAction; `vhostRetry` applies when the route has none (route replaces, never merges). */
export function policyOf(a: RouteAction, vhostRetry: RetryPolicy | undefined, defaultTimeoutMs: number | undefined, f: Findings, at: string, vhostAt: string): RequestPolicy {
  const timeout: { requestMs?: number; perTryMs?: number } = {};
  const msd = a.maxStreamDuration;
  refuseUnknown(msd, f, `${at}.max_stream_duration`, MAX_STREAM_DURATION);
  if (msd?.grpcTimeoutHeaderMax) {
    const v = durationMs(msd.grpcTimeoutHeaderMax, f, `${at}.max_stream_duration.grpc_timeout_header_max`);
    if (v !== undefined && v > 0) f.refuse(`${at}.max_stream_duration.grpc_timeout_header_max`, 'not supported: sidecarless does not read the grpc-timeout header');
  }
  const requestMs = msd?.maxStreamDuration
    ? durationMs(msd.maxStreamDuration, f, `${at}.max_stream_duration.max_stream_duration`)
    : a.timeout
      ? durationMs(a.timeout, f, `${at}.timeout`)
      : defaultTimeoutMs;
  if (requestMs !== undefined && requestMs > 0) timeout.requestMs = requestMs;
  const rp = a.retryPolicy ?? vhostRetry;
  const r = rp ? retryOf(rp, f, a.retryPolicy ? `${at}.retry_policy` : `${vhostAt}.retry_policy`) : { retry: null };
  if (r.perTryMs !== undefined) timeout.perTryMs = r.perTryMs;
  return { retry: r.retry, maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES, timeout: timeout as TimeoutSettings };
}
