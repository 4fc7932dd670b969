/** The control plane's token signing key (token-key.pem) as a JWT signer and as the JwtKey its tokens verify with. */
import { type KeyObject, createHash } from 'node:crypto';
import { type JwtKey } from '../../identity/jwt-bundle.js';

export interface TokenKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` of every token. */
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** The public half, in the form JWT verification takes (identity/jwt-svid.ts). */
  readonly verifier: JwtKey;
  /** The public key as a JWK Set, for whoever wants to verify tokens elsewhere. */
  readonly jwks: string;
}

export function tokenKeyOf(privateKey: KeyObject, publicKey: KeyObject): TokenKey {
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  // RFC 7638: the required members, in lexicographic order, no spaces.
  const thumbprint = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  const kid = createHash('sha256').update(thumbprint).digest('base64url');
  return {
    kid,
    privateKey,
    verifier: { kid, kty: 'EC', key: publicKey, crv: 'P-256', description: 'EC P-256' },
    jwks: JSON.stringify({ keys: [{ kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' }] }),
  };
}
