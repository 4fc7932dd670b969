// Issue 15, inbound HTTP/2: every h2 stream passes the HTTP/1.1 gate, whichever API the app uses
// (compat 'request', core 'stream', http2.createSecureServer(serverTlsOptions({ http2: true })),
// Fastify http2 + mesh.fastify): the verified peer, identity fields stripped, `:path` normalized
// for every listener, hostile pseudo-headers refused before the app, 403 / gRPC trailers-only
// denials, the same counts and audit records, HTTP/1.1 on the same port (allowHTTP1) still gated,
// the documented HTTP/2 settings, and curl --http2 as a second client stack.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import http2 from 'node:http2';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { type AuditRecord, type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { ConfigError } from '../../src/errors.js';
import { rawTlsRequest } from '../helpers/net.js';
import { tempDir } from '../helpers/certs.js';
import { type H2Served, H2_KINDS, connectH2, h2Request, serveH2 } from './http2-peer.js';
import { rawH2Request } from './http2-raw.js';

const TD = 'cluster.local';
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const quiet = { info() {}, warn() {}, error() {} };
const POLICY = {
  rules: [
    { name: 'admin-only', action: 'deny', from: { notIdentities: [id('admin')] }, to: { paths: ['/admin', '/admin/*'] } },
    { name: 'seen', action: 'audit', to: { paths: ['/audited'] } },
    { name: 'readers', action: 'allow', from: { identities: ['*'] }, to: { methods: ['GET', 'POST'] } },
  ],
};

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;
const audit: AuditRecord[] = [];
const served: H2Served[] = [];

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  web = await ca.issue({ spiffeId: id('web') });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY, audit: (r) => audit.push(r) } });
  for (const kind of H2_KINDS) served.push(await serveH2(kind, mesh));
});
after(async () => {
  for (const s of served) await s.close();
  await mesh?.close();
});

describe('every shape: peer, identity fields, normalized :path, denials', () => {
  test('the app sees the verified peer, the normalized :path, and no identity header', async () => {
    for (const s of served) {
      const c = connectH2(s.port, web);
      const from = s.seen.length;
      const r = await h2Request(c, { ':path': '/public/%2e%2e/x?q=1', 'x-forwarded-client-cert': 'By=spiffe://evil', 'l5d-client-id': 'admin' });
      assert.equal(r.status, 200, `${s.kind}: ${JSON.stringify(r)}`);
      const seen = s.seen.slice(from);
      assert.equal(seen.length, 1, s.kind);
      assert.equal(seen[0]!.url, '/x?q=1', `${s.kind}: the judged target`);
      assert.equal(seen[0]!.headers[':path'], '/x?q=1', `${s.kind}: :path rewritten for every listener`);
      assert.equal(seen[0]!.peer, id('web'), s.kind);
      assert.equal(seen[0]!.headers['x-forwarded-client-cert'], undefined, s.kind);
      assert.equal(seen[0]!.headers['l5d-client-id'], undefined, s.kind);
      c.close();
    }
  });

  test('denied: 403, no handler; gRPC: trailers-only :status 200 grpc-status 7 (the rule is not named); malformed gRPC: grpc-status 3', async () => {
    for (const s of served) {
      const c = connectH2(s.port, web);
      const from = s.seen.length;
      const denied = await h2Request(c, { ':path': '/public/../admin' });
      assert.equal(denied.status, 403, `${s.kind}: ${JSON.stringify(denied)}`);
      const grpc = await h2Request(c, { ':method': 'POST', ':path': '/admin/Pay', 'content-type': 'application/grpc+proto', te: 'trailers' }, '');
      assert.equal(grpc.status, 200, s.kind);
      assert.equal(grpc.headers['content-type'], 'application/grpc', s.kind);
      assert.equal(grpc.headers['grpc-status'], '7', s.kind);
      assert.match(String(grpc.headers['grpc-message']), /permission denied/, s.kind);
      assert.doesNotMatch(String(grpc.headers['grpc-message']), /admin-only/, `${s.kind}: the rule is not told`);
      assert.equal(grpc.body, '', `${s.kind}: trailers-only`);
      const bad = await h2Request(c, { ':method': 'POST', ':path': '/x/%2f', 'content-type': 'application/grpc' }, '');
      assert.equal(bad.headers['grpc-status'], '3', `${s.kind}: ${JSON.stringify(bad)}`);
      assert.deepEqual(s.seen.slice(from), [], `${s.kind}: no handler ran`);
      // The session survives refused streams: the next one is served.
      assert.equal((await h2Request(c, { ':path': '/ok' })).status, 200, s.kind);
      c.close();
    }
  });

  test('hostile pseudo-headers sent by node:http2: 400 (or a stream reset by nghttp2), never the app', async () => {
    const cases: Array<[string, http2.OutgoingHttpHeaders]> = [
      ['Host disagrees with :authority', { ':path': '/x', ':authority': 'payments', host: 'admin.internal' }],
      ['userinfo in :authority', { ':path': '/x', ':authority': 'evil@payments' }],
      [':scheme ftp', { ':path': '/x', ':scheme': 'ftp' }],
      ['absolute form in :path', { ':path': 'https://payments/admin' }],
      ['no leading slash', { ':path': 'admin' }],
      ['lower-case method', { ':method': 'get', ':path': '/x' }],
      ['CONNECT', { ':method': 'CONNECT', ':authority': 'payments:443' }],
      ['encoded slash', { ':path': '/public/%2Fadmin' }],
    ];
    for (const s of served) {
      const c = connectH2(s.port, web);
      const from = s.seen.length;
      for (const [name, headers] of cases) {
        const r = await h2Request(c, headers);
        assert.ok(r.status === 400 || (r.status === undefined && r.reset !== undefined), `${s.kind} ${name}: ${JSON.stringify(r)}`);
      }
      assert.deepEqual(s.seen.slice(from), [], `${s.kind}: no handler ran`);
      c.close();
    }
  });

  test('raw frames node:http2 will not send (repeated pseudo-headers, connection-specific fields, :protocol): refused before the app', async () => {
    const base: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'payments']];
    const cases: Array<[string, Array<[string, string]>]> = [
      ['two :path', [...base, [':path', '/public/x'], [':path', '/admin']]],
      ['two :authority', [[':method', 'GET'], [':scheme', 'https'], [':path', '/x'], [':authority', 'a'], [':authority', 'b']]],
      ['two Host', [...base, [':path', '/x'], ['host', 'payments'], ['host', 'admin']]],
      ['connection field', [...base, [':path', '/x'], ['connection', 'close']]],
      ['transfer-encoding', [...base, [':path', '/x'], ['transfer-encoding', 'chunked']]],
      ['te gzip', [...base, [':path', '/x'], ['te', 'gzip']]],
      ['unknown pseudo-header', [...base, [':path', '/x'], [':foo', 'bar']]],
      [':protocol without the setting', [...base, [':path', '/x'], [':protocol', 'websocket']]],
      ['no :path', [...base]],
      ['no :method', [[':scheme', 'https'], [':authority', 'payments'], [':path', '/x']]],
    ];
    // nghttp2 resets all of these itself (PROTOCOL_ERROR), per session, whatever the API above it:
    // two shapes suffice here; the gate's own floor for them is http2-target.test.ts.
    for (const s of served.filter((x) => x.kind === 'stream' || x.kind === 'fastify')) {
      const from = s.seen.length;
      for (const [name, fields] of cases) {
        const o = await rawH2Request(s.port, web, fields);
        assert.ok(o.kind === 'reset' || (o.kind === 'response' && o.status === 400) || o.kind === 'goaway', `${s.kind} ${name}: ${JSON.stringify(o)}`);
      }
      assert.deepEqual(s.seen.slice(from), [], `${s.kind}: no handler ran`);
      // The raw client itself is sound: a well-formed request is answered 200 (not a static-table 400).
      const ok = await rawH2Request(s.port, web, [...base, [':path', '/x']]);
      assert.deepEqual(ok, { kind: 'response', status: 200 }, s.kind);
    }
  });
});

describe('around the gate', () => {
  test('counted and audited like HTTP/1.1; the server span facts are the same shape', async () => {
    const before = mesh.stats().inbound.authz;
    const c = connectH2(served[0]!.port, web);
    await h2Request(c, { ':path': '/audited' });
    await h2Request(c, { ':path': '/admin' });
    await h2Request(c, { ':path': '/a/%2f' });
    c.close();
    const a = mesh.stats().inbound.authz;
    assert.equal(a.allowed - before.allowed, 1);
    assert.equal(a.denied - before.denied, 1);
    assert.equal(a.malformed - before.malformed, 1);
    const rec = audit.find((r) => (r as { path?: string }).path === '/audited');
    assert.ok(rec, JSON.stringify(audit));
    assert.equal((rec as { method?: string }).method, 'GET');
  });

  test('identity fields sent as trailers never reach the app (compat req.trailers and the stream\'s \'trailers\')', async () => {
    const seen: unknown[] = [];
    const server = mesh.createServer((req, res) => {
      req.stream.on('trailers', (t) => seen.push({ stream: JSON.parse(JSON.stringify(t)) }));
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ ...req.trailers })));
    }, { http2: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = connectH2((server.address() as { port: number }).port, web);
    const body = await new Promise<string>((resolve) => {
      const req = c.request({ ':method': 'POST', ':path': '/upload' }, { waitForTrailers: true });
      let out = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (out += d));
      req.on('end', () => resolve(out));
      req.on('wantTrailers', () => req.sendTrailers({ 'x-forwarded-client-cert': 'By=spiffe://evil', 'l5d-client-id': 'admin', 'x-sum': '42' }));
      req.end('payload');
    });
    assert.deepEqual(JSON.parse(body), { 'x-sum': '42' });
    assert.deepEqual(seen, [{ stream: { 'x-sum': '42' } }]);
    c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("a 'stream' listener the app puts on a session sees only admitted streams", async () => {
    const seen: string[] = [];
    const server = mesh.createServer(undefined, { http2: true });
    server.on('session', (session) =>
      session.on('stream', (stream, headers) => {
        seen.push(String(headers[':path']));
        if (!stream.headersSent) stream.respond({ ':status': 200 });
        stream.end('session listener');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = connectH2((server.address() as { port: number }).port, web);
    assert.equal((await h2Request(c, { ':path': '/admin' })).status, 403);
    assert.equal((await h2Request(c, { ':path': '/a/%2f' })).status, 400);
    const ok = await h2Request(c, { ':path': '/public/../x' });
    assert.equal(ok.body, 'session listener');
    assert.deepEqual(seen, ['/x']);
    c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('HTTP/1.1 on the same port (allowHTTP1) is gated too', async () => {
    for (const s of served) {
      const from = s.seen.length;
      const denied = await rawTlsRequest({ port: s.port, cert: web.certChainPem, key: web.keyPem, request: 'GET /public/../admin HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
      assert.equal(denied.status, 403, `${s.kind}: ${denied.response}`);
      if (s.kind === 'stream') continue; // a core-API app has no HTTP/1.1 handler
      const ok = await rawTlsRequest({ port: s.port, cert: web.certChainPem, key: web.keyPem, request: 'GET /public/%2e%2e/x HTTP/1.1\r\nHost: payments\r\nx-forwarded-client-cert: evil\r\nConnection: close\r\n\r\n' });
      assert.equal(ok.status, 200, `${s.kind}: ${ok.response}`);
      const seen = s.seen.slice(from);
      assert.equal(seen.length, 1, s.kind);
      assert.equal(seen[0]!.url, '/x');
      assert.equal(seen[0]!.headers['x-forwarded-client-cert'], undefined);
    }
  });

  test('the documented HTTP/2 settings (maxConcurrentStreams 100, maxHeaderListSize 16 KiB); a client without a certificate is refused (strict)', async () => {
    for (const s of served) {
      const c = connectH2(s.port, web);
      await new Promise<void>((resolve) => (c.remoteSettings.maxConcurrentStreams !== undefined && c.connecting === false ? resolve() : c.once('remoteSettings', () => resolve())));
      assert.equal(c.remoteSettings.maxConcurrentStreams, 100, s.kind);
      assert.equal(c.remoteSettings.maxHeaderListSize, 16384, s.kind);
      assert.equal(c.alpnProtocol, 'h2', s.kind);
      c.close();
      const anon = connectH2(s.port, undefined);
      const r = await h2Request(anon, { ':path': '/x' });
      assert.equal(r.status, undefined, `${s.kind}: ${JSON.stringify(r)}`);
      anon.destroy();
    }
  });

  test('http2.createSecureServer(mesh.serverTlsOptions()) without { http2: true } is judged the same way (h2 only, node:http2 limits)', async () => {
    const server = http2.createSecureServer(mesh.serverTlsOptions(), (_req, res) => res.end('app'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const c = connectH2(port, web);
    assert.equal((await h2Request(c, { ':path': '/admin' })).status, 403);
    const ok = await h2Request(c, { ':path': '/x' });
    assert.equal(ok.body, 'app');
    c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('mesh.fastify refuses a plaintext Fastify({ http2: true }) with a ConfigError', async () => {
    const app = Fastify({ http2: true });
    await assert.rejects(async () => {
      await app.register(mesh.fastify);
    }, (e: unknown) => e instanceof ConfigError && /without TLS/.test((e as Error).message));
    await app.close().catch(() => {});
  });

  test('curl --http2 with a client SVID: allowed 200, denied 403', async (t) => {
    const dir = await tempDir();
    t.after(dir.remove);
    await writeFile(join(dir.dir, 'cert.pem'), web.certChainPem);
    await writeFile(join(dir.dir, 'key.pem'), web.keyPem, { mode: 0o600 });
    const curl = (path: string) =>
      promisify(execFile)('curl', ['-sk', '--http2', '--cert', join(dir.dir, 'cert.pem'), '--key', join(dir.dir, 'key.pem'), '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://127.0.0.1:${served[0]!.port}${path}`]);
    assert.equal((await curl('/public/x')).stdout, '2 200');
    assert.equal((await curl('/admin')).stdout, '2 403');
  });
});
