/**
 * JWT-SVIDs from a dev CA, so examples and tests run without SPIRE: an ES256 (P-256) signing key
 * DERIVED from the CA's root private key (HKDF-SHA256 over its PKCS#8 bytes, with a label of its
 * own), so every process that loads the same `ca.pem`/`ca_key.pem` signs and validates with the
 * same key, and the key is never the root key itself (one key, one purpose). Its public half is
 * the CA's JWT bundle (a JWK Set with `use: jwt-svid`), published with `devCa.jwtBundle()`.
 * Pure apart from the derivation's one read of the CA key (exportPem).
 */
import { createECDH, createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject, sign } from 'node:crypto';
import { type JwtBundle, parseJwtBundle } from './jwt-bundle.js';
import { parseWorkloadId } from './spiffe-id.js';

/** What a dev CA's JWT issuer needs of the CA (a DevCa, or one from another copy of the package). */
export interface DevCaKeySource {
  readonly trustDomain: string;
  exportPem(): Promise<{ keyPem: string }>;
}

/** Lifetime of a dev CA's JWT-SVIDs (SPIRE's default JWT-SVID TTL). */
export const DEV_CA_JWT_TTL_MS = 5 * 60 * 1000;

export interface DevCaJwt {
  readonly trustDomain: string;
  readonly kid: string;
  /** The JWT bundle of the CA's trust domain (its one key). */
  readonly bundle: JwtBundle;
  /** The same, as a JWK Set (JSON text): what a file-based bundle (`inbound.jwtSvid.bundle.file`) holds. */
  readonly jwks: string;
  /** A JWT-SVID for `spiffeId` (of the CA's trust domain) and `audience`, issued at `now` (ms). */
  sign(spiffeId: string, audience: readonly string[], now: number, ttlMs?: number): string;
}

const LABEL = 'sidecarless dev CA JWT-SVID signing key v1';
const derived = new WeakMap<object, Promise<DevCaJwt>>();

/** The JWT issuer of `ca`, derived once per CA object. */
export function devCaJwt(ca: DevCaKeySource): Promise<DevCaJwt> {
  let p = derived.get(ca);
  if (!p) {
    p = derive(ca);
    derived.set(ca, p);
    p.catch(() => derived.delete(ca));
  }
  return p;
}

async function derive(ca: DevCaKeySource): Promise<DevCaJwt> {
  const { keyPem } = await ca.exportPem();
  const ikm = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const privateKey = p256From(ikm);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string; y: string };
  const kid = createHash('sha256').update(`${jwk.x}.${jwk.y}`).digest('base64url').slice(0, 22);
  const jwks = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, use: 'jwt-svid', alg: 'ES256' }] });
  const bundle = parseJwtBundle(ca.trustDomain, jwks);
  const header = b64({ alg: 'ES256', kid, typ: 'JWT' });
  return {
    trustDomain: ca.trustDomain,
    kid,
    bundle,
    jwks,
    sign(spiffeId, audience, now, ttlMs = DEV_CA_JWT_TTL_MS) {
      const id = parseWorkloadId(spiffeId);
      if (id.trustDomain !== ca.trustDomain) throw new Error(`the dev CA of ${ca.trustDomain} does not issue JWT-SVIDs for ${spiffeId}`);
      const iat = Math.floor(now / 1000);
      const input = `${header}.${b64({ sub: id.id, aud: [...audience], iat, exp: iat + Math.max(1, Math.floor(ttlMs / 1000)) })}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    },
  };
}

/** A P-256 private key from key material: HKDF-SHA256, retried with a counter in the rare case the scalar is out of range. */
function p256From(ikm: Buffer): KeyObject {
  for (let i = 0; ; i++) {
    const d = Buffer.from(hkdfSync('sha256', ikm, LABEL, `scalar ${i}`, 32));
    const ecdh = createECDH('prime256v1');
    try {
      ecdh.setPrivateKey(d);
    } catch {
      continue; // 0 or ≥ n: probability ~2^-32
    }
    const pub = ecdh.getPublicKey(); // 0x04 || x || y
    return createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') }, format: 'jwk' });
  }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
