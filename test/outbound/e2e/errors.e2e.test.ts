// Every outbound failure the mesh causes reaches the caller with a stable code, over real sockets:
// through mesh.fetch (a TypeError('fetch failed') by the fetch spec) at `err.cause.code`, and
// through undici.request + mesh.dispatcher at `err.code`. Each message names what failed and what
// to do (docs/errors.md).
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { VirtualClock } from '../../../src/clock.js';
import { createDevCa } from '../../../src/identity/dev-ca.js';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { filesOf, tempDir, writeSvidDir } from '../../helpers/certs.js';
import { client, devCa, hang, ok, quiet, type Replica, startReplica } from './replicas.js';

const opened: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});
async function replica(...a: Parameters<typeof startReplica>): Promise<Replica> {
  const r = await startReplica(...a);
  opened.push(r);
  return r;
}
async function mesh(outbound: Parameters<typeof client>[0]): Promise<Mesh> {
  const m = await client(outbound);
  opened.push(m);
  return m;
}

type Coded = Error & { code?: string; cause?: Coded };

/** The error of mesh.fetch(url): a TypeError whose `cause` carries the code. */
async function fetchError(m: Mesh, url: string, init?: RequestInit): Promise<Coded> {
  try {
    const res = await m.fetch(url, init);
    await res.text();
  } catch (e) {
    const err = e as Coded;
    assert.ok(err instanceof TypeError, `mesh.fetch rejects with a TypeError, got ${err}`);
    assert.equal(err.message, 'fetch failed');
    assert.ok(err.cause, 'with a cause');
    return err.cause;
  }
  assert.fail(`mesh.fetch(${url}) did not fail`);
}

/** The error of undici.request(url, { dispatcher: mesh.dispatcher }): the mesh's own error. */
async function requestError(m: Mesh, url: string, opts: { method?: string; body?: string } = {}): Promise<Coded> {
  try {
    const res = await request(url, { dispatcher: m.dispatcher, ...(opts as object) });
    await res.body.dump();
  } catch (e) {
    return e as Coded;
  }
  assert.fail(`undici.request(${url}) did not fail`);
}

/** Both ways in, the same code (and the message checks given). */
async function bothFail(m: Mesh, url: string, code: string, message?: RegExp, init: { method?: string; body?: string } = {}): Promise<Coded> {
  const viaFetch = await fetchError(m, url, init);
  assert.equal(viaFetch.code, code, `mesh.fetch: err.cause.code (${viaFetch.message})`);
  if (message) assert.match(viaFetch.message, message);
  const viaRequest = await requestError(m, url, init);
  assert.equal(viaRequest.code, code, `undici.request: err.code (${viaRequest.message})`);
  return viaFetch;
}

/** A TCP server that accepts connections and never speaks TLS. */
async function silentServer(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const s = {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        server.close(() => r());
      }),
  };
  opened.push(s);
  return s;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('every outbound failure has an ERR_SIDECARLESS_* code at err.cause.code', () => {
  test('egress denied', async () => {
    const m = await mesh({ egress: 'deny' });
    const e = await bothFail(m, 'http://example.com/x', 'ERR_SIDECARLESS_EGRESS_DENIED', /egress to "example\.com" is denied/);
    assert.match(e.message, /outbound\.services|outbound\.egress/);
  });

  test('no endpoint', async () => {
    const m = await mesh({ services: { payments: { endpoints: [] } } });
    await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_NO_ENDPOINT', /"payments": it has no endpoints/);
  });

  test('a refused connection names the service and the endpoint, the original error as its cause', async () => {
    const port = await closedPort();
    const m = await mesh({ services: { payments: { endpoints: [`127.0.0.1:${port}`], retry: { maxRetries: 1 } } } });
    const e = await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_CONNECT_FAILED');
    assert.match(e.message, new RegExp(`mesh service "payments" at endpoint 127\\.0\\.0\\.1:${port} \\(the last of 2 tries\\)`));
    assert.match(e.message, /connection refused.*ECONNREFUSED/);
    assert.match(e.message, /outbound\.services\.payments\.endpoints/);
    assert.equal(e.cause?.code, 'ECONNREFUSED', 'the Node error is kept as the cause');
    assert.equal((e as Coded & { service?: string }).service, 'payments');
    assert.equal((e as Coded & { endpoint?: string }).endpoint, `127.0.0.1:${port}`);
  });

  test('the peer presents another identity than the one discovery promised', async () => {
    const r = await replica('p1', ok);
    const m = await mesh({ services: { payments: { endpoints: [{ address: r.address, identity: 'spiffe://cluster.local/ns/default/sa/ledger' }], retry: false } } });
    const e = await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_PEER_IDENTITY', /sa\/ledger|sa\/payments/);
    assert.match(e.message, new RegExp(r.address.replace(/\./g, '\\.')), 'names the endpoint');
    assert.equal(r.hits, 0, 'nothing reached the wrong server');
  });

  test('a server whose chain we do not trust (another CA of the same trust domain)', async () => {
    const stranger = await replica('x', ok, { ca: await createDevCa({ trustDomain: 'cluster.local' }) });
    const m = await mesh({ services: { payments: { endpoints: [stranger.address], retry: false } } });
    const e = await fetchError(m, 'http://payments/x');
    assert.equal(e.code, 'ERR_SIDECARLESS_PEER_IDENTITY', e.message);
    assert.equal((await requestError(m, 'http://payments/x')).code, 'ERR_SIDECARLESS_PEER_IDENTITY');
    assert.equal(stranger.hits, 0);
  });

  test('the connect timeout (a server that accepts and never answers the handshake)', async () => {
    const silent = await silentServer();
    const m = await mesh({ connectTimeout: '300ms', services: { payments: { endpoints: [silent.address], retry: false } } });
    await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_CONNECT_TIMEOUT', new RegExp(`payments endpoint ${silent.address.replace(/\./g, '\\.')}.*300 ms`));
  });

  test('the request timeout', async () => {
    const r = await replica('slow', hang);
    const m = await mesh({ services: { payments: { endpoints: [r.address], timeout: { request: '300ms' } } } });
    await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_TIMEOUT', /timed out after 300 ms \(timeout\.request\)/);
  });

  test('a connection reset before the response names the service and endpoint', async () => {
    const r = await replica('crash', (req) => void req.socket.destroy());
    const m = await mesh({ services: { payments: { endpoints: [r.address] } } });
    // POST: not retried, so the first reset ends the request.
    const e = await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_ENDPOINT_FAILED', /mesh service "payments" at endpoint .* failed before a response/, { method: 'POST', body: 'x' });
    assert.ok(e.cause?.code, `the undici error is the cause (${e.cause})`);
  });

  test('a single-label host that is not a mesh service (a typo) is refused with the closest match, egress allow or not', async () => {
    const r = await replica('p1', ok);
    for (const egress of ['allow', 'deny'] as const) {
      const m = await mesh({ egress, services: { payments: { endpoints: [r.address] }, ledger: { endpoints: [r.address] } } });
      for (const url of ['http://paymnets/charge', 'http://paymnets:8080/charge', 'http://PAYMNETS./charge', 'http://paymnets.:80/']) {
        const e = await bothFail(m, url, 'ERR_SIDECARLESS_UNKNOWN_SERVICE', /did you mean "payments"\?/);
        assert.match(e.message, /mesh services: ledger, payments/);
        assert.match(e.message, /"paymnets" is not a mesh service/);
      }
      const far = await bothFail(m, 'http://zzz/', 'ERR_SIDECARLESS_UNKNOWN_SERVICE');
      assert.doesNotMatch(far.message, /did you mean/, 'no suggestion for a name close to nothing');
      const res = await m.fetch('http://payments/charge');
      assert.equal(res.status, 200, 'the mesh service itself still routes');
      await res.text();
    }
  });

  test('localhost and IP literals are not single-label names: they follow outbound.egress', async () => {
    const plain = createHttpServer((_req, res) => res.end('plain'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    opened.push({ close: () => new Promise<void>((r) => plain.close(() => r())) });
    const port = (plain.address() as { port: number }).port;
    const allow = await mesh({ egress: 'allow', services: { payments: { endpoints: [] } } });
    for (const url of [`http://localhost:${port}/`, `http://127.0.0.1:${port}/`]) {
      const res = await allow.fetch(url);
      assert.equal(await res.text(), 'plain', url);
      const viaRequest = await request(url, { dispatcher: allow.dispatcher });
      assert.equal(await viaRequest.body.text(), 'plain', url);
    }
    const deny = await mesh({ egress: 'deny' });
    for (const url of [`http://localhost:${port}/`, `http://127.0.0.1:${port}/`, `http://[::1]:${port}/`, `http://LOCALHOST.:${port}/`]) {
      await bothFail(deny, url, 'ERR_SIDECARLESS_EGRESS_DENIED');
    }
  });

  test('mesh.fetch and mesh.dispatcher after close(): ERR_SIDECARLESS_MESH_CLOSED', async () => {
    const r = await replica('p1', ok);
    const m = await createMesh({ service: 'orders', identity: { ca: await devCa() }, logger: quiet, outbound: { services: { payments: { endpoints: [r.address] } } } });
    const before = m.dispatcher;
    await (await m.fetch('http://payments/x')).text();
    await m.close();
    const e = await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_MESH_CLOSED', /mesh\.close\(\) was called.*createMesh\(\)/);
    assert.doesNotMatch(e.message, /destroyed/i);
    await assert.rejects(request('http://payments/x', { dispatcher: before }), { code: 'ERR_SIDECARLESS_MESH_CLOSED' });
    await assert.rejects(request('http://example.com/', { dispatcher: before }), { code: 'ERR_SIDECARLESS_MESH_CLOSED' }, 'egress too');
  });

  test('a mesh never used before close(): the dispatcher it makes is born closed', async () => {
    const m = await createMesh({ service: 'orders', identity: { ca: await devCa() }, logger: quiet });
    await m.close();
    await bothFail(m, 'http://example.com/', 'ERR_SIDECARLESS_MESH_CLOSED');
  });

  test('our own SVID expired: ERR_SIDECARLESS_IDENTITY_UNAVAILABLE, nothing sent', async () => {
    const r = await replica('p1', ok);
    const ca = await devCa();
    const { dir, remove } = await tempDir();
    opened.push({ close: remove });
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' })));
    const clock = new VirtualClock(Date.now());
    const m = await createMesh({ service: 'orders', identity: { dir }, logger: quiet, outbound: { services: { payments: { endpoints: [r.address] } } } }, { clock });
    opened.push(m);
    await (await m.fetch('http://payments/x')).text();
    const hits = r.hits;
    clock.set(Date.parse(m.identity.status().notAfter!) + 1_000);
    await bothFail(m, 'http://payments/x', 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', /expired/);
    assert.equal(r.hits, hits, 'no request went out with an expired SVID');
  });
});
