// SECURITY-CASES 14–23 over real TLS with raw request bytes: the request target is normalized before
// the policy judges it, the app receives exactly what was judged, malformed targets get 400 (and the
// connection is closed), methods and paths match exactly, principals match exactly, and a plaintext
// (unauthenticated) peer never matches an identity rule. Every refused request is checked to have
// never reached the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server } from 'node:https';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh, peerOf } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { ManualSource, filesOf } from '../helpers/certs.js';
import { type RawTlsResult, closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const OTHER_TD = 'other.example';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const id = (sa: string, ns = 'default', td = TD) => `spiffe://${td}/ns/${ns}/sa/${sa}`;

const WEB = id('web');
const ADMIN = id('admin');
const OPS = id('ops');
// Case 21: the principal and its near misses.
const B = id('b', 'a');
const NEAR_MISSES: Record<string, string> = {
  'sa/bb': id('bb', 'a'),
  'sa/b/x': `spiffe://${TD}/ns/a/sa/b/x`,
  'sa/B': id('B', 'a'),
  'ns/A': id('b', 'A'),
  'ns/aa': id('b', 'aa'),
  'another trust domain': id('b', 'a', OTHER_TD),
};

type Client = { certChainPem: string; keyPem: string } | null;

interface Seen {
  method: string | undefined;
  url: string | undefined;
  peer: string | null;
}

interface MeshServer {
  mesh: Mesh;
  server: Server;
  port: number;
  seen: Seen[];
}

function handler(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const s = { method: req.method, url: req.url, peer: peerOf(req)?.spiffeId ?? null };
    seen.push(s);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(s));
  };
}

async function start(options: Parameters<typeof createMesh>[0]): Promise<MeshServer> {
  const mesh = await createMesh({ logger: quiet, ...options } as Parameters<typeof createMesh>[0]);
  const seen: Seen[] = [];
  const server = mesh.createServer(handler(seen));
  const port = await listen(server);
  return { mesh, server, port, seen };
}

async function stop(s: MeshServer | undefined): Promise<void> {
  if (!s) return;
  await closeServer(s.server);
  await s.mesh.close();
}

/** One request line plus a Host header; `Connection: close` so the server ends the exchange. */
const line = (method: string, target: string, extra = '') =>
  `${method} ${target} HTTP/1.1\r\nHost: payments\r\n${extra}Connection: close\r\n\r\n`;

interface Outcome extends RawTlsResult {
  /** What the app saw, when it ran (at most one entry for a single request). */
  app: Seen[];
}

async function send(s: MeshServer, raw: string, who: Client, timeoutMs = 10_000): Promise<Outcome> {
  const from = s.seen.length;
  const r = await rawTlsRequest({
    port: s.port,
    request: raw,
    timeoutMs,
    ...(who && { cert: who.certChainPem, key: who.keyPem }),
  });
  return { ...r, app: s.seen.slice(from) };
}

function refused(r: Outcome, status: 400 | 403, what: string): void {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}\n${r.response}`);
  assert.deepEqual(r.app, [], `${what}: the app must never run for a refused request`);
  assert.equal(r.error?.message.includes('timed out') ?? false, false, `${what}: the server must end the exchange`);
}

function allowed(r: Outcome, url: string, what: string): void {
  assert.equal(r.status, 200, `${what}: expected 200, got ${r.status}\n${r.response}`);
  assert.equal(r.app.length, 1, `${what}: the app runs once`);
  assert.equal(r.app[0]!.url, url, `${what}: the app receives the target the policy judged`);
}

let caA: DevCa;
let caB: DevCa;
const svids: Record<string, IssuedSvid> = {};
const who = (spiffeId: string): Client => svids[spiffeId]!;

// The policy for cases 14–20 and 23: an allow list with a deny rule in front of it.
const TARGET_POLICY = {
  rules: [
    { name: 'no-internal', action: 'deny', to: { paths: ['/internal', '/internal/*'] } },
    { name: 'public', action: 'allow', to: { methods: ['GET', 'HEAD'], paths: ['/public', '/public/*'] } },
    { name: 'admin', action: 'allow', from: { identities: [ADMIN] }, to: { methods: ['GET'], paths: ['/admin', '/admin/*'] } },
    { name: 'ops', action: 'allow', from: { identities: [OPS] } },
    { name: 'host-h', action: 'allow', to: { hosts: ['payments'], paths: ['/h'] } },
    { name: 'b-exact', action: 'allow', from: { identities: [B] }, to: { paths: ['/p'] } },
    { name: 'b-sa', action: 'allow', from: { serviceAccounts: ['a/b'] }, to: { paths: ['/sa'] } },
    { name: 'b-istio-style', action: 'allow', from: { namespaces: ['a'], trustDomains: [TD] }, to: { paths: ['/ns'] } },
  ],
};

let main: MeshServer;

before(async () => {
  caA = await createDevCa({ trustDomain: TD });
  caB = await createDevCa({ trustDomain: OTHER_TD });
  for (const s of [WEB, ADMIN, OPS, B, ...Object.values(NEAR_MISSES)]) {
    svids[s] = await (s.startsWith(`spiffe://${OTHER_TD}/`) ? caB : caA).issue({ spiffeId: s });
  }
  // The mesh trusts its own trust domain and is federated with OTHER_TD, so the near miss from the
  // other trust domain is authenticated (and must still not match).
  const source = new ManualSource();
  source.set(filesOf(await caA.issue({ spiffeId: id('payments') }), caB.bundlePem));
  main = await start({ service: 'payments', identity: { source }, inbound: { policy: TARGET_POLICY } });
});
after(() => stop(main));

describe('case 14: dot segments are removed before the policy judges', () => {
  const toAdmin: Array<[string, string]> = [
    ['/public/../admin', 'plain ..'],
    ['/public/%2e%2e/admin', '%2e%2e'],
    ['/public/%2E%2e/admin', '%2E%2e'],
    ['/public/%2E%2E/admin', '%2E%2E'],
    ['/public/.%2e/admin', '.%2e'],
    ['/public/%2e./admin', '%2e.'],
    ['/public/./../admin', './..'],
    ['/public/x/../../admin', 'two levels'],
    ['/public/x/%2e%2e/%2e%2e/admin', 'two encoded levels'],
    ['/../admin', 'at the start'],
    ['/%2e%2e/admin', 'encoded at the start'],
    ['/../../../admin', 'above the root'],
    ['/public/..', 'at the end (→ /)'],
  ];
  for (const [target, what] of toAdmin) {
    test(`${target} (${what}) is judged as its normalized path: a web client is refused`, async () => {
      refused(await send(main, line('GET', target), who(WEB)), 403, target);
    });
  }

  test('the admin client is admitted through the same targets and the app sees /admin', async () => {
    for (const [target] of toAdmin.filter(([t]) => !t.endsWith('..'))) {
      allowed(await send(main, line('GET', target), who(ADMIN)), '/admin', target);
    }
    allowed(await send(main, line('GET', '/admin/x/..'), who(ADMIN)), '/admin/', '/admin/x/.. (at the end)');
  });

  test('a deny rule sees the normalized path too', async () => {
    for (const t of ['/internal', '/public/../internal', '/public/%2e%2e/internal/x', '//internal', '/x/./../internal/', '/%69nternal']) {
      refused(await send(main, line('GET', t), who(OPS)), 403, `ops ${t}`);
    }
    allowed(await send(main, line('GET', '/internal/../public/x'), who(OPS)), '/public/x', 'out of /internal again');
  });

  test('dot segments that stay inside an allowed prefix are allowed, normalized', async () => {
    allowed(await send(main, line('GET', '/public/a/../b'), who(WEB)), '/public/b', '/public/a/../b');
    allowed(await send(main, line('GET', '/public/./b/.'), who(WEB)), '/public/b/', '/public/./b/.');
    allowed(await send(main, line('GET', '/x/../public/b'), who(WEB)), '/public/b', 'into /public from outside');
    // Segments that only look like dots are kept as they are.
    allowed(await send(main, line('GET', '/public/..a/b'), who(WEB)), '/public/..a/b', '..a');
    allowed(await send(main, line('GET', '/public/.../admin'), who(WEB)), '/public/.../admin', '...');
    allowed(await send(main, line('GET', '/public/..;/admin'), who(WEB)), '/public/..;/admin', '..;');
  });
});

describe('case 15: empty segments are merged before matching', () => {
  test('//admin, /a//admin and their neighbours', async () => {
    for (const t of ['//admin', '///admin', '//admin//', '/public//..//admin', '/public/..//admin']) {
      refused(await send(main, line('GET', t), who(WEB)), 403, `web ${t}`);
    }
    allowed(await send(main, line('GET', '//admin'), who(ADMIN)), '/admin', 'admin //admin');
    allowed(await send(main, line('GET', '/admin//x'), who(ADMIN)), '/admin/x', 'admin /admin//x');
    allowed(await send(main, line('GET', '/public//x'), who(WEB)), '/public/x', '/public//x');
    allowed(await send(main, line('GET', '//public///x//'), who(WEB)), '/public/x/', '//public///x//');
    // /a//admin is /a/admin: neither /admin nor under /public.
    refused(await send(main, line('GET', '/a//admin'), who(ADMIN)), 403, 'admin /a//admin');
    allowed(await send(main, line('GET', '/a//admin'), who(OPS)), '/a/admin', 'ops /a//admin');
  });
});

describe('case 16: encoded separators, backslash, NUL, # and other malformed targets → 400', () => {
  const malformed: Array<[string, string]> = [
    ['/public/%2Fadmin', '%2F'],
    ['/public/%2fadmin', '%2f'],
    ['/public/..%2Fadmin', '..%2F'],
    ['/public/%2e%2e%2fadmin', '%2e%2e%2f'],
    ['%2Fadmin', '%2F at the start'],
    ['/public/admin%2F', '%2F at the end'],
    ['/public/%5Cadmin', '%5C'],
    ['/public/%5cadmin', '%5c'],
    ['/public/..%5c..%5cadmin', '..%5c'],
    ['/public\\..\\admin', 'backslash'],
    ['\\admin', 'backslash at the start'],
    ['/public/x\\', 'backslash at the end'],
    ['/public/%00', '%00'],
    ['/public/x%00.html', '%00 in the middle'],
    ['/public/x#frag', '#'],
    ['/public/#/../admin', '# before dots'],
    ['/public/x?y=1#frag', '# in the query'],
    ['/public/%zz', 'malformed %zz'],
    ['/public/%4', 'truncated %4'],
    ['/public/%', 'lone %'],
    ['/public/%%32%66', 'double-percent'],
    ['public/x', 'not starting with /'],
    ['*', '* with GET'],
  ];
  for (const [target, what] of malformed) {
    test(`${JSON.stringify(target)} (${what}) → 400, the app never runs`, async () => {
      // Whoever sends it: even a peer that may do anything gets 400.
      refused(await send(main, line('GET', target), who(OPS)), 400, target);
    });
  }

  test('bytes Node’s own parser refuses (raw NUL, control characters, DEL, non-ASCII, tab) → 400 too', async () => {
    for (const [target, what] of [
      ['/public/\x00x', 'raw NUL'],
      ['/public/\x01x', 'SOH'],
      ['/public/\x7fx', 'DEL'],
      ['/public/\xe9x', 'latin-1 é'],
      ['/public/\tx', 'tab'],
    ] as const) {
      refused(await send(main, line('GET', target), who(OPS)), 400, what);
    }
  });

  test('a malformed target is counted and its connection is closed: a pipelined request after it never runs', async () => {
    const before = main.mesh.stats().inbound.authz.malformed;
    const pipelined = `GET /public/%2fadmin HTTP/1.1\r\nHost: payments\r\n\r\n` + line('GET', '/public/x');
    const r = await send(main, pipelined, who(WEB));
    refused(r, 400, 'pipelined after %2f');
    assert.equal(r.response.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `exactly one response:\n${r.response}`);
    assert.match(r.response, /\r\nConnection: close\r\n/i);
    assert.equal(main.mesh.stats().inbound.authz.malformed, before + 1);
  });

  test('a 403 does not end the connection: the next pipelined request is judged on its own', async () => {
    const pipelined = `GET /admin HTTP/1.1\r\nHost: payments\r\n\r\n` + line('GET', '/public/x');
    const r = await send(main, pipelined, who(WEB));
    assert.deepEqual(r.response.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 403', 'HTTP/1.1 200'], r.response);
    assert.deepEqual(r.app.map((s) => s.url), ['/public/x']);
  });
});

describe('case 17: unreserved characters are decoded once, never twice', () => {
  test('%61dmin is /admin', async () => {
    for (const t of ['/%61dmin', '/%61%64%6d%69%6e', '/%61%64%6D%69%6E', '/public/../%61dmin', '/public/%2e%2e/%61dmin']) {
      refused(await send(main, line('GET', t), who(WEB)), 403, `web ${t}`);
      allowed(await send(main, line('GET', t), who(ADMIN)), '/admin', `admin ${t}`);
    }
    allowed(await send(main, line('GET', '/%70ublic/%78'), who(WEB)), '/public/x', '/%70ublic/%78');
    allowed(await send(main, line('GET', '/public/%7E%2D%5F%2E%41%7a%30'), who(WEB)), '/public/~-_.Az0', 'every unreserved class');
  });

  test('%2561dmin stays %2561dmin: it is not /admin, and not /%61dmin either', async () => {
    refused(await send(main, line('GET', '/%2561dmin'), who(ADMIN)), 403, 'admin /%2561dmin (no rule for that path)');
    const r = await send(main, line('GET', '/%2561dmin'), who(OPS));
    allowed(r, '/%2561dmin', 'ops /%2561dmin');
    allowed(await send(main, line('GET', '/public/%2561dmin'), who(WEB)), '/public/%2561dmin', '/public/%2561dmin');
    allowed(await send(main, line('GET', '/public/%252e%252e/admin'), who(WEB)), '/public/%252e%252e/admin', '%252e%252e');
    allowed(await send(main, line('GET', '/public/%252F'), who(WEB)), '/public/%252F', '%252F is no separator');
  });

  test('reserved and other encodings are kept (hex upper-cased), never decoded into the path', async () => {
    allowed(await send(main, line('GET', '/public/a%3ab'), who(WEB)), '/public/a%3Ab', '%3a');
    allowed(await send(main, line('GET', '/public/a%20b'), who(WEB)), '/public/a%20b', '%20');
    allowed(await send(main, line('GET', '/public/%3F'), who(WEB)), '/public/%3F', '%3F is no query');
    allowed(await send(main, line('GET', '/public/%23'), who(WEB)), '/public/%23', '%23 is no fragment');
    // %3F does not end the path: /public%3F/../admin is /admin, not /public with a query.
    refused(await send(main, line('GET', '/public%3F/../admin'), who(WEB)), 403, '%3F is no query separator');
  });
});

describe('case 19: query strings never affect path matching', () => {
  test('/admin?x=/public and neighbours', async () => {
    for (const t of ['/admin?x=/public', '/admin?/public/x', '/admin?', '/admin?x=..%2Fpublic', '/public/../admin?x=1']) {
      refused(await send(main, line('GET', t), who(WEB)), 403, `web ${t}`);
    }
    // The query is kept apart and handed on untouched, even when it looks like a path.
    allowed(await send(main, line('GET', '/public/x?y=/../admin'), who(WEB)), '/public/x?y=/../admin', 'dots in the query');
    allowed(await send(main, line('GET', '/public?/../admin'), who(WEB)), '/public?/../admin', 'query that starts with a path');
    allowed(await send(main, line('GET', '/public/x?a=%2F&b=%5C&c=%2561'), who(WEB)), '/public/x?a=%2F&b=%5C&c=%2561', 'encodings in the query');
    allowed(await send(main, line('GET', '/public/../public/x?q=%2e%2e'), who(WEB)), '/public/x?q=%2e%2e', 'path normalized, query not');
    allowed(await send(main, line('GET', '/admin?x=1'), who(ADMIN)), '/admin?x=1', 'admin with a query');
  });
});

describe('case 20: paths are case-sensitive; methods match exactly as sent', () => {
  test('/Admin, /ADMIN and %41dmin are not /admin', async () => {
    for (const t of ['/Admin', '/ADMIN', '/%41dmin', '/aDMIN']) {
      refused(await send(main, line('GET', t), who(ADMIN)), 403, `admin ${t}`);
    }
    refused(await send(main, line('GET', '/PUBLIC/x'), who(WEB)), 403, '/PUBLIC/x');
    refused(await send(main, line('GET', '/Internal'), who(WEB)), 403, 'web /Internal (no allow rule)');
    // The case is kept: the app sees what was sent (and judged).
    allowed(await send(main, line('GET', '/ADMIN'), who(OPS)), '/ADMIN', 'ops /ADMIN');
    allowed(await send(main, line('GET', '/%41dmin'), who(OPS)), '/Admin', 'ops /%41dmin');
  });

  test('a lower-case or unknown method never matches an upper-case rule', async () => {
    // Node's parser refuses these before any listener runs.
    for (const m of ['get', 'Get', 'gET', 'FOO', 'G ET']) {
      refused(await send(main, line(m, '/public/x'), who(WEB)), 400, `method ${m}`);
    }
    // Methods Node knows but the rule does not list.
    for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PROPFIND', 'PURGE', 'PATCH']) {
      refused(await send(main, line(m, '/public/x'), who(WEB)), 403, `method ${m}`);
    }
    allowed(await send(main, line('HEAD', '/public/x'), who(WEB)), '/public/x', 'HEAD is listed');
    // The admin rule lists GET only.
    refused(await send(main, line('HEAD', '/admin'), who(ADMIN)), 403, 'admin HEAD /admin');
    const r = await send(main, line('PROPFIND', '/anything'), who(OPS));
    allowed(r, '/anything', 'ops PROPFIND (no method constraint)');
    assert.equal(r.app[0]!.method, 'PROPFIND');
  });
});

describe('case 23: absolute-form and asterisk-form targets are judged, not crashed on', () => {
  test('GET https://payments/admin is judged as /admin', async () => {
    for (const t of ['https://payments/admin', 'http://payments/admin', 'HTTPS://payments/admin', 'https://PAYMENTS/public/../admin', 'http://payments//admin', 'https://payments/%61dmin']) {
      refused(await send(main, line('GET', t), who(WEB)), 403, `web ${t}`);
    }
    // Case 34: an authority other than Host (a port counts) is refused before any policy.
    refused(await send(main, line('GET', 'https://payments:8443/public/../admin'), who(ADMIN)), 400, 'authority payments:8443, Host payments');
    allowed(await send(main, line('GET', 'https://payments/public/../admin'), who(ADMIN)), '/admin', 'admin absolute-form');
    allowed(await send(main, line('GET', 'https://payments/public/x?q=1'), who(WEB)), '/public/x?q=1', 'web absolute-form');
    allowed(await send(main, line('GET', 'https://payments'), who(OPS)), '/', 'absolute-form without a path');
    allowed(await send(main, line('GET', 'https://payments?q=1'), who(OPS)), '/?q=1', 'absolute-form with a query only');
  });

  test('case 34: one host — an absolute-form authority other than Host is refused (400), never judged as either', async () => {
    const h = (target: string, host: string) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    allowed(await send(main, h('/h', 'payments'), who(WEB)), '/h', 'Host: payments');
    allowed(await send(main, h('/h', 'PAYMENTS:443'), who(WEB)), '/h', 'Host: PAYMENTS:443');
    refused(await send(main, h('/h', 'evil'), who(WEB)), 403, 'Host: evil');
    allowed(await send(main, h('https://payments/h', 'PAYMENTS'), who(WEB)), '/h', 'authority payments, Host PAYMENTS');
    refused(await send(main, h('https://payments/h', 'evil'), who(WEB)), 400, 'authority payments, Host evil');
    refused(await send(main, h('https://evil/h', 'payments'), who(WEB)), 400, 'authority evil, Host payments');
    refused(await send(main, h('https://payments:443/h', 'payments'), who(WEB)), 400, 'authority payments:443, Host payments');
  });

  test('malformed absolute forms → 400', async () => {
    for (const t of ['ftp://payments/public/x', 'https://user@payments/public/x', 'https:///public/x', 'payments/public/x', 'https://payments/public/%2f']) {
      refused(await send(main, line('GET', t), who(OPS)), 400, t);
    }
  });

  test('OPTIONS * is judged: no rule admits it for web, ops may; * with another method → 400', async () => {
    refused(await send(main, line('OPTIONS', '*'), who(WEB)), 403, 'web OPTIONS *');
    allowed(await send(main, line('OPTIONS', '*'), who(OPS)), '*', 'ops OPTIONS *');
    for (const m of ['GET', 'POST', 'HEAD']) refused(await send(main, line(m, '*'), who(OPS)), 400, `${m} *`);
  });

  test('CONNECT (authority form) never reaches the app', async () => {
    const r = await send(main, 'CONNECT payments:443 HTTP/1.1\r\nHost: payments:443\r\n\r\n', who(OPS));
    assert.deepEqual(r.app, []);
    assert.ok(r.status === undefined || r.status >= 400, r.response);
  });

  test('after all of the above the mesh still serves', async () => {
    allowed(await send(main, line('GET', '/public/ok'), who(WEB)), '/public/ok', 'still serving');
  });
});

describe('case 21: a principal matches exactly', () => {
  test('spiffe://cluster.local/ns/a/sa/b is admitted by an exact identity, a service account and namespace+trust domain', async () => {
    for (const p of ['/p', '/sa', '/ns']) allowed(await send(main, line('GET', p), who(B)), p, `b ${p}`);
  });

  for (const [what, near] of Object.entries(NEAR_MISSES)) {
    test(`${what} (${near}) does not match an exact rule for …/ns/a/sa/b`, async () => {
      const r = await send(main, line('GET', '/p'), who(near));
      refused(r, 403, `${what} /p`);
      refused(await send(main, line('GET', '/sa'), who(near)), 403, `${what} /sa`);
      // The client was authenticated (so the refusal is the policy's, not the handshake's).
      const probe = await send(main, line('GET', '/public/who'), who(near));
      assert.equal(probe.app[0]?.peer, near);
    });
  }

  test('namespaces: [a] with trustDomains: [cluster.local] still refuses the other trust domain', async () => {
    refused(await send(main, line('GET', '/ns'), who(NEAR_MISSES['another trust domain']!)), 403, 'other TD /ns');
    refused(await send(main, line('GET', '/ns'), who(NEAR_MISSES['ns/aa']!)), 403, 'ns aa /ns');
  });

  test('an Istio principal (cluster.local/ns/a/sa/b) is exact as well', async () => {
    const source = new ManualSource();
    source.set(filesOf(await caA.issue({ spiffeId: id('payments') }), caB.bundlePem));
    const istio = [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: { name: only-b, namespace: default }',
      'spec:',
      '  action: ALLOW',
      '  rules:',
      '  - from: [{ source: { principals: ["cluster.local/ns/a/sa/b"] } }]',
      '',
    ].join('\n');
    const s = await start({ service: 'payments', identity: { source }, inbound: { policy: istio } });
    try {
      allowed(await send(s, line('GET', '/x'), who(B)), '/x', 'b');
      for (const [what, near] of Object.entries(NEAR_MISSES)) refused(await send(s, line('GET', '/x'), who(near)), 403, what);
    } finally {
      await stop(s);
    }
  });
});

describe('case 22: a plaintext (unauthenticated) peer never matches an identity rule, not even *', () => {
  let permissive: MeshServer;
  const IDENTITY_PATHS = ['/any', '/web', '/prefix', '/suffix', '/ns', '/td', '/sa', '/auth', '/web-or-ip'];
  before(async () => {
    permissive = await start({
      service: 'payments',
      identity: { ca: caA },
      inbound: {
        mode: 'permissive',
        policy: {
          rules: [
            { name: 'any', action: 'allow', from: { identities: ['*'] }, to: { paths: ['/any'] } },
            { name: 'web', action: 'allow', from: { identities: [WEB] }, to: { paths: ['/web'] } },
            { name: 'prefix', action: 'allow', from: { identities: [`spiffe://${TD}/*`] }, to: { paths: ['/prefix'] } },
            { name: 'suffix', action: 'allow', from: { identities: ['*/sa/web'] }, to: { paths: ['/suffix'] } },
            { name: 'ns', action: 'allow', from: { namespaces: ['*'] }, to: { paths: ['/ns'] } },
            { name: 'td', action: 'allow', from: { trustDomains: [TD] }, to: { paths: ['/td'] } },
            { name: 'sa', action: 'allow', from: { serviceAccounts: ['default/*'] }, to: { paths: ['/sa'] } },
            { name: 'auth', action: 'allow', from: { unauthenticated: false }, to: { paths: ['/auth'] } },
            // An identity AND an address in one `from` entry: the address alone never admits plaintext.
            { name: 'web-or-ip', action: 'allow', from: [{ identities: [WEB], ipBlocks: ['127.0.0.0/8'] }], to: { paths: ['/web-or-ip'] } },
            { name: 'plain', action: 'allow', from: { unauthenticated: true }, to: { paths: ['/plain'] } },
            { name: 'no-plaintext', action: 'deny', from: { notIdentities: ['*'] }, to: { paths: ['/secret'] } },
            { name: 'secret', action: 'allow', to: { paths: ['/secret'] } },
          ],
        },
      },
    });
  });
  after(() => stop(permissive));

  test('no client certificate: every identity rule refuses, the unauthenticated rule admits', async () => {
    for (const p of [...IDENTITY_PATHS, '/secret']) refused(await send(permissive, line('GET', p), null), 403, `plaintext ${p}`);
    const r = await send(permissive, line('GET', '/plain'), null);
    allowed(r, '/plain', 'plaintext /plain');
    assert.equal(r.app[0]!.peer, null);
  });

  test('identity headers and a certificate from an unknown CA do not make a peer authenticated', async () => {
    const stranger = await (await createDevCa({ trustDomain: TD })).issue({ spiffeId: WEB });
    const claims = [
      `X-Forwarded-Client-Cert: By=${id('payments')};URI=${WEB}\r\n`,
      `l5d-client-id: web.default.serviceaccount.identity.linkerd.${TD}\r\n`,
    ].join('');
    for (const p of IDENTITY_PATHS) {
      refused(await send(permissive, line('GET', p, claims), null), 403, `plaintext with identity headers ${p}`);
      refused(await send(permissive, line('GET', p), stranger), 403, `unknown CA ${p}`);
    }
  });

  test('the same rules admit an authenticated peer (so the refusals above are about the identity)', async () => {
    for (const p of [...IDENTITY_PATHS, '/secret']) {
      const r = await send(permissive, line('GET', p), who(WEB));
      allowed(r, p, `web ${p}`);
      assert.equal(r.app[0]!.peer, WEB);
    }
    refused(await send(permissive, line('GET', '/plain'), who(WEB)), 403, 'web /plain (unauthenticated only)');
  });
});
