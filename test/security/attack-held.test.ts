// Outsider attacks that the gate withstood (kept so they stay withstood): keep-alive and pipelining
// around refusals, HTTP/1.0, Upgrade on CONNECT, upgrades with a body, a second `ws` server
// (`noServer`) driven from a request listener, listeners added with prependListener/once, Express
// sub-apps with mergeParams, OPTIONS *, absolute-form authorities, Fastify plugins registered in an
// encapsulated context after the app's own onRequest hook, and a mesh closed under an adopted server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import { connect as netConnect } from 'node:net';
import { type Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import express from 'express';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { craftLeaf, idOf } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen, rawTlsRequest, sleep } from '../helpers/net.js';

const quiet: Logger = { info() {}, warn() {}, error() {} };
const POLICY = {
  rules: [
    { name: 'no-admin', action: 'deny', from: { notIdentities: [idOf('admin')] }, to: { paths: ['/admin', '/admin/*', '/x/admin', '/x/admin/*'] } },
    { name: 'no-tunnels', action: 'deny', to: { methods: ['CONNECT'] } },
  ],
};

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;
let server: Server;
let port: number;
const ran: string[] = [];

before(async () => {
  ca = await createDevCa({ trustDomain: 'cluster.local' });
  web = await ca.issue({ spiffeId: idOf('web') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY } });
  const app = express();
  app.use(mesh.express());
  // A sub-app with its own router (mergeParams) mounted under /x: Express folds its paths too.
  const sub = express();
  const router = express.Router({ mergeParams: true });
  router.get('/admin', (req, res) => void (ran.push(`sub ${req.originalUrl}`), res.send('sub')));
  sub.use('/', router);
  app.use('/x', sub);
  // A second WebSocket server, driven from a request listener (no 'upgrade' listener on the server:
  // node:http hands the upgrade request to 'request').
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws, req) => {
    ran.push(`ws ${req.url}`);
    ws.close();
  });
  app.all('/{*rest}', (req, res) => {
    if (req.headers.upgrade === 'websocket') return wss.handleUpgrade(req, req.socket, Buffer.alloc(0), (ws) => wss.emit('connection', ws, req));
    ran.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.send('ok'));
  });
  server = createHttpsServer(mesh.serverTlsOptions(), app);
  server.prependListener('request', (req: IncomingMessage) => ran.push(`prepended ${req.url}`));
  server.once('request', (req: IncomingMessage) => ran.push(`once ${req.url}`));
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    ran.push(`connect ${req.url}`);
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  port = await listen(server);
});
after(async () => {
  await closeServer(server);
  await mesh?.close();
});

const statuses = (response: string) => [...response.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
const UPGRADE = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

const CASES: Array<[string, string, number[], string[]]> = [
  ['Express sub-app, case folded', 'GET /X/ADMIN HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', [403], []],
  ['Express sub-app, trailing slash', 'GET /x/admin/ HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', [403], []],
  ['HTTP/1.0 keep-alive, then a denied request', 'GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /admin HTTP/1.0\r\n\r\n', [200, 403], ['prepended /ok', 'GET /ok', 'once /ok']],
  ['pipelined behind a 403', 'GET /admin HTTP/1.1\r\nHost: payments\r\n\r\nGET /ADMIN/ HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', [403, 403], []],
  ['Upgrade on a CONNECT', 'CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', [403], []],
  ['noServer ws from a request listener, denied path', UPGRADE('/admin/live'), [403], []],
  ['noServer ws from a request listener, allowed path', UPGRADE('/live'), [101], ['prepended /live', 'ws /live']],
  ['an upgrade with a body, denied path', `${UPGRADE('/admin', 'Content-Length: 5\r\n')}hello`, [403], []],
  ['OPTIONS * (judged, not crashed on)', 'OPTIONS * HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', [404], ['prepended *']],
  ['absolute-form with userinfo', 'GET http://u@payments/x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', [400], []],
  ['absolute-form IPv6 authority', 'GET http://[::1]:8443/admin HTTP/1.1\r\nHost: [::1]:8443\r\nConnection: close\r\n\r\n', [403], []],
  ['Transfer-Encoding "chunked, identity"', 'POST /x HTTP/1.1\r\nHost: payments\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n', [400], []],
];

describe('one Express server with every listener kind', () => {
  for (const [what, request, expected, runs] of CASES) {
    test(`${what} → ${expected.join(', ')}`, async () => {
      const from = ran.length;
      // A refused upgrade that reached 'request' keeps its connection (keep-alive): read for a moment.
      const r = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request, timeoutMs: request.includes('Upgrade: websocket') ? 400 : 3_000 });
      assert.deepEqual(statuses(r.response), expected, r.response.slice(0, 300));
      assert.deepEqual(ran.slice(from), runs);
    });
  }
});

describe('Fastify', () => {
  test("mesh.fastify registered inside an encapsulated plugin, after the app's own onRequest hook: the server is still guarded first", async () => {
    const seen: string[] = [];
    const app = Fastify({ https: mesh.serverTlsOptions() });
    app.addHook('onRequest', async (request) => void seen.push(`early hook ${request.url}`));
    await app.register(async (child) => {
      await child.register(mesh.fastify);
      child.get('/admin', async () => (seen.push('admin'), 'admin'));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const p = (app.server.address() as { port: number }).port;
      const r = await rawTlsRequest({ port: p, cert: web.certChainPem, key: web.keyPem, request: 'GET /admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(r.status, 403, r.response);
      assert.deepEqual(seen, [], 'not even the early hook ran');
    } finally {
      await app.close();
    }
  });
});

describe('TLS and adoption corners', () => {
  test('a framework server whose FIRST connection is plaintext: adopted all the same, the next TLS peer is judged at the handshake', async () => {
    const served: string[] = [];
    const s = createHttpsServer(mesh.serverTlsOptions(), (req, res) => void (served.push(String(req.url)), res.end('ok')));
    const p = await listen(s);
    try {
      await new Promise<void>((resolve) => {
        const plain = netConnect(p, LOOPBACK, () => plain.write('GET /plain HTTP/1.1\r\nHost: payments\r\n\r\n'));
        plain.on('error', () => resolve());
        plain.on('close', () => resolve());
        plain.resume();
      });
      const twoSans = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
      const bad = await rawTlsRequest({ port: p, cert: twoSans.certChainPem, key: twoSans.keyPem, request: 'GET /a HTTP/1.1\r\nHost: payments\r\n\r\nGET /b HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(bad.status, undefined, bad.response);
      assert.deepEqual(served, []);
    } finally {
      await closeServer(s);
    }
  });

  test('two meshes: each judges the servers built from its own options; a session from one is not resumed on the other', async () => {
    const other = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: { rules: [{ name: 'other-denies-x', action: 'deny', to: { paths: ['/x'] } }] } } });
    const mine = createHttpsServer(mesh.serverTlsOptions(), (_req, res) => res.end('mine'));
    const theirs = createHttpsServer(other.serverTlsOptions(), (_req, res) => res.end('theirs'));
    const [pm, pt] = [await listen(mine), await listen(theirs)];
    try {
      const request = 'GET /x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n';
      const first = await rawTlsRequest({ port: pm, cert: web.certChainPem, key: web.keyPem, request, tls: { maxVersion: 'TLSv1.2' } });
      assert.equal(first.status, 200, first.response);
      assert.ok(first.session, 'a session to offer');
      const crossed = await rawTlsRequest({ port: pt, cert: web.certChainPem, key: web.keyPem, request, session: first.session!, tls: { maxVersion: 'TLSv1.2' } });
      assert.equal(crossed.sessionReused, false);
      assert.equal(crossed.status, 403, 'judged by the other mesh, which denies /x');
    } finally {
      await closeServer(mine);
      await closeServer(theirs);
      await other.close();
    }
  });

  test('a client that offers only ALPN h2: no application protocol, the handshake fails', async () => {
    const r = await rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, tls: { ALPNProtocols: ['h2'] }, request: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' });
    assert.equal(r.secureConnected, false);
    assert.match(String(r.error?.message), /no application protocol/);
  });
});

describe('mesh.close()', () => {
  test('a keep-alive connection to an adopted server is closed at its next request after close', async () => {
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
    const served: string[] = [];
    const s = createHttpsServer(m.serverTlsOptions(), (req, res) => void (served.push(String(req.url)), res.end('ok')));
    const p = await listen(s);
    try {
      const out = await new Promise<string>((resolve) => {
        let text = '';
        const socket = tlsConnect({ host: LOOPBACK, port: p, cert: web.certChainPem, key: web.keyPem, rejectUnauthorized: false });
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', () => {});
        socket.on('close', () => resolve(text));
        socket.once('secureConnect', async () => {
          socket.write('GET /k1 HTTP/1.1\r\nHost: payments\r\n\r\n');
          await sleep(150);
          await m.close();
          socket.write('GET /k2 HTTP/1.1\r\nHost: payments\r\n\r\n');
        });
      });
      assert.deepEqual(out.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200']);
      assert.deepEqual(served, ['/k1']);
    } finally {
      await closeServer(s);
    }
  });

  test('a framework server adopted before close serves nothing after it', async () => {
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
    const served: string[] = [];
    const s = createHttpsServer(m.serverTlsOptions(), (req, res) => void (served.push(String(req.url)), res.end('ok')));
    const p = await listen(s);
    try {
      const before = await rawTlsRequest({ port: p, cert: web.certChainPem, key: web.keyPem, request: 'GET /before HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(before.status, 200);
      await m.close();
      const afterClose = await rawTlsRequest({ port: p, cert: web.certChainPem, key: web.keyPem, request: 'GET /after HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(afterClose.status, undefined, afterClose.response);
      assert.deepEqual(served, ['/before']);
    } finally {
      await closeServer(s);
    }
  });
});
