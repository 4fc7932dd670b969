// JWT-SVIDs issued by the embedded control plane (issue 14 item 4): FetchJWTSVID / FetchJWTBundles
// on its TLS port beside the CA, for the token's own workload only. Two meshes whose identities
// come from its CA: A's outbound jwtSvid attachment carries a token from the control plane, B's
// fronted judge (kJudgeFronted) admits it against the control plane's bundles. Refusals spoken
// by a raw grpc-js client: another workload's spiffe_id, no token, no audience, no security
// header, the plaintext port. Against a CA that has no JWT profile (the istiod-protocol test CA,
// Python grpcio), mesh.jwtSvid and validation fail saying the control plane does not issue them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createMesh, type Mesh, peerOf } from '../../src/index.js';
import { issueToken } from '../../src/server/ca/tokens.js';
import { type RunningControlPlane, startControlPlane } from '../../src/server/control-plane-server.js';
import { type FrontedRequest, type FrontedVerdict, type JudgeFrontedHook, kJudgeFronted } from '../../src/mesh/hooks.js';
import { parseJws } from '../../src/identity/jwt-svid.js';
import { SpiffeWorkloadAPI, type JWTBundlesResponse, type JWTSVIDResponse } from '../../src/proto/workload.js';
import { JwtWorkloadClient, controlPlaneJwtChannel } from '../../src/sources/workload-api-jwt.js';
import { renderStatus } from '../../src/cli/control-plane-status.js';
import { startIstioCa } from '../helpers/istio-ca-server.js';
import { closeServer, listen } from '../helpers/net.js';
import { makeTempDir } from '../helpers/tmp.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const PAYMENTS = `spiffe://${TD}/ns/default/sa/payments`;
const quiet = { info() {}, warn() {}, error() {} };

let cp: RunningControlPlane;
let a: Mesh;
let b: Mesh;
const token = (sa: string) => issueToken(cp.state, { namespace: 'default', serviceAccount: sa });

before(async () => {
  const dir = makeTempDir('sidecarless-cp-jwt-').dir;
  await writeFile(join(dir, 'mesh.yaml'), `trustDomain: ${TD}\nservices:\n  - name: payments\n    port: 8443\n  - name: orders\n    port: 8443\n`);
  cp = await startControlPlane({ meshFile: join(dir, 'mesh.yaml'), state: join(dir, 'state'), listen: '127.0.0.1:0', plaintextListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: quiet });
  const controlPlane = { address: cp.address, root: cp.rootFile, token: { env: 'CP_TOKEN' } };
  [a, b] = await Promise.all([
    createMesh({ service: 'orders', logger: quiet, controlPlane }, { env: { CP_TOKEN: token('orders') } }),
    createMesh({ service: 'payments', logger: quiet, controlPlane, inbound: { jwtSvid: { audience: PAYMENTS } } }, { env: { CP_TOKEN: token('payments') } }),
  ]);
});
after(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await cp?.close();
});

const judge = (m: Mesh, r: Partial<FrontedRequest>): Promise<FrontedVerdict> =>
  (m as unknown as Record<symbol, JudgeFrontedHook>)[kJudgeFronted]!({ method: 'GET', target: '/charge', host: 'payments', headers: {}, sourceIp: '203.0.113.7', port: 443, ...r });

/** A raw grpc-js client of the control plane's TLS port (pinned to its root), or of a plaintext port. */
function rawClient(address: string, tls: boolean): grpc.Client {
  const creds = tls ? grpc.credentials.createFromSecureContext(createSecureContext({ ca: readFileSync(cp.rootFile, 'utf8') })) : grpc.credentials.createInsecure();
  return new grpc.Client(address, creds, tls ? { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' } : {});
}

function md(o: { token?: string; header?: boolean } = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  if (o.header !== false) m.set('workload.spiffe.io', 'true');
  if (o.token !== undefined) m.set('authorization', `Bearer ${o.token}`);
  return m;
}

function fetchJwt(c: grpc.Client, m: grpc.Metadata, req: { audience: string[]; spiffeId?: string }): Promise<JWTSVIDResponse> {
  const d = SpiffeWorkloadAPI.FetchJWTSVID;
  return new Promise((resolve, reject) => c.makeUnaryRequest(d.path, d.requestSerialize, d.responseDeserialize, { spiffeId: '', ...req }, m, { deadline: Date.now() + 5000 }, (e, v) => (e ? reject(e) : resolve(v!))));
}

/** The first FetchJWTBundles message, or the status the stream ended with. */
function firstBundles(c: grpc.Client, m: grpc.Metadata): Promise<JWTBundlesResponse> {
  const d = SpiffeWorkloadAPI.FetchJWTBundles;
  return new Promise((resolve, reject) => {
    const call = c.makeServerStreamRequest(d.path, d.requestSerialize, d.responseDeserialize, {}, m, { deadline: Date.now() + 5000 });
    call.on('data', (v: JWTBundlesResponse) => {
      resolve(v);
      call.cancel();
    });
    call.on('error', reject);
  });
}

const status = (code: number, details?: RegExp) => (e: grpc.ServiceError) => {
  assert.equal(e.code, code, `${e.code} ${e.details}`);
  if (details) assert.match(e.details, details);
  return true;
};

describe('JWT-SVIDs from the embedded control plane', () => {
  test("A's outbound jwtSvid carries a JWT-SVID from the control plane that B's fronted judge admits against the control plane's bundles", async () => {
    const verdicts: FrontedVerdict[] = [];
    const server = b.createServer(async (req, res) => {
      const v = await judge(b, { headers: { authorization: req.headers.authorization ?? '' } });
      verdicts.push(v);
      res.end(JSON.stringify({ mtls: peerOf(req)?.spiffeId, jwt: v.allowed ? v.peer?.spiffeId : v.message }));
    });
    const port = await listen(server);
    try {
      a.setService('payments', { endpoints: [{ address: `127.0.0.1:${port}` }], jwtSvid: { audience: PAYMENTS } });
      const r = await a.fetch('http://payments/charge');
      assert.deepEqual(await r.json(), { mtls: ORDERS, jwt: ORDERS });
      assert.equal(verdicts[0]!.allowed, true);
    } finally {
      a.setService('payments', null);
      await closeServer(server);
    }
    const jwt = await a.jwtSvid(PAYMENTS);
    const { header, claims } = parseJws(jwt);
    assert.equal(header.alg, 'ES256');
    assert.equal(claims.sub, ORDERS);
    assert.equal((claims.exp as number) - (claims.iat as number), 300, "5 minutes, SPIRE's default");
    assert.equal((await b.validateJwtSvid(jwt, PAYMENTS)).spiffeId, ORDERS);
    // another audience is refused, by validateJwtSvid and by the judge
    await assert.rejects(b.validateJwtSvid(await a.jwtSvid('spiffe://cluster.local/ns/default/sa/ledger'), PAYMENTS), /the token is for .*ledger.*, not for .*payments/);
    const v = await judge(b, { headers: { authorization: `Bearer ${await a.jwtSvid('someone-else')}` } });
    assert.equal(v.allowed, false);
    assert.equal(!v.allowed && v.status, 401);
    const st = cp.status();
    assert.equal(st.jwtSvids.issued, 3, JSON.stringify(st.jwtSvids)); // PAYMENTS (cached for the fetch), ledger, someone-else
    assert.equal(st.jwtSvids.bundleStreams, 1, "B's stream");
    assert.match(renderStatus(JSON.parse(JSON.stringify(st)) as never), /JWT-SVIDs issued: 3; JWT bundle streams open: 1/);
  });

  test('the wire: only for the token’s own SPIFFE ID, an audience required, a token and the security header required; the bundle holds the kid', async () => {
    const c = rawClient(cp.address, true);
    try {
      const orders = token('orders');
      const ok = await fetchJwt(c, md({ token: orders }), { audience: ['x'], spiffeId: ORDERS });
      assert.equal(ok.svids.length, 1);
      assert.equal(ok.svids[0]!.spiffeId, ORDERS);
      await assert.rejects(fetchJwt(c, md({ token: orders }), { audience: ['x'], spiffeId: PAYMENTS }), status(grpc.status.PERMISSION_DENIED, /token is for .*orders.* asks .*payments/));
      await assert.rejects(fetchJwt(c, md({ token: orders }), { audience: [] }), status(grpc.status.INVALID_ARGUMENT, /audience must be specified/));
      await assert.rejects(fetchJwt(c, md(), { audience: ['x'] }), status(grpc.status.UNAUTHENTICATED, /^request authenticate failure$/));
      await assert.rejects(fetchJwt(c, md({ token: `${orders.slice(0, -2)}AA` }), { audience: ['x'] }), status(grpc.status.UNAUTHENTICATED, /^request authenticate failure$/));
      await assert.rejects(fetchJwt(c, md({ token: orders, header: false }), { audience: ['x'] }), status(grpc.status.INVALID_ARGUMENT, /security header missing/));
      await assert.rejects(firstBundles(c, md()), status(grpc.status.UNAUTHENTICATED, /^request authenticate failure$/));
      const msg = await firstBundles(c, md({ token: orders }));
      assert.deepEqual([...msg.bundles.keys()], [TD]);
      const jwks = JSON.parse(Buffer.from(msg.bundles.get(TD)!).toString()) as { keys: Array<{ kid: string; use: string }> };
      assert.deepEqual(jwks.keys.map((k) => [k.kid, k.use]), [[parseJws(ok.svids[0]!.svid).header.kid, 'jwt-svid']]);
    } finally {
      c.close();
    }
    // the mesh's client over the pinned channel: another workload's token, a root that cannot be read
    const wrong = new JwtWorkloadClient({ channel: controlPlaneJwtChannel({ address: cp.address, root: cp.rootFile, token: token('orders') }), spiffeId: PAYMENTS });
    await assert.rejects(wrong.jwtSvid('x'), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE' && /PERMISSION_DENIED .*: the token is for another workload/.test(e.message));
    await wrong.close();
    const noRoot = new JwtWorkloadClient({ channel: controlPlaneJwtChannel({ address: cp.address, root: `${cp.rootFile}.missing`, token: token('orders') }), spiffeId: ORDERS });
    await assert.rejects(noRoot.jwtSvid('x'), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE' && /cannot read the control-plane root .*does not exist/.test(e.message));
    await noRoot.close();
    // never on the plaintext port
    const plain = rawClient(cp.plaintextAddress!, false);
    try {
      await assert.rejects(fetchJwt(plain, md({ token: token('orders') }), { audience: ['x'] }), status(grpc.status.UNIMPLEMENTED));
      await assert.rejects(firstBundles(plain, md({ token: token('orders') })), status(grpc.status.UNIMPLEMENTED));
    } finally {
      plain.close();
    }
  });

  test('a control plane without the JWT profile (istiod-protocol test CA): jwtSvid and validation fail, saying it does not issue JWT-SVIDs', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'env-token': ORDERS } });
    const m = await createMesh({ service: 'orders', logger: quiet, controlPlane: { address: ca.address, root: ca.rootFile, token: { env: 'T' } }, inbound: { jwtSvid: { audience: ORDERS } } }, { env: { T: 'env-token' } });
    t.after(() => m.close());
    const unavailable = (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE', e.message);
      assert.match(e.message, /UNIMPLEMENTED.*does not issue JWT-SVIDs \(istiod does not.*Workload API.*JWK Set file/);
      return true;
    };
    await assert.rejects(m.jwtSvid('payments'), unavailable);
    await assert.rejects(m.validateJwtSvid('a.b.c', ORDERS), unavailable);
    const v = await judge(m, { headers: { authorization: `Bearer ${await a.jwtSvid(ORDERS)}` } });
    assert.equal(v.allowed, false, 'no bundles: fail closed');
  });
});
