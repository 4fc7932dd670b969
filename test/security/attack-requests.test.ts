// Outsider attacks on single requests through the gate (SECURITY-CASES 13, 32, 34): what the app
// reads after the gate (headersDistinct, the host behind `trust proxy`), Expect handling when app
// code changes the server's listeners, what is pipelined behind a refusal, IPv6 zone ids, and
// server events the gate does not carry. Raw request bytes over mTLS, real Express and Fastify.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { idOf } from '../helpers/certs.js';
import { closeServer, expectContinueRequest, listen, rawTlsRequest } from '../helpers/net.js';

const quiet: Logger = { info() {}, warn() {}, error() {} };
const POLICY = {
  rules: [
    { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
    { name: 'no-denied-host', action: 'deny', to: { hosts: ['denied.example', '[fe80::1]'] } },
  ],
};

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;

before(async () => {
  ca = await createDevCa({ trustDomain: 'cluster.local' });
  web = await ca.issue({ spiffeId: idOf('web') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY } });
});
after(() => mesh?.close());

const send = (port: number, request: string, timeoutMs?: number) =>
  rawTlsRequest({ port, cert: web.certChainPem, key: web.keyPem, request, ...(timeoutMs !== undefined && { timeoutMs }) });
const statuses = (response: string) => [...response.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

describe('what the app reads after the gate', () => {
  test('req.headersDistinct after an identity header was removed: no crash, no identity header (node:http and Express)', async () => {
    // Before the fix: node:http builds headersDistinct lazily from rawHeaders with the count it
    // parsed; the gate had shortened rawHeaders, so the getter read past the end and threw — a
    // peer-triggered uncaught exception (process crash) in any node:http handler that reads it.
    const seen: unknown[] = [];
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headersDistinct);
      res.end('ok');
    };
    const app = express();
    app.use(mesh.express());
    app.get('/x', (req, res) => void (seen.push(req.headersDistinct), res.send('ok')));
    const servers = [mesh.createServer(handler), createHttpsServer(mesh.serverTlsOptions(), app)];
    try {
      for (const server of servers) {
        const port = await listen(server);
        const r = await send(port, 'GET /x HTTP/1.1\r\nHost: payments\r\nL5D-Client-Id: admin.default.serviceaccount.identity.linkerd.cluster.local\r\nx-forwarded-client-cert: By=x\r\nX-Last: 1\r\nConnection: close\r\n\r\n');
        assert.equal(r.status, 200, r.response.slice(0, 200));
      }
      assert.equal(seen.length, 2);
      for (const d of seen) assert.deepEqual({ ...(d as object) }, { host: ['payments'], 'x-last': ['1'], connection: ['close'] });
    } finally {
      for (const s of servers) await closeServer(s);
    }
  });

  test('FINDING (LOW, not fixed here): behind `trust proxy`, the app reads X-Forwarded-Host, the gate judged Host', async () => {
    // A peer is authenticated by mTLS, not trusted as a proxy; yet with Express `trust proxy` (or
    // Fastify `trustProxy`) req.hostname / request.hostname come from X-Forwarded-Host, which the
    // gate never judges: a host-based DENY is bypassed for code that routes on the hostname
    // (vhost, tenant selection). Istio and Linkerd judge :authority the same way; the fix is a
    // documented rule, or judging X-Forwarded-Host too for DENY rules when the app trusts proxies.
    const hosts: string[] = [];
    const app = express();
    app.set('trust proxy', true);
    app.use(mesh.express());
    app.get('/x', (req, res) => void (hosts.push(`express ${req.hostname}`), res.send('ok')));
    const server = createHttpsServer(mesh.serverTlsOptions(), app);
    const f = Fastify({ https: mesh.serverTlsOptions(), trustProxy: true });
    await f.register(mesh.fastify);
    f.get('/x', async (request) => (hosts.push(`fastify ${request.hostname}`), 'ok'));
    await f.listen({ port: 0, host: '127.0.0.1' });
    try {
      for (const port of [await listen(server), (f.server.address() as { port: number }).port]) {
        const direct = await send(port, 'GET /x HTTP/1.1\r\nHost: denied.example\r\nConnection: close\r\n\r\n');
        assert.equal(direct.status, 403, direct.response);
        const forwarded = await send(port, 'GET /x HTTP/1.1\r\nHost: payments\r\nX-Forwarded-Host: denied.example\r\nConnection: close\r\n\r\n');
        assert.equal(forwarded.status, 200, 'FINDING: served');
      }
      assert.deepEqual(hosts, ['express denied.example', 'fastify denied.example'], 'FINDING: the app read the denied host');
    } finally {
      await closeServer(server);
      await f.close();
    }
  });
});

describe('the Host grammar, again', () => {
  test('an IPv6 literal with a zone id ("%") → 400: parseIpv6 ignores what follows "%", where "/", "@", "#" hid', async () => {
    const ran: string[] = [];
    const server = mesh.createServer((req, res) => void (ran.push(String(req.headers.host)), res.end('ok')));
    const port = await listen(server);
    try {
      for (const host of ['[fe80::1%25eth0]', '[fe80::1%eth0]', '[::1%/admin]', '[::1%@evil]:8443', '[fe80::1%]']) {
        const r = await send(port, `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 400, `${host}: ${r.response.slice(0, 120)}`);
        const abs = await send(port, `GET http://${host}/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        assert.equal(abs.status, 400, `absolute-form ${host}: ${abs.response.slice(0, 120)}`);
      }
      assert.equal((await send(port, 'GET /x HTTP/1.1\r\nHost: [FE80::1]:8443\r\nConnection: close\r\n\r\n')).status, 403, 'the literal itself is judged');
      assert.deepEqual(ran, []);
    } finally {
      await closeServer(server);
    }
  });

  test('"denied.example.." and other empty labels are refused (400): no host compares differently by its dots', async () => {
    // Empty labels are reg-name grammar (RFC 3986) but no DNS name; the frameworks hand the app the
    // value as sent, and one trailing dot is stripped before hosts are compared.
    const hosts: string[] = [];
    const app = express();
    app.get('/x', (req, res) => void (hosts.push(req.hostname), res.send('ok')));
    const server = mesh.createServer(app);
    const port = await listen(server);
    try {
      assert.equal((await send(port, 'GET /x HTTP/1.1\r\nHost: denied.example.\r\nConnection: close\r\n\r\n')).status, 403);
      for (const h of ['DENIED.example..', 'denied..example', '.denied.example']) {
        assert.equal((await send(port, `GET /x HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`)).status, 400, h);
      }
      assert.deepEqual(hosts, []);
    } finally {
      await closeServer(server);
    }
  });
});

describe('Expect, when app code changes the listeners, and what is pipelined behind a refusal', () => {
  const head = (path: string) => `POST ${path} HTTP/1.1\r\nHost: payments\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;

  test("server.removeAllListeners('checkContinue'): still judged before `100 Continue`; the app's own single listener still runs", async () => {
    // Before the fix: without the guard's listener node:http answered 100 Continue and only then
    // emitted 'request' (a denied client was told to send its body); and with one app listener the
    // guard (counting on its own) skipped it and emitted 'request' instead.
    const ran: string[] = [];
    const server = mesh.createServer((req, res) => {
      ran.push(`request ${req.url}`);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    server.removeAllListeners('checkContinue');
    const port = await listen(server);
    try {
      const denied = await expectContinueRequest({ port, cert: web.certChainPem, key: web.keyPem, head: head('/admin'), body: 'hello', waitMs: 1_000, timeoutMs: 2_000 });
      assert.match(denied.response, /^HTTP\/1\.1 403 /, denied.response);
      assert.equal(denied.sentBody, false);
      server.removeAllListeners('checkContinue');
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        ran.push(`checkContinue ${req.url}`);
        res.writeContinue();
        req.resume();
        req.on('end', () => res.end('mine'));
      });
      const ok = await expectContinueRequest({ port, cert: web.certChainPem, key: web.keyPem, head: head('/upload'), body: 'hello', timeoutMs: 2_000 });
      assert.match(ok.response, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 [\s\S]*mine$/, ok.response);
      assert.deepEqual(ran, ['checkContinue /upload']);
    } finally {
      await closeServer(server);
    }
  });

  test('a request pipelined behind a refused Expect request (whose connection is closed) never runs', async () => {
    // Before the fix the refusal closed the connection after its 403, but node:http had already
    // parsed the pipelined GET: the gate admitted it and the handler ran, its answer thrown away.
    const ran: string[] = [];
    const server = mesh.createServer((req, res) => void (ran.push(String(req.url)), res.end('ok')));
    const port = await listen(server);
    try {
      for (const framing of ['Content-Length: 5\r\n\r\nhello', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n']) {
        const r = await send(port, `POST /admin HTTP/1.1\r\nHost: payments\r\nExpect: 100-continue\r\n${framing}GET /side-effect HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n`);
        assert.deepEqual(statuses(r.response), [403], r.response);
      }
      // A plain 403 keeps the connection: what follows is judged on its own and served.
      const plain = await send(port, 'GET /admin HTTP/1.1\r\nHost: payments\r\n\r\nGET /next HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n');
      assert.deepEqual(statuses(plain.response), [403, 200], plain.response);
      assert.deepEqual(ran, ['/next']);
    } finally {
      await closeServer(server);
    }
  });
});

describe('server events the gate does not carry', () => {
  test("'dropRequest' shows listeners the request over the limit only sanitized (identity headers removed)", async () => {
    // server.maxRequestsPerSocket: node:http answers 503 to the request over the limit, and first
    // emits 'dropRequest' with it. A listener (metrics, logs) must never read identity headers that
    // claim someone else.
    const dropped: string[] = [];
    const server = mesh.createServer((_req, res) => res.end('ok'));
    server.maxRequestsPerSocket = 1;
    server.on('dropRequest', (req: IncomingMessage) => dropped.push(`${req.url} ${String(req.headers['l5d-client-id'])}`));
    const port = await listen(server);
    try {
      const r = await send(port, 'GET /ok HTTP/1.1\r\nHost: payments\r\n\r\nGET /admin HTTP/1.1\r\nHost: payments\r\nl5d-client-id: admin\r\nConnection: close\r\n\r\n');
      assert.deepEqual(statuses(r.response), [200, 503], r.response);
      assert.deepEqual(dropped, ['/admin undefined'], 'the identity header was removed');
    } finally {
      await closeServer(server);
    }
  });

  test('two meshes in one process: a second mesh’s mesh.express() judges with its own policy, not the first mesh’s verdict', async () => {
    // kAdmitted is a Symbol.for() key (one per process, so ESM and CJS copies agree); it records
    // which pipeline admitted the request, so mesh B's middleware judges it again.
    const b = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: { rules: [{ name: 'b-denies-everything', action: 'deny', to: { paths: ['*'] } }] } } });
    const ran: string[] = [];
    const app = express();
    app.use(b.express());
    app.get('/x', (req, res) => void (ran.push(req.url), res.send('ok')));
    const server = mesh.createServer(app);
    const port = await listen(server);
    try {
      const r = await send(port, 'GET /x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 403, r.response);
      assert.deepEqual(ran, []);
    } finally {
      await closeServer(server);
      await b.close();
    }
  });
});
