// SECURITY-CASES 33: STRICT from the first byte, whatever built the server. A certificate that
// chains to a trusted root but is not a valid SVID is refused at the handshake of the very FIRST
// connection a framework-built server accepts (before the mesh has seen any request on it), and
// nothing it pipelines or upgrades reaches app code. Setups that cannot be made safe are refused
// loudly (an error, or 500 plus a log line that says what to do), never served as if meshed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify from 'fastify';
import { type DevCa, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { x509 } from '../helpers/x509.js';
import { type Crafted, ManualSource, craftLeaf, filesOf, idOf } from '../helpers/certs.js';
import { SERVER_KINDS, serveKind } from '../helpers/servers.js';
import { closeServer, listen, rawTlsRequest, waitFor } from '../helpers/net.js';

const TD = 'cluster.local';
const KU = x509.KeyUsageFlags;

interface Logged {
  logger: Logger;
  lines: string[];
}
function logged(): Logged {
  const lines: string[] = [];
  return { lines, logger: { info() {}, warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) } };
}

let ca: DevCa;
let caB: DevCa;
let good: Crafted;
let mesh: Mesh;
let log: Logged;

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  caB = await createDevCa({ trustDomain: 'other.example' });
  // The mesh trusts cluster.local and the federated other.example.
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId: idOf('payments') }), caB.bundlePem));
  log = logged();
  mesh = await createMesh({ service: 'payments', identity: { source }, logger: log.logger });
  good = await craftLeaf(ca, { uris: [idOf('orders')] });
});
after(() => mesh?.close());

const HOSTILE: Array<[string, () => Promise<Crafted>]> = [
  ['two URI SANs', () => craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] })],
  ['another trust domain’s CA vouching for this one', () => craftLeaf(caB, { uris: [idOf('admin')] })],
  ['a malformed SPIFFE ID', () => craftLeaf(ca, { uris: ['spiffe://cluster.local/ns//sa/x'] })],
  ['no key usage', () => craftLeaf(ca, { keyUsage: null })],
  ['cA=true', () => craftLeaf(ca, { isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign })],
];

const PIPELINED =
  'GET /public/a HTTP/1.1\r\nHost: payments\r\n\r\n' +
  'POST /public/b HTTP/1.1\r\nHost: payments\r\nContent-Length: 0\r\n\r\n' +
  'GET /chat HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

describe('the first connection to a fresh server, with a trusted-but-invalid certificate', () => {
  for (const kind of SERVER_KINDS) {
    for (const [what, make] of HOSTILE) {
      test(`${kind}: ${what} → refused at the handshake; nothing pipelined reaches the app`, async () => {
        const s = await serveKind(kind, mesh);
        try {
          const before = mesh.stats().inbound.handshakes.rejected;
          const bad = await make();
          const r = await rawTlsRequest({ port: s.port, cert: bad.certChainPem, key: bad.keyPem, request: PIPELINED });
          assert.equal(r.status, undefined, `${kind}: ${r.response.slice(0, 200)}`);
          assert.deepEqual(s.events, [], `${kind}: app code ran`);
          await waitFor(() => mesh.stats().inbound.handshakes.rejected > before, 5_000, 'the rejection to be counted');
          // The server still serves the next, valid client.
          const ok = await rawTlsRequest({ port: s.port, cert: good.certChainPem, key: good.keyPem });
          assert.equal(ok.status, 200, ok.response);
        } finally {
          await s.close();
        }
      });
    }
  }
});

describe('setups the mesh did not build', () => {
  test('a server with its own TLS options and mesh.express(): adopted (with a warning) at its first request; pipelined requests behind a refusal never run', async () => {
    const own = logged();
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: own.logger });
    const ran: string[] = [];
    const app = express();
    app.use(m.express());
    app.all('/{*rest}', (req, res) => {
      ran.push(req.url);
      res.send('ok');
    });
    // The user copied the options and changed one: the mesh cannot recognise this server upfront.
    const options = { ...m.serverTlsOptions(), sessionIdContext: 'my-own-context' };
    const server = createHttpsServer(options, app);
    const port = await listen(server);
    try {
      const bad = await craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] });
      const r = await rawTlsRequest({ port, cert: bad.certChainPem, key: bad.keyPem, request: PIPELINED });
      assert.equal(r.status, undefined, r.response);
      assert.deepEqual(ran, [], 'nothing pipelined behind the refused first request ran');
      assert.ok(own.lines.some((l) => /not built from mesh\.serverTlsOptions\(\)/.test(l)), own.lines.join('\n'));
      // From now on the server is guarded at the handshake: a second hostile connection is refused the same way.
      const again = await rawTlsRequest({ port, cert: bad.certChainPem, key: bad.keyPem, request: PIPELINED });
      assert.equal(again.status, undefined);
      const ok = await rawTlsRequest({ port, cert: good.certChainPem, key: good.keyPem });
      assert.equal(ok.status, 200, ok.response);
      assert.deepEqual(ran, ['/']);
    } finally {
      await closeServer(server);
      await m.close();
    }
  });

  test('mesh.express() on plaintext HTTP: refused, with one error line that says what to do', async () => {
    const own = logged();
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: own.logger });
    const ran: string[] = [];
    const app = express();
    app.use(m.express());
    app.get('/', (_req, res) => {
      ran.push('/');
      res.send('ok');
    });
    const { createServer } = await import('node:http');
    const server = createServer(app);
    const port = await listen(server);
    try {
      const { request } = await import('node:http');
      const status = await new Promise<number | string>((resolve) => {
        const q = request({ port, host: '127.0.0.1', path: '/' }, (res) => resolve(res.statusCode!));
        q.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? 'error'));
        q.end();
      });
      assert.equal(status, 'ECONNRESET');
      assert.deepEqual(ran, []);
      assert.equal(own.lines.filter((l) => /plaintext HTTP/.test(l)).length, 1, own.lines.join('\n'));
    } finally {
      await closeServer(server);
      await m.close();
    }
  });

  test('a Fastify app built from serverTlsOptions() without register(mesh.fastify): 500 and one error line', async () => {
    const own = logged();
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: own.logger });
    const app = Fastify({ https: m.serverTlsOptions(), routerOptions: { caseSensitive: false } });
    let ran = 0;
    app.get('/admin', async () => ++ran);
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as { port: number }).port;
      for (let i = 0; i < 2; i++) {
        const r = await rawTlsRequest({ port, cert: good.certChainPem, key: good.keyPem, request: 'GET /ADMIN HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n' });
        assert.equal(r.status, 500, r.response);
      }
      assert.equal(ran, 0);
      const lines = own.lines.filter((l) => /register\(mesh\.fastify\)/.test(l));
      assert.equal(lines.length, 1, own.lines.join('\n'));
    } finally {
      await app.close();
      await m.close();
    }
  });

  test('Fastify with rewriteUrl: register(mesh.fastify) fails with a ConfigError that says why', async () => {
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: logged().logger });
    const app = Fastify({ https: m.serverTlsOptions(), rewriteUrl: (req) => (req.url === '/x' ? '/admin' : req.url!) });
    try {
      await assert.rejects(
        async () => {
          await app.register(m.fastify);
          await app.ready();
        },
        (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CONFIG_INVALID' && /rewriteUrl/.test(e.message),
      );
    } finally {
      await app.close().catch(() => {});
      await m.close();
    }
  });

  test('a server built from the options of a closed mesh never serves', async () => {
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: logged().logger });
    const options = m.serverTlsOptions();
    await m.close();
    let ran = 0;
    const server = createHttpsServer(options, (_req, res) => {
      ran++;
      res.end('served');
    });
    const port = await listen(server);
    try {
      const r = await rawTlsRequest({ port, cert: good.certChainPem, key: good.keyPem });
      assert.equal(r.status, undefined, r.response);
      assert.equal(ran, 0);
    } finally {
      await closeServer(server);
    }
  });

  test('log lines name the fix once, not per request', () => {
    assert.deepEqual(log.lines, [], 'the shared mesh of this file logged nothing: every server above was built the supported way');
  });
});
