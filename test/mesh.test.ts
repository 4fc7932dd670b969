// createMesh as a user meets it: options, egress, errors with codes, stats, live endpoint updates.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createDevCa, createMesh, peerOf, type DevCa, type Mesh } from '../src/index.js';
import { closeServer, listen } from './helpers/net.js';

const quiet = { info() {}, warn() {}, error() {} };
const meshes: Mesh[] = [];
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
  for (const m of meshes) await m.close();
});
let ca: DevCa;
async function mesh(opts: Parameters<typeof createMesh>[0]): Promise<Mesh> {
  ca ??= await createDevCa();
  const m = await createMesh({ identity: { ca }, logger: quiet, ...opts });
  meshes.push(m);
  return m;
}

async function payments(name = 'payments'): Promise<number> {
  const m = await mesh({ service: name });
  const server = m.createServer((req, res) => res.end(JSON.stringify({ host: req.headers.host, caller: peerOf(req)?.spiffeId, url: req.url })));
  closers.push(() => closeServer(server));
  return listen(server);
}

test('mesh.fetch reaches a service by every Kubernetes host form, with the host header the app wrote', async () => {
  const port = await payments();
  const orders = await mesh({ service: 'orders', outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  for (const host of ['payments', 'payments.default', 'payments.default.svc', 'payments.default.svc.cluster.local', 'PAYMENTS', 'payments:8080']) {
    const res = await orders.fetch(`http://${host}/a?b=1`);
    assert.equal(res.status, 200, host);
    const body = (await res.json()) as { host: string; caller: string; url: string };
    assert.equal(body.host, host.toLowerCase() === host ? host : host.toLowerCase().replace('payments', 'payments'), host);
    assert.equal(body.caller, 'spiffe://cluster.local/ns/default/sa/orders');
    assert.equal(body.url, '/a?b=1');
  }
});

test("egress 'deny' refuses non-mesh hosts with a clear error; 'allow' passes them to plain undici", async () => {
  const plain = createServer((_req, res) => res.end('plain'));
  const port = await listen(plain);
  closers.push(() => closeServer(plain));
  const deny = await mesh({ service: 'orders', outbound: { egress: 'deny' } });
  await assert.rejects(deny.fetch(`http://127.0.0.1:${port}/`), (e: Error & { cause?: Error & { code?: string } }) => {
    assert.equal(e.cause?.code, 'ERR_SIDECARLESS_EGRESS_DENIED');
    assert.match(e.cause!.message, /egress to "127\.0\.0\.1:\d+" is denied.*outbound\.services/);
    return true;
  });
  const allow = await mesh({ service: 'orders' });
  assert.equal(await (await allow.fetch(`http://127.0.0.1:${port}/`)).text(), 'plain');
});

test('a service without endpoints fails with ERR_SIDECARLESS_NO_ENDPOINT', async () => {
  const orders = await mesh({ service: 'orders', outbound: { services: { payments: { endpoints: [] } } } });
  await assert.rejects(orders.fetch('http://payments/'), (e: Error & { cause?: { code?: string } }) => e.cause?.code === 'ERR_SIDECARLESS_NO_ENDPOINT');
});

test('a server that is not the promised identity fails the call: ERR_SIDECARLESS_PEER_IDENTITY, no fallback', async () => {
  const port = await payments('billing');
  const orders = await mesh({ service: 'orders', outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  await assert.rejects(orders.fetch('http://payments/'), (e: Error & { cause?: Error & { code?: string } }) => {
    assert.equal(e.cause?.code, 'ERR_SIDECARLESS_PEER_IDENTITY');
    assert.match(e.cause!.message, /expected spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments, the peer presented spiffe:\/\/cluster\.local\/ns\/default\/sa\/billing/);
    return true;
  });
  // The endpoint's own identity setting is what is checked.
  orders.setEndpoints('payments', [{ address: `127.0.0.1:${port}`, identity: 'spiffe://cluster.local/ns/default/sa/billing' }]);
  assert.equal((await orders.fetch('http://payments/')).status, 200);
});

test('setEndpoints validates the whole list, names the bad entry and keeps the old one', async () => {
  const port = await payments();
  const orders = await mesh({ service: 'orders', outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  assert.throws(
    () => orders.setEndpoints('payments', [`127.0.0.1:${port}`, 'not-an-address']),
    (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CONFIG_INVALID' && /endpoints\.1\.address: must be host:port/.test(e.message) && /endpoints unchanged/.test(e.message),
  );
  assert.throws(() => orders.setEndpoints('nope', []), /"nope" is not a mesh service; known: payments/);
  assert.equal((await orders.fetch('http://payments/')).status, 200);
});

test('bad options reject createMesh with every path named', async () => {
  await assert.rejects(
    createMesh({ service: 'orders', outbound: { services: { payments: { endpoints: ['x'] } } }, inbound: { mode: 'open' as never } }),
    (e: Error & { code?: string; issues?: Array<{ path: string }> }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID');
      assert.deepEqual(e.issues!.map((i) => i.path).sort(), ['inbound.mode', 'outbound.services.payments.endpoints.0.address']);
      return true;
    },
  );
});

test('without an identity: an in-process dev CA and a one-line warning', async () => {
  const warnings: string[] = [];
  const m = await createMesh({ service: 'solo', logger: { info() {}, error() {}, warn: (msg) => warnings.push(msg) } }, { env: {} });
  meshes.push(m);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /in-process dev CA.*development only.*identity\.dir/);
  assert.equal(m.stats().identity.kind, 'dev-ca');
  assert.equal(m.stats().identity.state, 'ready');
});

test('stats() is a JSON snapshot with identity, handshakes, requests and endpoints', async () => {
  const port = await payments();
  const orders = await mesh({ service: 'orders', outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  await (await orders.fetch('http://payments/')).text();
  const s = JSON.parse(JSON.stringify(orders.stats()));
  assert.equal(s.spiffeId, 'spiffe://cluster.local/ns/default/sa/orders');
  assert.equal(s.identity.state, 'ready');
  assert.ok(s.identity.secondsLeft > 3000);
  assert.ok(JSON.stringify(s).indexOf('PRIVATE KEY') === -1, 'no key material');
  const eps = s.outbound.services.payments.endpoints;
  assert.equal(eps.length, 1);
  assert.ok(eps[0].requests >= 1);
});

test("DESIGN.md's contract: inbound.policy takes loadPolicy(yamlText) and setPolicy takes it too", async () => {
  const { loadPolicy } = await import('../src/index.js');
  const policy = loadPolicy(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-orders, namespace: default }
spec:
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/default/sa/orders"] } }]
`);
  const m = await mesh({ service: 'ledger', inbound: { policy } });
  const server = m.createServer((_req, res) => res.end('ok'));
  closers.push(() => closeServer(server));
  const port = await listen(server);
  const endpoints = [`127.0.0.1:${port}`];
  const orders = await mesh({ service: 'orders', outbound: { services: { ledger: { endpoints } } } });
  const web = await mesh({ service: 'web', outbound: { services: { ledger: { endpoints } } } });
  assert.equal((await orders.fetch('http://ledger/')).status, 200);
  assert.equal((await web.fetch('http://ledger/')).status, 403);
  m.setPolicy(loadPolicy('rules: [{ action: allow, from: { identities: ["spiffe://cluster.local/ns/default/sa/web"] } }]'));
  assert.equal((await web.fetch('http://ledger/')).status, 200);
  assert.equal((await orders.fetch('http://ledger/')).status, 403);
});
