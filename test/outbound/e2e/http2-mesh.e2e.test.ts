// Mesh to mesh over HTTP/2, both sides ours: mesh.fetch to a `protocol: 'http2'` service served by
// mesh.createServer(app, { http2: true }) (the policy judges each stream, peerOf gives the caller),
// and to a `protocol: 'grpc'` service served by grpc-js with mesh.grpc credentials and interceptor
// (the mesh's h2 connector presents the client SVID grpc-js requires; a denied method is the
// trailers-only grpc-status 7 a gRPC client reads, not an HTTP error).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type Http2SecureServer } from 'node:http2';
import { createMesh, peerOf, type Mesh } from '../../../src/index.js';
import { client, devCa, quiet } from './replicas.js';

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';
let payments: Mesh;
let orders: Mesh;
let h2: Http2SecureServer;
let g: grpc.Server;
const handled: string[] = [];

before(async () => {
  const ca = await devCa();
  payments = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    grpc,
    inbound: {
      policy: {
        rules: [
          { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/pay.Svc/Refund'] } },
          { name: 'orders', action: 'allow', from: { identities: [ORDERS] }, to: { paths: ['/api/*', '/pay.Svc/*'] } },
        ],
      },
    },
  });
  h2 = payments.createServer((req, res) => {
    handled.push(`h2 ${req.url}`);
    res.end(JSON.stringify({ version: req.httpVersion, peer: peerOf(req)?.spiffeId }));
  }, { http2: true });
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
  const unary = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize });
  g = new grpc.Server({ interceptors: [payments.grpc.interceptor()] });
  g.addService({ Charge: unary('/pay.Svc/Charge'), Refund: unary('/pay.Svc/Refund') }, {
    Charge: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      handled.push('grpc Charge');
      cb(null, Buffer.from(peerOf(call)?.spiffeId ?? 'none'));
    },
    Refund: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      handled.push('grpc Refund');
      cb(null, Buffer.alloc(0));
    },
  });
  const gPort = await new Promise<number>((resolve, reject) => g.bindAsync('127.0.0.1:0', payments.grpc.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))));
  orders = await client({
    services: {
      payments: { endpoints: [`127.0.0.1:${(h2.address() as { port: number }).port}`], protocol: 'http2', identity: 'spiffe://cluster.local/ns/default/sa/payments' },
      'payments-grpc': { endpoints: [`127.0.0.1:${gPort}`], protocol: 'grpc', identity: 'spiffe://cluster.local/ns/default/sa/payments' },
    },
  }, ca);
});

after(async () => {
  await orders?.close();
  g?.forceShutdown();
  await new Promise((r) => h2?.close(r));
  await payments?.close();
});

test('mesh.fetch over h2 to mesh.createServer({ http2: true }): allowed streams see the caller, denied ones are 403 before the app', async () => {
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => orders.fetch(`http://payments/api/charge/${i}`).then(async (r) => ({ status: r.status, body: (await r.json()) as { version: string; peer: string } }))));
  for (const r of results) assert.deepEqual(r, { status: 200, body: { version: '2.0', peer: ORDERS } });
  const denied = await orders.fetch('http://payments/admin');
  assert.equal(denied.status, 403);
  await denied.arrayBuffer();
  const other = await orders.fetch('http://payments/other');
  assert.equal(other.status, 403, 'the allow rule names /api/* only');
  await other.arrayBuffer();
  assert.equal(handled.filter((h) => h.startsWith('h2 ')).length, 16);
  assert.equal(handled.some((h) => h === 'h2 /admin' || h === 'h2 /other'), false);
});

test('mesh.fetch to a grpc service on grpc-js with mesh.grpc: the call reaches the handler with the caller\'s identity; a denied method is grpc-status 7, trailers-only', async () => {
  const frame = (payload: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);
  const post = (method: string) => orders.fetch(`http://payments-grpc/pay.Svc/${method}`, { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: frame(Buffer.from('x')) });
  const ok = await post('Charge');
  assert.equal(ok.status, 200);
  const body = Buffer.from(await ok.arrayBuffer());
  assert.equal(body.subarray(5).toString(), ORDERS);
  const refused = await post('Refund');
  assert.equal(refused.status, 200);
  assert.equal(refused.headers.get('grpc-status'), '7');
  assert.equal((await refused.arrayBuffer()).byteLength, 0);
  assert.ok(handled.includes('grpc Charge'));
  assert.equal(handled.includes('grpc Refund'), false);
});
