// Inbound policy from xDS through createMesh: a mesh server that listens makes the mesh ask for its
// port's inbound Listener (xds.istio.io/grpc/lds/inbound/<INSTANCE_IP>:<port>); until it is decided
// the port refuses every request (fail closed); its RBAC then judges every request together with
// the local policy (both must allow); an RBAC change on the server denies the next request; the
// Listener removed leaves the local policy alone; STRICT never relaxes, PERMISSIVE never loosens.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, describe, test } from 'node:test';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { LISTENER_TYPE_URL as LDS } from '../../../src/control-plane/xds/discovery.js';
import { OWN, inboundListener, istioPolicy } from '../../helpers/istio-rbac.js';
import { startXdsResponder, type XdsResponder } from '../../helpers/xds-responder.js';
import { devCa, quiet } from '../../outbound/e2e/replicas.js';
import { waitFor } from '../../helpers/net.js';

const IP = '10.0.0.7';
const opened: Array<{ close(): Promise<unknown> }> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});

interface Served {
  mesh: Mesh;
  port: number;
  name: string;
}

async function served(x: XdsResponder, extra: Record<string, unknown> = {}): Promise<Served> {
  const mesh = await createMesh(
    { service: 'payments', identity: { ca: await devCa() }, controlPlane: { address: x.server.address, root: x.server.rootFile, token: 'good-token' }, logger: quiet, ...extra },
    { env: { INSTANCE_IP: IP } },
  );
  opened.push(mesh);
  const server = mesh.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { mesh, port, name: `xds.istio.io/grpc/lds/inbound/${IP}:${port}` };
}

/** A caller with its own SVID (orders, or another service account). */
async function caller(sa: string): Promise<(port: number, path: string, method?: string) => Promise<number>> {
  const svid = await (await devCa()).issue({ spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}` });
  return (port, path, method = 'GET') =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method, key: svid.keyPem, cert: svid.certChainPem, ca: svid.bundlePem, checkServerIdentity: () => undefined }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
}

function listenerFor(s: Served, shape: Parameters<typeof inboundListener>[1]): Uint8Array {
  return inboundListener(OWN, { ip: IP, port: s.port, ...shape });
}

describe('inbound policy from xDS', () => {
  test('the port refuses until its Listener arrives; then its RBAC and the local policy both judge; a change denies the next request', async (t) => {
    const x = await startXdsResponder(t);
    const s = await served(x);
    const orders = await caller('orders');
    const admin = await caller('admin');
    await waitFor(() => x.subscribed(LDS).includes(s.name), 3_000, 'the inbound Listener to be asked for');
    assert.equal(await orders(s.port, '/pay'), 503, 'not decided yet: fail closed');
    x.set(LDS, s.name, listenerFor(s, { allow: { 'ns[default]-policy[pay]-rule[0]': istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/orders'] }], to: [{ methods: ['GET'], paths: ['/pay*'] }] }) } }));
    x.push();
    await waitFor(() => s.mesh.snapshot().inbound.meshPolicy?.servers[0]?.name === s.name, 3_000, 'the inbound policy');
    assert.equal(await orders(s.port, '/pay'), 200);
    assert.equal(await orders(s.port, '/pay', 'POST'), 403, 'ALLOW names GET only');
    assert.equal(await admin(s.port, '/pay'), 403, 'ALLOW names orders only');
    x.set(LDS, s.name, listenerFor(s, { deny: { 'ns[default]-policy[no-pay]-rule[0]': istioPolicy({ to: [{ paths: ['/pay'] }] }) } }));
    x.push();
    await waitFor(async () => (await orders(s.port, '/pay')) === 403, 3_000, 'the DENY to apply');
    assert.equal(await admin(s.port, '/other'), 200, 'no ALLOW policy left: allowed unless denied');
    // The Listener removed: the local policy alone.
    x.set(LDS, s.name, null);
    x.push();
    await waitFor(() => s.mesh.snapshot().inbound.meshPolicy === undefined, 3_000, 'the layer to go');
    assert.equal(await orders(s.port, '/pay'), 200);
  });

  test('the local policy still decides: its deny stands whatever xDS allows', async (t) => {
    const x = await startXdsResponder(t);
    const s = await served(x, { inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: [{ paths: ['/admin*'] }] }] } } });
    const orders = await caller('orders');
    x.set(LDS, s.name, listenerFor(s, { allow: { any: istioPolicy({ from: [{ principals: ['*'] }] }) } }));
    x.push();
    await waitFor(() => s.mesh.snapshot().inbound.meshPolicy !== undefined, 3_000, 'the inbound policy');
    assert.equal(await orders(s.port, '/pay'), 200);
    assert.equal(await orders(s.port, '/admin'), 403);
  });

  test('a NACKed inbound Listener keeps the last good policy; STRICT from xDS makes a permissive mesh strict', async (t) => {
    const x = await startXdsResponder(t);
    const s = await served(x, { inbound: { mode: 'permissive' } });
    const orders = await caller('orders');
    x.set(LDS, s.name, listenerFor(s, { mode: 'strict', allow: { p: istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/orders'] }] }) } }));
    x.push();
    await waitFor(() => s.mesh.snapshot().inbound.mode === 'strict', 3_000, 'strict from xDS');
    assert.equal(await orders(s.port, '/'), 200);
    x.set(LDS, s.name, listenerFor(s, { allow: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } } }));
    x.push();
    await waitFor(() => x.nacks.length > 0, 3_000, 'the NACK');
    assert.equal(await orders(s.port, '/'), 200, 'the last good policy stays');
    assert.equal(s.mesh.snapshot().inbound.mode, 'strict');
  });
});
