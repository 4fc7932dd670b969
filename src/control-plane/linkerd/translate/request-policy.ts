/**
 * A Linkerd route rule's timeouts and retry → our RequestPolicy (outbound/settings.ts).
 *
 * | Linkerd                                  | sidecarless                                         |
 * | ---------------------------------------- | --------------------------------------------------- |
 * | timeouts.request                         | timeout.requestMs (the whole request, tries and body) |
 * | timeouts.response                        | timeout.requestMs when shorter (it then bounds the body too: noted) |
 * | timeouts.idle                            | refused (no idle timeout on a request)              |
 * | retry absent / max_retries 0             | retry null (Linkerd retries only when a route asks) |
 * | retry.max_retries                        | retry.maxRetries (≤ 100; the retry budget bounds load) |
 * | retry.max_request_bytes                  | maxReplayBodyBytes                                  |
 * | retry.conditions.status_ranges           | retry.retryOnStatuses (each range expanded, 100–599) |
 * | retry.conditions absent                  | 500–599 (linkerd2-proxy's default)                  |
 * | retry.timeout                            | timeout.perTryMs                                    |
 * | retry.backoff min/max                    | retry.backoff baseMs/maxMs, ×2, full jitter (jitter_ratio noted) |
 *
 * Stricter than Linkerd on purpose: after a reset, a timeout or a status only idempotent methods
 * are retried (a connect failure: any method). gRPC routes: their status conditions (grpc-status)
 * cannot be judged by our retries, so a gRPC retry naming one is refused. Pure.
 */
import { retryPolicySettings, type RetryPolicySettings, type TimeoutSettings } from '../../../outbound/retry/policy.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from '../../../outbound/retry/replay-body.js';
import type { RequestPolicy } from '../../../outbound/settings.js';
import { type Findings, durationMs } from './findings.js';
import type { Duration } from '../../../proto/google/protobuf/duration.js';
import type { Timeouts as RouteTimeouts } from '../../../proto/linkerd/http_route.js';
import type { ExponentialBackoff, GrpcRoute_Retry as GrpcRetry, HttpRoute_Retry as HttpRetry } from '../../../proto/linkerd/outbound.js';

export const MAX_LINKERD_RETRIES = 100;
/** Largest request body a retry buffers (Linkerd's controller sends 64 KiB). */
export const MAX_REPLAY_BYTES = 16 * 1024 * 1024;
const FIVE_XX = Array.from({ length: 100 }, (_, i) => 500 + i);

function ms(d: Duration | undefined, f: Findings, at: string): number | undefined {
  if (d === undefined) return undefined;
  const v = durationMs(d, f, at);
  return v === 0 ? undefined : v;
}

/** Timeouts of a rule (Duration 0 = none, as an unset one). */
export function timeoutsOf(t: RouteTimeouts | undefined, f: Findings, at: string): TimeoutSettings {
  const request = ms(t?.request, f, `${at}.timeouts.request`);
  const response = ms(t?.response, f, `${at}.timeouts.response`);
  if (ms(t?.idle, f, `${at}.timeouts.idle`) !== undefined) {
    f.refuse(`${at}.timeouts.idle`, 'idle timeouts are not supported: the mesh bounds a request as a whole (timeouts.request)');
  }
  if (response !== undefined && (request === undefined || response < request)) {
    f.note(`${at}.timeouts.response`, `${response} ms bounds the whole request here, its response body included (the mesh has one request timeout)`);
    return { requestMs: response };
  }
  return request === undefined ? {} : { requestMs: request };
}

function statusesOf(r: HttpRetry, f: Findings, at: string): number[] {
  if (!r.conditions) return FIVE_XX;
  const out = new Set<number>();
  r.conditions.statusRanges.slice(0, 100).forEach((s, i) => {
    const rat = `${at}.conditions.status_ranges[${i}]`;
    const { start, end } = s;
    if (!(start >= 100 && end <= 599 && start <= end)) f.refuse(rat, `${s.start}–${s.end} is not a range of HTTP statuses (100 ≤ start ≤ end ≤ 599)`);
    else for (let c = start; c <= end; c++) out.add(c);
  });
  if (r.conditions.statusRanges.length > 100) f.refuse(`${at}.conditions.status_ranges`, 'more than 100 ranges');
  return [...out].sort((a, b) => a - b);
}

function backoffOf(b: ExponentialBackoff | undefined, f: Findings, at: string): Partial<RetryPolicySettings['backoff']> {
  if (!b) return {};
  const min = ms(b.minBackoff, f, `${at}.min_backoff`);
  const max = ms(b.maxBackoff, f, `${at}.max_backoff`);
  if (min !== undefined && max !== undefined && max < min) f.refuse(`${at}.max_backoff`, 'is shorter than min_backoff');
  if (b.jitterRatio !== 0 && b.jitterRatio !== 1) f.note(`${at}.jitter_ratio`, 'retries back off with full jitter whatever the ratio');
  if (b.respectRetryAfterHint) f.note(`${at}.respect_retry_after_hint`, 'Retry-After is always honoured (up to 10 s)');
  const out: Partial<RetryPolicySettings['backoff']> = {};
  if (min !== undefined) out.baseMs = min;
  if (max !== undefined) out.maxMs = max;
  return out;
}

function retryOf(r: HttpRetry | GrpcRetry, statuses: number[], f: Findings, at: string): { retry: RetryPolicySettings | null; perTryMs?: number; maxReplayBodyBytes: number } {
  let maxReplayBodyBytes = DEFAULT_MAX_REPLAY_BODY_BYTES;
  if (r.maxRequestBytes > MAX_REPLAY_BYTES) f.refuse(`${at}.max_request_bytes`, `${r.maxRequestBytes} is more than the ${MAX_REPLAY_BYTES} bytes a retry may buffer`);
  else if (r.maxRequestBytes > 0) maxReplayBodyBytes = r.maxRequestBytes;
  if (!Number.isInteger(r.maxRetries) || r.maxRetries < 0 || r.maxRetries > MAX_LINKERD_RETRIES) {
    f.refuse(`${at}.max_retries`, `${r.maxRetries} is not 0…${MAX_LINKERD_RETRIES}`);
    return { retry: null, maxReplayBodyBytes };
  }
  const perTryMs = ms(r.timeout, f, `${at}.timeout`);
  const backoff = backoffOf(r.backoff, f, `${at}.backoff`);
  if (r.maxRetries === 0 || f.failed) return { retry: null, maxReplayBodyBytes };
  const b = { ...backoff };
  if (b.baseMs !== undefined && b.maxMs === undefined) b.maxMs = Math.max(b.baseMs, 250);
  if (b.maxMs !== undefined && b.baseMs === undefined) b.baseMs = Math.min(b.maxMs, 25);
  const retry = retryPolicySettings({ maxRetries: r.maxRetries, retryOnStatuses: statuses, backoff: b });
  return perTryMs === undefined ? { retry, maxReplayBodyBytes } : { retry, perTryMs, maxReplayBodyBytes };
}

/** An HTTP rule's RequestPolicy. */
export function httpRequestPolicy(rule: { readonly timeouts?: RouteTimeouts; readonly retry?: HttpRetry }, f: Findings, at: string): RequestPolicy {
  const timeout = timeoutsOf(rule.timeouts, f, at);
  if (!rule.retry) return { retry: null, maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES, timeout };
  const r = retryOf(rule.retry, statusesOf(rule.retry, f, `${at}.retry`), f, `${at}.retry`);
  return { retry: r.retry, maxReplayBodyBytes: r.maxReplayBodyBytes, timeout: r.perTryMs === undefined ? timeout : { ...timeout, perTryMs: r.perTryMs } };
}

/** A gRPC rule's RequestPolicy: a retry may not name grpc-status conditions (they are not judged). */
export function grpcRequestPolicy(rule: { readonly timeouts?: RouteTimeouts; readonly retry?: GrpcRetry }, f: Findings, at: string): RequestPolicy {
  const timeout = timeoutsOf(rule.timeouts, f, at);
  if (!rule.retry) return { retry: null, maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES, timeout };
  const named = Object.entries(rule.retry.conditions ?? {}).filter(([, v]) => v === true).map(([k]) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  if (named.length > 0) f.refuse(`${at}.retry.conditions`, `gRPC status conditions (${named.join(', ')}) are not supported: the mesh retries gRPC calls only on connect failures, resets and per-try timeouts`);
  const r = retryOf(rule.retry, [], f, `${at}.retry`);
  return { retry: r.retry, maxReplayBodyBytes: r.maxReplayBodyBytes, timeout: r.perTryMs === undefined ? timeout : { ...timeout, perTryMs: r.perTryMs } };
}
