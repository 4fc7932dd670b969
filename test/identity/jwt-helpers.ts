// Signing JWT-SVIDs in the test process with node:crypto (the Python signer of
// test/helpers/py/jwt_workload_server.py is the independent one), for the pure validation tests.
import { type KeyObject, constants, generateKeyPairSync, sign } from 'node:crypto';
import { parseJwtBundle, type JwtBundle } from '../../src/identity/jwt-bundle.js';

export type Alg = 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512';

export interface TestKey {
  readonly kid: string;
  readonly alg: Alg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: Record<string, unknown>;
}

const CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

export function makeKey(kid: string, alg: Alg = 'ES256', rsaBits = 2048): TestKey {
  const pair = alg.startsWith('ES')
    ? generateKeyPairSync('ec', { namedCurve: CURVE[alg]! })
    : generateKeyPairSync('rsa', { modulusLength: rsaBits });
  return { kid, alg, ...pair, jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid } };
}

export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function signWith(key: TestKey, claims: unknown, header: unknown = { alg: key.alg, kid: key.kid, typ: 'JWT' }): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${rawSign(key, input).toString('base64url')}`;
}

export function rawSign(key: TestKey, input: string): Buffer {
  const hash = `sha${key.alg.slice(2)}`;
  if (key.alg.startsWith('ES')) return sign(hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  if (key.alg.startsWith('PS')) return sign(hash, Buffer.from(input), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return sign(hash, Buffer.from(input), key.privateKey);
}

export function bundleOf(trustDomain: string, ...keys: TestKey[]): JwtBundle {
  return parseJwtBundle(trustDomain, JSON.stringify({ keys: keys.map((k) => k.jwk) }));
}
