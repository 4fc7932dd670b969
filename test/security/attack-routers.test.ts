// Outsider attacks on "the gate mirrors the router it protects" (SECURITY-CASES 35): spellings and
// methods a real router serves from a handler whose path the policy denies, and policies whose
// meaning depends on which route a request belongs to. Real Express and Fastify over mTLS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, compilePolicy, createDevCa, createMesh, loadPolicy, peerOf } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { main } from '../../src/cli/run.js';
import { idOf } from '../helpers/certs.js';
import { linkerdAuthz, linkerdRoute, linkerdServer } from '../helpers/linkerd-docs.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };

let ca: DevCa;
let web: IssuedSvid;
let admin: IssuedSvid;
let mesh: Mesh;

const POLICY = {
  rules: [
    { name: 'no-report-get', action: 'deny', to: { methods: ['GET'], paths: ['/report'] } },
    // Paths as the normalizer writes them: non-ASCII and `|` stay percent-encoded.
    { name: 'no-cafe', action: 'deny', to: { paths: ['/caf%C3%A9', '/a%7Cb'] } },
    { name: 'no-admin', action: 'deny', from: { notIdentities: [idOf('admin')] }, to: { paths: ['/admin', '/admin/*'] } },
  ],
};

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  web = await ca.issue({ spiffeId: idOf('web') });
  admin = await ca.issue({ spiffeId: idOf('admin') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, labels: { app: 'payments' }, inbound: { policy: POLICY } });
});
after(() => mesh?.close());

function send(port: number, method: string, target: string, as: IssuedSvid = web) {
  return rawTlsRequest({ port, cert: as.certChainPem, key: as.keyPem, request: `${method} ${target} HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n` });
}

async function fastify(options: Record<string, unknown>, routes: (app: FastifyInstance) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const app = Fastify({ https: mesh.serverTlsOptions(), ...options });
  await app.register(mesh.fastify);
  routes(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as { port: number }).port, close: () => app.close() };
}

describe('Fastify', () => {
  test("exposeHeadRoutes: false on the instance, exposeHeadRoute: true on a route: HEAD runs that GET handler, so it is judged as GET", async () => {
    // Before the fix the gate read headAsGet from the instance only: HEAD /report ran the handler of
    // a GET the policy denies.
    const ran: string[] = [];
    const s = await fastify({ exposeHeadRoutes: false }, (app) => {
      app.get('/report', { exposeHeadRoute: true }, async () => (ran.push('report'), 'report'));
    });
    try {
      for (const method of ['GET', 'HEAD']) {
        const r = await send(s.port, method, '/report');
        assert.equal(r.status, 403, `${method} /report: ${r.response.slice(0, 120)}`);
      }
      assert.deepEqual(ran, []);
    } finally {
      await s.close();
    }
  });

  test('caseSensitive: false folds the DECODED path: a case variant of a percent-encoded non-ASCII path is denied too', async () => {
    // find-my-way decodes `/CAF%C3%89` to `/CAFÉ` and lower-cases it to `/café`, the route's path.
    // Before the fix the gate compared the folded spellings with the folded pattern `/caf%c3%a9` only.
    const ran: string[] = [];
    const s = await fastify({ routerOptions: { caseSensitive: false } }, (app) => {
      app.get('/café', async () => (ran.push('café'), 'café'));
    });
    try {
      for (const target of ['/caf%C3%A9', '/caf%c3%a9', '/CAF%C3%89', '/caf%C3%89', '/Caf%C3%A9/']) {
        const r = await send(s.port, 'GET', target);
        assert.equal(r.status, 403, `${target}: ${r.response.slice(0, 120)}`);
      }
      assert.deepEqual(ran, []);
    } finally {
      await s.close();
    }
  });

  test('the router decodes `%7C` and leaves `|` alone: both reach one handler, both are denied', async () => {
    const ran: string[] = [];
    const s = await fastify({}, (app) => {
      app.get('/a|b', async () => (ran.push('a|b'), 'pipe'));
    });
    try {
      for (const target of ['/a%7Cb', '/a%7cb', '/a|b', '/a|b/']) {
        const r = await send(s.port, 'GET', target);
        assert.equal(r.status, 403, `${target}: ${r.response.slice(0, 120)}`);
      }
      assert.deepEqual(ran, []);
    } finally {
      await s.close();
    }
  });
});

describe('a framework behind a wrapper function (the server sees a plain function)', () => {
  test('an Express app behind a wrapper function, without mesh.express(): a plain listener is judged with every router’s semantics', async () => {
    // `mesh.createServer((req, res) => app(req, res))` (logging, a request id, a framework adapter):
    // the server's request listener is a plain function that may wrap any router, so DENY rules are
    // widened as for the loosest one, and Express cannot route /ADMIN to the denied /admin handler.
    const ran: string[] = [];
    const app = express();
    app.get('/admin', (_req, res) => {
      ran.push('admin');
      res.send('admin');
    });
    const server = mesh.createServer((req, res) => app(req, res));
    const port = await listen(server);
    try {
      const exact = await send(port, 'GET', '/admin');
      assert.equal(exact.status, 403, exact.response);
      const folded = await send(port, 'GET', '/ADMIN');
      assert.equal(folded.status, 403, folded.response);
      assert.deepEqual(ran, []);
    } finally {
      await closeServer(server);
    }
  });

  test('the same for Fastify without register(mesh.fastify), served through a wrapping serverFactory', async () => {
    // The 500 for "Fastify served without its plugin" recognises Fastify's own request listener by
    // name; a serverFactory that wraps the handler hides it: judged as any router, HEAD is GET.
    const ran: string[] = [];
    let server: import('node:https').Server | undefined;
    const app = Fastify({
      serverFactory: (handler) => (server = mesh.createServer((req, res) => handler(req, res))) as never,
    });
    app.get('/report', async () => (ran.push('report'), 'report'));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (server!.address() as { port: number }).port;
      assert.equal((await send(port, 'GET', '/report')).status, 403);
      assert.equal((await send(port, 'HEAD', '/report')).status, 403);
      assert.deepEqual(ran, []);
    } finally {
      await app.close();
    }
  });

  test('the same app with app.use(mesh.express()) first: judged with Express semantics', async () => {
    const ran: string[] = [];
    const app = express();
    app.use(mesh.express());
    app.get('/admin', (_req, res) => {
      ran.push('admin');
      res.send('admin');
    });
    const server = mesh.createServer((req, res) => app(req, res));
    const port = await listen(server);
    try {
      for (const target of ['/admin', '/ADMIN', '/Admin/']) assert.equal((await send(port, 'GET', target)).status, 403, target);
      assert.equal((await send(port, 'GET', '/ADMIN', admin)).status, 200);
      assert.deepEqual(ran, ['admin']);
    } finally {
      await closeServer(server);
    }
  });
});

describe('sidecarless policy check and the runtime', () => {
  test('policy check --router express answers DENY for GET /ADMIN, as the Express runtime above does', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'sidecarless-attack-cli-'));
    try {
      await writeFile(join(dir, 'p.json'), JSON.stringify(POLICY));
      const out: string[] = [];
      const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => void out.push(t) };
      const args = ['policy', 'check', '--policy', join(dir, 'p.json'), '--from', idOf('web'), '--method', 'GET', '--path', '/ADMIN'];
      assert.equal(await main([...args, '--router', 'express'], io), 1, out.join(''));
      assert.match(out.join(''), /^DENY no-admin/);
      out.length = 0;
      assert.equal(await main(args, io), 1, 'the default router is any: every router’s look-alikes');
      out.length = 0;
      assert.equal(await main([...args, '--router', 'exact'], io), 0, 'the policy as written: /ADMIN is another path');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const LINKERD = (port: number) =>
  linkerdServer(port) +
  linkerdRoute('admin', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin } }]\n') +
  linkerdRoute('everything-else', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: / } }]\n') +
  linkerdAuthz('admin', 'admins', 'admin-only') +
  linkerdAuthz('everything-else', 'meshed', 'any-meshed');

describe('Linkerd per-route authorization', () => {
  test('a request is authorized by the one route Linkerd picks (Exact, then the longest prefix), on every spelling', async () => {
    // The idiomatic Linkerd way to protect a sub-tree: a specific route (PathPrefix /admin) authorized
    // for admins, a catch-all route (PathPrefix /) for any meshed client. Linkerd (Gateway API
    // precedence) classifies GET /admin/users into the admin route: only its policy applies.
    const ran: string[] = [];
    const server = mesh.createServer((req, res) => {
      ran.push(`${peerOf(req)?.serviceAccount} ${req.url}`);
      res.end('served');
    });
    const port = await listen(server);
    mesh.setPolicy(LINKERD(port));
    try {
      const compiled = compilePolicy(loadPolicy(LINKERD(port)), { trustDomain: TD, namespace: 'default', labels: { app: 'payments' } });
      const d = compiled.evaluate({ peer: { id: idOf('web'), kind: 'spiffe', spiffeId: idOf('web'), trustDomain: TD, namespace: 'default', serviceAccount: 'web' }, sourceIp: '127.0.0.1', method: 'GET', path: '/admin/users', host: 'payments', port, header: () => undefined });
      assert.equal(d.allowed, false, d.rule);
      // A plain handler may wrap a case-folding router: /ADMIN/users is the admin route's too.
      for (const target of ['/admin/users', '/admin', '/ADMIN/users', '/Admin/']) assert.equal((await send(port, 'GET', target)).status, 403, `web ${target}`);
      assert.equal((await send(port, 'GET', '/admin/users', admin)).status, 200, 'admin');
      for (const as of [web, admin]) assert.equal((await send(port, 'GET', '/orders', as)).status, 200, 'the catch-all route');
      assert.deepEqual(ran, ['admin /admin/users', 'web /orders', 'admin /orders']);
    } finally {
      mesh.setPolicy(POLICY);
      await closeServer(server);
    }
  });
});
