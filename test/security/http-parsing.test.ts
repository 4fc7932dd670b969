// SECURITY-CASES 24 over real TLS with raw bytes: ambiguous framing and malformed header syntax get
// 400 (or the connection closed without an answer) and the connection is closed; the app never
// runs for them, and nothing smuggled behind them ever does. Node's strict parser stays on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const WEB = `spiffe://${TD}/ns/default/sa/web`;

type Kind = 'node:http' | 'express' | 'fastify';
const KINDS: readonly Kind[] = ['node:http', 'express', 'fastify'];

interface Served {
  port: number;
  /** Paths the app was called with. */
  ran: string[];
  server: Server;
  close: () => Promise<void>;
}

async function serve(kind: Kind, mesh: Mesh): Promise<Served> {
  const ran: string[] = [];
  if (kind === 'node:http') {
    const server = mesh.createServer((req: IncomingMessage, res: ServerResponse) => {
      ran.push(req.url ?? '');
      req.resume();
      req.on('error', () => {});
      req.on('end', () => res.end('app\n'));
    });
    return { port: await listen(server), ran, server, close: () => closeServer(server) };
  }
  if (kind === 'express') {
    const app = express();
    app.use(mesh.express());
    app.use((req, res) => {
      ran.push(req.url);
      req.resume();
      req.on('error', () => {});
      req.on('end', () => void res.send('app\n'));
    });
    const server: Server = createHttpsServer(mesh.serverTlsOptions(), app);
    return { port: await listen(server), ran, server, close: () => closeServer(server) };
  }
  const app: FastifyInstance = Fastify({ https: mesh.serverTlsOptions() });
  await app.register(mesh.fastify);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => {
    payload.resume();
    payload.on('error', done);
    payload.on('end', () => done(null, undefined));
  });
  app.all('/*', async (req) => {
    ran.push(req.raw.url ?? '');
    return 'app\n';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as { port: number }).port, ran, server: app.server as unknown as Server, close: () => app.close() };
}

let ca: DevCa;
let web: IssuedSvid;
let mesh: Mesh;
const servers: Partial<Record<Kind, Served>> = {};

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  web = await ca.issue({ spiffeId: WEB });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
  for (const kind of KINDS) servers[kind] = await serve(kind, mesh);
});
after(async () => {
  for (const kind of KINDS) await servers[kind]?.close();
  await mesh?.close();
});

// Behind every malformed request, a second one that must never run.
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n';

async function send(s: Served, raw: string) {
  const from = s.ran.length;
  const r = await rawTlsRequest({ port: s.port, cert: web.certChainPem, key: web.keyPem, request: raw, timeoutMs: 10_000 });
  return { ...r, ran: s.ran.slice(from) };
}

/** 400 (or closed without an answer), closed, and the app never ran. */
function assertRejected(kind: Kind, r: Awaited<ReturnType<typeof send>>, what: string): void {
  const where = `${kind}: ${what}\n${JSON.stringify(r.response)}`;
  assert.ok(r.status === 400 || r.status === undefined, `expected 400 or no answer, got ${r.status} — ${where}`);
  assert.equal(r.response.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0, r.status === undefined ? 0 : 1, `at most one answer — ${where}`);
  assert.ok(!r.error?.message.includes('timed out'), `the server closed the connection — ${where}`);
  assert.deepEqual(r.ran, [], `the app never runs — ${where}`);
}

const post = (headers: string, body: string) => `POST /x HTTP/1.1\r\nHost: payments\r\n${headers}\r\n${body}`;

// Requests whose header section is ambiguous or malformed: refused before the app.
const HEADER_CASES: Array<[string, string]> = [
  // Transfer-Encoding together with Content-Length (the classic CL.TE / TE.CL smuggle).
  ['TE chunked + CL', post('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['CL + TE chunked', post('Content-Length: 40\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['CL 0 + TE chunked', post('Content-Length: 0\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE Chunked (case) + CL', post('Transfer-Encoding: Chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE list + CL', post('Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE chunked twice', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE chunked then identity', post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n' + SMUGGLED)],
  // Duplicate or malformed Content-Length.
  ['two different Content-Lengths', post('Content-Length: 3\r\nContent-Length: 30\r\n', 'abc' + SMUGGLED)],
  ['Content-Length list', post('Content-Length: 3, 30\r\n', 'abc' + SMUGGLED)],
  ['Content-Length +3', post('Content-Length: +3\r\n', 'abc' + SMUGGLED)],
  ['Content-Length -1', post('Content-Length: -1\r\n', SMUGGLED)],
  ['Content-Length hex', post('Content-Length: 0x3\r\n', 'abc' + SMUGGLED)],
  ['Content-Length with letters', post('Content-Length: 3a\r\n', 'abc' + SMUGGLED)],
  // Bare LF line endings.
  ['bare LF everywhere', 'GET /x HTTP/1.1\nHost: payments\n\n' + SMUGGLED],
  ['bare LF after the request line', 'GET /x HTTP/1.1\nHost: payments\r\n\r\n' + SMUGGLED],
  ['bare LF after a header', 'GET /x HTTP/1.1\r\nHost: payments\nX-A: 1\r\n\r\n' + SMUGGLED],
  ['bare LF ending the header section', 'GET /x HTTP/1.1\r\nHost: payments\r\n\n' + SMUGGLED],
  // Bare CR.
  ['bare CR between headers', 'GET /x HTTP/1.1\r\nHost: payments\rX-A: 1\r\n\r\n' + SMUGGLED],
  ['bare CR inside a value', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A: a\rb\r\n\r\n' + SMUGGLED],
  ['bare CR after the request line', 'GET /x HTTP/1.1\rHost: payments\r\n\r\n' + SMUGGLED],
  // Whitespace before the colon.
  ['space before the colon', 'GET /x HTTP/1.1\r\nHost : payments\r\n\r\n' + SMUGGLED],
  ['tab before the colon', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A\t: 1\r\n\r\n' + SMUGGLED],
  ['space before the colon of Transfer-Encoding', post('Transfer-Encoding : chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['space before the colon of Content-Length', post('Content-Length : 5\r\n', '0\r\n\r\n' + SMUGGLED)],
  // obs-fold (line folding).
  ['obs-fold with a space', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A: a\r\n b\r\n\r\n' + SMUGGLED],
  ['obs-fold with a tab', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A: a\r\n\tb\r\n\r\n' + SMUGGLED],
  ['obs-fold hiding Transfer-Encoding', post('X-A: a\r\n Transfer-Encoding: chunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['obs-fold of Transfer-Encoding', post('Transfer-Encoding:\r\n chunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['leading whitespace before the first header', 'GET /x HTTP/1.1\r\n Host: payments\r\n\r\n' + SMUGGLED],
  // Invalid header names and values.
  ['space in a header name', 'GET /x HTTP/1.1\r\nHost: payments\r\nX A: 1\r\n\r\n' + SMUGGLED],
  ['@ in a header name', 'GET /x HTTP/1.1\r\nHost: payments\r\nX@A: 1\r\n\r\n' + SMUGGLED],
  ['( in a header name', 'GET /x HTTP/1.1\r\nHost: payments\r\n(x): 1\r\n\r\n' + SMUGGLED],
  ['empty header name', 'GET /x HTTP/1.1\r\nHost: payments\r\n: 1\r\n\r\n' + SMUGGLED],
  ['control character in a header name', 'GET /x HTTP/1.1\r\nHost: payments\r\nX\x01A: 1\r\n\r\n' + SMUGGLED],
  ['non-ASCII header name', 'GET /x HTTP/1.1\r\nHost: payments\r\nX\xe9: 1\r\n\r\n' + SMUGGLED],
  ['header line without a colon', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A 1\r\n\r\n' + SMUGGLED],
  ['NUL in a header value', 'GET /x HTTP/1.1\r\nHost: payments\r\nX-A: a\x00b\r\n\r\n' + SMUGGLED],
];

// A Transfer-Encoding that does not end in chunked cannot frame a request body (RFC 9112 §6.3).
const INVALID_TE: Array<[string, string]> = [
  ['TE xchunked', post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE identity', post('Transfer-Encoding: identity\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE gzip', post('Transfer-Encoding: gzip\r\n', '0\r\n\r\n' + SMUGGLED)],
  ['TE chunked-x', post('Transfer-Encoding: chunked-x\r\n', '0\r\n\r\n' + SMUGGLED)],
];

// Broken chunked framing: the header section is valid (the app may already have started on the
// first request), but the body is not; nothing behind it may run.
const CHUNK_CASES: Array<[string, string]> = [
  ['bare LF after the chunk size', post('Transfer-Encoding: chunked\r\n', '3\nabc\r\n0\r\n\r\n' + SMUGGLED)],
  ['bare LF after the chunk data', post('Transfer-Encoding: chunked\r\n', '3\r\nabc\n0\r\n\r\n' + SMUGGLED)],
  ['bare CR after the chunk size', post('Transfer-Encoding: chunked\r\n', '3\rabc\r\n0\r\n\r\n' + SMUGGLED)],
  ['chunk data longer than its size', post('Transfer-Encoding: chunked\r\n', '3\r\nabcdef\r\n0\r\n\r\n' + SMUGGLED)],
  ['chunk size not hex', post('Transfer-Encoding: chunked\r\n', 'zz\r\nabc\r\n0\r\n\r\n' + SMUGGLED)],
  ['chunk size with a space before the extension', post('Transfer-Encoding: chunked\r\n', '3 \r\nabc\r\n0\r\n\r\n' + SMUGGLED)],
];

describe('case 24: malformed header sections → 400, connection closed, the app never runs', () => {
  for (const [what, raw] of HEADER_CASES) {
    test(what, async () => {
      for (const kind of KINDS) assertRejected(kind, await send(servers[kind]!, raw), what);
    });
  }
});

describe('case 24: a Transfer-Encoding other than chunked is refused before the app', () => {
  for (const [what, raw] of INVALID_TE) {
    test(what, async () => {
      for (const kind of KINDS) assertRejected(kind, await send(servers[kind]!, raw), what);
    });
  }
});

describe('case 24: broken chunked framing closes the connection; nothing smuggled behind it runs', () => {
  for (const [what, raw] of CHUNK_CASES) {
    test(what, async () => {
      for (const kind of KINDS) {
        const r = await send(servers[kind]!, raw);
        const where = `${kind}: ${what}\n${JSON.stringify(r.response)}`;
        assert.ok(!r.ran.includes('/smuggled'), `the smuggled request never runs — ${where}`);
        assert.ok(!r.error?.message.includes('timed out'), `the connection was closed — ${where}`);
        assert.ok(!/HTTP\/1\.1 2\d\d/.test(r.response), `no success answer — ${where}`);
      }
    });
  }
});

describe('case 24: no Host header in HTTP/1.1', () => {
  test('→ 400 and nothing runs', async () => {
    for (const kind of KINDS) assertRejected(kind, await send(servers[kind]!, 'GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n'), 'no Host');
  });

  // Node would answer a Host-less HTTP/1.1 request itself and still hand a request pipelined
  // behind it to the app; the mesh turns Node's check off and answers it in the gate (400 + close).
  test('a request pipelined behind it never runs', async () => {
    for (const kind of KINDS) assertRejected(kind, await send(servers[kind]!, 'GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n' + SMUGGLED), 'no Host + pipelined');
  });
});

describe('well-formed neighbours are served (so the refusals above are about the bytes)', () => {
  const good: Array<[string, string, string[]]> = [
    ['a chunked body', post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\n\r\n') + SMUGGLED, ['/x', '/smuggled']],
    ['a chunk extension', post('Transfer-Encoding: chunked\r\n', '3;ext=1\r\nabc\r\n0\r\n\r\n') + SMUGGLED, ['/x', '/smuggled']],
    ['gzip, chunked', post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n') + SMUGGLED, ['/x', '/smuggled']],
    ['a Content-Length body', post('Content-Length: 3\r\n', 'abc') + SMUGGLED, ['/x', '/smuggled']],
    ['optional whitespace around a value', 'GET /x HTTP/1.1\r\nHost:   payments \t\r\nConnection: close\r\n\r\n', ['/x']],
  ];
  for (const [what, raw, urls] of good) {
    test(what, async () => {
      for (const kind of KINDS) {
        const r = await send(servers[kind]!, raw);
        // Fastify may run a pipelined bodiless request before the one still reading its body.
        assert.deepEqual([...r.ran].sort(), [...urls].sort(), `${kind}: ${what}\n${r.response}`);
        assert.equal(r.response.match(/HTTP\/1\.1 200/g)?.length, urls.length, `${kind}: ${r.response}`);
      }
    });
  }
});

describe('the strict parser stays on', () => {
  test('no insecureHTTPParser in the options or on any server, and none in the process flags', () => {
    const opts = mesh.serverTlsOptions() as Record<string, unknown>;
    assert.notEqual(opts.insecureHTTPParser, true);
    for (const kind of KINDS) {
      assert.notEqual((servers[kind]!.server as Server & { insecureHTTPParser?: boolean }).insecureHTTPParser, true, kind);
    }
    assert.ok(!process.execArgv.includes('--insecure-http-parser'));
    assert.ok(!(process.env.NODE_OPTIONS ?? '').includes('--insecure-http-parser'));
  });
});
