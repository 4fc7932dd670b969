// SECURITY-CASES section E over real mTLS sockets.
// 30: retries stay within the budget (see traffic.e2e.test.ts); no retry of a non-idempotent
//     request, or of a body over 64 KiB.
// 31: an endpoint presenting a SPIFFE ID other than the one discovery promised fails that
//     attempt; no plaintext or unverified fallback.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { createDevCa } from '../../../src/identity/dev-ca.js';
import { type Mesh } from '../../../src/mesh.js';
import { call, client, hang, load, ok, type Replica, startReplica, status } from './replicas.js';

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
const KiB = 1024;

describe('case 30: what is never retried', () => {
  test('POST and PATCH answered 503 are not retried; GET, PUT and DELETE are', async () => {
    const r = await replica('r', status(503));
    const m = await mesh({ services: { payments: { endpoints: [r.address] } } });
    for (const method of ['POST', 'PATCH']) {
      r.hits = 0;
      const res = await call(m, 'http://payments/charge', { method, body: '{"amount":10}' });
      assert.equal(res.status, 503, method);
      assert.equal(r.hits, 1, `${method} sent once`);
    }
    for (const method of ['GET', 'PUT', 'DELETE']) {
      r.hits = 0;
      const res = await call(m, 'http://payments/charge', { method, ...(method === 'PUT' && { body: 'x' }) });
      assert.equal(res.status, 503, method);
      assert.equal(r.hits, 3, `${method} tried 3 times (maxRetries 2)`);
    }
  });

  test('a body over 64 KiB is not retried; one of 64 KiB is, byte for byte', async () => {
    const r = await replica('r', status(503));
    const m = await mesh({ services: { payments: { endpoints: [r.address] } } });
    for (const [size, tries] of [
      [64 * KiB + 1, 1],
      [1024 * KiB, 1],
      [64 * KiB, 3],
      [10 * KiB, 3],
    ] as const) {
      r.hits = 0;
      r.bodySizes = [];
      const res = await call(m, 'http://payments/upload', { method: 'PUT', body: Buffer.alloc(size, 7) });
      assert.equal(res.status, 503);
      assert.equal(r.hits, tries, `${size} bytes: ${tries} tries`);
      assert.deepEqual(r.bodySizes, Array(tries).fill(size), 'every try carried the whole body');
    }
  });

  test('a streamed body is sent once (undici.request with a Readable); a buffered one is replayed', async () => {
    const r = await replica('r', status(503));
    const m = await mesh({ services: { payments: { endpoints: [r.address] } } });
    const res = await request('http://payments/up', { dispatcher: m.dispatcher, method: 'PUT', body: Readable.from([Buffer.from('abc'), Buffer.from('def')]) });
    await res.body.dump();
    assert.equal(res.statusCode, 503);
    assert.equal(r.hits, 1);
    r.hits = 0;
    const res2 = await request('http://payments/up', { dispatcher: m.dispatcher, method: 'PUT', body: 'abcdef' });
    await res2.body.dump();
    assert.equal(r.hits, 3);
    assert.deepEqual(r.bodySizes.slice(-3), [6, 6, 6]);
  });

  test('a POST that timed out is not retried (it may have been processed)', async () => {
    const h = await replica('h', hang);
    const m = await mesh({ services: { payments: { endpoints: [h.address], timeout: { perTry: '150ms' } } } });
    const res = await call(m, 'http://payments/charge', { method: 'POST', body: 'x' });
    assert.equal(res.error?.cause?.code, 'ERR_SIDECARLESS_TIMEOUT');
    assert.equal(h.hits, 1);
  });

  test('a POST whose connection failed is retried elsewhere (nothing was sent)', async () => {
    const good = await replica('good', ok);
    const closed = createHttpServer();
    await new Promise<void>((x) => closed.listen(0, '127.0.0.1', x));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise((x) => closed.close(x));
    const m = await mesh({ services: { payments: { endpoints: [`127.0.0.1:${deadPort}`, good.address], balancer: 'round-robin' } } });
    const results = await load(6, 1, () => call(m, 'http://payments/charge', { method: 'POST', body: '{}' }));
    assert.deepEqual(results.map((x) => x.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(good.hits, 6, 'each POST reached the app exactly once');
  });

  test('retry: false turns retries off', async () => {
    const r = await replica('r', status(503));
    const m = await mesh({ services: { payments: { endpoints: [r.address], retry: false } } });
    assert.equal((await call(m, 'http://payments/')).status, 503);
    assert.equal(r.hits, 1);
  });
});

describe('case 31: an endpoint with another identity', () => {
  test('alone, it fails the call with ERR_SIDECARLESS_PEER_IDENTITY, and it never sees a request', async () => {
    const impostor = await replica('impostor', ok, { service: 'impostor' });
    const m = await mesh({ services: { payments: { endpoints: [impostor.address] } } });
    for (const method of ['GET', 'POST']) {
      const res = await call(m, 'http://payments/charge', { method, ...(method === 'POST' && { body: '{}' }) });
      assert.equal(res.status, 0);
      assert.equal(res.error?.cause?.code, 'ERR_SIDECARLESS_PEER_IDENTITY', `${method}: ${res.error?.cause?.message}`);
      assert.match(res.error!.cause!.message, /sa\/impostor/);
    }
    assert.equal(impostor.hits, 0);
    const s = m.stats().outbound.services.payments!;
    assert.equal(s.endpoints[0]!.failures, s.attempts, 'every attempt counted as a failure');
  });

  test('beside a good replica, requests succeed via retry and the impostor is ejected', async () => {
    const impostor = await replica('impostor', ok, { service: 'impostor' });
    const good = await replica('good', ok);
    const m = await mesh({ services: { payments: { endpoints: [impostor.address, good.address], balancer: 'round-robin' } } });
    const results = await load(40, 4, () => call(m, 'http://payments/charge'));
    assert.deepEqual([...new Set(results.map((r) => r.replica))], ['good']);
    assert.equal(impostor.hits, 0);
    const ep = m.stats().outbound.services.payments!.endpoints.find((e) => e.address === impostor.address)!;
    assert.ok(ep.ejections >= 1, `impostor ejections: ${ep.ejections}`);
    assert.equal(ep.state, 'ejected');
  });

  test('with the default balancer the impostor is avoided at once and every request succeeds', async () => {
    const impostor = await replica('impostor', ok, { service: 'impostor' });
    const good = await replica('good', ok);
    const m = await mesh({ services: { payments: { endpoints: [impostor.address, good.address] } } });
    const results = await load(100, 5, () => call(m, 'http://payments/charge'));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(impostor.hits, 0);
  });

  test('the right SPIFFE ID from another CA is refused too', async () => {
    const otherCa = await createDevCa({ trustDomain: 'cluster.local' });
    const forged = await replica('forged', ok, { ca: otherCa });
    const m = await mesh({ services: { payments: { endpoints: [forged.address] } } });
    const res = await call(m, 'http://payments/');
    assert.equal(res.status, 0);
    // Node's own chain check refuses it before ours runs (src/tls/connect.ts passes that error on).
    assert.match(String(res.error?.cause?.code), /^(ERR_SIDECARLESS_PEER_IDENTITY|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/, res.error?.cause?.message);
    assert.equal(forged.hits, 0);
  });

  test('a plaintext endpoint gets no request: no fallback to http', async () => {
    let plainRequests = 0;
    const plain = createHttpServer((_req, res) => {
      plainRequests++;
      res.end('plaintext');
    });
    await new Promise<void>((x) => plain.listen(0, '127.0.0.1', x));
    opened.push({ close: () => new Promise<void>((x) => plain.close(() => x())) });
    const m = await mesh({ services: { payments: { endpoints: [`127.0.0.1:${(plain.address() as { port: number }).port}`] } } });
    const res = await call(m, 'http://payments/');
    assert.equal(res.status, 0);
    assert.ok(res.error?.cause, 'the TLS connection failed');
    assert.equal(plainRequests, 0);
  });
});
