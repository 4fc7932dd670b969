// SECURITY-CASES 18: one corpus of raw requests (allowed and denied, normalized and malformed) through
// node:http (mesh.createServer), Express (serverTlsOptions + mesh.express() first) and Fastify
// (serverTlsOptions + register(mesh.fastify)) behind ONE mesh and ONE policy: the same statuses, the
// same normalized req.url for the app, and the route that runs is the route of the normalized path
// (a `/public/../admin` request is never served by the `/public/*` handler). The same corpus goes
// over HTTP/2 too (issue 15): node:http2 client streams to mesh.createServer(app, { http2: true })
// and to Fastify({ http2: true }) + mesh.fastify, with `:path` as the target (an absolute form is
// malformed in HTTP/2's `:path`: 400 there).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';
import { type ClientHttp2Session, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { connectH2, h2Request } from '../inbound/http2-peer.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const WEB = id('web');
const ADMIN = id('admin');

// A deny-list policy, as Istio users write it: /admin is for the admin only, everything else is
// open to any authenticated peer for the listed methods.
const POLICY = {
  rules: [
    { name: 'admin-only', action: 'deny', from: { notIdentities: [ADMIN] }, to: { paths: ['/admin', '/admin/*'] } },
    { name: 'readers', action: 'allow', from: { identities: ['*'] }, to: { methods: ['GET', 'HEAD', 'OPTIONS', 'POST'] } },
  ],
};

type Kind = 'node:http' | 'express' | 'fastify' | 'h2' | 'h2:fastify';
const KINDS: readonly Kind[] = ['node:http', 'express', 'fastify', 'h2', 'h2:fastify'];
/** The HTTP/1.1 servers (a 400 closes their connection; HTTP/2 refuses the stream only). */
const HTTP1_KINDS: readonly Kind[] = ['node:http', 'express', 'fastify'];
const isH2 = (k: Kind) => k.startsWith('h2');

interface Echo {
  route: string;
  url: string;
  id?: string;
}

/** The routing that node:http's app does by hand: the same three routes, exact and case-sensitive. */
function routeOf(url: string): Echo {
  const path = url.split('?')[0]!;
  if (/^\/public\/.+/.test(path)) return { route: 'public', url };
  if (path === '/admin') return { route: 'admin', url };
  const m = /^\/users\/([^/]+)$/.exec(path);
  if (m) return { route: 'users', url, id: decodeURIComponent(m[1]!) };
  return { route: 'none', url };
}

interface Served {
  kind: Kind;
  port: number;
  ran: Echo[];
  /** What the framework's `originalUrl` said when a handler ran (node:http has none: its req.url). */
  originalUrls: string[];
  close: () => Promise<void>;
}

async function serve(kind: Kind, mesh: Mesh, expressOptions: { caseSensitive: boolean }, fastifyOptions: Record<string, unknown> = {}): Promise<Served> {
  const ran: Echo[] = [];
  const originalUrls: string[] = [];
  const reply = (e: Echo, originalUrl: string = e.url) => {
    ran.push(e);
    originalUrls.push(originalUrl);
    return JSON.stringify(e);
  };
  if (kind === 'h2') {
    const server: Http2SecureServer = mesh.createServer((req: Http2ServerRequest, res: Http2ServerResponse) => {
      res.setHeader('content-type', 'application/json');
      res.end(reply(routeOf(req.url)));
    }, { http2: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { kind, port: (server.address() as { port: number }).port, ran, originalUrls, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
  if (kind === 'node:http') {
    const server = mesh.createServer((req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('content-type', 'application/json');
      res.end(reply(routeOf(req.url ?? '')));
    });
    return { kind, port: await listen(server), ran, originalUrls, close: () => closeServer(server) };
  }
  if (kind === 'express') {
    const app = express();
    // Express matches routes case-insensitively unless told otherwise (see the last test).
    if (expressOptions.caseSensitive) app.set('case sensitive routing', true);
    app.use(mesh.express());
    app.all('/public/*rest', (req, res) => void res.type('json').send(reply({ route: 'public', url: req.url }, req.originalUrl)));
    app.all('/admin', (req, res) => void res.type('json').send(reply({ route: 'admin', url: req.url }, req.originalUrl)));
    app.all('/users/:id', (req, res) => void res.type('json').send(reply({ route: 'users', url: req.url, id: req.params.id! }, req.originalUrl)));
    app.use((req, res) => void res.type('json').send(reply({ route: 'none', url: req.url }, req.originalUrl)));
    const server: Server = createHttpsServer(mesh.serverTlsOptions(), app);
    return { kind, port: await listen(server), ran, originalUrls, close: () => closeServer(server) };
  }
  const app = (kind === 'h2:fastify'
    ? Fastify({ http2: true, https: mesh.serverTlsOptions({ http2: true }) as never, ...fastifyOptions })
    : Fastify({ https: mesh.serverTlsOptions(), ...fastifyOptions })) as unknown as FastifyInstance;
  await app.register(mesh.fastify);
  app.all('/public/*', async (req) => reply({ route: 'public', url: req.raw.url! }, req.originalUrl));
  app.all('/admin', async (req) => reply({ route: 'admin', url: req.raw.url! }, req.originalUrl));
  app.all('/users/:id', async (req) => reply({ route: 'users', url: req.raw.url!, id: (req.params as { id: string }).id }, req.originalUrl));
  app.setNotFoundHandler(async (req) => reply({ route: 'none', url: req.raw.url! }, req.originalUrl));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { kind, port: (app.server.address() as { port: number }).port, ran, originalUrls, close: () => app.close() };
}

interface Case {
  method?: string;
  target: string;
  as: 'web' | 'admin';
  /** 400, 403, or the echo the app must produce (status 200). */
  expect: 400 | 403 | Echo;
  /**
   * Over HTTP/2, when it differs: an absolute form in `:path` is malformed, and nghttp2 resets
   * such a stream (PROTOCOL_ERROR) before any listener, the gate's included.
   */
  h2?: 400 | 'reset';
}

const refusedAs = (w: unknown): boolean => typeof w === 'number' || w === 'reset';

const expected = (c: Case, kind: Kind) => (isH2(kind) && c.h2 !== undefined ? c.h2 : c.expect);

const ok = (route: string, url: string, extra: { id?: string } = {}): Echo => ({ route, url, ...extra });

// The corpus: each line is sent as raw bytes to all three servers.
const CORPUS: Case[] = [
  // Plain routing.
  { target: '/public/x', as: 'web', expect: ok('public', '/public/x') },
  { target: '/users/42', as: 'web', expect: ok('users', '/users/42', { id: '42' }) },
  { target: '/elsewhere', as: 'web', expect: ok('none', '/elsewhere') },
  { target: '/admin', as: 'web', expect: 403 },
  { target: '/admin', as: 'admin', expect: ok('admin', '/admin') },
  // Case 14: dot segments, every encoding and position.
  { target: '/public/../admin', as: 'web', expect: 403 },
  { target: '/public/../admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public/%2e%2e/admin', as: 'web', expect: 403 },
  { target: '/public/%2e%2e/admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public/%2E%2e/admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public/.%2e/admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public/x/../../admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/../admin', as: 'web', expect: 403 },
  { target: '/public/x/y/..', as: 'web', expect: ok('public', '/public/x/') },
  { target: '/users/../public/x', as: 'web', expect: ok('public', '/public/x') },
  { target: '/public/../users/7', as: 'web', expect: ok('users', '/users/7', { id: '7' }) },
  { target: '/admin/x/..', as: 'web', expect: 403 },
  // Case 15: empty segments.
  { target: '//admin', as: 'web', expect: 403 },
  { target: '//admin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public//x', as: 'web', expect: ok('public', '/public/x') },
  { target: '//users//9', as: 'web', expect: ok('users', '/users/9', { id: '9' }) },
  { target: '/a//admin', as: 'admin', expect: ok('none', '/a/admin') },
  // Case 16: malformed → 400.
  { target: '/public/%2Fadmin', as: 'admin', expect: 400 },
  { target: '/public/%2fadmin', as: 'admin', expect: 400 },
  { target: '/public/..%2fadmin', as: 'admin', expect: 400 },
  { target: '/public/%5Cadmin', as: 'admin', expect: 400 },
  { target: '/public/%5c..%5cadmin', as: 'admin', expect: 400 },
  { target: '/public\\..\\admin', as: 'admin', expect: 400 },
  { target: '/public/%00', as: 'admin', expect: 400 },
  { target: '/public/x#y', as: 'admin', expect: 400 },
  { target: '/public/%zz', as: 'admin', expect: 400 },
  { target: '/users/%', as: 'admin', expect: 400 },
  // Case 17: decode unreserved once, never twice.
  { target: '/%61dmin', as: 'web', expect: 403 },
  { target: '/%61dmin', as: 'admin', expect: ok('admin', '/admin') },
  { target: '/public/%61', as: 'web', expect: ok('public', '/public/a') },
  { target: '/%2561dmin', as: 'web', expect: ok('none', '/%2561dmin') },
  { target: '/users/%34%32', as: 'web', expect: ok('users', '/users/42', { id: '42' }) },
  { target: '/users/a%3ab', as: 'web', expect: ok('users', '/users/a%3Ab', { id: 'a:b' }) },
  // Case 19: queries.
  { target: '/admin?x=/public/x', as: 'web', expect: 403 },
  { target: '/public/x?y=/../admin', as: 'web', expect: ok('public', '/public/x?y=/../admin') },
  { target: '/public/../admin?q=1', as: 'admin', expect: ok('admin', '/admin?q=1') },
  // Case 20: case-sensitive paths, exact methods.
  { target: '/Admin', as: 'admin', expect: ok('none', '/Admin') },
  { method: 'PUT', target: '/public/x', as: 'web', expect: 403 },
  { method: 'DELETE', target: '/admin', as: 'admin', expect: 403 },
  { method: 'get', target: '/public/x', as: 'web', expect: 400 },
  { method: 'FOO', target: '/public/x', as: 'web', expect: 400 },
  { method: 'POST', target: '/public/%2e%2e/admin', as: 'web', expect: 403 },
  // Case 23: absolute form.
  { target: 'https://payments/admin', as: 'web', expect: 403, h2: 'reset' },
  { target: 'https://payments/public/../admin', as: 'admin', expect: ok('admin', '/admin'), h2: 'reset' },
  { target: 'http://payments/public/x?q', as: 'web', expect: ok('public', '/public/x?q'), h2: 'reset' },
  { target: 'ftp://payments/public/x', as: 'web', expect: 400, h2: 'reset' },
];

let ca: DevCa;
const clients: Record<string, IssuedSvid> = {};
let mesh: Mesh;
const servers: Partial<Record<Kind, Served>> = {};

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  clients.web = await ca.issue({ spiffeId: WEB });
  clients.admin = await ca.issue({ spiffeId: ADMIN });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY } });
  for (const kind of KINDS) servers[kind] = await serve(kind, mesh, { caseSensitive: true });
});
after(async () => {
  for (const session of sessions.values()) session.close();
  for (const kind of KINDS) await servers[kind]?.close();
  await mesh?.close();
});

const describeCase = (c: Case) => `${c.as} ${c.method ?? 'GET'} ${JSON.stringify(c.target)}`;

const sessions = new Map<string, ClientHttp2Session>();

/** One h2 session per (server, identity), reused by the whole corpus. */
function sessionFor(s: Served, as: string): ClientHttp2Session {
  const key = `${s.port}/${as}`;
  let session = sessions.get(key);
  if (!session || session.closed || session.destroyed) sessions.set(key, (session = connectH2(s.port, clients[as])));
  return session;
}

async function run(s: Served, c: Case) {
  const from = s.ran.length;
  const client = clients[c.as]!;
  if (isH2(s.kind)) {
    const r = await h2Request(sessionFor(s, c.as), { ':method': c.method ?? 'GET', ':path': c.target, ':authority': 'payments' });
    const status: number | 'reset' | undefined = r.status ?? (r.reset !== undefined ? 'reset' : undefined);
    return { status, body: r.body, ran: s.ran.slice(from), originalUrls: s.originalUrls.slice(from), response: JSON.stringify(r) };
  }
  const r = await rawTlsRequest({
    port: s.port,
    cert: client.certChainPem,
    key: client.keyPem,
    request: `${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n`,
  });
  return { status: r.status, body: r.body, ran: s.ran.slice(from), originalUrls: s.originalUrls.slice(from), response: r.response };
}

describe('case 18: one corpus through node:http, Express and Fastify, and over HTTP/2 (node:http2, Fastify http2)', () => {
  for (const c of CORPUS) {
    test(describeCase(c), async () => {
      const results: Record<string, Awaited<ReturnType<typeof run>>> = {};
      for (const kind of KINDS) results[kind] = await run(servers[kind]!, c);
      const statuses = Object.fromEntries(KINDS.map((k) => [k, results[k]!.status]));
      const want = Object.fromEntries(KINDS.map((k) => [k, expected(c, k)]));
      assert.deepEqual(statuses, Object.fromEntries(KINDS.map((k) => [k, refusedAs(want[k]) ? want[k] : 200])), `statuses:\n${JSON.stringify(results, null, 1)}`);
      for (const k of KINDS) {
        if (refusedAs(want[k])) assert.deepEqual(results[k]!.ran, [], `${k}: no handler runs for a refused request`);
      }
      if (typeof c.expect === 'number') return;
      for (const k of KINDS.filter((kind) => !refusedAs(want[kind]))) {
        assert.ok(typeof c.expect === 'object');
        assert.equal(results[k]!.ran.length, 1, `${k}: exactly one handler ran`);
        assert.deepEqual(results[k]!.ran[0], c.expect, `${k}: the route of the normalized path, with the normalized req.url`);
        assert.deepEqual(JSON.parse(results[k]!.body), c.expect, `${k}: the response is that handler's`);
        // An app guard that reads req.originalUrl (Express) / request.originalUrl (Fastify) must see
        // what the policy judged and the router routed, not the raw target: `/public/../admin`
        // would pass a guard for /admin* and be served by /admin.
        assert.equal(results[k]!.originalUrls[0], c.expect.url, `${k}: originalUrl is the normalized target`);
      }
    });
  }

  test('OPTIONS * is judged alike (allowed by the policy; the app sees "*")', async () => {
    const c: Case = { method: 'OPTIONS', target: '*', as: 'web', expect: ok('none', '*') };
    for (const kind of KINDS) {
      const r = await run(servers[kind]!, c);
      // What a framework answers for "*" is its own business; the mesh admits it and never rewrites it.
      assert.notEqual(r.status, 403, `${kind}: ${r.response}`);
      assert.notEqual(r.status, undefined, `${kind}: an answer`);
      for (const e of r.ran) assert.equal(e.url, '*', `${kind}: the app sees "*"`);
    }
    for (const kind of KINDS) {
      const r = await run(servers[kind]!, { method: 'OPTIONS', target: '*', as: 'web', expect: 403 });
      assert.ok(typeof r.status === 'number' && r.status < 500, `${kind}: no crash (${r.status})`);
    }
  });

  test('a 400 closes the connection in all three: a request pipelined after it never reaches a handler', async () => {
    for (const kind of HTTP1_KINDS) {
      const s = servers[kind]!;
      const from = s.ran.length;
      const r = await rawTlsRequest({
        port: s.port,
        cert: clients.web!.certChainPem,
        key: clients.web!.keyPem,
        request:
          'GET /public/%2fadmin HTTP/1.1\r\nHost: payments\r\n\r\n' +
          'GET /public/x HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n',
      });
      assert.equal(r.status, 400, `${kind}: ${r.response}`);
      assert.equal(r.response.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `${kind}: one response only:\n${r.response}`);
      assert.equal(r.error?.message.includes('timed out') ?? false, false, `${kind}: the connection was closed`);
      assert.deepEqual(s.ran.slice(from), [], `${kind}: no handler ran`);
    }
  });

  test('the mesh counted every decision of the corpus', () => {
    const a = mesh.stats().inbound.authz;
    assert.ok(a.allowed > 0 && a.denied > 0 && a.malformed > 0, JSON.stringify(a));
    assert.ok(a.byRule['admin-only']!.deny >= 3 * 8, JSON.stringify(a.byRule));
  });
});

describe('routers that fold case or ignore a trailing slash: every spelling they route alike is judged', () => {
  // Express (and every express.Router()) routes case-insensitively and ignores a trailing slash by
  // default; Fastify can be told to. A deny written for exactly /admin (case-sensitive, as Istio's
  // and Linkerd's paths are) must still stop /ADMIN and /admin/ when the router would serve them
  // from the /admin handler.
  const EXACT_DENY = {
    rules: [
      { name: 'admin-only', action: 'deny', from: { notIdentities: [ADMIN] }, to: { paths: ['/admin'] } },
      { name: 'readers', action: 'allow', from: { identities: ['*'] }, to: { methods: ['GET'] } },
    ],
  };
  const cases: Array<[string, 'web' | 'admin', 403 | string]> = [
    ['/ADMIN', 'web', 403],
    ['/Admin', 'web', 403],
    ['/admin/', 'web', 403],
    ['/ADMIN/', 'web', 403],
    ['/%41dmin', 'web', 403],
    ['/admin', 'admin', 'admin'],
    ['/ADMIN', 'admin', 'admin'],
    ['/public/x', 'web', 'public'],
    ['/PUBLIC/x', 'web', 'public'],
  ];
  const setups: Array<[string, Kind, { caseSensitive: boolean }, Record<string, unknown>]> = [
    ['Express with its defaults', 'express', { caseSensitive: false }, {}],
    ['Express with case-sensitive routing (an express.Router() inside would still fold case)', 'express', { caseSensitive: true }, {}],
    ['Fastify with caseSensitive: false, ignoreTrailingSlash: true', 'fastify', { caseSensitive: true }, { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true } }],
    ['Fastify http2 with caseSensitive: false, ignoreTrailingSlash: true', 'h2:fastify', { caseSensitive: true }, { routerOptions: { caseSensitive: false, ignoreTrailingSlash: true } }],
  ];
  for (const [name, kind, expressOptions, fastifyOptions] of setups) {
    test(name, async () => {
      const m = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: EXACT_DENY } });
      const s = await serve(kind, m, expressOptions, fastifyOptions);
      try {
        for (const [target, as, expect] of cases) {
          const r = await run(s, { target, as, expect: 403 });
          if (expect === 403) {
            assert.equal(r.status, 403, `${name}: ${as} ${target}\n${r.response}`);
            assert.deepEqual(r.ran, [], `${name}: no handler ran for ${as} ${target}`);
          } else {
            assert.equal(r.status, 200, `${name}: ${as} ${target}\n${r.response}`);
            // With case-sensitive routing the upper-case spellings are other paths (no route).
            const folds = kind === 'fastify' || kind === 'h2:fastify' || !expressOptions.caseSensitive || target === target.toLowerCase();
            assert.equal(r.ran[0]?.route, folds ? expect : 'none', `${name}: ${as} ${target}`);
          }
        }
      } finally {
        for (const [key, session] of sessions) if (key.startsWith(`${s.port}/`)) session.close();
        await s.close();
        await m.close();
      }
    });
  }

  test('default Fastify compares case exactly (/Admin is another path there); node:http’s plain handler may wrap any router, so it folds', async () => {
    const m = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: EXACT_DENY } });
    for (const kind of ['node:http', 'fastify'] as const) {
      const s = await serve(kind, m, { caseSensitive: true });
      try {
        const r = await run(s, { target: '/Admin', as: 'web', expect: 403 });
        if (kind === 'fastify') {
          assert.equal(r.status, 200, `${kind}: ${r.response}`);
          assert.equal(r.ran[0]?.route, 'none', `${kind}: /Admin is not the /admin route`);
        } else {
          assert.equal(r.status, 403, `${kind}: a DENY for /admin is widened for an unknown router: ${r.response}`);
          assert.deepEqual(r.ran, []);
        }
      } finally {
        await s.close();
      }
    }
    await m.close();
  });
});
