// Review of "a server fed with server.emit('connection') is adopted at its first request" (307633a),
// as an outsider: the IncomingMessage option adopts a node:http(s) server at its first request, but
// what the adopter does then (refuseAll, for a closed mesh or an HTTP/2 server) only acts on LATER
// connections, and node:http2 never constructs that class. Real mTLS sockets and a net.Server front
// that hands its sockets over. Each FINDING asserts the current behaviour.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type Socket } from 'node:net';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { craftLeaf, idOf } from '../helpers/certs.js';
import { LOOPBACK, closeServer, frontFor, rawTlsRequest } from '../helpers/net.js';

const POLICY = { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } }] };
const lines: string[] = [];
const logger: Logger = { info() {}, warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;

before(async () => {
  ca = await createDevCa({ trustDomain: 'cluster.local' });
  web = await ca.issue({ spiffeId: idOf('web') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger, inbound: { policy: POLICY } });
});
after(() => mesh?.close());


describe("servers fed with server.emit('connection')", () => {
  test('after mesh.close(), no connection of such a server is served, not even the first one being read', async () => {
    // adoptServersOf's contract: "a server built from these options afterwards (the mesh closed) has
    // every connection closed, never served unguarded". At the first request, MeshIncomingMessage
    // calls the adopter, now refuseAll, which only prepends 'connection'/'secureConnection' listeners:
    // the connection being parsed goes on, and node:http emits 'request' (no destroyed check) for it
    // and for everything pipelined or kept alive on it. A leaf with two URI SANs, a denied path.
    const closing = await createMesh({ service: 'payments', identity: { ca }, logger, inbound: { policy: POLICY } });
    const ran: string[] = [];
    const inner = createHttpsServer(closing.serverTlsOptions(), (req, res) => {
      ran.push(String(req.url));
      res.end('served');
    });
    await closing.close();
    const { port, close } = await frontFor(inner);
    try {
      const twoSans = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
      const first = await rawTlsRequest({
        port,
        cert: twoSans.certChainPem,
        key: twoSans.keyPem,
        request: 'GET /admin HTTP/1.1\r\nHost: payments\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n',
      });
      assert.equal(first.status, undefined, first.response.slice(0, 80));
      assert.deepEqual(ran, [], 'nothing of the first connection ran');
      const second = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /ok HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(second.status, undefined, 'later connections are refused');
      assert.deepEqual(ran, []);
    } finally {
      await close();
      await closeServer(inner);
    }
  });

  test('an HTTP/2 server built from serverTlsOptions() behind a front is found at its first request (h2 or allowHTTP1) and judged: an invalid SVID is refused on both protocols, a valid one gets the policy', async () => {
    // Listening itself, such a server is adopted at its first connection (issue 15: HTTP/2 is judged). Behind a front, net.server.socket never fires for it, and node:http2 ignores the
    // `IncomingMessage` option (it takes Http1IncomingMessage / Http2ServerRequest): nothing adopts it,
    // no line is logged, and a leaf that is not a valid SVID (two URI SANs) gets GET /admin, which the
    // policy denies, served over both protocols: the attack-servers finding, for HTTP/2.
    // Fix: carry Http1IncomingMessage and Http2ServerRequest classes that adopt (and so refuse) the
    // server too, and make the refusal stop the request at hand (see above); raw 'stream' listeners
    // would still need a note in docs/security-model.md.
    const ran: string[] = [];
    const inner = http2.createSecureServer({ ...mesh.serverTlsOptions(), allowHTTP1: true }, (req, res) => {
      ran.push(`${req.httpVersion} ${req.url}`);
      res.end('served');
    });
    const { port, close } = await frontFor(inner as unknown as { emit(event: 'connection', socket: Socket): boolean });
    const before = lines.length;
    try {
      const twoSans = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
      const h1 = await rawTlsRequest({ port, cert: twoSans.certChainPem, key: twoSans.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(h1.status, undefined, `allowHTTP1: ${h1.response.slice(0, 80)}`);
      const h2 = await new Promise<number | string>((resolve) => {
        const client = http2.connect(`https://${LOOPBACK}:${port}`, { cert: twoSans.certChainPem, key: twoSans.keyPem, rejectUnauthorized: false });
        client.on('error', (e) => resolve(e.message));
        // Refused after its handshake (the server is adopted by then): the session just closes.
        client.on('close', () => resolve('closed'));
        const stream = client.request({ ':method': 'GET', ':path': '/admin', ':authority': 'payments' });
        stream.on('response', (h) => {
          resolve(Number(h[':status']));
          client.close();
        });
        stream.on('error', (e) => resolve(e.message));
        stream.end();
      });
      assert.notEqual(h2, 200, 'h2');
      assert.deepEqual(ran, []);
      void before;
      // A valid SVID through the same front: the policy decides, over h2 too.
      const asWeb = (path: string) =>
        new Promise<number | string>((resolve) => {
          const client = http2.connect(`https://${LOOPBACK}:${port}`, { cert: web.certChainPem, key: web.keyPem, rejectUnauthorized: false });
          client.on('error', (e) => resolve(e.message));
          const stream = client.request({ ':method': 'GET', ':path': path, ':authority': 'payments' });
          stream.on('response', (h) => {
            resolve(Number(h[':status']));
            client.close();
          });
          stream.on('error', (e) => resolve(e.message));
          stream.end();
        });
      assert.equal(await asWeb('/admin'), 403);
      assert.equal(await asWeb('/x'), 200);
      assert.deepEqual(ran, ['2.0 /x']);
    } finally {
      await close();
      inner.close();
    }
  });

  test("documented limit: the app's own IncomingMessage class must extend the options' one, or first-request adoption is off", async () => {
    // `{ ...mesh.serverTlsOptions(), IncomingMessage: MyRequest }` (a request class of the app's, as
    // some frameworks take) replaces the mesh's: behind a front the server is never adopted and a
    // denied path is served. Fix: refuse (or chain) a foreign IncomingMessage at adoption time, or
    // document that serverTlsOptions()'s IncomingMessage must be kept (extend it instead).
    class MyRequest extends IncomingMessage {}
    const run = async (options: object, alpn = true) => {
      const ran: string[] = [];
      const inner = createHttpsServer(options, (req, res) => {
        ran.push(String(req.url));
        res.end('served');
      });
      const { port, close } = await frontFor(inner);
      try {
        const r = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', ...(!alpn && { tls: { ALPNProtocols: undefined } }) });
        return { status: r.status, ran };
      } finally {
        await close();
        await closeServer(inner);
      }
    };
    // Replaced: behind a front, a client that offers no ALPN is never looked at (docs/security-model.md,
    // Known limits); one that offers ALPN is, at its handshake (the options' ALPNCallback adopts).
    assert.deepEqual(await run({ ...mesh.serverTlsOptions(), IncomingMessage: MyRequest }, false), { status: 200, ran: ['/admin'] });
    assert.deepEqual(await run({ ...mesh.serverTlsOptions(), IncomingMessage: MyRequest }), { status: 403, ran: [] });
    // Extended, as the docs say: adopted at the first request, the denied path refused.
    const opts = mesh.serverTlsOptions() as { IncomingMessage: typeof IncomingMessage };
    class MyMeshRequest extends opts.IncomingMessage {}
    assert.deepEqual(await run({ ...opts, IncomingMessage: MyMeshRequest }), { status: 403, ran: [] });
  });
});
