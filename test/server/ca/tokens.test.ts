// Bearer tokens of the embedded CA: what `control-plane token` issues and what CreateCertificate
// takes. Pure (a key in memory, the time given), so every refusal runs in microseconds.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { tokenKeyOf } from '../../../src/server/ca/token-key.js';
import { MAX_TOKEN_TTL_MS, TOKEN_AUDIENCE, TOKEN_ISSUER, issueToken, ownTokenPolicy, verifyToken } from '../../../src/server/ca/tokens.js';

const newKey = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return tokenKeyOf(privateKey, publicKey);
};
const KEY = newKey();
const T0 = Date.UTC(2026, 0, 1);
const at = (now: number) => ({ tokenKey: KEY, clock: { now: () => now } });
const policy = ownTokenPolicy(KEY);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A token with these claims (header alg/kid/typ of KEY unless given), signed by `key`. */
function craft(claims: Record<string, unknown>, key = KEY, header: Record<string, unknown> = { alg: 'ES256', kid: key.kid, typ: 'JWT' }): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
const good = (over: Record<string, unknown> = {}) => ({
  iss: TOKEN_ISSUER,
  aud: [TOKEN_AUDIENCE],
  sub: 'system:serviceaccount:default:orders',
  'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'orders' } },
  iat: T0 / 1000,
  exp: T0 / 1000 + 3600,
  ...over,
});
const refused = (reason: string, message?: RegExp) => (e: Error & { code?: string; reason?: string }) =>
  e.code === 'ERR_SIDECARLESS_CA_TOKEN_INVALID' && e.reason === reason && (!message || message.test(e.message));

describe('issue and verify', () => {
  test('a token names its workload like a projected service-account token, audience istio-ca, 1 h by default', () => {
    const token = issueToken(at(T0), { namespace: 'default', serviceAccount: 'orders' });
    const [h, p] = token.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()));
    assert.deepEqual(h, { alg: 'ES256', kid: KEY.kid, typ: 'JWT' });
    assert.equal(p.sub, 'system:serviceaccount:default:orders');
    assert.deepEqual(p['kubernetes.io'], { namespace: 'default', serviceaccount: { name: 'orders' } });
    assert.deepEqual(p.aud, ['istio-ca']);
    assert.equal(p.exp - p.iat, 3600);
    assert.deepEqual(verifyToken(token, policy, T0 + 1000), { namespace: 'default', serviceAccount: 'orders', issuer: TOKEN_ISSUER });
    assert.deepEqual(verifyToken(issueToken(at(T0), { namespace: 'shop', serviceAccount: 'admin' }), policy, T0), { namespace: 'shop', serviceAccount: 'admin', issuer: TOKEN_ISSUER }, 'another workload: its own identity');
  });

  test('lifetimes and names are checked when issuing', () => {
    assert.throws(() => issueToken(at(T0), { namespace: 'default', serviceAccount: 'a', ttlMs: MAX_TOKEN_TTL_MS + 1 }), /1 s to 24 h/);
    assert.throws(() => issueToken(at(T0), { namespace: 'Default', serviceAccount: 'a' }), /not a Kubernetes namespace/);
    assert.throws(() => issueToken(at(T0), { namespace: 'default', serviceAccount: 'a/../b' }), /not a Kubernetes name/);
  });
});

describe('refusals, each with its reason', () => {
  test('expired (no leeway on exp), not yet valid (60 s of skew on nbf/iat), no exp', () => {
    const token = issueToken(at(T0), { namespace: 'default', serviceAccount: 'orders', ttlMs: 60_000 });
    assert.throws(() => verifyToken(token, policy, T0 + 60_000), refused('expired', /expired at/));
    assert.doesNotThrow(() => verifyToken(token, policy, T0 + 59_999));
    assert.doesNotThrow(() => verifyToken(craft(good({ nbf: T0 / 1000 + 60 })), policy, T0), 'nbf up to 60 s ahead: clock skew');
    assert.throws(() => verifyToken(craft(good({ nbf: T0 / 1000 + 61 })), policy, T0), refused('not-yet-valid'));
    assert.throws(() => verifyToken(craft(good({ iat: T0 / 1000 + 120 })), policy, T0), refused('not-yet-valid'));
    assert.throws(() => verifyToken(craft(good({ exp: undefined })), policy, T0), refused('expired', /no exp/));
  });

  test('wrong audience, wrong issuer, another key, a tampered payload, alg none', () => {
    assert.throws(() => verifyToken(craft(good({ aud: ['https://kubernetes.default.svc'] })), policy, T0), refused('audience'));
    assert.doesNotThrow(() => verifyToken(craft(good({ aud: 'istio-ca' })), policy, T0));
    assert.throws(() => verifyToken(craft(good({ iss: 'https://kubernetes.default.svc.cluster.local' })), policy, T0), refused('issuer'));
    const other = newKey();
    assert.throws(() => verifyToken(issueToken({ tokenKey: other, clock: { now: () => T0 } }, { namespace: 'default', serviceAccount: 'orders' }), policy, T0), refused('key'));
    assert.throws(() => verifyToken(craft(good(), other, { alg: 'ES256', kid: KEY.kid }), policy, T0), refused('signature'), 'our kid, another key');
    const [h, , s] = issueToken(at(T0), { namespace: 'default', serviceAccount: 'orders' }).split('.');
    const forged = `${h}.${b64(good({ sub: 'system:serviceaccount:kube-system:admin', 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'admin' } } }))}.${s}`;
    assert.throws(() => verifyToken(forged, policy, T0), refused('signature'));
    assert.throws(() => verifyToken(`${b64({ alg: 'none', kid: KEY.kid })}.${b64(good())}.`, policy, T0), refused('algorithm'));
    assert.throws(() => verifyToken('not a token', policy, T0), refused('malformed'));
    assert.throws(() => verifyToken(undefined, policy, T0), refused('malformed'));
  });

  test('claims: missing kubernetes.io, sub that disagrees, a namespace that is no Kubernetes name', () => {
    assert.throws(() => verifyToken(craft(good({ 'kubernetes.io': undefined })), policy, T0), refused('claims', /no kubernetes\.io/));
    assert.throws(() => verifyToken(craft(good({ sub: 'system:serviceaccount:kube-system:admin' })), policy, T0), refused('claims', /is not system:serviceaccount:default:orders/));
    const odd = { 'kubernetes.io': { namespace: 'a/b', serviceaccount: { name: 'x' } }, sub: 'system:serviceaccount:a/b:x' };
    assert.throws(() => verifyToken(craft(good(odd)), policy, T0), refused('claims', /not a Kubernetes namespace/));
  });
});
