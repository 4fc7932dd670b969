// JWT bundles (JWK Sets): keys of the spec's types and uses are taken, others ignored as the
// SPIFFE bundle spec says, and anything unusable refuses the whole bundle (and the update).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JwtBundleError } from '../../src/errors.js';
import { MAX_JWT_BUNDLE_KEYS, jwtBundlesFromMap, parseJwtBundle } from '../../src/identity/jwt-bundle.js';
import { makeKey } from './jwt-helpers.js';

const es = makeKey('es', 'ES256');
const es384 = makeKey('es384', 'ES384');
const es512 = makeKey('es512', 'ES512');
const rs = makeKey('rs', 'RS256');
const set = (...keys: unknown[]) => JSON.stringify({ keys });

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof JwtBundleError && e.code === 'ERR_SIDECARLESS_JWT_BUNDLE_INVALID' && message.test(e.message));
}

test('EC P-256/384/521 and RSA keys are taken by kid, from text or bytes, with SPIFFE members beside keys', () => {
  const b = parseJwtBundle('example.org', Buffer.from(JSON.stringify({ keys: [es.jwk, es384.jwk, es512.jwk, rs.jwk], spiffe_sequence: 3, spiffe_refresh_hint: 60 })));
  assert.equal(b.trustDomain, 'example.org');
  assert.deepEqual([...b.keys.keys()], ['es', 'es384', 'es512', 'rs']);
  assert.equal(b.keys.get('es')!.description, 'EC P-256');
  assert.equal(b.keys.get('es512')!.crv, 'P-521');
  assert.equal(b.keys.get('rs')!.description, 'RSA 2048 bits');
  assert.equal(parseJwtBundle('example.org', set()).keys.size, 0);
});

test('keys of another use or an unknown type are ignored; use jwt-svid or none is taken', () => {
  const b = parseJwtBundle('example.org', set(
    { ...es.jwk, use: 'x509-svid', kid: 'x509' },
    { ...es.jwk, use: 'sig', kid: 'sig' },
    { ...es.jwk, use: 'jwt-svid', kid: 'jwt' },
    { kty: 'oct', k: 'c2VjcmV0' }, // a symmetric key: never a JWT-SVID signer (and no kid: ignored all the same)
    { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' },
    { ...rs.jwk },
  ));
  assert.deepEqual([...b.keys.keys()].sort(), ['jwt', 'rs']);
});

test('a bad key refuses the whole bundle, saying which key and why', () => {
  refused(() => parseJwtBundle('example.org', set(es.jwk, { ...rs.jwk, kid: undefined })), /keys\[1\] has no "kid"/);
  refused(() => parseJwtBundle('example.org', set(es.jwk, { ...es.jwk, kid: 'es' })), /two keys with kid "es"/);
  refused(() => parseJwtBundle('example.org', set({ ...es.jwk, crv: 'secp256k1' })), /curve "secp256k1"/);
  refused(() => parseJwtBundle('example.org', set({ ...es.jwk, x: 'AAAA' })), /not a usable public key/);
  refused(() => parseJwtBundle('example.org', set({ ...es.jwk, y: 5 })), /"y" must be a base64url string/);
  refused(() => parseJwtBundle('example.org', set({ ...es.jwk, crv: 'P-384' })), /kid "es"/);
  refused(() => parseJwtBundle('example.org', set(makeKey('weak', 'RS256', 1024).jwk)), /RSA 1024 bits is weaker than the 2048/);
  // e = 1: s^e = s, so anyone can "sign" by writing the padded digest as the signature.
  for (const e of ['AQ', 'Aw', 'AQAA', 'AQAC']) {
    refused(() => parseJwtBundle('example.org', set({ ...rs.jwk, e })), /public exponent .* is not an odd number from 65537/);
  }
  const priv = { ...es.privateKey.export({ format: 'jwk' }), kid: 'leaked' };
  refused(() => parseJwtBundle('example.org', set(priv)), /private member "d"/);
  refused(() => parseJwtBundle('example.org', set('not a jwk')), /keys\[0\] is not a JWK/);
});

test('not a JWK Set: not JSON, not UTF-8, not an object, no keys array, too big', () => {
  refused(() => parseJwtBundle('example.org', '{'), /not JSON/);
  refused(() => parseJwtBundle('example.org', Buffer.from([0xff, 0x7b, 0x7d])), /not UTF-8/);
  refused(() => parseJwtBundle('example.org', '[]'), /JSON object with "keys"/);
  refused(() => parseJwtBundle('example.org', 'null'), /JSON object/);
  refused(() => parseJwtBundle('example.org', '{"keys":{}}'), /"keys" must be an array/);
  refused(() => parseJwtBundle('example.org', set(...Array.from({ length: MAX_JWT_BUNDLE_KEYS + 1 }, () => ({ kty: 'oct' })))), /more than the 1024/);
  refused(() => parseJwtBundle('example.org', `{"keys":[],"pad":"${'x'.repeat(1 << 20)}"}`), /bytes, more than/);
});

test('Workload API bundle maps: keyed spiffe://td (or td), one bad entry refuses them all', () => {
  const m = jwtBundlesFromMap(new Map<string, string | Uint8Array>([['spiffe://example.org', set(es.jwk)], ['other.org', Buffer.from(set(rs.jwk))]]));
  assert.deepEqual([...m.keys()], ['example.org', 'other.org']);
  assert.ok(m.get('other.org')!.keys.has('rs'));
  refused(() => jwtBundlesFromMap(new Map([['spiffe://example.org', set(es.jwk)], ['spiffe://bad.org', set({ ...es.jwk, x: 'AA' })]])), /bad\.org/);
  refused(() => jwtBundlesFromMap(new Map([['spiffe://example.org/path', set()]])), /not a trust domain/);
  refused(() => jwtBundlesFromMap(new Map([['spiffe://EXAMPLE.org', set()]])), /not a trust domain/);
  refused(() => jwtBundlesFromMap(new Map([['', set()]])), /not a trust domain/);
  refused(() => jwtBundlesFromMap(new Map([['spiffe://example.org', set()], ['example.org', set()]])), /sent twice/);
});
