// Outsider attacks on how a server comes to be protected (SECURITY-CASES 32, 33): servers the mesh
// adopts from mesh.serverTlsOptions() but whose requests do not travel through node:http's request
// events (HTTP/2: now judged stream by stream), and servers that never see their own connections accepted (sockets handed in with
// server.emit('connection'), as PROXY-protocol fronts and one-port HTTP+HTTPS setups do).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type Server as NetServer } from 'node:net';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { craftLeaf, idOf } from '../helpers/certs.js';
import { LOOPBACK, closeServer, frontFor, listen, rawTlsRequest } from '../helpers/net.js';

const POLICY = {
  rules: [
    { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
    { name: 'no-denied-host', action: 'deny', to: { hosts: ['denied.example'] } },
  ],
};

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;
const lines: string[] = [];
const logger: Logger = { info() {}, warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };

before(async () => {
  ca = await createDevCa({ trustDomain: 'cluster.local' });
  web = await ca.issue({ spiffeId: idOf('web') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger, inbound: { policy: POLICY } });
});
after(() => mesh?.close());

/** One HTTP/2 request over mTLS; resolves with the status, or the error that ended it. */
function h2Request(port: number, headers: Record<string, string>): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const client = http2.connect(`https://${LOOPBACK}:${port}`, { cert: web.certChainPem, key: web.keyPem, rejectUnauthorized: false });
    client.on('error', () => {});
    const stream = client.request(headers);
    stream.resume(); // drained, so that client.close() (graceful) can finish the session
    stream.on('response', (h) => {
      resolve({ status: Number(h[':status']) });
      client.close();
    });
    stream.on('error', (e) => {
      resolve({ error: e.message });
      client.close();
    });
    stream.on('close', () => {
      resolve({ error: `stream closed (${stream.rstCode})` });
      client.close();
    });
    stream.end();
  });
}

describe('HTTP/2 servers built from serverTlsOptions(): every stream judged (issue 15; they were refused before)', () => {
  test("http2.createSecureServer({ ...serverTlsOptions(), allowHTTP1: true }): 'stream' and 'request' listeners see only admitted streams; :authority is the host judged", async () => {
    // The original finding: a 'stream' listener received GET /admin (denied) unjudged, and a compat
    // handler served `:authority: denied.example` (the gate judged Host '', the app read :authority).
    const ran: string[] = [];
    const server = http2.createSecureServer({ ...mesh.serverTlsOptions(), allowHTTP1: true }, (req, res) => {
      ran.push(`request ${req.url} ${req.headers[':authority'] ?? req.headers.host}`);
      res.end('ok');
    });
    server.on('stream', (_stream, headers) => ran.push(`stream ${headers[':path']}`));
    const port = await listen(server as unknown as NetServer);
    const before = lines.length;
    try {
      for (const [path, authority, status] of [['/admin', 'payments', 403], ['/x', 'denied.example', 403], ['/ok', 'payments', 200]] as const) {
        const r = await h2Request(port, { ':method': 'GET', ':path': path, ':authority': authority });
        assert.equal(r.status, status, `h2 ${path} ${authority}: ${JSON.stringify(r)}`);
      }
      const h1 = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(h1.status, 403, `HTTP/1.1 through allowHTTP1: ${h1.response}`);
      assert.deepEqual(ran.sort(), ['request /ok payments', 'stream /ok'], 'only the admitted stream reached app code');
      assert.deepEqual(lines.slice(before), [], 'nothing to warn about');
    } finally {
      server.close();
    }
  });

  test('Fastify({ http2: true, https: { allowHTTP1: true, ...serverTlsOptions() } }) + register(mesh.fastify): judged like HTTP/1.1', async () => {
    const app = Fastify({ http2: true, https: { allowHTTP1: true, ...mesh.serverTlsOptions() } } as never) as unknown as import('fastify').FastifyInstance;
    try {
      await app.register(mesh.fastify);
      app.get('/*', async () => 'ok');
      await app.listen({ port: 0, host: LOOPBACK });
      const port = (app.server.address() as { port: number }).port;
      assert.equal((await h2Request(port, { ':method': 'GET', ':path': '/admin', ':authority': 'payments' })).status, 403);
      assert.equal((await h2Request(port, { ':method': 'GET', ':path': '/ok', ':authority': 'payments' })).status, 200);
    } finally {
      await app.close().catch(() => {});
    }
  });
});


describe('a server that gets its connections through server.emit("connection")', () => {
  test('adopted at its first request: SVID rules, policy, identity headers and WebSocket upgrades judged from the first one', async () => {
    // One port for HTTP and HTTPS, or a PROXY-protocol front: a net.Server accepts the socket and
    // hands it to the https server built from serverTlsOptions(), which never accepts a connection
    // itself (`net.server.socket` fires for the front). The options' IncomingMessage class adopts the
    // server when the first request's header section is parsed, before any event reaches a listener.
    for (const first of ['upgrade', 'request'] as const) {
      const ran: string[] = [];
      const inner = createHttpsServer(mesh.serverTlsOptions(), (req: IncomingMessage, res: ServerResponse) => {
        ran.push(`${req.url} l5d=${String(req.headers['l5d-client-id'])}`);
        res.end('served');
      });
      const wss = new WebSocketServer({ server: inner });
      wss.on('connection', (_ws, req) => ran.push(`ws ${req.url}`));
      const { port, close } = await frontFor(inner);
      const upgradeTo = (path: string) =>
        rawTlsRequest({
          port,
          cert: web.certChainPem,
          key: web.keyPem,
          timeoutMs: 1_000,
          request: `GET ${path} HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        });
      try {
        if (first === 'upgrade') assert.equal((await upgradeTo('/admin/live')).status, 403, 'the very first event is a denied upgrade');
        const twoSans = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
        const denied = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nl5d-client-id: admin\r\nConnection: close\r\n\r\n' });
        assert.equal(denied.status, 403, `${first}: ${denied.response}`);
        const invalid = await rawTlsRequest({ port, cert: twoSans.certChainPem, key: twoSans.keyPem, request: 'GET /x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
        assert.equal(invalid.status, undefined, `${first}: a leaf with two URI SANs: ${invalid.response}`);
        assert.equal((await upgradeTo('/admin/live')).status, 403);
        const ok = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /ok HTTP/1.1\r\nHost: payments\r\nl5d-client-id: admin\r\nConnection: close\r\n\r\n' });
        assert.equal(ok.status, 200, ok.response);
        assert.deepEqual(ran, ['/ok l5d=undefined'], `${first}: only the admitted request ran, its identity header removed`);
      } finally {
        await close();
        await closeServer(inner);
      }
    }
  });

  test('the same front in front of mesh.createServer: every connection is judged (the supported way)', async () => {
    const ran: string[] = [];
    const inner = mesh.createServer((req, res) => {
      ran.push(`${req.url} l5d=${String(req.headers['l5d-client-id'])}`);
      res.end('served');
    });
    const wss = new WebSocketServer({ server: inner });
    wss.on('connection', (_ws, req) => ran.push(`ws ${req.url}`));
    const { port, close } = await frontFor(inner);
    try {
      const twoSans = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
      const denied = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(denied.status, 403, denied.response);
      const invalid = await rawTlsRequest({ port, cert: twoSans.certChainPem, key: twoSans.keyPem, request: 'GET /x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(invalid.status, undefined, invalid.response);
      const ok = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request: 'GET /ok HTTP/1.1\r\nHost: payments\r\nl5d-client-id: admin\r\nConnection: close\r\n\r\n' });
      assert.equal(ok.status, 200, ok.response);
      assert.deepEqual(ran, ['/ok l5d=undefined']);
    } finally {
      await close();
      await closeServer(inner);
    }
  });
});

describe('the connection limits in force (docs/security-model.md, connection hygiene)', () => {
  test('every protected server has a whole-request limit, Fastify included (it sets none: 0)', async () => {
    // node:http's requestTimeout (300 s) is what ends a request whose body never completes (the
    // first-request timer stops at the first request, and the socket has no idle timeout on https).
    // Fastify overwrites it with its own default, 0; the mesh restores 300 s when it adopts the server.
    const app = Fastify({ https: mesh.serverTlsOptions() });
    await app.register(mesh.fastify);
    const node = mesh.createServer(() => {});
    const framework = createHttpsServer(mesh.serverTlsOptions());
    try {
      const limits = (s: unknown) => {
        const t = s as { requestTimeout: number; headersTimeout: number; timeout: number };
        return [t.requestTimeout, t.headersTimeout, t.timeout];
      };
      assert.deepEqual(limits(node), [300_000, 60_000, 0]);
      assert.deepEqual(limits(framework), [300_000, 60_000, 0]);
      assert.deepEqual(limits(app.server), [300_000, 60_000, 0], 'Fastify: node:http’s default restored');
    } finally {
      await app.close();
    }
  });
});
