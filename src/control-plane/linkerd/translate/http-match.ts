/**
 * Linkerd route matches (http_route.proto HttpRouteMatch, grpc_route.proto GrpcRouteMatch) → our
 * typed RouteMatch (outbound/settings.ts), with Linkerd's meanings:
 *
 * - path `exact` → exact; `prefix` → our segment-aware prefix (Linkerd's is segment-aware too,
 *   trailing `/` ignored on both sides); `regex` → an anchored regex, full match, as linkerd2-proxy
 *   (Rust `regex`, RE2-like syntax, checked by re2ToJs: a construct JS would read differently or
 *   backtrack badly on is refused). No path: any path.
 * - headers `exact` (bytes: must be UTF-8 without control characters) or `regex`; names lower-cased.
 * - method: the registered enum (GET = 0 … TRACE = 8) or an upper-case token.
 * - query-parameter matches: refused — our routes cannot match on the query; ignoring one would
 *   send requests to a route Linkerd would not (fail closed).
 * - gRPC: POST only; service and method → the exact path `/<service>/<method>`; a service alone →
 *   `/<service>/<any method>`; a method alone → `/<any service>/<method>` (regexes of literals).
 * Pure.
 */
import { literalSource, re2ToJs } from '../../xds/translate/regex.js';
import type { HeaderMatch as OurHeaderMatch, PathMatch as OurPathMatch, RouteMatch } from '../../../outbound/settings.js';
import { type Findings, quote } from './findings.js';
import type { GrpcRouteMatch } from '../../../proto/linkerd/grpc_route.js';
import type { HeaderMatch, HttpRouteMatch, PathMatch } from '../../../proto/linkerd/http_route.js';
import type { HttpMethod } from '../../../proto/linkerd/http_types.js';

/** http_types.HttpMethod.Registered, by enum value. */
export const REGISTERED_METHODS: readonly string[] = Object.freeze(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'HEAD', 'TRACE']);
/** Header (and query) matches per route match; more is a mistake. */
export const MAX_MATCH_HEADERS = 31;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Z-]+$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The method a match names, or undefined with a reason. */
export function methodOf(m: HttpMethod, f: Findings, at: string): string | undefined {
  const t = m.type;
  if (t?.kind === 'registered') {
    const name = REGISTERED_METHODS[t.registered];
    if (name === undefined) f.refuse(`${at}.registered`, `${t.registered} is not a registered method (0…8)`);
    return name;
  }
  if (t?.kind === 'unregistered' && METHOD.test(t.unregistered) && t.unregistered.length <= 64) return t.unregistered;
  f.refuse(at, t ? `${quote(t.unregistered)} is not an upper-case method token` : 'names no method');
  return undefined;
}

/** A path match as ours, or undefined with a reason. */
export function pathOf(p: PathMatch, f: Findings, at: string): OurPathMatch | undefined {
  const k = p.kind;
  if (k?.kind === 'exact') {
    if (!k.exact.startsWith('/')) f.refuse(`${at}.exact`, `${quote(k.exact)} is not a path (it must start with "/")`);
    return { exact: k.exact };
  }
  if (k?.kind === 'prefix') {
    if (k.prefix !== '' && !k.prefix.startsWith('/')) f.refuse(`${at}.prefix`, `${quote(k.prefix)} is not a path (it must start with "/")`);
    const trimmed = k.prefix.replace(/\/+$/, '');
    return { prefix: trimmed === '' ? '/' : trimmed };
  }
  if (k?.kind === 'regex') {
    const r = re2ToJs(k.regex);
    if (!r.ok) {
      f.refuse(`${at}.regex`, `${quote(k.regex)}: ${r.message}`);
      return undefined;
    }
    return { regex: r.source };
  }
  f.refuse(at, 'names no path match (exact, prefix or regex)');
  return undefined;
}

/** A header match as ours, or undefined with a reason. */
export function headerOf(h: HeaderMatch, f: Findings, at: string): OurHeaderMatch | undefined {
  const name = h.name.toLowerCase();
  if (!TOKEN.test(name) || name.length > 256) {
    f.refuse(`${at}.name`, `${quote(h.name)} is not a header name`);
    return undefined;
  }
  const v = h.value;
  if (v?.kind === 'exact') {
    let value: string;
    try {
      value = UTF8.decode(v.exact);
    } catch {
      f.refuse(`${at}.exact`, 'is not UTF-8: the mesh compares header values as text');
      return undefined;
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      f.refuse(`${at}.exact`, 'holds a control character no header value can hold');
      return undefined;
    }
    return { name, exact: value };
  }
  if (v?.kind === 'regex') {
    const r = re2ToJs(v.regex);
    if (!r.ok) {
      f.refuse(`${at}.regex`, `${quote(v.regex)}: ${r.message}`);
      return undefined;
    }
    return { name, regex: r.source };
  }
  f.refuse(at, 'names no value match (exact or regex)');
  return undefined;
}

function headersOf(list: readonly HeaderMatch[], f: Findings, at: string): OurHeaderMatch[] {
  if (list.length > MAX_MATCH_HEADERS) f.refuse(`${at}.headers`, `${list.length} header matches: at most ${MAX_MATCH_HEADERS}`);
  const out: OurHeaderMatch[] = [];
  list.slice(0, MAX_MATCH_HEADERS).forEach((h, i) => {
    const x = headerOf(h, f, `${at}.headers[${i}]`);
    if (x) out.push(x);
  });
  return out;
}

/** One HTTP route match as ours (undefined: refused, the reason recorded). */
export function httpRouteMatchOf(m: HttpRouteMatch, f: Findings, at: string): RouteMatch | undefined {
  const before = f.reasons.length;
  const out: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = {};
  if (m.path) {
    const p = pathOf(m.path, f, `${at}.path`);
    if (p) out.path = p;
  }
  const headers = headersOf(m.headers, f, at);
  if (headers.length) out.headers = headers;
  if (m.queryParams.length > 0) {
    f.refuse(`${at}.query_params`, 'query-parameter matches are not supported: routes match on the path, method and headers only');
  }
  if (m.method) {
    const method = methodOf(m.method, f, `${at}.method`);
    if (method) out.methods = [method];
  }
  return f.reasons.length > before ? undefined : out;
}

/** One gRPC route match as ours (undefined: refused). */
export function grpcRouteMatchOf(m: GrpcRouteMatch, f: Findings, at: string): RouteMatch | undefined {
  const before = f.reasons.length;
  const out: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = { methods: ['POST'] };
  const service = m.rpc?.service ?? '';
  const method = m.rpc?.method ?? '';
  for (const [k, v] of [['service', service], ['method', method]] as const) {
    if (v.includes('/') || v.length > 256 || /[\u0000-\u0020\u007f]/.test(v)) f.refuse(`${at}.rpc.${k}`, `${quote(v)} is not a gRPC ${k} name`);
  }
  if (service !== '' && method !== '') out.path = { exact: `/${service}/${method}` };
  else if (service !== '') out.path = { regex: `${literalSource(`/${service}/`)}[^/]*` };
  else if (method !== '') out.path = { regex: `/[^/]*${literalSource(`/${method}`)}` };
  const headers = headersOf(m.headers, f, at);
  if (headers.length) out.headers = headers;
  return f.reasons.length > before ? undefined : out;
}
