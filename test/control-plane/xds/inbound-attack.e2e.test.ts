// Outsider attacks on inbound policy from xDS (issue 12 item 3), over real meshes and real TLS
// clients: every way a request reaches app code is judged under its port's section (pending =
// deny), servers built by frameworks included; several ports keep their own states; a hostile
// or flapping control plane never opens a port.
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { type Server, createServer as createHttpsServer, request } from 'node:https';
import { after, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { LISTENER_TYPE_URL as LDS } from '../../../src/control-plane/xds/discovery.js';
import { OWN, inboundListener, istioPolicy } from '../../helpers/istio-rbac.js';
import { startXdsResponder, type XdsResponder } from '../../helpers/xds-responder.js';
import { devCa, quiet } from '../../outbound/e2e/replicas.js';
import { frontFor, rawTlsRequest, waitFor } from '../../helpers/net.js';

const IP = '10.0.0.7';
const opened: Array<{ close(): Promise<unknown> }> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});

const nameOf = (port: number, ip = IP) => `xds.istio.io/grpc/lds/inbound/${ip.includes(':') ? `[${ip}]` : ip}:${port}`;

async function meshOf(x: XdsResponder, extra: Record<string, unknown> = {}, ip = IP): Promise<Mesh> {
  const mesh = await createMesh(
    { service: 'payments', identity: { ca: await devCa() }, controlPlane: { address: x.server.address, root: x.server.rootFile, token: 'good-token' }, logger: quiet, ...extra },
    { env: { INSTANCE_IP: ip } },
  );
  opened.push(mesh);
  return mesh;
}

function listenOn(server: Server, host = '127.0.0.1'): Promise<number> {
  opened.push({ close: () => new Promise<void>((r) => { server.closeAllConnections?.(); server.close(() => r()); }) });
  return new Promise<number>((r) => server.listen(0, host, () => r((server.address() as { port: number }).port)));
}

interface Svid { keyPem: string; certChainPem: string; bundlePem: string }
async function svidOf(sa: string): Promise<Svid> {
  return (await devCa()).issue({ spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}` });
}

function get(svid: Svid, port: number, path: string, o: { method?: string; host?: string; headers?: Record<string, string>; agent?: import('node:https').Agent } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: o.host ?? '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers, key: svid.keyPem, cert: svid.certChainPem, ca: svid.bundlePem, checkServerIdentity: () => undefined, ...(o.agent && { agent: o.agent }) },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const allowOrders = (port: number, ip = IP) =>
  inboundListener(OWN, { ip, port, allow: { 'ns[default]-policy[pay]-rule[0]': istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/orders'] }] }) } });

const pendingApplied = (mesh: Mesh, port: number) => mesh.snapshot().inbound.meshPolicy?.servers.some((s) => s.ports.includes(port)) === true;

/** An Express app behind mesh.express() that counts the requests reaching `path`. */
function countingExpress(mesh: Mesh, path: string): { app: ReturnType<typeof express>; reached: () => number } {
  let n = 0;
  const app = express();
  app.use(mesh.express());
  app.get(path, (_req, res) => {
    n++;
    res.end('ok');
  });
  return { app, reached: () => n };
}

describe('inbound policy from xDS, attacked', () => {
  test('a server built by Express from serverTlsOptions() is judged under its port\'s pending section from its first request', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const { app, reached: count } = countingExpress(mesh, '/pay');
    const port = await listenOn(createHttpsServer(mesh.serverTlsOptions(), app));
    assert.equal(await get(orders, port, '/pay'), 503, 'first request: the port is pending');
    assert.equal(count(), 0);
    await waitFor(() => x.subscribed(LDS).includes(nameOf(port)), 3_000, 'the inbound Listener to be asked for');
    x.set(LDS, nameOf(port), allowOrders(port));
    x.push();
    await waitFor(async () => (await get(orders, port, '/pay')) === 200, 3_000, 'the Listener to apply');
    assert.equal(await get(await svidOf('admin'), port, '/pay'), 403, 'RBAC names orders only');
  });

  test('a Fastify server with the mesh plugin is judged under its port\'s pending section', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    let reached = 0;
    const app = Fastify({ https: mesh.serverTlsOptions() });
    await app.register(mesh.fastify);
    app.get('/pay', async () => { reached++; return 'ok'; });
    await app.listen({ port: 0, host: '127.0.0.1' });
    opened.push({ close: () => app.close() });
    const port = (app.server.address() as { port: number }).port;
    assert.equal(await get(orders, port, '/pay'), 503, 'pending: fail closed');
    assert.equal(reached, 0);
    x.set(LDS, nameOf(port), allowOrders(port));
    x.push();
    await waitFor(async () => (await get(orders, port, '/pay')) === 200, 3_000, 'the Listener to apply');
  });

  test('a mesh.set* made while a port is pending does not bake the control plane\'s layer into the options (found by the istio-ca example under load)', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    await waitFor(() => x.subscribed(LDS).includes(nameOf(port)), 3_000, 'the port asked for');
    assert.equal(await get(orders, port, '/'), 503, 'pending');
    mesh.setService('ledger', { endpoints: ['127.0.0.1:1'] }); // computed from the composed snapshot, pending layer and all
    x.set(LDS, nameOf(port), allowOrders(port));
    x.push();
    await waitFor(async () => (await get(orders, port, '/')) === 200, 3_000, 'the Listener delivered');
    x.set(LDS, nameOf(port), null); // removed: known not to exist, the local policy alone
    x.push();
    await waitFor(async () => (await get(orders, port, '/')) === 200, 3_000, 'the port left to the local policy');
    assert.equal(mesh.snapshot().inbound.meshPolicy, undefined);
    assert.ok(mesh.snapshot().services.has('ledger'));
  });

  test('several ports keep their own states: delivered, pending, absent; the same AuthorizationPolicy on two ports', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const admin = await svidOf('admin');
    const ports: number[] = [];
    for (let i = 0; i < 4; i++) ports.push(await listenOn(mesh.createServer((_q, r) => r.end('ok'))));
    const [a, b, c, d] = ports as [number, number, number, number];
    await waitFor(() => ports.every((p) => x.subscribed(LDS).includes(nameOf(p))), 3_000, 'every port asked for');
    x.set(LDS, nameOf(a), allowOrders(a));
    x.set(LDS, nameOf(c), allowOrders(c));
    x.set(LDS, nameOf(d), allowOrders(d));
    x.push();
    await waitFor(() => mesh.snapshot().inbound.meshPolicy?.servers.filter((s) => s.name.startsWith('xds.istio')).length === 3, 3_000, 'a, c, d delivered');
    // c removed (a SotW response without a resource seen before: it does not exist); b never answered: pending.
    x.set(LDS, nameOf(c), null);
    x.push();
    await waitFor(() => mesh.snapshot().inbound.meshPolicy?.servers.length === 3, 3_000, 'c absent');
    assert.equal(await get(orders, a, '/'), 200);
    assert.equal(await get(admin, a, '/'), 403);
    assert.equal(await get(orders, d, '/'), 200);
    assert.equal(await get(admin, d, '/'), 403);
    assert.equal(await get(orders, b, '/'), 503, 'b pending');
    assert.equal(await get(admin, c, '/'), 200, 'c absent: the local policy alone');
  });

  test('a server that closes and listens again on another port is pending there', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const server = mesh.createServer((_q, r) => r.end('ok'));
    const first = await listenOn(server);
    x.set(LDS, nameOf(first), allowOrders(first));
    x.push();
    await waitFor(async () => (await get(orders, first, '/')) === 200, 3_000, 'first port delivered');
    await new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
    const second = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    assert.equal(await get(orders, second, '/'), 503, 'the new port is pending');
  });

  test('a first inbound Listener NACKed leaves the port pending (denying), never open', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, allow: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} } } }));
    x.push();
    await waitFor(() => x.nacks.length > 0, 3_000, 'the NACK');
    assert.equal(await get(orders, port, '/'), 503);
    assert.ok(pendingApplied(mesh, port));
  });

  test('an IPv6 INSTANCE_IP asks for [ip]:port and applies what it gets', async (t) => {
    const x = await startXdsResponder(t);
    const ip = 'fd00::7';
    const mesh = await meshOf(x, {}, ip);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    await waitFor(() => x.subscribed(LDS).includes(nameOf(port, ip)), 3_000, 'the v6 name asked for');
    assert.equal(await get(orders, port, '/'), 503);
    x.set(LDS, nameOf(port, ip), allowOrders(port, ip));
    x.push();
    await waitFor(async () => (await get(orders, port, '/')) === 200, 3_000, 'the v6 Listener to apply');
    assert.equal(await get(await svidOf('admin'), port, '/'), 403);
  });

  test('WebSocket upgrade, CONNECT and Expect: 100-continue never reach the app while pending', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    let reached = 0;
    const server = mesh.createServer((_q, r) => { reached++; r.end('ok'); });
    server.on('upgrade', (_q, sock) => { reached++; sock.end('HTTP/1.1 101 Switching Protocols\r\n\r\n'); });
    server.on('connect', (_q, sock) => { reached++; sock.end('HTTP/1.1 200 Connection Established\r\n\r\n'); });
    server.on('checkContinue', (_q, r) => { reached++; r.writeContinue(); r.end('ok'); });
    const port = await listenOn(server);
    const raw = (head: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, key: orders.keyPem, cert: orders.certChainPem, ca: orders.bundlePem, checkServerIdentity: () => undefined }, () => s.write(head));
        let out = '';
        s.on('data', (d) => (out += d.toString()));
        s.on('end', () => resolve(out));
        s.on('close', () => resolve(out));
        s.on('error', reject);
        setTimeout(() => s.destroy(), 1_500);
      });
    const ws = await raw('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.match(ws, /^HTTP\/1\.1 503/, ws);
    const cn = await raw('CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n');
    assert.match(cn, /^HTTP\/1\.1 (503|400|405)/, cn);
    const ec = await raw('POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n');
    assert.match(ec, /^HTTP\/1\.1 503/, ec);
    assert.equal(await get(orders, port, '/', { method: 'HEAD' }), 503);
    assert.equal(reached, 0);
  });

  test('a kept-alive connection admitted under the old policy is judged under the new one at its next request', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    x.set(LDS, nameOf(port), allowOrders(port));
    x.push();
    const { Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    await waitFor(async () => (await get(orders, port, '/', { agent })) === 200, 3_000, 'delivered');
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, deny: { 'ns[default]-policy[stop]-rule[0]': istioPolicy({}) } }));
    x.push();
    await waitFor(() => mesh.snapshot().inbound.meshPolicy?.servers[0]?.rules.some((r) => r.action === 'deny' && r.name.includes('stop')) === true, 3_000, 'the DENY');
    assert.equal(await get(orders, port, '/', { agent }), 403, 'same connection, new policy');
  });

  test('xDS DENY paths hold against dot segments, encoded slashes and doubled slashes', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, deny: { 'ns[default]-policy[no-admin]-rule[0]': istioPolicy({ to: [{ paths: ['/admin', '/admin/*'] }] }) } }));
    x.push();
    await waitFor(async () => (await get(orders, port, '/pay')) === 200, 3_000, 'delivered');
    for (const p of ['/admin', '/pay/../admin', '/%61dmin', '//admin', '/admin/', '/admin%2Fx', '/./admin', '/ADMIN/../admin/x', '/admin?x=1', '/admin#x']) {
      const code = await get(orders, port, p);
      assert.ok(code === 403 || code === 400, `${p} → ${code}`);
    }
  });

  test('a server handed its connections by a front (emit(\'connection\')) is judged under the port they arrived on', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    let reached = 0;
    const server = mesh.createServer((_q, r) => { reached++; r.end('ok'); });
    opened.push({ close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    const front = await frontFor(server);
    opened.push(front);
    assert.equal(await get(orders, front.port, '/'), 503, 'the front\'s port is pending: fail closed');
    assert.equal(reached, 0);
    await waitFor(() => x.subscribed(LDS).includes(nameOf(front.port)), 3_000, 'the front port\'s Listener asked for');
    x.set(LDS, nameOf(front.port), allowOrders(front.port));
    x.push();
    await waitFor(async () => (await get(orders, front.port, '/')) === 200, 3_000, 'the Listener to apply');
    assert.equal(await get(await svidOf('admin'), front.port, '/'), 403, 'its RBAC judges');
  });

  test('an Express server from serverTlsOptions() behind a front is judged under the front\'s port', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const { app, reached: count } = countingExpress(mesh, '/');
    const server = createHttpsServer(mesh.serverTlsOptions(), app);
    opened.push({ close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) });
    const front = await frontFor(server);
    opened.push(front);
    assert.equal(await get(orders, front.port, '/'), 503, 'pending: fail closed');
    assert.equal(count(), 0);
  });

  test('permissive: a peer without a certificate matches no principal, `*` included, and is denied by not_* principals', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x, { inbound: { mode: 'permissive' } });
    const orders = await svidOf('orders');
    const admin = await svidOf('admin');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const anon = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, ca: orders.bundlePem, checkServerIdentity: () => undefined }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    x.set(LDS, nameOf(port), inboundListener(OWN, {
      port,
      mode: 'permissive',
      deny: { 'ns[default]-policy[only-orders]-rule[0]': istioPolicy({ from: [{ notPrincipals: ['cluster.local/ns/default/sa/orders'] }], to: [{ paths: ['/orders-only'] }] }) },
      allow: {
        'ns[default]-policy[any-peer]-rule[0]': istioPolicy({ from: [{ principals: ['*'] }], to: [{ paths: ['/peers'] }] }),
        'ns[default]-policy[local-ip]-rule[0]': istioPolicy({ from: [{ ipBlocks: ['127.0.0.1/32'] }], to: [{ paths: ['/by-ip'] }] }),
        'ns[default]-policy[orders-only]-rule[0]': istioPolicy({ to: [{ paths: ['/orders-only'] }] }),
      },
    }));
    x.push();
    await waitFor(async () => (await get(orders, port, '/peers')) === 200, 3_000, 'delivered');
    assert.equal(await anon('/peers'), 403, 'principals ["*"] needs an authenticated peer');
    assert.equal(await anon('/by-ip'), 200, 'an ip block admits a peer without a certificate');
    assert.equal(await anon('/orders-only'), 403, 'not_id(orders) matches a peer with no identity: DENY');
    assert.equal(await get(admin, port, '/orders-only'), 403);
    assert.equal(await get(orders, port, '/orders-only'), 200);
    assert.equal(await anon('/other'), 403, 'ALLOW policies exist: what none names is denied');
  });

  test('destination_port inside a permission is the port the request arrived on', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const a = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const b = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    // Both ports carry the same rules (one AuthorizationPolicy over the workload): /a only on a, /b only on b.
    const shape = { allow: { 'ns[default]-policy[ports]-rule[0]': istioPolicy({ to: [{ ports: [a], paths: ['/a'] }, { ports: [b], paths: ['/b'] }] }) } };
    x.set(LDS, nameOf(a), inboundListener(OWN, { port: a, ...shape }));
    x.set(LDS, nameOf(b), inboundListener(OWN, { port: b, ...shape }));
    x.push();
    await waitFor(async () => (await get(orders, a, '/a')) === 200, 3_000, 'delivered');
    assert.equal(await get(orders, a, '/b'), 403);
    assert.equal(await get(orders, b, '/b'), 200);
    assert.equal(await get(orders, b, '/a'), 403);
  });

  test('a control plane that is down at start: every served port denies (never the local policy alone)', async (t) => {
    const x = await startXdsResponder(t);
    const address = x.server.address;
    await x.server.close();
    const mesh = await createMesh(
      { service: 'payments', identity: { ca: await devCa() }, controlPlane: { address, root: x.server.rootFile, token: 'good-token' }, logger: quiet },
      { env: { INSTANCE_IP: IP } },
    );
    opened.push(mesh);
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    assert.equal(await get(await svidOf('orders'), port, '/'), 503);
  });

  test('10,000 ALLOW policies: applied in bounded time, requests still judged by them', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const allow: Record<string, Record<string, unknown>> = {};
    for (let i = 0; i < 10_000; i++) allow[`ns[default]-policy[p${i}]-rule[0]`] = istioPolicy({ from: [{ principals: [`cluster.local/ns/default/sa/sa${i}`] }], to: [{ paths: [`/p${i}`] }] });
    allow['ns[default]-policy[orders]-rule[0]'] = istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/orders'] }], to: [{ paths: ['/pay'] }] });
    const started = Date.now();
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, allow }));
    x.push();
    await waitFor(async () => (await get(orders, port, '/pay')) === 200, 15_000, 'the large policy');
    const took = Date.now() - started;
    assert.ok(took < 10_000, `applied in ${took} ms`);
    assert.equal(await get(orders, port, '/p7'), 403);
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) assert.equal(await get(orders, port, '/pay'), 200);
    assert.ok(Date.now() - t0 < 5_000, `20 requests took ${Date.now() - t0} ms`);
  });

  test('a flapping inbound Listener settles on the last version, and a removal never leaves a pending port open', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const admin = await svidOf('admin');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const denyAll = inboundListener(OWN, { port, deny: { 'ns[default]-policy[stop]-rule[0]': istioPolicy({}) } });
    for (let i = 0; i < 50; i++) {
      x.set(LDS, nameOf(port), i % 2 === 0 ? allowOrders(port) : denyAll);
      x.push();
    }
    x.set(LDS, nameOf(port), allowOrders(port));
    x.push();
    await waitFor(async () => (await get(orders, port, '/')) === 200, 5_000, 'the last version');
    assert.equal(await get(admin, port, '/'), 403);
  });

  test('a request refused because its port is pending names the pending section in stats and the audit record (not the local default)', async (t) => {
    const x = await startXdsResponder(t);
    const audits: Array<Record<string, unknown>> = [];
    const mesh = await meshOf(x, { inbound: { policy: { rules: [{ name: 'seen', action: 'audit', to: [{ paths: ['/'] }] }] }, audit: (r: Record<string, unknown>) => audits.push(r) } });
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    assert.equal(await get(await svidOf('orders'), port, '/'), 503);
    const pending = `xds-inbound-pending:${port}`;
    assert.deepEqual(mesh.stats().inbound.authz.byRule[pending], { allow: 0, deny: 1, audit: 0 }, JSON.stringify(mesh.stats().inbound.authz.byRule));
    assert.equal(mesh.stats().inbound.authz.byRule['default:deny'], undefined, 'the local default did not decide');
    assert.equal(audits[0]?.rule, pending);
    assert.equal(audits[0]?.layer, 'mesh');
    // Not ready rather than forbidden (gRFC A36 servers answer UNAVAILABLE): 503 with Retry-After, which a mesh client retries.
    const svid = await svidOf('orders');
    const raw = await rawTlsRequest({ port, cert: svid.certChainPem, key: svid.keyPem, request: 'GET / HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
    assert.match(raw.response, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(raw.response, /\r\nretry-after: 1\r\n/i);
  });

  test('an xDS DENY holds against every spelling Express serves from the denied handler (HEAD, case, trailing slash)', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    let reached = 0;
    const app = express();
    app.use(mesh.express());
    app.get('/admin', (_req, res) => { reached++; res.end('secret'); });
    app.get('/pay', (_req, res) => res.end('ok'));
    const port = await listenOn(createHttpsServer(mesh.serverTlsOptions(), app));
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, deny: { 'ns[default]-policy[no-admin]-rule[0]': istioPolicy({ to: [{ methods: ['GET'], paths: ['/admin'] }] }) } }));
    x.push();
    await waitFor(async () => (await get(orders, port, '/pay')) === 200, 3_000, 'delivered');
    for (const [method, path] of [['GET', '/admin'], ['HEAD', '/admin'], ['GET', '/ADMIN'], ['GET', '/admin/'], ['GET', '/Admin/']] as const) {
      const code = await get(orders, port, path, { method });
      assert.ok(code === 403 || code === 400, `${method} ${path} → ${code}`);
    }
    assert.equal(reached, 0);
  });

  test('a hostile control plane: a Listener for another IP, or ours carrying another port, never opens the port', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x);
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const open = { allow: { any: istioPolicy({}) } };
    await waitFor(() => x.subscribed(LDS).includes(nameOf(port)), 3_000, 'asked for');
    // Another workload's Listener, pushed on the stream although nobody asked for it (and ours left out).
    const stream = x.server.streams.at(-1)!;
    const seen = stream.requests.length;
    stream.send({ versionInfo: 'hostile-1', typeUrl: LDS, nonce: 'hostile-1', resources: [{ typeUrl: LDS, value: inboundListener(OWN, { ip: '10.0.0.8', port, ...open }) }] });
    await waitFor(() => stream.requests.length > seen, 3_000, 'the answer to the hostile response');
    assert.equal(await get(orders, port, '/'), 503, 'another IP\'s Listener is not ours');
    // Ours, but its address names another port: NACKed.
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, ...open, listener: (l) => ({ ...l, address: { socket_address: { address: IP, port_value: port + 1 } } }) }));
    x.push();
    await waitFor(() => x.nacks.length > 0, 3_000, 'the NACK');
    assert.equal(await get(orders, port, '/'), 503, 'still pending');
    assert.ok(pendingApplied(mesh, port));
  });

  test('STRICT from xDS: a kept-alive connection opened without a certificate under PERMISSIVE serves no further request', async (t) => {
    const x = await startXdsResponder(t);
    const mesh = await meshOf(x, { inbound: { mode: 'permissive', defaultPolicy: 'all-unauthenticated' } });
    const orders = await svidOf('orders');
    const port = await listenOn(mesh.createServer((_q, r) => r.end('ok')));
    const byIp = { allow: { 'ns[default]-policy[by-ip]-rule[0]': istioPolicy({ from: [{ ipBlocks: ['127.0.0.1/32'] }] }) } };
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, mode: 'permissive', ...byIp }));
    x.push();
    const { Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: orders.bundlePem, checkServerIdentity: () => undefined });
    t.after(() => agent.destroy());
    const anon = () =>
      new Promise<number>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(-1));
        req.end();
      });
    await waitFor(async () => (await anon()) === 200, 3_000, 'permissive, admitted by ip');
    x.set(LDS, nameOf(port), inboundListener(OWN, { port, mode: 'strict', ...byIp }));
    x.push();
    await waitFor(() => mesh.snapshot().inbound.mode === 'strict', 3_000, 'strict from xDS');
    const code = await anon();
    assert.equal(code, 403, `a certificate-less connection after STRICT → ${code}`);
    assert.ok(mesh.stats().inbound.authz.byRule[`xds-strict-mtls:${port}`], 'the refusal names the STRICT rule');
  });
});
