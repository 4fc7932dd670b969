/**
 * The credentials of a request whose TLS a front end terminated, read from what the platform hands
 * over; nothing here verifies anything (judge.ts does). Pure.
 * - A bearer token: `Authorization: Bearer <b64token>` (RFC 6750 §2.1; the scheme is
 *   case-insensitive). Another scheme (Basic, …) is the app's business: no token. Two
 *   Authorization fields, or a Bearer whose token is not b64token, are a bad credential.
 * - A forwarded client certificate chain, from where the named front end puts it:
 *   `aws-api-gateway` → the wrapper's `forwardedClientCertPem` (API Gateway's
 *   requestContext.identity.clientCert.clientCertPem); `header` + `pem` → that header's URL-encoded
 *   PEM (AWS ALB's `x-amzn-mtls-clientcert`); `header` + `xfcc` → Envoy's
 *   x-forwarded-client-cert, its LAST element (the one the nearest proxy, our front end, appended;
 *   earlier ones are other hops' claims), `Chain=` if present, else `Cert=` (URL-encoded PEM).
 */
import { pemToCertDers } from '../../identity/pem.js';
import { type FrontedInput } from './types.js';

export type FrontEnd = { readonly kind: 'aws-api-gateway' } | { readonly kind: 'header'; readonly header: string; readonly format: 'xfcc' | 'pem' };

export type Found<T> = { readonly kind: 'none' } | { readonly kind: 'found'; readonly value: T } | { readonly kind: 'bad'; readonly reason: string };

const NONE = Object.freeze({ kind: 'none' } as const);
const bad = (reason: string): Found<never> => ({ kind: 'bad', reason });

/** Longest forwarded certificate value taken (a chain of a few certificates, URL-encoded). */
export const MAX_FORWARDED_CERT_LENGTH = 64 * 1024;

/** A header's values by lower-case name, whatever the case of the keys the platform used. */
export function headerValues(headers: FrontedInput['headers'], name: string): string[] {
  const out: string[] = [];
  if (headers === null || typeof headers !== 'object') return out;
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue;
    const v = headers[key];
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x);
  }
  return out;
}

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The bearer token of the request, if it carries one. */
export function bearerToken(headers: FrontedInput['headers']): Found<string> {
  const values = headerValues(headers, 'authorization');
  if (values.length === 0) return NONE;
  if (values.length > 1) return bad('the request has more than one Authorization field');
  const v = values[0]!.trim();
  // A tab after the scheme is no separator by RFC 7235, but apps split on any whitespace: it is a
  // Bearer, judged (and stripped once admitted), never left for the app to read unjudged.
  const m = /^(\S+)(?:[ \t]+([^]*))?$/.exec(v);
  if (!m || m[1]!.toLowerCase() !== 'bearer') return NONE;
  const token = (m[2] ?? '').trim();
  if (token === '' || !B64TOKEN.test(token)) return bad('the Bearer credential is not a token (RFC 6750 b64token)');
  return { kind: 'found', value: token };
}

/** The forwarded chain (DER, leaf first) where `frontEnd` puts it. */
export function forwardedChain(frontEnd: FrontEnd, req: FrontedInput): Found<Buffer[]> {
  let pem: string | undefined;
  if (frontEnd.kind === 'aws-api-gateway') {
    if (req.forwardedClientCertPem === undefined || req.forwardedClientCertPem === '') return NONE;
    if (typeof req.forwardedClientCertPem !== 'string') return bad('the forwarded client certificate is not PEM text');
    pem = req.forwardedClientCertPem;
  } else {
    const values = headerValues(req.headers, frontEnd.header);
    if (values.length === 0) return NONE;
    if (values.length > 1) return bad(`the request has more than one ${frontEnd.header} field`);
    const v = values[0]!;
    if (v.length > MAX_FORWARDED_CERT_LENGTH) return bad(`${frontEnd.header} is ${v.length} characters, more than the ${MAX_FORWARDED_CERT_LENGTH} allowed`);
    let encoded: string | undefined;
    try {
      encoded = frontEnd.format === 'pem' ? v : xfccCertificate(v);
    } catch (e) {
      return bad(`${frontEnd.header} is not well-formed XFCC: ${(e as Error).message}`);
    }
    if (encoded === undefined) return bad(`${frontEnd.header} has no Cert= or Chain= in its last element`);
    try {
      pem = decodeURIComponent(encoded);
    } catch {
      return bad(`${frontEnd.header} is not URL-encoded PEM`);
    }
  }
  if (pem.length > MAX_FORWARDED_CERT_LENGTH) return bad(`the forwarded certificate is ${pem.length} characters, more than the ${MAX_FORWARDED_CERT_LENGTH} allowed`);
  let ders: Buffer[];
  try {
    ders = pemToCertDers(pem);
  } catch (e) {
    return bad(`the forwarded certificate is not PEM: ${(e as Error).message}`);
  }
  if (ders.length === 0) return bad('the forwarded certificate holds no CERTIFICATE block');
  return { kind: 'found', value: ders };
}

/**
 * The URL-encoded PEM of an XFCC value's last element: `Chain=` when present, else `Cert=`.
 * Parsed strictly (Envoy's grammar: `,` between elements, `;` between `key=value` pairs, a value
 * plain or a closed "quoted string" with `\` escapes, directly followed by `;`, `,` or the end):
 * a hop before the front end writes the start of the header, so a stray quote there must not
 * swallow the front end's `,` and make an earlier element — a certificate anyone can copy — the
 * last one. Throws an Error naming the problem when the value is not well formed, or when an
 * element has two `Cert=` or two `Chain=`.
 */
export function xfccCertificate(value: string): string | undefined {
  const elements = parseXfcc(value);
  const last = elements[elements.length - 1]!;
  const v = last.get('chain') ?? last.get('cert');
  return v === undefined || v === '' ? undefined : v;
}

const XFCC_SINGLE = new Set(['cert', 'chain', 'by', 'hash']);

function parseXfcc(s: string): Array<Map<string, string>> {
  const elements: Array<Map<string, string>> = [new Map()];
  let i = 0;
  while (i <= s.length) {
    const eq = s.indexOf('=', i);
    const end = nextSeparator(s, i);
    if (eq < 0 || eq > end) {
      if (s.slice(i, end).trim() !== '') throw new Error(`"${s.slice(i, end).slice(0, 40)}" is not key=value`);
      i = separate(s, end, elements);
      continue;
    }
    const key = s.slice(i, eq).trim().toLowerCase();
    if (key === '' || key.includes('"')) throw new Error('a pair has no key');
    let val: string;
    let at = eq + 1;
    while (s[at] === ' ') at++;
    if (s[at] === '"') {
      val = '';
      for (at++; at < s.length && s[at] !== '"'; at++) val += s[at] === '\\' && at + 1 < s.length ? s[++at] : s[at];
      if (at >= s.length) throw new Error(`the quoted value of ${key} is not closed`);
      at++;
      while (s[at] === ' ') at++;
      if (at < s.length && s[at] !== ';' && s[at] !== ',') throw new Error(`the quoted value of ${key} is followed by "${s[at]}"`);
    } else {
      const stop = nextSeparator(s, at);
      val = s.slice(at, stop).trim();
      if (val.includes('"')) throw new Error(`the value of ${key} has a stray quote`);
      at = stop;
    }
    const element = elements[elements.length - 1]!;
    if (element.has(key) && XFCC_SINGLE.has(key)) throw new Error(`an element has two ${key}= pairs`);
    if (!element.has(key)) element.set(key, val);
    i = separate(s, at, elements);
  }
  return elements;
}

const nextSeparator = (s: string, from: number): number => {
  for (let i = from; i < s.length; i++) if (s[i] === ';' || s[i] === ',') return i;
  return s.length;
};

/** Past the separator at `at` (a `,` starts a new element); s.length + 1 at the end. */
function separate(s: string, at: number, elements: Array<Map<string, string>>): number {
  if (at >= s.length) return s.length + 1;
  if (s[at] === ',') elements.push(new Map());
  return at + 1;
}
