// SECURITY-CASES 42 and its neighbours, through the public API: a mesh whose identity comes from a
// Workload API (a scripted server on the second stack, signing with python3-cryptography) refuses
// each forged, misdirected or stale JWT-SVID with the reason that names the check; a mesh with
// another identity says JWT-SVIDs need the Workload API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey } from 'node:crypto';
import { createDevCa, createMesh, type Mesh } from '../../src/index.js';
import { JwtSvidError, JwtSvidUnavailableError } from '../../src/errors.js';
import { ManualSource, filesOf, pemDers } from '../helpers/certs.js';
import { waitFor } from '../helpers/net.js';
import { type JwtWorkloadServer, startJwtWorkloadServer } from '../helpers/py/jwt-workload-server.js';
import { b64, makeKey, signWith } from '../identity/jwt-helpers.js';

const TD = 'example.org';
const ME = `spiffe://${TD}/ns/default/sa/orders`;
const PEER = `spiffe://${TD}/ns/default/sa/payments`;
const AUD = ME; // peers call us with tokens for our own SPIFFE ID
const SEC = () => Math.floor(Date.now() / 1000);
const quiet = { warn: () => {}, info: () => {}, error: () => {} };

interface Rig {
  server: JwtWorkloadServer;
  mesh: Mesh;
  jwk: Record<string, string>;
}

/**
 * A mesh that finds its Workload API through SPIFFE_ENDPOINT_SOCKET. The server also streams an
 * X.509-SVID for the mesh (issued by a dev CA), for when the mesh takes its X.509 identity there too.
 */
async function rig(t: { after(fn: () => Promise<void> | void): void }): Promise<Rig> {
  const server = await startJwtWorkloadServer(t);
  const jwk = await server.addKey(TD, 'k1', 'ES256');
  await server.setSigner(TD, 'k1', 300);
  await server.push();
  const ca = await createDevCa({ trustDomain: TD });
  const svid = await ca.issue({ spiffeId: ME });
  await server.setX509({
    spiffeId: ME,
    chainDer: Buffer.concat(pemDers(svid.certChainPem)),
    keyDer: createPrivateKey(svid.keyPem).export({ type: 'pkcs8', format: 'der' }),
    bundleDer: Buffer.concat(pemDers(svid.bundlePem)),
  });
  const mesh = await createMesh({ service: 'orders', trustDomain: TD, logger: quiet }, { env: { SPIFFE_ENDPOINT_SOCKET: server.address } });
  t.after(() => mesh.close());
  return { server, mesh, jwk };
}

async function refused(p: Promise<unknown>, reason: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof JwtSvidError, `not a JwtSvidError: ${String(e)}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_JWT_SVID_INVALID');
    assert.equal(e.reason, reason, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

const peerClaims = (over: Record<string, unknown> = {}) => ({ sub: PEER, aud: [AUD], exp: SEC() + 300, iat: SEC(), ...over });

test('mesh.jwtSvid fetches this workload\'s token; mesh.validateJwtSvid accepts a good one and returns who sent it', async (t) => {
  const { server, mesh } = await rig(t);
  const mine = await mesh.jwtSvid(PEER);
  assert.equal((await mesh.jwtSvid(PEER)), mine);
  const calls = await server.calls();
  assert.deepEqual(calls.jwt, [{ audience: [PEER], spiffe_id: ME, header: true }]);
  const fromPeer = await server.sign(TD, 'k1', peerClaims({ tenant: 'acme' }));
  const v = await mesh.validateJwtSvid(fromPeer, AUD);
  assert.equal(v.spiffeId, PEER);
  assert.deepEqual(v.audience, [AUD]);
  assert.equal(v.claims.tenant, 'acme');
  assert.ok(v.expiresAt > Date.now());
});

test('alg none, HS256 keyed with the public key, RS256 on the EC key: refused as algorithm', async (t) => {
  const { mesh, jwk } = await rig(t);
  await refused(mesh.validateJwtSvid(`${b64({ alg: 'none', kid: 'k1', typ: 'JWT' })}.${b64(peerClaims())}.`, AUD), 'algorithm', /none/);
  const pub = JSON.stringify(jwk);
  for (const secret of [pub, JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y })]) {
    const input = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(peerClaims())}`;
    await refused(mesh.validateJwtSvid(`${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`, AUD), 'algorithm', /HS256/);
  }
  const rs = makeKey('k1', 'RS256');
  await refused(mesh.validateJwtSvid(signWith(rs, peerClaims()), AUD), 'algorithm', /RS256 needs an RSA key; key "k1" is EC P-256/);
});

test('wrong audience, expired, not yet valid: refused with those reasons', async (t) => {
  const { server, mesh } = await rig(t);
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims({ aud: ['spiffe://example.org/ns/default/sa/other'] })), AUD), 'audience');
  // A token for us, validated as another audience.
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims()), 'spiffe://example.org/ns/default/sa/other'), 'audience');
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims({ exp: SEC() - 1 })), AUD), 'expired');
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims({ exp: undefined })), AUD), 'expired', /no exp/);
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims({ nbf: SEC() + 3600 })), AUD), 'not-yet-valid');
});

test('a sub in another trust domain signed with this trust domain\'s key: refused, with or without that domain\'s bundle', async (t) => {
  const { server, mesh } = await rig(t);
  const forged = await server.sign(TD, 'k1', peerClaims({ sub: 'spiffe://partner.org/ns/default/sa/payments' }));
  await refused(mesh.validateJwtSvid(forged, AUD), 'trust-domain', /partner\.org/);
  await server.addKey('partner.org', 'p1', 'RS256');
  await server.push();
  await waitFor(async () => {
    const ok = await mesh.validateJwtSvid(await server.sign('partner.org', 'p1', peerClaims({ sub: 'spiffe://partner.org/x' })), AUD).then(() => true, () => false);
    return ok;
  }, 5000, 'partner.org bundle delivered');
  await refused(mesh.validateJwtSvid(forged, AUD), 'key', /bundle of partner\.org has no key with kid "k1"/);
  // Same kid in both trust domains: still only the subject's trust domain's key counts.
  await server.addKey('partner.org', 'k1', 'ES256');
  await server.push();
  await waitFor(async () => (await mesh.validateJwtSvid(forged, AUD).catch((e: JwtSvidError) => e.reason)) === 'signature', 5000, 'partner.org k1 delivered');
});

test('unknown kid, wrong signer, tampered payload, embedded jwk/jku: refused', async (t) => {
  const { server, mesh } = await rig(t);
  await server.addKey(TD, 'not-published', 'ES256'); // the server knows it, the bundle it pushed does not
  await refused(mesh.validateJwtSvid(await server.sign(TD, 'not-published', peerClaims()), AUD), 'key', /kid "not-published"/);
  const impostor = makeKey('k1', 'ES256'); // an attacker's key under the real kid
  await refused(mesh.validateJwtSvid(signWith(impostor, peerClaims()), AUD), 'signature');
  const good = await server.sign(TD, 'k1', peerClaims());
  const [h, , s] = good.split('.');
  await refused(mesh.validateJwtSvid(`${h}.${b64(peerClaims({ sub: 'spiffe://example.org/ns/kube-system/sa/admin' }))}.${s}`, AUD), 'signature');
  await refused(mesh.validateJwtSvid(`${h}.${b64(peerClaims({ aud: [AUD, 'extra'] }))}.${s}`, AUD), 'signature');
  await refused(mesh.validateJwtSvid(signWith(impostor, peerClaims(), { alg: 'ES256', kid: 'k1', jwk: impostor.jwk }), AUD), 'header', /"jwk"/);
  await refused(mesh.validateJwtSvid(signWith(impostor, peerClaims(), { alg: 'ES256', kid: 'k1', jku: 'https://evil.example/jwks' }), AUD), 'header', /"jku"/);
  await refused(mesh.validateJwtSvid('Bearer ' + good, AUD), 'malformed');
});

test('a trust domain dropped from the bundles: its tokens stop validating', async (t) => {
  const { server, mesh } = await rig(t);
  const token = await server.sign(TD, 'k1', peerClaims());
  await mesh.validateJwtSvid(token, AUD);
  await server.push({ omit: [TD] });
  await waitFor(async () => (await mesh.validateJwtSvid(token, AUD).catch((e: JwtSvidError) => e.reason)) === 'trust-domain', 5000, 'the bundle dropped');
});

test('a mesh with a dev CA issues and validates JWT-SVIDs of its own; one whose identity is neither that nor the Workload API rejects, saying so', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const mesh = await createMesh({ service: 'orders', trustDomain: TD, identity: { ca }, logger: quiet }, { env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///nonexistent/agent.sock' } });
  t.after(() => mesh.close());
  const token = await mesh.jwtSvid(PEER);
  const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string };
  assert.equal(header.alg, 'ES256');
  assert.equal((await mesh.validateJwtSvid(token, PEER)).spiffeId, ME);
  await refused(mesh.validateJwtSvid(token, AUD), 'audience');
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId: ME })));
  const other = await createMesh({ service: 'orders', trustDomain: TD, identity: { source }, logger: quiet });
  t.after(() => other.close());
  for (const p of [other.jwtSvid(PEER), other.validateJwtSvid('a.b.c', AUD)]) {
    await assert.rejects(p, (e: unknown) => e instanceof JwtSvidUnavailableError && e.code === 'ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE' && /Workload API .*dev CA|no JWT bundle/.test(e.message) && /X509Source/.test(e.message));
  }
});

test('a bad SPIFFE_ENDPOINT_SOCKET is a config error naming it; after close() the methods say the mesh closed', async (t) => {
  await assert.rejects(createMesh({ service: 'orders', trustDomain: TD, logger: quiet }, { env: { SPIFFE_ENDPOINT_SOCKET: 'unix://agent.sock' } }), (e: unknown) => (e as { code?: string }).code === 'ERR_SIDECARLESS_CONFIG_INVALID' && /SPIFFE_ENDPOINT_SOCKET|unix:\/\/agent\.sock/.test((e as Error).message));
  const { server, mesh } = await rig(t);
  await mesh.validateJwtSvid(await server.sign(TD, 'k1', peerClaims()), AUD);
  await mesh.close();
  await assert.rejects(mesh.jwtSvid(PEER), /closed/);
  await waitFor(async () => (await server.calls()).open_bundle_streams === 0, 5000, 'the bundle stream closed with the mesh');
});
