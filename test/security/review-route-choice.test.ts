// Review of "a request is classified into ONE route" (10cbd43), as an outsider: Linkerd policies whose
// meaning depends on which HTTPRoute a request is classified into, compared with what linkerd2-proxy
// does (linkerd/http/route: `find` compares (host match, request match); a request match compares the
// path match by LENGTH, with a prefix's trailing '/' trimmed, then the method, then the header count;
// ties go to the first route in the control plane's order, the oldest). Real mTLS sockets, a plain
// handler (ANY_ROUTING) and Express. Each case was a finding of a review, now fixed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import { type Server } from 'node:https';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh, loadPolicy, peerOf } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { idOf } from '../helpers/certs.js';
import { linkerdAuthz, linkerdRoute, linkerdServer } from '../helpers/linkerd-docs.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const quiet: Logger = { info() {}, warn() {}, error() {} };
let ca: DevCa;
let web: IssuedSvid;
let admin: IssuedSvid;
let mesh: Mesh;

before(async () => {
  ca = await createDevCa({ trustDomain: 'cluster.local' });
  web = await ca.issue({ spiffeId: idOf('web') });
  admin = await ca.issue({ spiffeId: idOf('admin') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, labels: { app: 'payments' } });
});
after(() => mesh?.close());

const SERVER = linkerdServer;
const ROUTE = linkerdRoute;
const AUTHZ = linkerdAuthz;

function send(port: number, target: string, as: IssuedSvid, host = 'payments', method = 'GET') {
  return rawTlsRequest({ port, cert: as.certChainPem, key: as.keyPem, request: `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n` });
}

/** Serves `listener` with mesh.createServer, loads `policy(port)`, runs `fn`, restores an empty policy. */
async function withServer(listener: Parameters<Mesh['createServer']>[0], policy: (port: number) => string, fn: (port: number) => Promise<void>): Promise<void> {
  const server: Server = mesh.createServer(listener);
  const port = await listen(server);
  try {
    mesh.setPolicy(loadPolicy(policy(port)));
    await fn(port);
  } finally {
    mesh.setPolicy({});
    await closeServer(server);
  }
}

describe('Linkerd route classification compared with linkerd2-proxy', () => {
  test('a route whose hostname matches outranks a longer path of a route without hostnames (linkerd2-proxy ranks the host first)', async () => {
    // linkerd2-proxy ranks the host match FIRST (RouteMatch { host: Option<HostMatch>, route }, derived
    // Ord: None < Some), as the Gateway API does ("precedence must be given to rules from the HTTPRoute
    // with the largest number of characters in a matching non-wildcard hostname"). A virtual host
    // `admin.internal` reserved to admins, and an `/api` route any meshed client may use: Linkerd
    // classifies `Host: admin.internal` + `/api/x` into the admin vhost (web: 403).
    const ran: string[] = [];
    const policy = (port: number) =>
      SERVER(port) +
      ROUTE('admin-vhost', '  hostnames: [admin.internal]\n  rules:\n    - matches: [{ path: { type: PathPrefix, value: / } }]\n') +
      ROUTE('api', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /api } }]\n') +
      AUTHZ('admin-vhost', 'admins') +
      AUTHZ('api', 'meshed');
    await withServer((req, res) => (ran.push(`${peerOf(req)?.serviceAccount} ${req.headers.host}${req.url}`), res.end('ok')), policy, async (port) => {
      assert.equal((await send(port, '/x', web, 'admin.internal')).status, 403, 'the admin vhost itself is held');
      assert.equal((await send(port, '/api/x', web, 'payments')).status, 200, 'the api route, on the service host');
      const r = await send(port, '/api/x', web, 'admin.internal');
      assert.equal(r.status, 403, 'the admin vhost route is chosen, as Linkerd does');
      assert.deepEqual(ran, ['web payments/api/x']);
    });
  });

  test("a PathPrefix's trailing '/' is not counted: the same prefix with a method outranks it", async () => {
    // Gateway API: "/foo/" and "/foo" are the same prefix; linkerd2-proxy trims the '/' before
    // measuring (PathMatch::Prefix(prefix.trim_end_matches('/').len())). So `PathPrefix /admin/`
    // (any meshed client) and `PathPrefix /admin, method GET` (admins) tie on the path and the method
    // decides: GET /admin/users is the admins' route.
    const ran: string[] = [];
    const policy = (port: number) =>
      SERVER(port) +
      ROUTE('admin-any', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin/ } }]\n') +
      ROUTE('admin-get', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin }, method: GET }]\n') +
      AUTHZ('admin-any', 'meshed') +
      AUTHZ('admin-get', 'admins');
    await withServer((req, res) => (ran.push(`${peerOf(req)?.serviceAccount} ${req.method} ${req.url}`), res.end('ok')), policy, async (port) => {
      const r = await send(port, '/admin/users', web);
      assert.equal(r.status, 403, 'GET /admin/users is admin-get’s, as in Linkerd');
      assert.deepEqual(ran, []);
    });
  });

  test('routes that tie must all admit the request (their age is unknown in process: fail closed)', async () => {
    // Two routes with the same match: Linkerd takes the oldest (the control plane sorts by creation
    // time). In process the age is unknown: admitting only what EVERY tied route admits is the
    // fail-closed choice.
    const policy = (port: number) =>
      SERVER(port) +
      ROUTE('admin', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin } }]\n') +
      ROUTE('a-debug', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin } }]\n') +
      AUTHZ('admin', 'admins') +
      AUTHZ('a-debug', 'meshed');
    await withServer((_req, res) => res.end('ok'), policy, async (port) => {
      assert.equal((await send(port, '/admin', web)).status, 403, 'the admins-only tied route holds');
      assert.equal((await send(port, '/admin', admin)).status, 200, 'admin passes both tied routes');
    });
  });
});

describe('alike spellings and the route choice', () => {
  // The Linkerd probes pattern: an Exact route more open than the catch-all (kubelet or a prober may
  // call /healthz, everything else is for admins). The spelling sent, /healthz, is the probes route's
  // in Linkerd; its twin /healthz/ falls in the catch-all. An alike spelling's route counts only when
  // it OUTRANKS the route of the spelling sent (/ADMIN → catch-all, its twin /admin → admin: counted;
  // /healthz → probes, its twin → catch-all: not), so /healthz stays its probes' route.
  const policy = (port: number) =>
    SERVER(port) +
    ROUTE('probes', '  rules:\n    - matches: [{ path: { type: Exact, value: /healthz } }, { path: { type: Exact, value: /ready } }]\n') +
    ROUTE('everything', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: / } }]\n') +
    AUTHZ('probes', 'meshed') +
    AUTHZ('everything', 'admins');

  test('an Exact route more open than the catch-all admits its own path behind a plain handler (a twin in a lower route does not count)', async () => {
    const ran: string[] = [];
    await withServer((req, res) => (ran.push(`${peerOf(req)?.serviceAccount} ${req.url}`), res.end('ok')), policy, async (port) => {
      assert.equal((await send(port, '/healthz', web)).status, 200, 'the probes route, as Linkerd');
      assert.equal((await send(port, '/ready', web)).status, 200);
      assert.equal((await send(port, '/healthz', admin)).status, 200, 'admin passes both routes');
      assert.equal((await send(port, '/orders', web)).status, 403, 'the catch-all holds');
      assert.deepEqual(ran, ['web /healthz', 'web /ready', 'admin /healthz']);
    });
  });

  test('the same behind Express', async () => {
    const app = express();
    app.get('/healthz', (_req, res) => res.send('ok'));
    await withServer(app as never, policy, async (port) => {
      assert.equal((await send(port, '/healthz', web)).status, 200);
      assert.equal((await send(port, '/healthz', admin)).status, 200);
    });
  });

  test('a spelling classified into a route through its twin is judged by that route’s policy (its own clients pass)', async () => {
    // docs/policy.md: "/ADMIN/x behind Express needs admin's authorization": routed rules carry no
    // `to` of their own (the classification scopes them), so admin passes and web does not.
    const app = express();
    app.get('/admin/x', (_req, res) => res.send('admin'));
    app.get('/orders', (_req, res) => res.send('orders'));
    const p = (port: number) =>
      SERVER(port) +
      ROUTE('admin', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /admin } }]\n') +
      ROUTE('all', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: / } }]\n') +
      AUTHZ('admin', 'admins') +
      AUTHZ('all', 'meshed');
    await withServer(app as never, p, async (port) => {
      assert.equal((await send(port, '/admin/x', admin)).status, 200);
      assert.equal((await send(port, '/ADMIN/x', web)).status, 403, 'web is held off the admin handler');
      assert.equal((await send(port, '/ADMIN/x', admin)).status, 200, 'admin passes the admin route');
      assert.equal((await send(port, '/orders', web)).status, 200);
    });
  });
});
