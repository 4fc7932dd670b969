// External token issuers of the embedded CA (the agentless bootstrap of a serverless function): a
// JWK Set file, audiences, and a mapping of claims to namespace / service account. Tokens shaped as
// a Kubernetes API server and a cloud's workload identity issue them (RS256 and ES256).
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tokenAuthenticator } from '../../../src/server/ca/ca-service.js';
import { loadExternalIssuer, parseExternalIssuers } from '../../../src/server/ca/issuers.js';
import { openCaState } from '../../../src/server/ca/state.js';
import { issueToken } from '../../../src/server/ca/tokens.js';
import { tempDirFor } from '../../helpers/tmp.js';

const TD = 'cluster.local';
const K8S = 'https://kubernetes.default.svc.cluster.local';
const CLOUD = 'https://accounts.example.com';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = Math.floor(Date.now() / 1000);

function jwt(alg: 'RS256' | 'ES256', kid: string, key: KeyObject, claims: Record<string, unknown>): string {
  const input = `${b64({ alg, kid })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key).toString('base64url')}`;
}
const md = (token: string) => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
};

test('a projected Kubernetes token (RS256, use: sig) and a cloud token mapped by claim: each gives its identity; the own tokens still work', async (t) => {
  const dir = tempDirFor(t, 'sidecarless-ca-issuers-');
  const state = await openCaState(join(dir, 'state'), { trustDomain: TD });
  const k8sJwks = join(dir, 'k8s.json');
  await writeFile(k8sJwks, JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k8s-1', use: 'sig', alg: 'RS256' }, { ...ec.publicKey.export({ format: 'jwk' }), kid: 'enc-1', use: 'enc' }] }));
  const cloudJwks = join(dir, 'cloud.json');
  await writeFile(cloudJwks, JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'c1' }] }));
  const issuers = [
    await loadExternalIssuer({ issuer: K8S, jwksFile: k8sJwks }, TD),
    await loadExternalIssuer({ issuer: CLOUD, jwksFile: cloudJwks, audiences: ['sidecarless'], claims: { namespace: { value: 'functions' }, serviceAccount: { claim: '/workload/name' } } }, TD),
  ];
  const auth = tokenAuthenticator({ state, trustDomain: TD, issuers });
  const k8sToken = (over: Record<string, unknown> = {}) =>
    jwt('RS256', 'k8s-1', rsa.privateKey, { iss: K8S, aud: ['istio-ca'], sub: 'system:serviceaccount:shop:cart', 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'cart', uid: 'x' }, pod: { name: 'p' } }, iat: now, nbf: now, exp: now + 600, ...over });
  assert.deepEqual(auth(md(k8sToken())), { spiffeId: `spiffe://${TD}/ns/shop/sa/cart`, namespace: 'shop', serviceAccount: 'cart', issuer: K8S });
  assert.deepEqual(auth(md(jwt('ES256', 'c1', ec.privateKey, { iss: CLOUD, aud: 'sidecarless', sub: 'x', workload: { name: 'resize-images' }, exp: now + 600 }))), { spiffeId: `spiffe://${TD}/ns/functions/sa/resize-images`, namespace: 'functions', serviceAccount: 'resize-images', issuer: CLOUD });
  assert.equal((auth(md(issueToken(state, { namespace: 'default', serviceAccount: 'orders' }))) as { spiffeId: string }).spiffeId, `spiffe://${TD}/ns/default/sa/orders`);

  const refusedWith = (token: string, why: RegExp) => {
    const r = auth(md(token));
    assert.ok('refused' in r && why.test(r.refused), JSON.stringify(r));
  };
  refusedWith(k8sToken({ aud: ['https://kubernetes.default.svc'] }), /audience|does not include istio-ca/);
  refusedWith(k8sToken({ exp: now - 1 }), /expired/);
  refusedWith(jwt('ES256', 'enc-1', ec.privateKey, { iss: K8S, aud: ['istio-ca'], exp: now + 60 }), /no key of issuer .* kid "enc-1"/);
  refusedWith(jwt('ES256', 'c1', ec.privateKey, { iss: 'https://evil.example', aud: 'istio-ca', exp: now + 60 }), /not a known issuer/);
  refusedWith(jwt('ES256', 'c1', ec.privateKey, { iss: CLOUD, aud: 'sidecarless', workload: { name: 'Not A Name' }, exp: now + 60 }), /not a Kubernetes name/);
  refusedWith(jwt('ES256', 'c1', ec.privateKey, { iss: CLOUD, aud: 'sidecarless', exp: now + 60 }), /\/workload\/name is missing/);
  refusedWith(jwt('RS256', 'k8s-1', rsa.privateKey, { iss: CLOUD, aud: 'sidecarless', workload: { name: 'a' }, exp: now + 60 }), /kid "k8s-1"/);

  assert.throws(() => tokenAuthenticator({ state, trustDomain: TD, issuers: [issuers[0]!, issuers[0]!] }), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
});

test('issuer config: validated with paths; a JWKS that is missing or holds no signing key is refused', async (t) => {
  assert.throws(() => parseExternalIssuers([{ issuer: K8S, jwksFile: 'x', audience: ['a'] }]), (e: Error & { code?: string; issues?: Array<{ path: string }> }) => e.code === 'ERR_SIDECARLESS_CONFIG_INVALID' && e.issues!.some((i) => i.path === 'issuers.0.audience'));
  assert.throws(() => parseExternalIssuers([{ issuer: K8S, jwksFile: 'x', claims: { namespace: { claim: 'no-slash' }, serviceAccount: { value: 'a' } } }]), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
  const dir = tempDirFor(t, 'sidecarless-ca-issuers-');
  await assert.rejects(loadExternalIssuer({ issuer: K8S, jwksFile: join(dir, 'missing.json') }, TD), { code: 'ERR_SIDECARLESS_FILE' });
  const encOnly = join(dir, 'enc.json');
  await writeFile(encOnly, JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'e', use: 'enc' }] }));
  await assert.rejects(loadExternalIssuer({ issuer: K8S, jwksFile: encOnly }, TD), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /no EC or RSA signing key/.test(e.message));
  const priv = join(dir, 'priv.json');
  await writeFile(priv, JSON.stringify({ keys: [{ ...ec.privateKey.export({ format: 'jwk' }), kid: 'p' }] }));
  await assert.rejects(loadExternalIssuer({ issuer: K8S, jwksFile: priv }, TD), /private member/);
});
