/**
 * JWT bundles: the public keys that sign a trust domain's JWT-SVIDs, as a JWK Set (RFC 7517; the
 * SPIFFE Trust Domain and Bundle spec §4). Per that spec a client ignores a key of an unknown type
 * (`kty` other than EC or RSA) or an unknown use (`use` other than `jwt-svid`; a standard JWKS
 * without `use`, as a SPIRE agent sends, counts as JWT keys). A key it does take must be whole: a
 * `kid`, a public key Node can import, strong enough (RSA ≥ 2048 bits; EC P-256, P-384 or P-521, the
 * curves of ES256/384/512), no private members, no `kid` twice. Anything else refuses the bundle
 * whole (JwtBundleError), and with it the update it came in: a half-read bundle could drop the key
 * a peer's tokens are signed with, or keep one that was meant to go. RSA keys also need a sane
 * public exponent (odd, 65537 ≤ e < 2^256): with e = 1 every signature verifies as its own message.
 * Pure: no I/O.
 */
import { type KeyObject, createPublicKey } from 'node:crypto';
import { JwtBundleError } from '../errors.js';
import { SPIFFE_SCHEME, validateTrustDomain } from './spiffe-id.js';
import { MIN_RSA_BITS } from './key-strength.js';
import { printable } from './peer-text.js';

/** One key of a JWT bundle. */
export interface JwtKey {
  readonly kid: string;
  readonly kty: 'EC' | 'RSA';
  /** Node's key: for node:crypto verify. */
  readonly key: KeyObject;
  /** `EC P-256`, `RSA 2048 bits`: for messages. */
  readonly description: string;
  /** EC keys: the JWK curve (`P-256`, `P-384`, `P-521`). */
  readonly crv?: string;
}

/** The JWT signing keys of one trust domain, by key ID. */
export interface JwtBundle {
  readonly trustDomain: string;
  readonly keys: ReadonlyMap<string, JwtKey>;
}

/** JWT bundles by trust domain (no `spiffe://`). A token is checked against its own trust domain's only. */
export type JwtBundleSet = ReadonlyMap<string, JwtBundle>;

/** Bounds on what a bundle may hold, so a hostile one costs little to refuse. */
export const MAX_JWT_BUNDLE_BYTES = 1 << 20;
export const MAX_JWT_BUNDLE_KEYS = 1024;

const CURVES: Record<string, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };
/** JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2; `k` of a symmetric key). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Parses a JWK Set (JSON text or its UTF-8 bytes) as the JWT bundle of `trustDomain`. */
export function parseJwtBundle(trustDomain: string, jwks: string | Uint8Array): JwtBundle {
  const td = validateTrustDomain(trustDomain);
  const where = `the JWT bundle of ${td}`;
  const size = typeof jwks === 'string' ? Buffer.byteLength(jwks) : jwks.byteLength;
  if (size > MAX_JWT_BUNDLE_BYTES) throw new JwtBundleError(`${where} is ${size} bytes, more than the ${MAX_JWT_BUNDLE_BYTES} allowed`);
  const doc = parseJson(jwks, where);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new JwtBundleError(`${where} is not a JWK Set: it must be a JSON object with "keys"`);
  const list = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(list)) throw new JwtBundleError(`${where} is not a JWK Set: "keys" must be an array`);
  if (list.length > MAX_JWT_BUNDLE_KEYS) throw new JwtBundleError(`${where} has ${list.length} keys, more than the ${MAX_JWT_BUNDLE_KEYS} allowed`);
  const keys = new Map<string, JwtKey>();
  list.forEach((jwk, i) => {
    const key = jwtKeyOf(jwk, `${where}, keys[${i}]`);
    if (!key) return;
    if (keys.has(key.kid)) throw new JwtBundleError(`${where} has two keys with kid "${printable(key.kid, 200)}": which one signs is ambiguous`);
    keys.set(key.kid, key);
  });
  return { trustDomain: td, keys };
}

/**
 * The JWT bundles of a Workload API `JWTBundlesResponse` (`bundles`, keyed by the trust domain's
 * SPIFFE ID `spiffe://td`; a bare `td` is taken too, as go-spiffe does). One bad entry refuses all.
 */
export function jwtBundlesFromMap(entries: ReadonlyMap<string, Uint8Array | string>): Map<string, JwtBundle> {
  const out = new Map<string, JwtBundle>();
  for (const [name, jwks] of entries) {
    const td = trustDomainOfKey(name);
    if (out.has(td)) throw new JwtBundleError(`the JWT bundle of ${td} is sent twice ("${name}" and another spelling)`);
    out.set(td, parseJwtBundle(td, jwks));
  }
  return out;
}

function trustDomainOfKey(name: string): string {
  const td = name.startsWith(SPIFFE_SCHEME) ? name.slice(SPIFFE_SCHEME.length) : name;
  try {
    return validateTrustDomain(td);
  } catch (e) {
    throw new JwtBundleError(`a JWT bundle is keyed "${printable(name, 300)}", which is not a trust domain (spiffe://<trust-domain>): ${(e as Error).message}`);
  }
}

function parseJson(input: string | Uint8Array, where: string): unknown {
  let text: string;
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    throw new JwtBundleError(`${where} is not UTF-8 text`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new JwtBundleError(`${where} is not JSON: ${(e as Error).message}`);
  }
}

/** The key a JWK stands for; undefined for one the spec says to ignore (unknown kty or use). */
function jwtKeyOf(jwk: unknown, where: string): JwtKey | undefined {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new JwtBundleError(`${where} is not a JWK (a JSON object)`);
  const k = jwk as Record<string, unknown>;
  if (k.kty !== 'EC' && k.kty !== 'RSA') return undefined;
  if (k.use !== undefined && k.use !== 'jwt-svid') return undefined;
  if (typeof k.kid !== 'string' || k.kid === '') throw new JwtBundleError(`${where} has no "kid": a JWT-SVID names its key by kid, so a key without one cannot be used`);
  const at = `${where} (kid "${printable(k.kid, 200)}")`;
  for (const m of PRIVATE_MEMBERS) {
    if (m in k) throw new JwtBundleError(`${at} has the private member "${m}": a bundle holds public keys only (and this one leaked a private key)`);
  }
  return k.kty === 'EC' ? ecKey(k, at) : rsaKey(k, at);
}

function b64urlField(k: Record<string, unknown>, name: string, at: string): string {
  const v = k[name];
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]+$/.test(v)) throw new JwtBundleError(`${at}: "${name}" must be a base64url string`);
  return v;
}

function ecKey(k: Record<string, unknown>, at: string): JwtKey {
  const crv = k.crv;
  if (typeof crv !== 'string' || !(crv in CURVES)) throw new JwtBundleError(`${at}: EC curve ${JSON.stringify(crv)} is not P-256, P-384 or P-521 (the curves of ES256, ES384, ES512)`);
  const x = b64urlField(k, 'x', at);
  const y = b64urlField(k, 'y', at);
  const key = importKey({ kty: 'EC', crv, x, y }, at);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== CURVES[crv]) throw new JwtBundleError(`${at}: not an EC ${crv} key`);
  return { kid: k.kid as string, kty: 'EC', key, crv, description: `EC ${crv}` };
}

function rsaKey(k: Record<string, unknown>, at: string): JwtKey {
  const n = b64urlField(k, 'n', at);
  const e = b64urlField(k, 'e', at);
  const key = importKey({ kty: 'RSA', n, e }, at);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa') throw new JwtBundleError(`${at}: not an RSA key`);
  if (bits < MIN_RSA_BITS) throw new JwtBundleError(`${at}: RSA ${bits} bits is weaker than the ${MIN_RSA_BITS} bits required`);
  // e = 1 makes every signature its own message: anyone could sign. NIST SP 800-56B: odd, 65537 ≤ e < 2^256.
  const exp = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (exp < 65537n || exp >= 2n ** 256n || exp % 2n === 0n) throw new JwtBundleError(`${at}: RSA public exponent ${exp} is not an odd number from 65537 up to 2^256 (e = 1 would let anyone sign)`);
  return { kid: k.kid as string, kty: 'RSA', key, description: `RSA ${bits} bits` };
}

function importKey(jwk: Record<string, string>, at: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new JwtBundleError(`${at} is not a usable public key: ${(e as Error).message}`);
  }
}
