// Run-time services over real mTLS: mesh.setService under load, removal with requests in flight,
// a settings change that keeps connections, a rejected update that changes nothing, and
// mesh.setInboundMode on a live server.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type Mesh } from '../../src/mesh.js';
import { createMesh } from '../../src/mesh.js';
import { VirtualClock } from '../../src/clock.js';
import { call, client, delayed, devCa, load, ok, type Replica, startReplica } from '../outbound/e2e/replicas.js';
import { rawTlsRequest, waitFor } from '../helpers/net.js';

const opened: Array<Replica | Mesh> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});
async function replica(name: string, b = ok, service = 'payments'): Promise<Replica> {
  const r = await startReplica(name, b, { service });
  opened.push(r);
  return r;
}
async function mesh(outbound: Parameters<typeof client>[0]): Promise<Mesh> {
  const m = await client(outbound);
  opened.push(m);
  return m;
}

describe('mesh.setService', () => {
  test('a service added under load takes traffic from the next request; nothing fails', async () => {
    const [p, inv] = await Promise.all([replica('payments-1'), replica('inventory-1', ok, 'inventory')]);
    const m = await mesh({ services: { payments: { endpoints: [p.address] } } });
    let added = false;
    const results = await load(400, 8, async (i) => {
      if (i === 100) {
        m.setService('inventory', { endpoints: [inv.address] });
        added = true;
      }
      return added ? call(m, 'http://inventory/x') : call(m, 'http://payments/x');
    });
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    assert.ok(inv.hits >= 290, `inventory took traffic once added (${inv.hits})`);
    assert.equal(m.snapshot().source, 'api');
    assert.deepEqual([...m.snapshot().services.keys()].sort(), ['inventory', 'payments']);
  });

  test('a removed service finishes its in-flight requests; new ones are refused as unknown', async () => {
    const slow = await replica('slow', delayed(300));
    const m = await mesh({ services: { payments: { endpoints: [slow.address] } } });
    const inflight = call(m, 'http://payments/slow');
    await waitFor(() => slow.hits === 1, 5_000, 'the request to reach the replica');
    m.setService('payments', null);
    const after = await call(m, 'http://payments/again');
    assert.equal(after.status, 0);
    assert.equal((after.error as Error & { cause?: { code?: string } }).cause?.code, 'ERR_SIDECARLESS_UNKNOWN_SERVICE');
    const r = await inflight;
    assert.equal(r.status, 200, 'the in-flight request finished on the removed service');
    assert.equal(r.replica, 'slow');
    assert.deepEqual(Object.keys(m.stats().outbound.services), []);
  });

  test('changing retry settings keeps the service, its connections and its latency estimate', async () => {
    const p = await replica('p');
    const m = await mesh({ services: { payments: { endpoints: [p.address] } } });
    for (let i = 0; i < 20; i++) assert.equal((await call(m, 'http://payments/')).status, 200);
    const before = m.stats().outbound.services.payments!;
    const connections = p.mesh.stats().inbound.handshakes.authenticated;
    m.setService('payments', { endpoints: [p.address], retry: { maxRetries: 1 }, timeout: { request: '5s' } });
    for (let i = 0; i < 20; i++) assert.equal((await call(m, 'http://payments/')).status, 200);
    const afterStats = m.stats().outbound.services.payments!;
    assert.equal(afterStats.requests, before.requests + 20, 'same service object: its counters continue');
    assert.equal(p.mesh.stats().inbound.handshakes.authenticated, connections, 'no new TLS connection: the pool was kept');
    assert.ok(afterStats.endpoints[0]!.ewmaMs > 0);
  });

  test('a bad setService changes nothing and says what is wrong', async () => {
    const p = await replica('p2');
    const m = await mesh({ services: { payments: { endpoints: [p.address] } } });
    const version = m.snapshot().version;
    assert.throws(() => m.setService('inventory', { endpoints: ['nowhere'] }), { code: 'ERR_SIDECARLESS_CONFIG_INVALID', message: /setService\("inventory"\) rejected, services unchanged:\n {2}- inventory\.endpoints\.0\.address/ });
    assert.throws(() => m.setService('Inventory', { endpoints: [] }), /name/);
    assert.throws(() => m.setService('inventory', { hostnames: ['payments'], endpoints: [] }), /"payments" is also a hostname of "payments"/);
    assert.throws(() => m.setService('nope', null), /not a mesh service/);
    assert.equal(m.snapshot().version, version);
    assert.equal((await call(m, 'http://payments/')).status, 200);
  });

  test('explicit hostnames and wildcards route to the service', async () => {
    const p = await replica('shop', ok);
    const m = await mesh({ services: { payments: { hostnames: ['pay.example.com', '*.pay.internal'], endpoints: [p.address] } } });
    assert.equal((await call(m, 'http://pay.example.com/')).replica, 'shop');
    assert.equal((await call(m, 'http://eu.pay.internal:8080/')).replica, 'shop');
    const short = await call(m, 'http://payments/');
    assert.equal((short.error as Error & { cause?: { code?: string } }).cause?.code, 'ERR_SIDECARLESS_UNKNOWN_SERVICE', 'the Kubernetes forms are replaced');
  });
});

describe('mesh.setInboundMode', () => {
  test('STRICT → PERMISSIVE → STRICT on a live server: a client without a certificate is refused, served, refused', async () => {
    const p = await replica('modes');
    const server = p.mesh;
    const port = Number(p.address.split(':').at(-1));
    const plainTls = async () => (await rawTlsRequest({ port, request: 'GET /x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' })).status;
    assert.equal(await plainTls(), undefined, 'STRICT: no answer without a client certificate');
    server.setInboundMode('permissive');
    assert.equal(server.stats().inbound.mode, 'permissive');
    assert.equal(server.stats().inbound.authz.defaultPolicy, 'all-unauthenticated', 'the default policy follows the mode');
    assert.equal(await plainTls(), 200, 'PERMISSIVE: served without a certificate');
    server.setInboundMode('strict');
    assert.equal(await plainTls(), undefined, 'STRICT again: refused');
    assert.throws(() => server.setInboundMode('open' as never), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
    assert.equal(server.snapshot().inbound.mode, 'strict');
  });
});

describe('after close()', () => {
  test('every mesh.set* refuses with MeshClosedError and the snapshot stays what it was', async () => {
    const m = await client({ services: { payments: { endpoints: ['127.0.0.1:9'] } } });
    const before = m.snapshot();
    await m.close();
    const closed = { code: 'ERR_SIDECARLESS_MESH_CLOSED', message: /the mesh is closed .* changed nothing/ };
    assert.throws(() => m.setService('inventory', { endpoints: ['127.0.0.1:9'] }), closed);
    assert.throws(() => m.setEndpoints('payments', []), closed);
    assert.throws(() => m.setSplit('payments', null), closed);
    assert.throws(() => m.setPolicy({ rules: [] }), closed);
    assert.throws(() => m.setInboundMode('permissive'), closed);
    assert.equal(m.snapshot(), before);
  });
});

describe('a rejected update is visible', () => {
  test('in stats().snapshot and the admin /config, until the next good one', async () => {
    const m = await createMesh({ service: 'orders', identity: { ca: await devCa() }, logger: { info() {}, warn() {}, error() {} }, admin: { port: 0 }, outbound: { services: { payments: { endpoints: ['127.0.0.1:9'] } } } });
    opened.push(m);
    const base = `http://127.0.0.1:${m.admin!.address().port}`;
    const config = async () => (JSON.parse(await (await fetch(`${base}/config`)).text()) as { snapshot: { version: string; source: string; lastRejected?: { error: string; version: string } } }).snapshot;
    assert.deepEqual(await config(), { version: '1', source: 'options', services: 1, pending: [] });
    assert.throws(() => m.setSplit('payments', [{ service: 'payments', weight: 0 }]), /weight > 0/);
    assert.throws(() => m.setService('inventory', { split: [{ service: 'payments', weight: 1 }], hostnames: ['payments'] }));
    const rejected = await config();
    assert.equal(rejected.version, '1', 'the version in force did not move');
    assert.match(rejected.lastRejected!.error, /setService\("inventory"\) rejected, services unchanged/);
    assert.deepEqual(m.stats().snapshot.lastRejected, rejected.lastRejected);
    m.setService('inventory', { endpoints: ['127.0.0.1:9'] });
    const good = await config();
    assert.equal(good.lastRejected, undefined);
    assert.deepEqual([good.version, good.source], ['2', 'api']);
  });
});

describe('a request waiting for a pending reference', () => {
  test('aborted by its caller: the wait ends at once (no timer kept), and delivering the backend later sends nothing', async () => {
    const clock = new VirtualClock(Date.now());
    const v2 = await replica('v2-abort', ok, 'payments-v2');
    const p = await replica('p-abort');
    const m = await client({ pendingTimeout: '60s', services: { payments: { endpoints: [p.address] } } }, undefined, { clock });
    opened.push(m);
    m.setSplit('payments', [{ service: 'payments-v2', weight: 1 }]);
    const base = clock.pending().length; // the identity source's renewal timer
    const ac = new AbortController();
    const waiting = m.fetch('http://payments/x', { signal: ac.signal }).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    await waitFor(() => clock.pending().length === base + 1, 5_000, 'the request to wait on the mesh clock');
    ac.abort();
    assert.equal(await waiting, 'AbortError');
    await waitFor(() => clock.pending().length === base, 5_000, 'the wait to end');
    m.setService('payments-v2', { endpoints: [v2.address] });
    await new Promise((r) => setImmediate(r));
    assert.equal(v2.hits, 0, 'nothing was sent for the aborted request');
    assert.equal((await call(m, 'http://payments/y')).replica, 'v2-abort', 'a new request goes to the delivered backend');
  });

  test('a wait that times out fails with PendingConfigError exactly at pendingTimeout, on the mesh clock', async () => {
    const clock = new VirtualClock(Date.now());
    const p = await replica('p-timeout');
    const m = await client({ pendingTimeout: '30s', services: { payments: { endpoints: [p.address] } } }, undefined, { clock });
    opened.push(m);
    m.setSplit('payments', [{ service: 'payments-v3', weight: 1 }]);
    const base = clock.pending().length;
    const waiting = call(m, 'http://payments/x');
    await waitFor(() => clock.pending().length === base + 1, 5_000, 'the request to wait on the mesh clock');
    clock.advance(29_999);
    await new Promise((r) => setImmediate(r));
    assert.equal(clock.pending().length, base + 1, 'still waiting 1 ms before the timeout');
    clock.advance(1);
    const r = await waiting;
    assert.equal((r.error as Error & { cause?: { code?: string } }).cause?.code, 'ERR_SIDECARLESS_CONFIG_PENDING');
  });
});

describe('references that become pending are logged', () => {
  test('once per reference: a split to a service not delivered, and a backend removed from under a split', async () => {
    const warnings: string[] = [];
    const m = await createMesh({
      service: 'orders',
      identity: { ca: await devCa() },
      logger: { info() {}, warn: (w: string) => void warnings.push(w), error() {} },
      outbound: { services: { payments: { endpoints: ['127.0.0.1:9'] }, 'payments-v1': { endpoints: ['127.0.0.1:9'] } } },
    });
    opened.push(m);
    warnings.length = 0; // the dev-CA warning of createMesh
    m.setSplit('payments', [{ service: 'payments-v1', weight: 1 }, { service: 'payments-v2', weight: 1 }]);
    m.setEndpoints('payments', ['127.0.0.1:10']);
    m.setService('payments-v1', null);
    assert.deepEqual(warnings, [
      '"payments-v2", named by payments.split.1.service, is not delivered yet: requests that need it wait up to outbound.pendingTimeout, then fail with ERR_SIDECARLESS_CONFIG_PENDING',
      '"payments-v1", named by payments.split.0.service, is not delivered yet: requests that need it wait up to outbound.pendingTimeout, then fail with ERR_SIDECARLESS_CONFIG_PENDING',
    ]);
  });
});
