/**
 * AWS Lambda HTTP events (API Gateway REST v1, HTTP API v2 and Function URLs, ALB) as the mesh
 * judges them (a FrontedRequest, hooks.ts), and a refusal as the response the event's front end
 * expects. Pure. Any other event (SQS, a schedule, …) is not HTTP: `frontedRequestOf` gives
 * undefined and the wrapper passes it through (IAM authorized the invocation).
 */
import { type FrontedRequest, type FrontedVerdict } from '../mesh/hooks.js';

export type HttpEventKind = 'rest-v1' | 'http-v2' | 'alb';

/** The port a front end receives HTTPS on: the platforms' public endpoints are 443. */
export const FRONT_END_PORT = 443;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function httpEventKind(event: unknown): HttpEventKind | undefined {
  if (!isObj(event)) return undefined;
  const rc = event.requestContext;
  if (isObj(rc) && isObj(rc.elb) && typeof event.httpMethod === 'string') return 'alb';
  if (event.version === '2.0' && isObj(rc) && isObj(rc.http) && typeof event.rawPath === 'string') return 'http-v2';
  if (typeof event.httpMethod === 'string' && typeof event.path === 'string' && isObj(rc)) return 'rest-v1';
  return undefined;
}

/**
 * A request from the network in an event shape the wrapper cannot judge, by the service that sent
 * it: an API Gateway WebSocket API's events (its `$connect` is a client's HTTP upgrade), a VPC
 * Lattice request (payload 1.0 or 2.0). Passing them as "not HTTP" would run the handler for a
 * caller no policy saw: the wrapper refuses them instead (fail closed).
 */
export function unjudgedHttpSource(event: unknown): string | undefined {
  if (!isObj(event)) return undefined;
  const rc = event.requestContext;
  if (isObj(rc) && typeof rc.connectionId === 'string' && typeof rc.eventType === 'string') return 'an API Gateway WebSocket API';
  if ((isObj(rc) && typeof rc.serviceNetworkArn === 'string') || (typeof event.raw_path === 'string' && typeof event.method === 'string')) return 'VPC Lattice';
  return undefined;
}

export const EVENT_UNSUPPORTED = 'ERR_SIDECARLESS_HTTP_EVENT_UNSUPPORTED';

/** The refusal of an event `unjudgedHttpSource` names: 403 in the shape those services read (statusCode, headers, body). */
export function unsupportedResponse(source: string): Record<string, unknown> {
  const body = JSON.stringify({ error: `sidecarless/serverless does not judge requests from ${source}: refused`, code: EVENT_UNSUPPORTED });
  return { statusCode: 403, headers: { 'content-type': 'application/json' }, body, isBase64Encoded: false };
}

export interface FrontEndOptions {
  /** `inbound.frontEnd` of the mesh's config, read defensively. */
  readonly frontEnd?: unknown;
}

/** The request the event carries, or undefined for an event that is not an HTTP request. */
export function frontedRequestOf(event: unknown, opts: FrontEndOptions = {}): { kind: HttpEventKind; request: FrontedRequest } | undefined {
  const kind = httpEventKind(event);
  if (!kind) return undefined;
  const e = event as Obj;
  const rc = e.requestContext as Obj;
  const headers = headersOf(e, kind);
  // Two Host fields are refused (their joined value is no host): the handler may read the other one.
  const hosts = headers.host;
  const host = (Array.isArray(hosts) && hosts.length > 1 ? hosts.join(', ') : first(hosts)) ?? (kind === 'alb' ? undefined : str(rc.domainName));
  const method = kind === 'http-v2' ? (str((rc.http as Obj).method) ?? '') : (e.httpMethod as string);
  const target = kind === 'http-v2' ? targetV2(e) : targetV1(e, kind);
  const sourceIp = sourceIpOf(e, kind, headers);
  const pem = awsApiGateway(opts.frontEnd) ? clientCertPem(rc, kind) : undefined;
  return { kind, request: { method, target, host, headers, sourceIp, port: FRONT_END_PORT, ...(pem !== undefined && { forwardedClientCertPem: pem }) } };
}

const first = (v: string | readonly string[] | undefined) => (Array.isArray(v) ? (v[0] as string | undefined) : (v as string | undefined));

/**
 * Header values by lower-case name (multiValueHeaders when the event has them; v2's cookies array
 * as Cookie). Keys that differ only in case are one field with all their values (`Authorization`
 * and `authorization` are two Authorization fields, refused as such, not one of them picked), and
 * a name the event has in either map is judged, so the strip of identity headers sees it too.
 */
function headersOf(e: Obj, kind: HttpEventKind): Record<string, string | string[]> {
  // No prototype: a header a client names `__proto__` is a header like any other.
  const multi: Record<string, string[]> = Object.create(null);
  const single: Record<string, string[]> = Object.create(null);
  const add = (to: Record<string, string[]>, k: string, v: unknown) => {
    const vs = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
    (to[k.toLowerCase()] ??= []).push(...vs);
  };
  if (isObj(e.multiValueHeaders)) for (const [k, v] of Object.entries(e.multiValueHeaders)) add(multi, k, v);
  if (isObj(e.headers)) for (const [k, v] of Object.entries(e.headers)) add(single, k, v);
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [k, vs] of Object.entries(single)) out[k] = vs.length === 1 ? vs[0]! : vs;
  for (const [k, vs] of Object.entries(multi)) if (vs.length > 0 || out[k] === undefined) out[k] = vs;
  if (kind === 'http-v2' && Array.isArray(e.cookies) && out.cookie === undefined) out.cookie = e.cookies.filter((c) => typeof c === 'string').join('; ');
  return out;
}

function targetV2(e: Obj): string {
  const q = str(e.rawQueryString);
  return `${encodedPath(e.rawPath as string)}${q ? `?${q}` : ''}`;
}

/**
 * The path as a request line carries it. REST APIs, Function URLs and ALBs pass it percent-encoded;
 * HTTP APIs pass it decoded (payload 1.0 `path` and 2.0 `rawPath`): a decoded space or non-ASCII
 * character would be a 400, a decoded `?` or `#` would split the path. Only what can never appear
 * literally in an encoded path is encoded, so an encoded path is unchanged.
 */
export function encodedPath(path: string): string {
  return path.replace(/%(?![0-9A-Fa-f]{2})|[^\x21-\x7e]|["#<>?\\^`{|}]/gu, encodeChar);
}

function encodeChar(c: string): string {
  try {
    return encodeURIComponent(c);
  } catch {
    return '%EF%BF%BD'; // a lone surrogate: U+FFFD, as a UTF-8 decoder would read it
  }
}

/** REST v1 decodes query values (re-encoded here); ALB passes them as the client sent them. */
function targetV1(e: Obj, kind: HttpEventKind): string {
  const path = encodedPath(e.path as string);
  const pairs: string[] = [];
  const enc = kind === 'alb' ? (s: string) => s : encodeURIComponent;
  const multi = e.multiValueQueryStringParameters;
  const single = e.queryStringParameters;
  if (isObj(multi)) {
    for (const [k, vs] of Object.entries(multi)) if (Array.isArray(vs)) for (const v of vs) pairs.push(`${enc(k)}=${enc(String(v))}`);
  } else if (isObj(single)) {
    for (const [k, v] of Object.entries(single)) pairs.push(`${enc(k)}=${enc(String(v))}`);
  }
  return pairs.length ? `${path}?${pairs.join('&')}` : path;
}

/** What the front end saw: API Gateway's requestContext; for an ALB, the last X-Forwarded-For entry (the one it appended). */
function sourceIpOf(e: Obj, kind: HttpEventKind, headers: Record<string, string | string[]>): string {
  const rc = e.requestContext as Obj;
  if (kind === 'http-v2') return str((rc.http as Obj).sourceIp) ?? '';
  if (kind === 'rest-v1') return (isObj(rc.identity) && str(rc.identity.sourceIp)) || '';
  const xff = headers['x-forwarded-for'];
  const all = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  return all.at(-1) ?? '';
}

function awsApiGateway(frontEnd: unknown): boolean {
  return isObj(frontEnd) && frontEnd.kind === 'aws-api-gateway';
}

/** API Gateway's mutual TLS: REST in requestContext.identity.clientCert, HTTP API in requestContext.authentication.clientCert. */
function clientCertPem(rc: Obj, kind: HttpEventKind): string | undefined {
  const holder = kind === 'rest-v1' ? rc.identity : kind === 'http-v2' ? rc.authentication : undefined;
  if (!isObj(holder) || !isObj(holder.clientCert)) return undefined;
  return str(holder.clientCert.clientCertPem);
}

/**
 * Hands the handler the path the policy judged (`verdict.path`), in place: REST's and ALB's `path`,
 * HTTP API's `rawPath` and `requestContext.http.path`. Without it `/public/../admin` is judged as
 * `/admin`, but `/admin/../public/x` — judged `/public/x` — reaches a router that does not remove
 * dot segments as `/admin/…`. Unchanged when the event already holds the normalized path.
 */
export function applyJudgedPath(event: unknown, kind: HttpEventKind, path: string): void {
  if (!isObj(event)) return;
  if (kind !== 'http-v2') {
    if (event.path !== path) event.path = path;
    return;
  }
  if (event.rawPath === path) return;
  event.rawPath = path;
  const http = isObj(event.requestContext) ? event.requestContext.http : undefined;
  if (isObj(http) && typeof http.path === 'string') http.path = path;
}

/**
 * Removes `names` (any case) from the event's headers and multiValueHeaders, in place: identity
 * headers a client sent, and an admitted JWT-SVID, never reach the handler.
 */
export function stripEventHeaders(event: unknown, names: readonly string[]): void {
  if (names.length === 0 || !isObj(event)) return;
  const drop = new Set(names.map((n) => n.toLowerCase()));
  for (const holder of [event.headers, event.multiValueHeaders]) {
    if (!isObj(holder)) continue;
    for (const k of Object.keys(holder)) if (drop.has(k.toLowerCase())) delete holder[k];
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' };

/** A refusal as the event's front end expects a response: status, JSON body, WWW-Authenticate for a 401. */
export function refusalResponse(kind: HttpEventKind, event: unknown, v: Extract<FrontedVerdict, { allowed: false }>): Record<string, unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(v.wwwAuthenticate !== undefined && { 'www-authenticate': v.wwwAuthenticate }) };
  const body = JSON.stringify({ error: v.message, code: v.code });
  const res: Record<string, unknown> = { statusCode: v.status, body, isBase64Encoded: false };
  if (kind === 'alb') res.statusDescription = `${v.status} ${REASONS[v.status] ?? ''}`.trim();
  // An ALB target group with multi-value headers on (and a REST API sending them) reads multiValueHeaders.
  if (isObj(event) && isObj(event.multiValueHeaders) && kind === 'alb') res.multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, x]) => [k, [x]]));
  else res.headers = headers;
  return res;
}
