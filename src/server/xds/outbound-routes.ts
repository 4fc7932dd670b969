/**
 * RouteSpec → xDS Route, the exact inverse of control-plane/xds/translate/route-match.ts and
 * route-policy.ts, so a client running our translators reads back the routes it was given:
 * exact → `path`, prefix (by segment) → `safe_regex` `<prefix>(/.*)?` (no proxyless gRPC client takes
 * Envoy's `path_separated_prefix`; our client reads it back as that regex), stringPrefix → `prefix`,
 * regex → `safe_regex` (only when RE2 and JavaScript read it alike: re2ToJs gives it back unchanged); headers as string matchers
 * or `present_match`; one method as a `:method` exact header; the request timeout as
 * `max_stream_duration` (gRFC A31, what istiod sets); retries as Envoy `retry_on` tokens whose
 * meanings (route-policy.ts's table) give back exactly the failures and statuses asked for.
 * What xDS cannot say (two methods on one route, a retry of timeouts without resets, a backoff
 * multiplier other than 2, …) throws XdsGenerateError instead of sending something else. Pure.
 */
import type { RetryPolicy, Route, RouteAction, HeaderMatcher, RouteMatch as XdsRouteMatch } from '../../proto/envoy/config/route/v3/route.js';
import type { DeepPartial } from '../../proto/wire.js';
import { re2ToJs } from '../../control-plane/xds/translate/regex.js';
import { DEFAULT_RETRY_POLICY_SETTINGS, type RetryPolicySettings } from '../../outbound/retry/policy.js';
import type { HeaderMatch, PathMatch, RequestPolicy, RouteMatch, RouteSpec, SplitBackend } from '../../outbound/settings.js';
import { durationOf, type Fail } from './outbound-model.js';

/** Split backend (a service name) → its Cluster's name; throws for an unknown service. */
export type ClusterOf = (service: string, field: string) => string;

const METHOD = /^[A-Z][A-Z0-9-]*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const MAX_RETRIES = 10;
const MAX_WEIGHT_SUM = 0xffff_ffff;
const FIVE_XX = Array.from({ length: 100 }, (_, i) => 500 + i);
const GATEWAY = [502, 503, 504];

function regexOf(source: string, fail: Fail, field: string): string {
  const r = re2ToJs(source);
  if (!r.ok) fail(field, `${JSON.stringify(source.slice(0, 100))} is refused by the RE2 check clients run: ${r.message}`);
  if (r.source !== source) fail(field, `${JSON.stringify(source.slice(0, 100))} means something else in RE2 than in JavaScript (clients would match ${JSON.stringify(r.source.slice(0, 100))})`);
  return source;
}

function pathOf(p: PathMatch, fail: Fail, field: string): DeepPartial<XdsRouteMatch> {
  const noQuery = (v: string) => {
    if (/[?#]/.test(v)) fail(field, `${JSON.stringify(v)} holds "?" or "#": paths are matched without their query`);
  };
  if ('exact' in p) return noQuery(p.exact), { path: p.exact };
  if ('stringPrefix' in p) return noQuery(p.stringPrefix), { prefix: p.stringPrefix };
  if ('prefix' in p) {
    noQuery(p.prefix);
    if (!p.prefix.startsWith('/') || (p.prefix.length > 1 && p.prefix.endsWith('/'))) fail(field, `${JSON.stringify(p.prefix)}: a segment prefix must start with "/" and not end with one`);
    // path_separated_prefix is Envoy's, and no proxyless gRPC client takes it (grpc-js-xds 1.14 NACKs
    // it; gRFC A28 has prefix, path and safe_regex): the same paths as an RE2 regex (paths hold no \n).
    if (p.prefix === '/') return { prefix: '/' };
    const re2 = `${p.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/.*)?`;
    if (!re2ToJs(re2).ok) fail(field, `${JSON.stringify(p.prefix.slice(0, 100))}: no RE2 form (${(re2ToJs(re2) as { message: string }).message})`);
    return { safeRegex: { regex: re2 } };
  }
  return { safeRegex: { regex: regexOf(p.regex, fail, field) } };
}

function headerOf(h: HeaderMatch, fail: Fail, field: string): DeepPartial<HeaderMatcher> {
  if (!HEADER_NAME.test(h.name)) fail(`${field}.name`, `${JSON.stringify(h.name.slice(0, 100))} is not a lower-case header name (pseudo-headers: use methods for :method)`);
  if ('present' in h) return { name: h.name, presentMatch: h.present };
  if ('exact' in h) return { name: h.name, stringMatch: { exact: h.exact } };
  return { name: h.name, stringMatch: { safeRegex: { regex: regexOf(h.regex, fail, `${field}.regex`) } } };
}

export function matchOf(m: RouteMatch, fail: Fail, field: string): DeepPartial<XdsRouteMatch> {
  const headers = (m.headers ?? []).map((h, i) => headerOf(h, fail, `${field}.headers[${i}]`));
  const methods = [...new Set(m.methods ?? [])];
  if (methods.length > 1) fail(`${field}.methods`, `an xDS route matches one method (${methods.join(', ')}): write one route per method`);
  if (methods.length === 1) {
    if (!METHOD.test(methods[0]!)) fail(`${field}.methods`, `${JSON.stringify(methods[0]!.slice(0, 40))} is not an upper-case method`);
    headers.push({ name: ':method', stringMatch: { exact: methods[0]! } });
  }
  // No path: every path (Envoy's plain prefix "").
  return { ...(m.path ? pathOf(m.path, fail, `${field}.path`) : { prefix: '' }), headers };
}

/** The retry_on tokens whose union (route-policy.ts) is exactly these failures and statuses. */
function retryOnOf(r: RetryPolicySettings, fail: Fail, field: string): { tokens: string[]; codes: number[] } {
  const f = new Set(r.retryOnFailures);
  const statuses = [...new Set(r.retryOnStatuses)].sort((a, b) => a - b);
  const tokens: string[] = [];
  let covered: readonly number[] = [];
  if (f.has('timeout')) {
    if (!f.has('connect') || !f.has('reset')) fail(`${field}.retryOnFailures`, 'xDS retries timeouts only together with connect failures and resets (retry_on "reset")');
    const has = (list: readonly number[]) => list.every((s) => statuses.includes(s));
    if (has(FIVE_XX)) (tokens.push('5xx'), (covered = FIVE_XX));
    else if (has(GATEWAY)) (tokens.push('gateway-error'), (covered = GATEWAY));
    else tokens.push('reset');
  } else {
    if (f.has('connect')) tokens.push('connect-failure');
    if (f.has('reset')) tokens.push('refused-stream');
  }
  const codes = statuses.filter((s) => !covered.includes(s));
  for (const s of codes) if (!Number.isInteger(s) || s < 100 || s > 599) fail(`${field}.retryOnStatuses`, `${s} is not an HTTP status`);
  if (codes.length > 0) tokens.push('retriable-status-codes');
  return { tokens, codes };
}

/** What xDS has no field for must be the defaults the client's translator fills in. */
function checkInexpressible(r: RetryPolicySettings, fail: Fail, field: string): void {
  const d = DEFAULT_RETRY_POLICY_SETTINGS;
  if (r.retryableMethods.join() !== d.retryableMethods.join()) fail(`${field}.retryableMethods`, 'xDS cannot carry retryable methods: only the default (idempotent methods) is served');
  if (r.retryConnectFailuresForAnyMethod !== d.retryConnectFailuresForAnyMethod) fail(`${field}.retryConnectFailuresForAnyMethod`, 'xDS cannot carry it: only the default is served');
  if (r.honourRetryAfter !== d.honourRetryAfter || r.maxRetryAfterMs !== d.maxRetryAfterMs) fail(`${field}.honourRetryAfter`, 'xDS cannot carry Retry-After handling: only the default is served');
  if (r.backoff.multiplier !== 2) fail(`${field}.backoff.multiplier`, `${r.backoff.multiplier}: Envoy's back-off multiplies by 2, only 2 is served`);
  if (r.backoff.baseMs <= 0) fail(`${field}.backoff.baseMs`, 'must be greater than 0 (Envoy\'s rule)');
  if (r.backoff.maxMs < r.backoff.baseMs) fail(`${field}.backoff.maxMs`, 'must not be shorter than baseMs');
  if (r.maxRetries > MAX_RETRIES) fail(`${field}.maxRetries`, `${r.maxRetries} is more than the ${MAX_RETRIES} retries clients accept`);
}

function retryPolicyOf(p: RequestPolicy, fail: Fail, field: string): DeepPartial<RetryPolicy> | undefined {
  const perTry = p.timeout.perTryMs;
  const r = p.retry;
  const perTryTimeout = perTry !== undefined && perTry > 0 ? { perTryTimeout: durationOf(perTry, fail, `${field}.timeout.perTryMs`) } : {};
  if (r === null || r.maxRetries === 0 || (r.retryOnFailures.length === 0 && r.retryOnStatuses.length === 0)) {
    // No retries (the translator's null); a per-try timeout still travels in a policy retrying on nothing.
    return perTry !== undefined && perTry > 0 ? { retryOn: '', ...perTryTimeout } : undefined;
  }
  checkInexpressible(r, fail, `${field}.retry`);
  const { tokens, codes } = retryOnOf(r, fail, `${field}.retry`);
  return {
    retryOn: tokens.join(','),
    numRetries: r.maxRetries,
    retriableStatusCodes: codes,
    retryBackOff: { baseInterval: durationOf(r.backoff.baseMs, fail, `${field}.retry.backoff.baseMs`), maxInterval: durationOf(r.backoff.maxMs, fail, `${field}.retry.backoff.maxMs`) },
    ...perTryTimeout,
  };
}

function targetOf(split: readonly SplitBackend[] | undefined, own: string, clusterOf: ClusterOf, fail: Fail, field: string): DeepPartial<RouteAction> {
  if (split === undefined) return { cluster: own };
  if (split.length === 0) fail(field, 'an empty split sends nowhere: leave it out to use the service itself');
  const seen = new Set<string>();
  let total = 0;
  const clusters = split.map((b, i) => {
    const name = clusterOf(b.service, `${field}[${i}].service`);
    if (seen.has(name)) fail(`${field}[${i}].service`, `${JSON.stringify(b.service)} is listed twice`);
    seen.add(name);
    if (!Number.isInteger(b.weight) || b.weight < 0) fail(`${field}[${i}].weight`, `${b.weight} is not an integer >= 0`);
    total += b.weight;
    return { name, weight: b.weight };
  });
  if (total === 0) fail(field, 'needs a backend with a weight > 0');
  if (total > MAX_WEIGHT_SUM) fail(field, 'weights sum to more than 2^32 - 1');
  return { weightedClusters: { clusters } };
}

/** Where a route's fields are named in errors: `routes[2].policy`, or the service's `settings` and `split`. */
export interface RouteFields {
  readonly policy: string;
  readonly split: string;
}

/** One route: its match, its split (or the service's own cluster) and its policy. */
export function routeOf(r: RouteSpec, own: string, clusterOf: ClusterOf, fail: Fail, field: string, catchAll?: RouteFields): DeepPartial<Route> {
  const at = catchAll ?? { policy: `${field}.policy`, split: `${field}.split` };
  const requestMs = r.policy.timeout.requestMs;
  const retryPolicy = retryPolicyOf(r.policy, fail, at.policy);
  const route: DeepPartial<RouteAction> = {
    ...targetOf(r.split, own, clusterOf, fail, at.split),
    ...(requestMs !== undefined && requestMs > 0 && { maxStreamDuration: { maxStreamDuration: durationOf(requestMs, fail, `${at.policy}.timeout.requestMs`) } }),
    ...(retryPolicy && { retryPolicy }),
  };
  // The catch-all matches every path (Envoy's plain prefix "").
  return { name: r.name, match: catchAll ? { prefix: '' } : matchOf(r.match, fail, `${field}.match`), route };
}
