/**
 * JWT-SVIDs (the SPIFFE JWT-SVID spec): parsing a compact JWS and validating one against the JWT
 * bundle of its subject's own trust domain. What is refused, each with its `reason`:
 * - not three base64url parts of canonical encoding, not UTF-8 JSON objects, a member twice, larger
 *   than MAX_JWT_SVID_LENGTH (`malformed`);
 * - a header member other than alg, kid, typ (the spec: no other header may be included), `typ`
 *   other than JWT or JOSE, no `kid` (`header`);
 * - `alg` other than RS256/384/512, ES256/384/512, PS256/384/512: `none`, HS*, EdDSA… (`algorithm`),
 *   or an `alg` that does not fit the key (ES256 needs a P-256 key, RS256 or PS256 an RSA key);
 * - `sub` that is not a workload SPIFFE ID (`subject`);
 * - no JWT bundle for the subject's trust domain (`trust-domain`): keys of another trust domain
 *   never vouch for this one, whatever the kid;
 * - `kid` not in that bundle (`key`); a signature that does not verify (`signature`);
 * - `aud` missing, or without the audience the validator is (`audience`);
 * - `exp` missing or not in the future (`expired`; no leeway: RFC 7519 says "on or after which");
 *   `nbf` or `iat` more than CLOCK_SKEW_MS in the future (`not-yet-valid`).
 * Only JwtSvidError is thrown, whatever the input. Pure: no I/O; `now` is the caller's.
 */
import { type KeyObject, constants, verify } from 'node:crypto';
import { JwtSvidError, type JwtSvidRefusal } from '../errors.js';
import { type JwtBundleSet, type JwtKey } from './jwt-bundle.js';
import { parseWorkloadId } from './spiffe-id.js';
import { printable } from './peer-text.js';

export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;
export type JwtSvidAlgorithm = (typeof JWT_SVID_ALGORITHMS)[number];

/** Longest token taken (Node's default limit for all request headers together is 16 KiB). */
export const MAX_JWT_SVID_LENGTH = 16 * 1024;
/** How far in the future `nbf` and `iat` may be (the issuer's clock may run ahead of ours). `exp` has no leeway. */
export const CLOCK_SKEW_MS = 60_000;

const HEADER_MEMBERS = new Set(['alg', 'kid', 'typ']);

/** A compact JWS split and decoded, nothing verified yet. */
export interface ParsedJws {
  readonly header: { readonly alg: JwtSvidAlgorithm; readonly kid: string; readonly typ?: string };
  readonly claims: Readonly<Record<string, unknown>>;
  /** `<header>.<payload>` as sent: what the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

/** The registered claims of a JWT-SVID, checked for shape. */
export interface JwtSvidClaims {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly audience: readonly string[];
  /** `exp`, in ms since the epoch. */
  readonly expiresAt: number;
  /** `iat`, in ms since the epoch, when present. */
  readonly issuedAt?: number;
  /** `nbf`, in ms since the epoch, when present. */
  readonly notBefore?: number;
}

/** A JWT-SVID that passed every check. */
export interface ValidatedJwtSvid extends JwtSvidClaims {
  /** Every claim of the payload, as sent. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly keyId: string;
  readonly algorithm: JwtSvidAlgorithm;
}

export interface ValidateJwtSvidOptions {
  /** The audience this validator is: it must be one of the token's `aud` values. */
  readonly audience: string;
  readonly bundles: JwtBundleSet;
  /** Now, in ms since the epoch. */
  readonly now: number;
}

// The message quotes the token's own strings (kid, member names, sub): whoever presents the token
// picks them, so control characters are escaped before the message reaches a log or a terminal.
const refuse = (reason: JwtSvidRefusal, message: string): never => {
  throw new JwtSvidError(reason, `JWT-SVID refused: ${printable(message, 4096)}`);
};

/** Splits and decodes a compact JWS and checks its header; verifies nothing. */
export function parseJws(token: unknown): ParsedJws {
  if (typeof token !== 'string') return refuse('malformed', `a token is a string, not ${token === null ? 'null' : typeof token}`);
  if (token.length > MAX_JWT_SVID_LENGTH) refuse('malformed', `the token is ${token.length} characters, more than the ${MAX_JWT_SVID_LENGTH} allowed`);
  const parts = token.split('.');
  if (parts.length !== 3) refuse('malformed', `a compact JWS has three parts separated by ".", this one has ${parts.length}${parts.length === 5 ? ' (a JWE: JWT-SVIDs are signed, not encrypted)' : ''}`);
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(decodePart(h, 'header'), 'header');
  const alg = checkHeader(header);
  if (s === '') refuse('signature', 'the signature is empty');
  const signature = decodePart(s, 'signature');
  const claims = jsonObject(decodePart(p, 'payload'), 'payload');
  return { header: { alg, kid: header.kid as string, ...(header.typ !== undefined && { typ: header.typ as string }) }, claims, signingInput: `${h}.${p}`, signature };
}

function checkHeader(header: Record<string, unknown>): JwtSvidAlgorithm {
  const alg = header.alg;
  if (typeof alg !== 'string' || !(JWT_SVID_ALGORITHMS as readonly string[]).includes(alg)) {
    refuse('algorithm', `alg ${JSON.stringify(alg)?.slice(0, 40) ?? 'missing'} is not one of ${JWT_SVID_ALGORITHMS.join(', ')}${alg === 'none' ? ' (an unsigned token proves nothing)' : ''}${typeof alg === 'string' && alg.startsWith('HS') ? ' (a shared-secret MAC is not a JWT-SVID signature)' : ''}`);
  }
  for (const name of Object.keys(header)) {
    if (!HEADER_MEMBERS.has(name)) refuse('header', `the header member "${name.slice(0, 40)}" is not allowed in a JWT-SVID (only alg, kid, typ)`);
  }
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') refuse('header', `typ ${JSON.stringify(header.typ).slice(0, 40)} is not JWT or JOSE`);
  if (typeof header.kid !== 'string' || header.kid === '') refuse('header', 'the header has no kid, so no key of the bundle can be chosen');
  return alg as JwtSvidAlgorithm;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodePart(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) refuse('malformed', `the ${what} is not base64url`);
  const bytes = Buffer.from(part, 'base64url');
  // One spelling per value: trailing bits that decode to nothing make two tokens of one signature input.
  if (bytes.toString('base64url') !== part) refuse('malformed', `the ${what} is not in canonical base64url`);
  return bytes;
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return refuse('malformed', `the ${what} is not UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse('malformed', `the ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) refuse('malformed', `the ${what} is not a JSON object`);
  const dup = duplicateKey(text);
  if (dup !== undefined) refuse('malformed', `the ${what} has the member "${dup.slice(0, 40)}" twice (parsers disagree on which one counts)`);
  return value as Record<string, unknown>;
}

/**
 * The first member name that appears twice in one object of `text`, at any depth. `text` is valid
 * JSON (JSON.parse took it), so the scan only tracks strings, objects and arrays.
 */
export function duplicateKey(text: string): string | undefined {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const name = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(name)) return name;
        top.add(name);
      }
      expectKey = false;
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return undefined;
}

/** The registered claims of a JWT-SVID payload, checked for shape (not for time or audience). */
export function jwtSvidClaims(claims: Readonly<Record<string, unknown>>): JwtSvidClaims {
  const sub = claims.sub;
  if (typeof sub !== 'string') return refuse('subject', 'the token has no sub (the SPIFFE ID it was issued to)');
  let id;
  try {
    id = parseWorkloadId(sub);
  } catch (e) {
    return refuse('subject', `sub is not a workload SPIFFE ID: ${(e as Error).message}`);
  }
  const aud = claims.aud;
  const audience = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(audience) || audience.length === 0 || !audience.every((a) => typeof a === 'string' && a !== '')) {
    refuse('audience', 'aud must be a non-empty string or a non-empty array of them');
  }
  const expiresAt = numericDate(claims, 'exp', 'expired');
  if (expiresAt === undefined) refuse('expired', 'the token has no exp: a JWT-SVID must expire');
  const issuedAt = numericDate(claims, 'iat', 'not-yet-valid');
  const notBefore = numericDate(claims, 'nbf', 'not-yet-valid');
  return {
    spiffeId: id.id,
    trustDomain: id.trustDomain,
    audience: audience as string[],
    expiresAt: expiresAt!,
    ...(issuedAt !== undefined && { issuedAt }),
    ...(notBefore !== undefined && { notBefore }),
  };
}

/** A NumericDate claim (seconds since the epoch) in ms; undefined when absent. */
function numericDate(claims: Readonly<Record<string, unknown>>, name: string, reason: JwtSvidRefusal): number | undefined {
  const v = claims[name];
  if (v === undefined) return undefined;
  // 8.64e12 s is the last instant a Date can hold.
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 8.64e12) return refuse(reason, `${name} must be a NumericDate (seconds since the epoch), not ${JSON.stringify(v).slice(0, 40)}`);
  return v * 1000;
}

/** Validates a JWT-SVID against the JWT bundle of its own trust domain. Throws JwtSvidError naming the check that failed. */
export function validateJwtSvid(token: unknown, options: ValidateJwtSvidOptions): ValidatedJwtSvid {
  const jws = parseJws(token);
  const c = jwtSvidClaims(jws.claims);
  const bundle = options.bundles.get(c.trustDomain);
  if (!bundle) refuse('trust-domain', `there is no JWT bundle for trust domain ${c.trustDomain} (of sub ${c.spiffeId}): keys of other trust domains never vouch for it`);
  const key = bundle!.keys.get(jws.header.kid);
  if (!key) refuse('key', `the JWT bundle of ${c.trustDomain} has no key with kid "${jws.header.kid.slice(0, 100)}" (an unknown signer, or a key rotated out)`);
  verifySignature(jws, key!);
  checkTimes(c, options.now);
  if (!c.audience.includes(options.audience)) {
    refuse('audience', `the token is for ${c.audience.map((a) => JSON.stringify(a.slice(0, 200))).join(', ')}, not for ${JSON.stringify(options.audience)}`);
  }
  return { ...c, claims: jws.claims, keyId: jws.header.kid, algorithm: jws.header.alg };
}

/** Time checks alone (for a token the Workload API handed us). */
export function checkTimes(c: JwtSvidClaims, now: number): void {
  if (now >= c.expiresAt) refuse('expired', `it expired at ${iso(c.expiresAt)} (now ${iso(now)})`);
  if (c.notBefore !== undefined && c.notBefore > now + CLOCK_SKEW_MS) refuse('not-yet-valid', `nbf is ${iso(c.notBefore)}, in the future (now ${iso(now)})`);
  if (c.issuedAt !== undefined && c.issuedAt > now + CLOCK_SKEW_MS) refuse('not-yet-valid', `iat is ${iso(c.issuedAt)}, in the future (now ${iso(now)})`);
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms` : d.toISOString();
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
const EC_CURVE: Record<string, { crv: string; size: number }> = { ES256: { crv: 'P-256', size: 32 }, ES384: { crv: 'P-384', size: 48 }, ES512: { crv: 'P-521', size: 66 } };

/** Verifies the signature of a parsed JWS with `key` (alg and key type must fit). Throws JwtSvidError (`algorithm`, `signature`). */
export function verifySignature(jws: ParsedJws, key: JwtKey): void {
  const alg = jws.header.alg;
  const hash = HASH[alg.slice(2)]!;
  const data = Buffer.from(jws.signingInput, 'ascii');
  let ok: boolean;
  if (alg.startsWith('ES')) {
    const want = EC_CURVE[alg]!;
    if (key.kty !== 'EC' || key.crv !== want.crv) refuse('algorithm', `alg ${alg} needs an EC ${want.crv} key; key "${key.kid}" is ${key.description}`);
    // JWS ECDSA signatures are r || s, each the curve's size (RFC 7518 §3.4), not DER.
    if (jws.signature.length !== 2 * want.size) refuse('signature', `an ${alg} signature is ${2 * want.size} bytes, this one is ${jws.signature.length}`);
    ok = safeVerify(hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, jws.signature);
  } else {
    if (key.kty !== 'RSA') refuse('algorithm', `alg ${alg} needs an RSA key; key "${key.kid}" is ${key.description}`);
    const pss = alg.startsWith('PS');
    // PS256/384/512: MGF1 with the same hash, salt as long as the hash (RFC 7518 §3.5).
    const opts = pss ? { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : { key: key.key, padding: constants.RSA_PKCS1_PADDING };
    ok = safeVerify(hash, data, opts, jws.signature);
  }
  if (!ok) refuse('signature', `the signature does not verify with key "${key.kid}" (${key.description}): the token was altered or signed by another key`);
}

function safeVerify(hash: string, data: Buffer, key: { key: KeyObject; dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number }, sig: Buffer): boolean {
  try {
    return verify(hash, data, key, sig);
  } catch {
    return false;
  }
}
