// The embedded control plane, whole (startControlPlane: mesh file + CA + tokens + registration +
// ADS), judged by the mesh's own client: workloads join with tokens, get SVIDs from its CA,
// register, discover each other and call over mTLS under the mesh file's policy; a replica
// leaving drains; a mesh-file edit (split, policy) is followed and a bad edit keeps the last good
// one; a wrong token or a node that contradicts its token is refused; status shows it all.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createMesh, peerOf, type Mesh } from '../../src/index.js';
import { type RunningControlPlane, startControlPlane } from '../../src/server/control-plane-server.js';
import { issueToken } from '../../src/server/ca/tokens.js';
import { fetchStatus } from '../../src/cli/control-plane-status.js';
import { closeServer, listen, waitFor } from '../helpers/net.js';
import { makeTempDir } from '../helpers/tmp.js';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, sign } from 'node:crypto';
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from '../../src/proto/envoy/service/discovery/v3/discovery.js';

/** One ADS request over TLS (pinned root, bearer token) with a node claiming `sa`: the stream's status (OK once a response came). */
async function rawStream(r: Rig, token: string, sa: string): Promise<grpc.StatusObject> {
  const creds = grpc.credentials.createSsl(readFileSync(r.cp.rootFile));
  const client = new grpc.Client(r.cp.address.replace('127.0.0.1', 'localhost'), creds);
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => decodeDiscoveryResponse(b), md);
  call.on('error', () => {});
  const fields = new Map([['NAMESPACE', { stringValue: 'default' }], ['SERVICE_ACCOUNT', { stringValue: sa }]]);
  call.write(Buffer.from(encodeDiscoveryRequest({ node: { id: 'sidecar~127.0.0.1~x.default~default.svc.cluster.local', cluster: `${sa}.default`, metadata: { fields } }, typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener', resourceNames: ['payments.default.svc.cluster.local:8443'] })));
  const status = await new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', resolve);
    call.on('data', () => resolve({ code: grpc.status.OK, details: 'served', metadata: new grpc.Metadata() }));
  });
  call.cancel();
  client.close();
  return status;
}

const TD = 'cluster.local';
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const quiet = { info() {}, warn() {}, error() {} };

const MESH = `trustDomain: ${TD}
services:
  - name: payments
    port: 8443
  - name: payments-v2
    port: 8443
  - name: orders
    port: 8080
policies:
  - file: policy.yaml
`;
const POLICY = (methods: string) => `rules:
  - name: orders-may-charge
    action: allow
    from: { identities: ["${id('orders')}"] }
    to: { methods: [${methods}], paths: ["/charge"] }
`;

const opened: Array<{ close(): Promise<unknown> }> = [];
after(async () => {
  for (const x of opened.reverse()) await x.close().catch(() => {});
});

interface Rig {
  dir: string;
  cp: RunningControlPlane;
  logs: string[];
  token(sa: string): Promise<string>;
}

async function rig(graceMs = 300): Promise<Rig> {
  const dir = makeTempDir('sidecarless-cp-e2e-').dir;
  await writeFile(join(dir, 'mesh.yaml'), MESH);
  await writeFile(join(dir, 'policy.yaml'), POLICY('"POST"'));
  const logs: string[] = [];
  const cp = await startIn(dir, logs, '127.0.0.1:0', graceMs);
  const token = async (sa: string) => {
    const file = join(dir, `${sa}.token`);
    await writeFile(file, issueToken(cp.state, { namespace: 'default', serviceAccount: sa }));
    return file;
  };
  return { dir, cp, logs, token };
}

async function startIn(dir: string, logs: string[], listenAt: string, graceMs: number): Promise<RunningControlPlane> {
  const logger = { info: (m: string) => void logs.push(m), warn: (m: string) => void logs.push(`warn: ${m}`), error: (m: string) => void logs.push(`error: ${m}`) };
  const cp = await startControlPlane({ meshFile: join(dir, 'mesh.yaml'), state: join(dir, 'state'), listen: listenAt, adminListen: '127.0.0.1:0', graceMs, logger });
  opened.push(cp);
  return cp;
}

async function workload(r: Rig, service: string, extra: Record<string, unknown> = {}): Promise<Mesh> {
  const m = await createMesh({ service, logger: quiet, controlPlane: { address: r.cp.address, root: r.cp.rootFile, token: { file: await r.token(service) } }, ...extra });
  opened.push(m);
  return m;
}

async function replica(r: Rig, service: string, name: string): Promise<{ mesh: Mesh; server: Server; port: number }> {
  const mesh = await workload(r, service);
  const server = mesh.createServer((req, res) => res.end(JSON.stringify({ name, caller: peerOf(req)?.spiffeId ?? null })));
  const port = await listen(server);
  opened.push({ close: () => closeServer(server) });
  return { mesh, server, port };
}

const registered = (r: Rig, service: string) => r.cp.status().services.find((s) => s.name === service)!.endpoints.filter((e) => e.source === 'registered');

async function call(m: Mesh, path = '/charge', method = 'POST'): Promise<{ status: number; name?: string; caller?: string }> {
  const res = await m.fetch(`http://payments:8443${path}`, { method, body: method === 'POST' ? '{}' : undefined });
  const text = await res.text();
  return res.status === 200 ? { status: 200, ...(JSON.parse(text) as { name: string; caller: string }) } : { status: res.status };
}

describe('the embedded control plane, whole', () => {
  test('workloads join with tokens, register, discover each other and call over mTLS under the mesh file policy; a leaving replica drains', async () => {
    const r = await rig();
    const [p1, p2] = [await replica(r, 'payments', 'p1'), await replica(r, 'payments', 'p2')];
    await waitFor(() => registered(r, 'payments').length === 2, 5_000, 'two payments replicas registered');
    assert.deepEqual(registered(r, 'payments').map((e) => e.address).sort(), [`127.0.0.1:${p1.port}`, `127.0.0.1:${p2.port}`].sort());
    const orders = await workload(r, 'orders');
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await call(orders);
      assert.equal(res.status, 200);
      assert.equal(res.caller, id('orders'), 'the server saw the caller identity the CA issued for its token');
      seen.add(res.name!);
    }
    assert.deepEqual([...seen].sort(), ['p1', 'p2'], 'both registered replicas serve');
    assert.equal((await call(orders, '/charge', 'GET')).status, 403, 'the mesh file policy (from the inbound RBAC) denies GET');
    const st = await fetchStatus(r.cp.adminUrl);
    assert.equal(st.clients.length, 3);
    assert.ok(st.certificates.some((c) => c.spiffeId === id('orders')));
    for (const c of st.clients) for (const t of c.types) assert.equal(t.lastNack, undefined, `${c.cluster} NACKed ${t.typeUrl}: ${JSON.stringify(t.lastNack)}`);
    // p2 leaves: its server stops, its mesh closes; after the grace its endpoint is gone and every call still succeeds.
    await closeServer(p2.server);
    await p2.mesh.close();
    await waitFor(() => registered(r, 'payments').length === 1, 5_000, 'p2 removed after the grace');
    for (let i = 0; i < 6; i++) assert.equal((await call(orders)).name, 'p1');
  });

  test('mesh-file edits are followed: a split shifts traffic, a policy change denies the next request; a bad edit keeps the last good file', async () => {
    const r = await rig();
    await replica(r, 'payments', 'v1');
    await replica(r, 'payments-v2', 'v2');
    await waitFor(() => registered(r, 'payments').length === 1 && registered(r, 'payments-v2').length === 1, 5_000, 'both registered');
    const orders = await workload(r, 'orders');
    assert.equal((await call(orders)).name, 'v1');
    const version = r.cp.status().meshFile.version;
    await writeFile(join(r.dir, 'mesh.yaml'), MESH.replace('    port: 8443\n', '    port: 8443\n    split: [{ service: payments, weight: 0 }, { service: payments-v2, weight: 100 }]\n'));
    await waitFor(async () => (await call(orders)).name === 'v2', 5_000, 'the split moved traffic to v2');
    assert.notEqual(r.cp.status().meshFile.version, version);
    await writeFile(join(r.dir, 'mesh.yaml'), MESH.replace('port: 8080', 'port: 8080\n    split: [{ service: nowhere, weight: 1 }]'));
    await waitFor(() => r.cp.status().meshFile.rejected !== undefined, 5_000, 'the bad edit rejected');
    assert.match(r.cp.status().meshFile.rejected!.message, /nowhere/);
    assert.ok(r.logs.some((l) => /^error: mesh file .* rejected, still serving/.test(l)), r.logs.join('\n'));
    assert.equal((await call(orders)).name, 'v2', 'the last good file is still served');
    await writeFile(join(r.dir, 'mesh.yaml'), MESH); // fixed: served again, the rejection cleared
    await waitFor(() => r.cp.status().meshFile.rejected === undefined, 5_000, 'the good file served again');
    await waitFor(async () => (await call(orders)).name === 'v1', 5_000, 'the split removed: v1 again');
    await writeFile(join(r.dir, 'policy.yaml'), POLICY('"PUT"'));
    await waitFor(async () => (await call(orders)).status === 403, 5_000, 'the policy change denied the next POST');
  });

  test('the control plane restarted under load: no request fails while it is down; clients reconnect, re-register and resynchronize', async () => {
    const r = await rig(200);
    await replica(r, 'payments', 'p1');
    await waitFor(() => registered(r, 'payments').length === 1, 5_000, 'p1 registered');
    const orders = await workload(r, 'orders');
    assert.equal((await call(orders)).status, 200);
    let failures = 0;
    let calls = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const res = await call(orders).catch(() => ({ status: 0 }));
        calls++;
        if (res.status !== 200) failures++;
        await new Promise((done) => setTimeout(done, 10));
      }
    })();
    const address = r.cp.address;
    await r.cp.close();
    const downAt = calls;
    await new Promise((done) => setTimeout(done, 400)); // down for longer than the grace
    const again = await startIn(r.dir, r.logs, address, 200);
    assert.equal(again.address, address);
    assert.equal(registered({ ...r, cp: again }, 'payments').length, 1, 'the registration was restored from --state');
    await waitFor(() => again.status().clients.length === 2, 10_000, 'both workloads reconnected');
    await waitFor(() => registered({ ...r, cp: again }, 'payments')[0]?.state === 'up', 5_000, 'p1 registered again by its own stream');
    const before = calls;
    await waitFor(() => calls > before + 5, 5_000, 'calls after the restart');
    stop = true;
    await load;
    assert.ok(calls - downAt > 5, `calls went on while it was down (${calls - downAt})`);
    assert.equal(failures, 0, `${failures} of ${calls} calls failed`);
    // Resynchronized: an edit after the restart reaches the client.
    await writeFile(join(r.dir, 'policy.yaml'), POLICY('"PUT"'));
    await waitFor(async () => (await call(orders)).status === 403, 5_000, 'a policy edit after the restart is followed');
  });

  test('tokenIssuers: a token of an external OIDC issuer (its JWK Set named by the mesh file) gets an SVID; a JWK Set that cannot be read rejects the reload', async () => {
    const r = await rig();
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k8s-1', use: 'sig', alg: 'ES256' };
    await writeFile(join(r.dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    const ISS = 'https://kubernetes.default.svc.cluster.local';
    await writeFile(join(r.dir, 'mesh.yaml'), `${MESH}tokenIssuers:\n  - { issuer: "${ISS}", jwksFile: jwks.json }\n`);
    await waitFor(() => r.logs.some((l) => /reloaded/.test(l)), 5_000, 'the file with tokenIssuers served');
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISS, aud: ['istio-ca'], sub: 'system:serviceaccount:default:orders', iat: now, exp: now + 600, 'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'orders' } } };
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${part({ alg: 'ES256', kid: 'k8s-1', typ: 'JWT' })}.${part(claims)}`;
    const jwt = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    await writeFile(join(r.dir, 'k8s.token'), jwt);
    const orders = await createMesh({ service: 'orders', logger: quiet, controlPlane: { address: r.cp.address, root: r.cp.rootFile, token: { file: join(r.dir, 'k8s.token') } } });
    opened.push(orders);
    assert.equal(orders.identity.getX509Svid().spiffeId.id, id('orders'), 'an SVID for the identity the external token maps to');
    assert.ok(r.cp.status().certificates.some((c) => c.spiffeId === id('orders')));
    await writeFile(join(r.dir, 'mesh.yaml'), `${MESH}tokenIssuers:\n  - { issuer: "${ISS}", jwksFile: missing.json }\n`);
    await waitFor(() => r.cp.status().meshFile.rejected !== undefined, 5_000, 'the reload with a missing JWK Set rejected');
    assert.match(r.cp.status().meshFile.rejected!.message, /missing\.json/);
  });

  test('a wrong token is refused by the CA and the ADS server; a node that contradicts its token cannot open a stream', async () => {
    const r = await rig();
    const bad = join(r.dir, 'bad.token');
    await writeFile(bad, issueToken(r.cp.state, { namespace: 'default', serviceAccount: 'orders' }).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
    const { VirtualClock } = await import('../../src/clock.js');
    const clock = new VirtualClock(Date.now());
    const p = createMesh({ service: 'orders', logger: quiet, controlPlane: { address: r.cp.address, root: r.cp.rootFile, token: { file: bad } } }, { clock });
    const outcome = p.then((m) => (opened.push(m), 'resolved'), (e: Error & { code?: string }) => e.code);
    await waitFor(() => r.logs.some((l) => /token/.test(l)) || r.cp.status().certificates.length > 0, 5_000, 'the CA saw the call');
    await clock.advanceAsync(15_000);
    assert.equal(await outcome, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.equal(r.cp.status().certificates.length, 0, 'no certificate for a bad token');
    // orders' token with a node claiming payments: PERMISSION_DENIED; a bad token: UNAUTHENTICATED with istiod's words.
    const token = issueToken(r.cp.state, { namespace: 'default', serviceAccount: 'orders' });
    const liar = await rawStream(r, token, 'payments');
    assert.equal(liar.code, grpc.status.PERMISSION_DENIED);
    assert.match(liar.details, /token is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    const forged = await rawStream(r, token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), 'orders');
    assert.deepEqual([forged.code, forged.details], [grpc.status.UNAUTHENTICATED, 'request authenticate failure']);
    assert.ok((await rawStream(r, token, 'orders')).code === grpc.status.OK, 'its own node: served');
    const expired = issueToken({ tokenKey: r.cp.state.tokenKey, clock: { now: () => Date.now() - 2 * 3_600_000 } }, { namespace: 'default', serviceAccount: 'orders', ttlMs: 3_600_000 });
    assert.deepEqual((await rawStream(r, expired, 'orders')).code, grpc.status.UNAUTHENTICATED, 'an expired token');
    assert.ok(r.logs.some((l) => /ADS stream refused .*exp/i.test(l)), r.logs.filter((l) => /refused/.test(l)).join('\n'));
  });
});
