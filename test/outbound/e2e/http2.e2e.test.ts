// Outbound HTTP/2 over real mTLS sockets: a mesh client calling node:http2 secure servers that
// hold an SVID from the same dev CA (built from the mesh's secure-context material directly, so each
// can misbehave at will; mesh ↔ mesh over h2 is http2-mesh.e2e.test.ts). One server per behaviour,
// shared by the file: the request goes over h2, 64 concurrent requests are 64 streams on one
// connection (and 64 in flight for the balancer), the server's SPIFFE ID is checked, a server that
// does not select h2 is refused (never spoken to in HTTP/1.1), 503 is retried per request, and a
// protocol change through mesh.setService rebuilds the pools.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTlsServer } from 'node:tls';
import { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, constants as h2, createSecureServer } from 'node:http2';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { createDevCaSource } from '../../../src/sources/dev-ca.js';
import { secureContextOptions } from '../../../src/tls/secure-context.js';
import { type Mesh } from '../../../src/mesh.js';
import { call, client, devCa } from './replicas.js';

interface H2Peer {
  address: string;
  versions: string[];
  sessions: Set<Http2Session>;
  hits: number;
  handle: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
  close(): Promise<void>;
}

async function material(sa: string, alpn: string[]) {
  const source = await createDevCaSource({ ca: await devCa(), spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}` });
  return { source, tls: { ...secureContextOptions(source.getX509Svid(), source.getBundles(), { alpn }), requestCert: true, rejectUnauthorized: true } };
}

async function h2Peer(sa: string): Promise<H2Peer> {
  const { source, tls } = await material(sa, ['h2']);
  const peer: H2Peer = {
    address: '',
    versions: [],
    sessions: new Set(),
    hits: 0,
    handle: (req, res) => res.end(`hello over ${req.httpVersion}`),
    close: async () => {
      for (const s of peer.sessions) s.destroy();
      await new Promise((r) => server.close(r));
      await source.close();
    },
  };
  const server = createSecureServer(tls, (req, res) => {
    peer.hits++;
    peer.versions.push(req.httpVersion);
    peer.sessions.add(req.stream.session!);
    peer.handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  peer.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return peer;
}

/**
 * An HTTP/1.1 server over mTLS. `selectsNone`: a TLS server with no ALPN at all, which completes
 * the handshake without selecting a protocol; else node:https, which refuses an offer without
 * http/1.1 with Node's no_application_protocol alert.
 */
async function http1Peer(sa: string, selectsNone: boolean): Promise<{ address: string; hits: number; close(): Promise<void> }> {
  const { source, tls } = await material(sa, ['http/1.1']);
  const out = { address: '', hits: 0, close: async () => {
    app.closeAllConnections();
    await new Promise((r) => server.close(r));
    await source.close();
  } };
  const handler = (_req: unknown, res: { end(s: string): void }) => {
    out.hits++;
    res.end('http/1.1');
  };
  const app = selectsNone ? createHttpServer(handler) : createHttpsServer(tls, handler);
  const { ALPNProtocols: _alpn, ...noAlpn } = tls;
  const server = selectsNone ? createTlsServer(noAlpn, (s) => app.emit('connection', s)) : app;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  out.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return out;
}

let payments: H2Peer;
let impostor: H2Peer;
let mesh: Mesh;
before(async () => {
  [payments, impostor] = await Promise.all([h2Peer('payments'), h2Peer('billing')]);
  mesh = await client({ services: { payments: { endpoints: [payments.address], protocol: 'http2' } } });
});
after(async () => {
  await mesh?.close();
  await Promise.all([payments?.close(), impostor?.close()]);
});

test('protocol http2: the request goes over h2, 64 concurrent requests are 64 streams of one connection, each in flight for the balancer', async () => {
  const r = await call(mesh, 'http://payments/hello');
  assert.equal(r.body, 'hello over 2.0');
  assert.deepEqual(payments.versions, ['2.0']);
  assert.equal(mesh.stats().outbound.services.payments!.protocol, 'http2');

  const held: Http2ServerResponse[] = [];
  let allHeld!: () => void;
  const arrived = new Promise<void>((r) => (allHeld = r));
  payments.handle = (req, res) => {
    held.push(res);
    if (held.length === 64) allHeld();
  };
  const calls = Array.from({ length: 64 }, (_, i) => call(mesh, `http://payments/n/${i}`, { method: i % 2 ? 'POST' : 'GET', ...(i % 2 && { body: `b${i}` }) }));
  await arrived;
  const ep = mesh.stats().outbound.services.payments!.endpoints[0]!;
  assert.equal(ep.pending, 64, 'the balancer counts every stream, not the connection');
  for (const res of held) res.end('ok');
  const results = await Promise.all(calls);
  assert.deepEqual(new Set(results.map((x) => x.status)), new Set([200]));
  assert.equal(payments.sessions.size, 1, 'one h2 connection carried them all');
  assert.equal(mesh.stats().outbound.services.payments!.endpoints[0]!.pending, 0);
});

test('a 503 is retried per request (a GET, three tries), a POST is not', async () => {
  payments.handle = (_req, res) => {
    res.statusCode = 503;
    res.end('busy');
  };
  payments.hits = 0;
  const get = await call(mesh, 'http://payments/busy');
  assert.equal(get.status, 503);
  assert.equal(payments.hits, 3, 'maxRetries 2');
  payments.hits = 0;
  let n = 0;
  payments.handle = (_req, res) => {
    res.statusCode = n++ === 0 ? 503 : 200;
    res.end(String(n));
  };
  const retried = await call(mesh, 'http://payments/once-busy');
  assert.deepEqual([retried.status, retried.body, payments.hits], [200, '2', 2]);
  payments.hits = 0;
  payments.handle = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const post = await call(mesh, 'http://payments/charge', { method: 'POST', body: 'x' });
  assert.deepEqual([post.status, payments.hits], [503, 1]);
  payments.handle = (req, res) => res.end(`hello over ${req.httpVersion}`);
});

test('a POST whose stream the server refused (REFUSED_STREAM: not processed) is retried; one reset otherwise is not', async () => {
  let n = 0;
  payments.hits = 0;
  payments.handle = (req, res) => {
    if (n++ === 0) req.stream.close(h2.NGHTTP2_REFUSED_STREAM);
    else res.end('charged');
  };
  const r = await call(mesh, 'http://payments/charge', { method: 'POST', body: 'x' });
  assert.deepEqual([r.status, r.body, payments.hits], [200, 'charged', 2]);
  payments.hits = 0;
  payments.handle = (req) => req.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  const reset = await call(mesh, 'http://payments/charge', { method: 'POST', body: 'x' });
  assert.equal(reset.error?.cause?.code, 'ERR_SIDECARLESS_ENDPOINT_FAILED');
  assert.match(String(reset.error?.cause?.message), /NGHTTP2_INTERNAL_ERROR/);
  assert.equal(payments.hits, 1, 'a POST reset after it was sent may have been processed: not retried');
  payments.handle = (req, res) => res.end(`hello over ${req.httpVersion}`);
});

test('headers HTTP/2 forbids that undici passes on are dropped (Node refuses them and undici would stall the connection); te: trailers stays', async () => {
  payments.handle = (req, res) => res.end(JSON.stringify(req.headers));
  const seen = (r: { body: string }) => JSON.parse(r.body) as Record<string, string>;
  const f = await call(mesh, 'http://payments/h', { headers: { te: 'gzip', 'proxy-connection': 'keep-alive', 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA', 'x-kept': '1' } });
  assert.equal(f.status, 200, String(f.error?.cause?.message));
  assert.deepEqual([seen(f).te, seen(f)['proxy-connection'], seen(f)['http2-settings'], seen(f)['x-kept']], [undefined, undefined, undefined, '1']);
  for (const headers of [[['TE', 'trailers'], ['Proxy-Connection', 'x']], ['te', 'trailers', 'proxy-connection', 'x'], new Map([['te', 'trailers'], ['http2-settings', 'x']])]) {
    const r = await request('http://payments/h', { dispatcher: mesh.dispatcher, headers: headers as never });
    const got = JSON.parse(await r.body.text()) as Record<string, string>;
    assert.deepEqual([r.statusCode, got.te, got['proxy-connection'], got['http2-settings']], [200, 'trailers', undefined, undefined], JSON.stringify([...(headers as Iterable<unknown>)]));
  }
  const before = mesh.stats().outbound.services.payments!;
  const refused = await call(mesh, 'http://payments/h', { headers: { 'keep-alive': 'timeout=5' } });
  assert.equal(refused.error?.cause?.code, 'UND_ERR_INVALID_ARG', 'undici refuses the request itself: the caller\'s error as it is');
  const now = mesh.stats().outbound.services.payments!;
  assert.deepEqual([now.attempts - before.attempts, now.endpoints[0]!.failures - before.endpoints[0]!.failures], [1, 0], 'one try, not retried, not held against the endpoint');
  const after = await call(mesh, 'http://payments/h');
  assert.equal(after.status, 200, 'the connection still carries streams');
  payments.handle = (req, res) => res.end(`hello over ${req.httpVersion}`);
});

test('the server must present the SPIFFE ID discovery promised: another workload\'s h2 server is refused', async () => {
  mesh.setService('billing-as-payments', { endpoints: [impostor.address], identity: 'spiffe://cluster.local/ns/default/sa/payments', protocol: 'http2' });
  const r = await call(mesh, 'http://billing-as-payments/x');
  assert.equal(r.status, 0);
  assert.equal(r.error?.cause?.code, 'ERR_SIDECARLESS_PEER_IDENTITY');
  assert.match(String(r.error?.cause?.message), /billing/);
  assert.equal(impostor.hits, 0, 'nothing reached it');
  mesh.setService('billing-as-payments', null);
});

for (const selectsNone of [true, false]) {
  const how = selectsNone ? 'selects no protocol' : 'refuses the handshake (no_application_protocol)';
  test(`an HTTP/1.1 server that ${how} is refused with ERR_SIDECARLESS_ALPN_MISMATCH, never spoken to; as protocol http it answers`, async () => {
    const old = await http1Peer('ledger', selectsNone);
    try {
      mesh.setService('ledger', { endpoints: [old.address], protocol: 'grpc' });
      const r = await call(mesh, 'http://ledger/x', { method: 'POST', body: 'x' });
      assert.equal(r.error?.cause?.code, 'ERR_SIDECARLESS_ALPN_MISMATCH', String(r.error?.cause?.message));
      assert.match(String(r.error?.cause?.message), selectsNone ? /did not agree to h2 \(ALPN; it selected none\)/ : /did not agree to h2 \(ALPN; it refused the handshake\)/);
      assert.equal(old.hits, 0);
      mesh.setService('ledger', { endpoints: [old.address] });
      const h1 = await call(mesh, 'http://ledger/x');
      assert.deepEqual([h1.status, h1.body, old.hits], [200, 'http/1.1', 1]);
    } finally {
      mesh.setService('ledger', null);
      await old.close();
    }
  });
}

test('changing a service\'s protocol through mesh.setService rebuilds its pools: http2 → http is refused by an h2-only server, → http2 again speaks h2', async () => {
  mesh.setService('payments', { endpoints: [payments.address], protocol: 'http' });
  const h1 = await call(mesh, 'http://payments/hello');
  // The h2-only server (no allowHTTP1) refuses http/1.1 at ALPN: the old h2 pool is not reused.
  assert.equal(h1.status, 0);
  assert.match(String(h1.error?.cause?.code), /ERR_SIDECARLESS_CONNECT_FAILED/);
  mesh.setService('payments', { endpoints: [payments.address], protocol: 'http2' });
  const before = payments.sessions.size;
  const h2 = await call(mesh, 'http://payments/hello');
  assert.equal(h2.body, 'hello over 2.0');
  assert.equal(payments.sessions.size, before + 1, 'a new h2 connection');
});

test('protocol grpc: a trailers-only UNAVAILABLE is passed on, not retried, and counted as a failed try; grpc-status in trailers is no HTTP error', async () => {
  mesh.setService('payments', { endpoints: [payments.address], protocol: 'grpc' });
  payments.hits = 0;
  payments.handle = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'draining' });
    res.end();
  };
  const before = mesh.stats().outbound.services.payments!.endpoints[0]!.failures;
  const res = await mesh.fetch('http://payments/pkg.Svc/Call', { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: new Uint8Array(5) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('grpc-status'), '14');
  await res.arrayBuffer();
  assert.equal(payments.hits, 1, 'not retried');
  assert.equal(mesh.stats().outbound.services.payments!.endpoints[0]!.failures, before + 1);

  payments.handle = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/grpc' });
    res.addTrailers({ 'grpc-status': '5', 'grpc-message': 'not found' });
    res.end(Buffer.from([0, 0, 0, 0, 0]));
  };
  const res2 = await mesh.fetch('http://payments/pkg.Svc/Call', { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: new Uint8Array(5) });
  assert.equal(res2.status, 200);
  assert.equal((await res2.arrayBuffer()).byteLength, 5);
  assert.equal(mesh.stats().outbound.services.payments!.endpoints[0]!.failures, before + 1, 'an application status is not a failure');
});
