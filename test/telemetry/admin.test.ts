// The admin endpoint over real sockets: off by default, loopback, every path, never key material,
// /ready follows the SVID's expiry (virtual clock), /metrics is valid Prometheus text.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { VirtualClock } from '../../src/clock.js';
import { createDevCa, createMesh, type DevCa, type IssuedSvid, type Mesh } from '../../src/index.js';
import { isLoopbackHost, redactConfig } from '../../src/admin/server.js';
import { parsePrometheus } from '../../src/telemetry/prometheus.js';
import { filesOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { closeServer, listen } from '../helpers/net.js';

const quiet = { info() {}, warn() {}, error() {} };
const meshes: Mesh[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
  for (const m of meshes) await m.close().catch(() => {});
});

let ca: DevCa;
let svid: IssuedSvid;
let clock: VirtualClock;
let payments: Mesh;
let orders: Mesh;
let base: string;

before(async () => {
  ca = await createDevCa();
  svid = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/payments' });
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  await writeSvidDir(dir, filesOf(svid));
  clock = new VirtualClock(Date.now());
  payments = await createMesh(
    {
      service: 'payments',
      identity: { dir: join(dir) },
      logger: quiet,
      admin: { port: 0 },
      inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] }, audit: () => {} },
      outbound: { services: { ledger: { endpoints: ['127.0.0.1:9'], retry: { maxRetries: 1 } } } },
    },
    { clock },
  );
  meshes.push(payments);
  const server = payments.createServer((_req, res) => res.end('ok'));
  cleanups.unshift(() => closeServer(server));
  const port = await listen(server);
  orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  meshes.push(orders);
  for (let i = 0; i < 5; i++) await (await orders.fetch('http://payments/charge', { method: 'POST' })).text();
  await (await orders.fetch('http://payments/admin')).text();
  const a = payments.admin!.address();
  base = `http://127.0.0.1:${a.port}`;
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(base + path, init);
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

test('off by default; on: bound to loopback on the port chosen, createMesh awaited it', async () => {
  assert.equal(orders.admin, undefined);
  const a = payments.admin!.address();
  assert.equal(a.address, '127.0.0.1');
  assert.ok(a.port > 0);
  assert.equal((await get('/live')).status, 200);
});

test('every path answers; unknown paths 404; only GET and HEAD', async () => {
  assert.equal((await get('/ready')).status, 200);
  const stats = await get('/stats');
  assert.equal(stats.status, 200);
  assert.match(stats.type, /application\/json/);
  const s = JSON.parse(stats.body);
  assert.equal(s.service, 'payments');
  assert.equal(s.inbound.authz.denied, 1);
  assert.equal(s.traffic.series.find((x: { direction: string }) => x.direction === 'inbound').requests, 6);
  const id = JSON.parse((await get('/identity')).body);
  assert.equal(id.spiffeId, 'spiffe://cluster.local/ns/default/sa/payments');
  assert.equal(id.serialNumber, payments.identity.status().serialNumber);
  assert.equal(id.notAfter, payments.identity.status().notAfter);
  const roots = id.bundles['cluster.local'];
  assert.ok(roots.length >= 1);
  for (const r of roots) {
    assert.deepEqual(Object.keys(r).sort(), ['fingerprint256', 'notAfter', 'subject']);
    assert.match(r.fingerprint256, /^[0-9a-f]{64}$/);
  }
  const cfg = JSON.parse((await get('/config')).body);
  assert.equal(cfg.config.service, 'payments');
  assert.equal(cfg.config.outbound.services.ledger.retry.maxRetries, 1);
  assert.equal(cfg.policy.document.rules[0].name, 'no-admin');
  assert.equal(cfg.config.inbound.audit, undefined, 'functions are not shown');
  assert.equal((await get('/nope')).status, 404);
  assert.equal((await get('/metrics', { method: 'POST', body: 'x' })).status, 405);
  assert.equal((await get('/live', { method: 'HEAD' })).status, 200);
});

test('no response ever carries key material', async () => {
  const keyBody = svid.keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const keyDerHex = Buffer.from(keyBody, 'base64').toString('hex');
  const liveKey = payments.identity.getX509Svid().keyPem;
  const caKeyed = ca as unknown as Record<string, unknown>;
  const caSecrets = Object.values(caKeyed).filter((v): v is string => typeof v === 'string' && v.includes('PRIVATE KEY'));
  // Also a mesh whose identity is the dev CA object itself.
  const dev = await createMesh({ service: 'billing', identity: { ca }, logger: quiet, admin: { port: 0 } });
  meshes.push(dev);
  const devBase = `http://127.0.0.1:${dev.admin!.address().port}`;
  for (const b of [base, devBase]) {
    for (const p of ['/live', '/ready', '/metrics', '/stats', '/config', '/identity', '/nope']) {
      const body = await (await fetch(b + p)).text();
      assert.doesNotMatch(body, /PRIVATE KEY/, p);
      assert.doesNotMatch(body, /-----BEGIN/, p);
      for (let i = 0; i + 32 <= keyBody.length; i += 16) assert.ok(!body.includes(keyBody.slice(i, i + 32)), `${p} has a piece of the key (base64)`);
      assert.ok(!body.includes(keyDerHex.slice(0, 64)), `${p} has the key (hex)`);
      assert.ok(!body.includes(liveKey.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(0, 40)));
      for (const s of caSecrets) assert.ok(!body.includes(s.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(0, 40)), `${p} has the CA key`);
    }
  }
  const cfg = JSON.parse(await (await fetch(devBase + '/config')).text());
  assert.equal(typeof cfg.config.identity.ca, 'string', 'the dev CA object is named, not serialized');
});

test('/metrics is valid Prometheus text with the golden signals', async () => {
  const r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  // An independent line check, then the strict parser.
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})? (?:[-+]?[0-9.]+(?:e[-+]?\d+)?|\+Inf|NaN)$/;
  for (const line of r.body.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    assert.match(line, sample);
  }
  const scrape = parsePrometheus(r.body);
  for (const f of ['sidecarless_requests_total', 'sidecarless_request_duration_seconds', 'sidecarless_retries_total', 'sidecarless_denials_total', 'sidecarless_authz_decisions_total', 'sidecarless_identity_expiry_seconds', 'sidecarless_identity_ready']) {
    assert.ok(scrape.types.has(f), f);
  }
  const v = (name: string, labels: Record<string, string>) =>
    scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, x]) => s.labels[k] === x)).reduce((n, s) => n + s.value, 0);
  const peer = 'spiffe://cluster.local/ns/default/sa/orders';
  assert.equal(v('sidecarless_requests_total', { direction: 'inbound', peer, status_class: '2xx' }), 5);
  assert.equal(v('sidecarless_requests_total', { direction: 'inbound', peer, status_class: '4xx' }), 1);
  assert.equal(v('sidecarless_denials_total', { direction: 'inbound', peer }), 1);
  assert.equal(v('sidecarless_authz_decisions_total', { decision: 'deny', rule: 'no-admin' }), 1);
  // Histogram: buckets non-decreasing, +Inf = _count.
  const buckets = scrape.samples.filter((s) => s.name === 'sidecarless_request_duration_seconds_bucket' && s.labels.peer === peer);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value);
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, v('sidecarless_request_duration_seconds_count', { peer }));
  assert.ok(v('sidecarless_identity_expiry_seconds', {}) > 3000);
  assert.throws(() => parsePrometheus('metric{a="1" 2\n'), SyntaxError);
  assert.throws(() => parsePrometheus('# TYPE m counter\n# TYPE m counter\n'), SyntaxError);
});

test('/ready turns 503 with the reason when the SVID expires', async () => {
  assert.equal((await get('/ready')).status, 200);
  const notAfter = Date.parse(payments.identity.status().notAfter!);
  clock.set(notAfter + 1_000);
  const r = await get('/ready');
  assert.equal(r.status, 503);
  assert.match(r.body, /^not ready: identity: .*expired/);
  const scrape = parsePrometheus((await get('/metrics')).body);
  assert.equal(scrape.samples.find((s) => s.name === 'sidecarless_identity_ready')!.value, 0);
  assert.equal((await get('/live')).status, 200, 'still live');
  clock.set(Date.now());
  assert.equal((await get('/ready')).status, 200);
});

test('mesh.close() closes it; a port in use fails createMesh and leaves nothing open', async () => {
  const m = await createMesh({ service: 'temp', identity: { ca }, logger: quiet, admin: { port: 0, host: '127.0.0.1' } });
  const port = m.admin!.address().port;
  assert.equal((await fetch(`http://127.0.0.1:${port}/live`)).status, 200);
  await m.close();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/live`));

  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as { port: number }).port;
  try {
    await assert.rejects(createMesh({ service: 'temp', identity: { ca }, logger: quiet, admin: { port: taken } }), (e: Error & { code?: string; cause?: { code?: string } }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_ADMIN_LISTEN');
      assert.equal(e.cause?.code, 'EADDRINUSE');
      assert.match(e.message, new RegExp(`admin\\.port ${taken} is already in use on 127\\.0\\.0\\.1 \\(EADDRINUSE\\): choose another admin\\.port \\(0 picks a free one\\)`));
      return true;
    });
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test('bound beyond loopback: one warning at start, saying it is unauthenticated and what it exposes', async () => {
  const capture = () => {
    const warns: string[] = [];
    return { warns, logger: { info() {}, error() {}, warn: (m: string) => void warns.push(m) } };
  };
  const wide = capture();
  const m = await createMesh({ service: 'temp', identity: { ca }, logger: wide.logger, admin: { port: 0, host: '0.0.0.0' } });
  try {
    const port = m.admin!.address().port;
    assert.equal((await fetch(`http://127.0.0.1:${port}/live`)).status, 200);
    await fetch(`http://127.0.0.1:${port}/stats`).then((r) => r.text());
    const admin = wide.warns.filter((w) => /admin endpoint/.test(w));
    assert.equal(admin.length, 1, `one warning, not one per request: ${admin.join(' | ')}`);
    assert.match(admin[0]!, new RegExp(`listens on 0\\.0\\.0\\.0:${port} \\(admin\\.host "0\\.0\\.0\\.0"\\)`));
    assert.match(admin[0]!, /UNAUTHENTICATED/);
    for (const path of ['/stats', '/config', '/identity', '/metrics']) assert.ok(admin[0]!.includes(path), `names ${path}`);
    assert.match(admin[0]!, /set admin\.host to 127\.0\.0\.1/);
  } finally {
    await m.close();
  }
  for (const host of ['127.0.0.1', 'localhost', '::1']) {
    const narrow = capture();
    const l = await createMesh({ service: 'temp', identity: { ca }, logger: narrow.logger, admin: { port: 0, host } }).catch((e: Error & { code?: string }) => {
      // ::1 may not exist on this machine; then the error says so, with its code.
      assert.equal(e.code, 'ERR_SIDECARLESS_ADMIN_LISTEN', String(e));
      return undefined;
    });
    await l?.close();
    assert.deepEqual(narrow.warns.filter((w) => /admin endpoint/.test(w)), [], `no warning for ${host}`);
  }
});

test('which admin hosts count as loopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.7', '192.168.1.1', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
});

test('an admin.host that is not an address of this machine: ERR_SIDECARLESS_ADMIN_LISTEN naming admin.host', async () => {
  await assert.rejects(createMesh({ service: 'temp', identity: { ca }, logger: quiet, admin: { port: 0, host: '192.0.2.1' } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_ADMIN_LISTEN');
    assert.match(e.message, /admin\.host "192\.0\.2\.1" is not an address of this machine \(EADDRNOTAVAIL\): use 127\.0\.0\.1/);
    return true;
  });
});

test('/identity and /metrics say where the SVID comes from, its serial, hint, renewal and failures', async () => {
  // A renewing source (the dev CA) plans its next refresh; a watched directory does not.
  const dev = await createMesh({ service: 'ledger', identity: { ca, ttl: 3_600_000 }, logger: quiet, admin: { port: 0 } });
  meshes.push(dev);
  const devBase = `http://127.0.0.1:${dev.admin!.address().port}`;
  const id = (await (await fetch(`${devBase}/identity`)).json()) as Record<string, unknown>;
  const st = dev.identity.status();
  assert.equal(id.kind, 'dev-ca');
  assert.equal(id.from, `dev CA of ${ca.trustDomain}`);
  assert.equal(id.serialNumber, st.serialNumber);
  assert.equal(id.hint, null);
  assert.equal(id.failures, 0);
  // Renewal is planned at 50 % ± 10 % of the life left when the SVID arrived (the dev CA backdates notBefore).
  const arrived = Date.parse(st.lastUpdate!);
  const life = Date.parse(st.notAfter!) - arrived;
  const refreshAt = Date.parse(id.nextRefresh as string) - arrived;
  assert.ok(refreshAt >= life * 0.4 - 1_000 && refreshAt <= life * 0.6 + 1_000, `refresh at ${refreshAt} of ${life} ms`);
  const scrape = parsePrometheus(await (await fetch(`${devBase}/metrics`)).text());
  const one = (name: string, labels: Record<string, string> = {}) =>
    scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.deepEqual(one('sidecarless_identity_info').map((s) => [s.labels.source, s.labels.serial, s.labels.hint, s.value]), [['dev-ca', st.serialNumber, '', 1]]);
  assert.equal(one('sidecarless_identity_state', { state: 'ready' })[0]!.value, 1);
  assert.equal(one('sidecarless_identity_state', { state: 'stale' })[0]!.value, 0);
  const refresh = one('sidecarless_identity_refresh_seconds')[0]!.value;
  assert.ok(refresh > 0 && refresh <= 3_600 * 0.6, `refresh in ${refresh} s`);
  assert.equal(one('sidecarless_identity_refresh_failures_total')[0]!.value, 0);

  const dirId = JSON.parse((await get('/identity')).body);
  assert.equal(dirId.kind, 'dir');
  assert.match(dirId.from, /^identity directory /);
  assert.equal(dirId.nextRefresh, null);
  const dirScrape = parsePrometheus((await get('/metrics')).body);
  assert.equal(dirScrape.samples.filter((s) => s.name === 'sidecarless_identity_refresh_seconds').length, 0);
  assert.equal(dirScrape.samples.filter((s) => s.name === 'sidecarless_identity_info')[0]!.labels.source, 'dir');
});

test('/config shows createMesh({ grpc }) as the module it is, not its enums', async () => {
  const grpc = await import('@grpc/grpc-js');
  assert.deepEqual(redactConfig({ service: 'payments', grpc }), { service: 'payments', grpc: '[@grpc/grpc-js module]' });
  assert.deepEqual(redactConfig({ outbound: { grpc: { a: 1 } } }), { outbound: { grpc: { a: 1 } } }, 'only the top-level option');
});
