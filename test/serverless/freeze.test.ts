// Issue 14's invoker harness: a wrapped Lambda handler in a child process (test/helpers/invoker.ts),
// identity from a directory this test rewrites with short-lived SVIDs of its dev CA, calling a mesh
// server here. The child is frozen (SIGSTOP) across its SVID's renewal point, then across its
// expiry; each next invocation is written while it is frozen (it waits in the pipe, as Lambda's
// next event does) and the child thawed (SIGCONT). Every invocation succeeds with the SVID valid at
// that moment, opens a fresh connection after each freeze (the server closed the idle ones while the
// child was frozen; none is retried or fails), no timer fires into an error or warning line, and
// the child exits by itself once invocations stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh } from '../../src/index.js';
import { renewalPoint } from '../../src/sources/lifecycle.js';
import { TD, craftLeaf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { startInvoker } from '../helpers/invoker.js';

const HANDLER = fileURLToPath(new URL('../fixtures/serverless/fetch-handler.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (t: number) => {
  while (Date.now() < t) await sleep(Math.min(20, t - Date.now()));
};

test('frozen across the renewal point, then across expiry: renewed SVIDs, fresh connections, no retry, no error line, exit by itself', { timeout: 30_000 }, async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const root = await tempDir('sidecarless-freeze-');
  t.after(() => root.remove());
  const dir = `${root.dir}/fn`;
  await mkdir(dir);
  /** An SVID valid from this second for `ttlMs` (certificates count whole seconds), written as a secret sync would. */
  const issue = async (ttlMs: number) => {
    const notBefore = Math.floor(Date.now() / 1000) * 1000;
    const leaf = await craftLeaf(ca, { uris: [idOf('fn')], notBefore, notAfter: notBefore + ttlMs });
    await writeSvidDir(dir, { certChainPem: leaf.certChainPem, keyPem: leaf.keyPem, bundlePem: ca.bundlePem });
    return { serialNumber: leaf.serialNumber, notBefore, notAfter: notBefore + ttlMs };
  };

  const api = await createMesh({ service: 'api', identity: { ca }, logger: { info() {}, warn() {}, error() {} } });
  t.after(() => api.close());
  const seen: Array<{ conn: number; serial: string }> = [];
  let connections = 0;
  const server = api.createServer((req, res) => res.end(`pong ${seen.length}`));
  server.keepAliveTimeout = 60_000; // undici is told it may keep the connection a minute
  server.on('secureConnection', () => connections++);
  server.on('request', (req) => seen.push({ conn: connections, serial: (req.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));

  const fn = startInvoker(t, HANDLER, { dir, api: `127.0.0.1:${(server.address() as AddressInfo).port}` });
  await fn.ready;
  // Lifetimes leave the running parts (an invocation, the 1.1 s freeze) seconds before each renewal
  // point even on a loaded machine: the child must be frozen, not running, when A's and B's pass.
  const a = await issue(6_000);
  const first = await fn.invoke({ source: 'aws.events' });
  assert.ok(first.ok, JSON.stringify(first));
  assert.equal((first.result as { serial: string }).serial.toLowerCase(), a.serialNumber.toLowerCase());

  // Freeze 0: a second, well before A's renewal point: nothing to renew; the server keeps the connection
  // open, but a pooled connection idle for longer than the freeze is not trusted: the next request opens another.
  fn.freeze();
  await sleep(1_100);
  const zeroth = fn.invoke({ source: 'aws.events' });
  fn.thaw();
  const r0 = await zeroth;
  assert.ok(r0.ok, JSON.stringify(r0));
  assert.equal((r0.result as { serial: string }).serial.toLowerCase(), a.serialNumber.toLowerCase());

  // Freeze 1: across A's renewal point (not its expiry). A renewal lands meanwhile, as a secret sync would write it.
  fn.freeze();
  server.closeIdleConnections(); // the server's keep-alive ends while the child cannot notice
  assert.ok(Date.now() < renewalPoint(a.notBefore, a.notAfter), 'frozen before A\'s renewal point');
  await until(renewalPoint(a.notBefore, a.notAfter) + 250);
  const b = await issue(5_000);
  assert.ok(Date.now() < a.notAfter, 'A is still valid: only its renewal point passed');
  const second = fn.invoke({ source: 'aws.events' });
  fn.thaw();
  const r2 = await second;
  assert.ok(r2.ok, JSON.stringify(r2));
  assert.equal((r2.result as { serial: string }).serial.toLowerCase(), b.serialNumber.toLowerCase(), 'the renewed SVID, before the first connection');

  // Freeze 2: across B's expiry. The renewal is written while it is frozen; the thaw must pick it up before calling.
  fn.freeze();
  server.closeIdleConnections();
  assert.ok(Date.now() < renewalPoint(b.notBefore, b.notAfter), 'frozen before B\'s renewal point');
  await until(b.notAfter + 300);
  const c = await issue(3_000);
  const third = fn.invoke({ source: 'aws.events' });
  fn.thaw();
  const r3 = await third;
  assert.ok(r3.ok, JSON.stringify(r3));
  assert.equal((r3.result as { serial: string }).serial.toLowerCase(), c.serialNumber.toLowerCase());
  assert.deepEqual(
    [r0, r2, r3].map((r) => (r.result as { retries: number; failures: number; status: number })).map((x) => [x.status, x.retries, x.failures]),
    [[200, 0, 0], [200, 0, 0], [200, 0, 0]],
    'no request failed or was retried onto a dead socket',
  );

  assert.equal(seen.length, 4, 'one request per invocation reached the server');
  assert.deepEqual(seen.map((s) => s.conn), [1, 2, 3, 4], 'a fresh connection after each freeze, none reused');
  assert.deepEqual(seen.map((s) => s.serial.toLowerCase()), [a, a, b, c].map((s) => s.serialNumber.toLowerCase()), 'each connection presented the SVID of its time');

  const exit = await fn.end();
  assert.deepEqual(exit, { code: 0, signal: null }, 'the child exited by itself');
  assert.deepEqual(fn.stderr.filter((l) => /error|warn|expired|overdue|ECONNRESET/i.test(l)), [], `no timer fired into an error:\n${fn.stderr.join('\n')}`);
});
