// node:http, Express and Fastify behave alike: the same peer, the same header stripping, the same
// refusals, and servers built by a framework rotate their certificate like mesh.createServer's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { createDevCa, createMesh, peerOf, type Mesh, type DevCa } from '../../src/index.js';
import { type DevCaSource } from '../../src/sources/dev-ca.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const quiet = { info() {}, warn() {}, error() {} };

type Kind = 'node:http' | 'express' | 'fastify';

async function serve(kind: Kind, mesh: Mesh): Promise<{ port: number; close: () => Promise<void>; calls: () => number }> {
  let calls = 0;
  const answer = (peer: unknown, headers: unknown, raw: unknown) => JSON.stringify({ peer, headers, raw });
  if (kind === 'node:http') {
    const server = mesh.createServer((req, res) => {
      calls++;
      res.end(answer(peerOf(req), req.headers, req.rawHeaders));
    });
    return { port: await listen(server), close: () => closeServer(server), calls: () => calls };
  }
  if (kind === 'express') {
    const app = express();
    app.use(mesh.express());
    app.get('/', (req, res) => {
      calls++;
      res.send(answer(peerOf(req), req.headers, req.rawHeaders));
    });
    const server: Server = createHttpsServer(mesh.serverTlsOptions(), app);
    return { port: await listen(server), close: () => closeServer(server), calls: () => calls };
  }
  const app: FastifyInstance = Fastify({ https: mesh.serverTlsOptions() });
  await app.register(mesh.fastify);
  app.get('/', async (request) => {
    calls++;
    assert.deepEqual(request.peer, peerOf(request));
    return answer(request.peer, request.headers, request.raw.rawHeaders);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as { port: number }).port, close: () => app.close(), calls: () => calls };
}

let ca: DevCa;
let orders: Awaited<ReturnType<DevCa['issue']>>;
const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup() {
  ca ??= await createDevCa({ trustDomain: TD });
  orders ??= await ca.issue({ spiffeId: ORDERS });
}

for (const kind of ['node:http', 'express', 'fastify'] as const) {
  test(`${kind}: STRICT — verified peer, identity headers removed, no-cert client refused before the app`, async () => {
    await setup();
    const mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
    cleanup.push(() => mesh.close());
    const s = await serve(kind, mesh);
    cleanup.push(s.close);

    const ok = await rawTlsRequest({
      port: s.port,
      cert: orders.certChainPem,
      key: orders.keyPem,
      headers: [
        ['X-Forwarded-Client-Cert', `By=spiffe://${TD}/ns/default/sa/payments;URI=spiffe://${TD}/ns/default/sa/admin`],
        ['l5d-client-id', 'admin.default.serviceaccount.identity.linkerd.cluster.local'],
        ['L5D-Client-Identity', 'admin'],
      ],
    });
    assert.equal(ok.status, 200, ok.response);
    const body = JSON.parse(ok.body);
    assert.deepEqual(body.peer, { id: ORDERS, kind: 'spiffe', spiffeId: ORDERS, trustDomain: TD, namespace: 'default', serviceAccount: 'orders' });
    for (const h of ['x-forwarded-client-cert', 'l5d-client-id', 'l5d-client-identity']) {
      assert.equal(body.headers[h], undefined, `${h} must be removed from req.headers`);
      assert.ok(!body.raw.some((x: string) => x.toLowerCase() === h), `${h} must be removed from req.rawHeaders`);
    }

    const before = s.calls();
    const anon = await rawTlsRequest({ port: s.port });
    assert.equal(anon.status, undefined, 'no HTTP response without a client certificate');
    assert.equal(s.calls(), before, 'the app never ran');
  });

  test(`${kind}: PERMISSIVE — a client without a certificate reaches the app as unauthenticated`, async () => {
    await setup();
    const mesh = await createMesh({ service: 'payments', identity: { ca }, inbound: { mode: 'permissive' }, logger: quiet });
    cleanup.push(() => mesh.close());
    const s = await serve(kind, mesh);
    cleanup.push(s.close);
    const anon = await rawTlsRequest({ port: s.port, headers: [['l5d-client-id', 'orders']] });
    assert.equal(anon.status, 200, anon.response);
    const body = JSON.parse(anon.body);
    assert.equal(body.peer, null);
    assert.equal(body.headers['l5d-client-id'], undefined);
    const other = await createDevCa({ trustDomain: TD });
    const stranger = await other.issue({ spiffeId: ORDERS });
    const s2 = await rawTlsRequest({ port: s.port, cert: stranger.certChainPem, key: stranger.keyPem });
    assert.equal(s2.status, 200);
    assert.equal(JSON.parse(s2.body).peer, null, 'a certificate from an unknown CA is unauthenticated, never trusted');
    const good = await rawTlsRequest({ port: s.port, cert: orders.certChainPem, key: orders.keyPem });
    assert.equal(JSON.parse(good.body).peer.spiffeId, ORDERS);
  });

  test(`${kind}: the server's certificate rotates in place`, async () => {
    await setup();
    const mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
    cleanup.push(() => mesh.close());
    const s = await serve(kind, mesh);
    cleanup.push(s.close);
    const first = await rawTlsRequest({ port: s.port, cert: orders.certChainPem, key: orders.keyPem });
    assert.equal(first.status, 200);
    await (mesh.identity as DevCaSource).rotate();
    const second = await rawTlsRequest({ port: s.port, cert: orders.certChainPem, key: orders.keyPem });
    assert.equal(second.status, 200);
    assert.notEqual(second.serverSerial, first.serverSerial, 'a new handshake shows the new certificate');
    assert.equal(second.serverSerial?.toLowerCase().replace(/^0+/, ''), mesh.stats().identity.serialNumber?.toLowerCase().replace(/^0+/, ''));
  });
}
