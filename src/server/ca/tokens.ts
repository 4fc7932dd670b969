/**
 * Bearer tokens of the embedded control plane's CA: what `sidecarless control-plane token` prints and
 * what CreateCertificate requires. Shaped like a projected Kubernetes service-account token, so the
 * same checks take a real one (an external issuer, issuers.ts):
 *
 *   header  { alg: ES256, kid: <RFC 7638 thumbprint of token-key.pem>, typ: JWT }
 *   claims  { iss: sidecarless-control-plane, aud: [istio-ca], sub: system:serviceaccount:NS:SA,
 *             kubernetes.io: { namespace: NS, serviceaccount: { name: SA } }, iat, nbf, exp, jti }
 *
 * The audience is istiod's TOKEN_AUDIENCES default, `istio-ca`. Lifetime: default 1 h, at most 24 h
 * (a token cannot be revoked; rotate token-key.pem to void them all). Verification reuses the JWS
 * parsing and signature checks of identity/jwt-svid.ts (alg allow-list, canonical base64url, no
 * member twice, kid required) and refuses, with CaTokenError's `reason`: a kid that is not the key's
 * (`key`), a bad signature (`signature`), another iss (`issuer`), no `istio-ca` in aud (`audience`),
 * `exp` missing or reached — no leeway: RFC 7519's "on or after which", and the CA is its own
 * issuer (`expired`), `nbf`/`iat` more than 60 s ahead (`not-yet-valid`, another issuer's clock may
 * run ahead), and a namespace or service account that is missing, not a Kubernetes name, or not
 * what `sub` says (`claims`). Pure: no I/O; `now` is the caller's.
 */
import { randomBytes, sign } from 'node:crypto';
import { CaTokenError, type CaTokenRefusal } from './errors.js';
import { JwtSvidError } from '../../errors.js';
import { type JwtKey } from '../../identity/jwt-bundle.js';
import { CLOCK_SKEW_MS, parseJws, verifySignature, type ParsedJws } from '../../identity/jwt-svid.js';
import { printable } from '../../identity/peer-text.js';
import { type TokenKey } from './token-key.js';

export const TOKEN_AUDIENCE = 'istio-ca';
export const TOKEN_ISSUER = 'sidecarless-control-plane';
export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
export const MAX_TOKEN_TTL_MS = 24 * 3_600_000;

/** A Kubernetes namespace: an RFC 1123 label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Kubernetes service account: an RFC 1123 subdomain (at most 253). */
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface TokenSubject {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface IssueTokenOptions extends TokenSubject {
  /** Default 1 h, at most 24 h. */
  readonly ttlMs?: number;
}

/** Checks a namespace and a service account (RangeError naming the bad one). */
export function checkSubject(s: TokenSubject): void {
  if (typeof s.namespace !== 'string' || !NAMESPACE.test(s.namespace)) {
    throw new RangeError(`namespace ${JSON.stringify(printable(String(s.namespace), 80))} is not a Kubernetes namespace (lower-case letters, digits and "-", at most 63, starting and ending with a letter or digit)`);
  }
  if (typeof s.serviceAccount !== 'string' || s.serviceAccount.length > 253 || !SERVICE_ACCOUNT.test(s.serviceAccount)) {
    throw new RangeError(`service account ${JSON.stringify(printable(String(s.serviceAccount), 80))} is not a Kubernetes name (lower-case letters, digits, "-" and ".", at most 253)`);
  }
}

/** A signed token for one workload, valid from `now` for `ttlMs`. */
export function issueToken(state: { readonly tokenKey: TokenKey; readonly clock: { now(): number } }, o: IssueTokenOptions): string {
  checkSubject(o);
  const ttlMs = o.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!(ttlMs >= 1000 && ttlMs <= MAX_TOKEN_TTL_MS)) throw new RangeError(`a token lives from 1 s to 24 h, not ${ttlMs} ms`);
  const now = Math.floor(state.clock.now() / 1000);
  const header = { alg: 'ES256', kid: state.tokenKey.kid, typ: 'JWT' };
  const claims = {
    iss: TOKEN_ISSUER,
    aud: [TOKEN_AUDIENCE],
    sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
    'kubernetes.io': { namespace: o.namespace, serviceaccount: { name: o.serviceAccount } },
    iat: now,
    nbf: now,
    exp: now + Math.ceil(ttlMs / 1000),
    jti: randomBytes(12).toString('base64url'),
  };
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = sign('sha256', Buffer.from(input), { key: state.tokenKey.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Where a token may come from and what it must say. */
export interface TokenPolicy {
  /** `iss` the token must carry. */
  readonly issuer: string;
  /** Keys by kid. */
  readonly keys: ReadonlyMap<string, JwtKey>;
  /** At least one of them must be in `aud`. */
  readonly audiences: readonly string[];
  /** Namespace and service account from the claims; default the Kubernetes projected token's. */
  readonly subject?: (claims: Readonly<Record<string, unknown>>) => TokenSubject;
}

/** The policy of the control plane's own tokens (token-key.pem, iss sidecarless-control-plane, aud istio-ca). */
export function ownTokenPolicy(key: TokenKey): TokenPolicy {
  return { issuer: TOKEN_ISSUER, keys: new Map([[key.kid, key.verifier]]), audiences: [TOKEN_AUDIENCE] };
}

const refuse = (reason: CaTokenRefusal, message: string): never => {
  throw new CaTokenError(reason, `token refused: ${printable(message, 2048)}`);
};

/** The workload a token is for, or CaTokenError. */
export function verifyToken(token: unknown, policy: TokenPolicy, now: number): TokenSubject & { issuer: string } {
  const jws = jwsOf(token);
  const key = policy.keys.get(jws.header.kid) ?? refuse('key', `no key of issuer ${policy.issuer} has kid "${jws.header.kid.slice(0, 100)}" (signed by another key, or token-key.pem was replaced)`);
  try {
    verifySignature(jws, key);
  } catch (e) {
    if (e instanceof JwtSvidError) refuse(e.reason === 'algorithm' ? 'algorithm' : 'signature', e.message.replace(/^JWT-SVID refused: /, ''));
    throw e;
  }
  const c = jws.claims;
  if (c.iss !== policy.issuer) refuse('issuer', `iss is ${JSON.stringify(String(c.iss).slice(0, 200))}, not ${policy.issuer}`);
  const aud = typeof c.aud === 'string' ? [c.aud] : c.aud;
  if (!Array.isArray(aud) || !aud.some((a) => typeof a === 'string' && policy.audiences.includes(a))) {
    refuse('audience', `aud ${JSON.stringify(c.aud)?.slice(0, 200)} does not include ${policy.audiences.join(' or ')}`);
  }
  checkTimes(c, now);
  const subject = (policy.subject ?? kubernetesSubject)(c);
  try {
    checkSubject(subject);
  } catch (e) {
    refuse('claims', (e as Error).message);
  }
  return { ...subject, issuer: policy.issuer };
}

function jwsOf(token: unknown): ParsedJws {
  try {
    return parseJws(token);
  } catch (e) {
    if (e instanceof JwtSvidError) {
      const reason: CaTokenRefusal = e.reason === 'header' || e.reason === 'algorithm' || e.reason === 'signature' ? e.reason : 'malformed';
      refuse(reason, e.message.replace(/^JWT-SVID refused: /, ''));
    }
    throw e;
  }
}

function seconds(c: Readonly<Record<string, unknown>>, name: string, reason: CaTokenRefusal): number | undefined {
  const v = c[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 8.64e12) return refuse(reason, `${name} must be a NumericDate (seconds since the epoch)`);
  return v * 1000;
}

function checkTimes(c: Readonly<Record<string, unknown>>, now: number): void {
  const exp = seconds(c, 'exp', 'expired') ?? refuse('expired', 'the token has no exp: a token must expire');
  if (now >= exp) refuse('expired', `it expired at ${new Date(exp).toISOString()} (now ${new Date(now).toISOString()}): get a new one (sidecarless control-plane token)`);
  for (const name of ['nbf', 'iat']) {
    const t = seconds(c, name, 'not-yet-valid');
    if (t !== undefined && t > now + CLOCK_SKEW_MS) refuse('not-yet-valid', `${name} is ${new Date(t).toISOString()}, in the future (now ${new Date(now).toISOString()}): check the clocks`);
  }
}

/** Namespace and service account of a projected Kubernetes service-account token; `sub` must agree. */
export function kubernetesSubject(c: Readonly<Record<string, unknown>>): TokenSubject {
  const k = c['kubernetes.io'];
  const ns = isObject(k) ? k.namespace : undefined;
  const sa = isObject(k) && isObject(k.serviceaccount) ? k.serviceaccount.name : undefined;
  if (typeof ns !== 'string' || typeof sa !== 'string') return refuse('claims', 'the token has no kubernetes.io.namespace and kubernetes.io.serviceaccount.name');
  if (c.sub !== `system:serviceaccount:${ns}:${sa}`) refuse('claims', `sub ${JSON.stringify(String(c.sub).slice(0, 200))} is not system:serviceaccount:${ns}:${sa}, what its kubernetes.io claims say`);
  return { namespace: ns, serviceAccount: sa };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
