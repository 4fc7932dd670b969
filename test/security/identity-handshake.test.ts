// SECURITY-CASES 1–13 over real TLS sockets: a mesh server and hostile clients holding crafted
// certificates (refused before the app runs), the client side's SPIFFE check (cases 10, 11), and
// identity headers (case 13).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import { type TLSSocket } from 'node:tls';
import { type Logger } from '../../src/config.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { x509 } from '../helpers/x509.js';
import { type Mesh, createMesh, peerOf } from '../../src/index.js';
import { type Crafted, ManualSource, TD, craftLeaf, filesOf, findCode, idOf, messages, rawUriSan } from '../helpers/certs.js';
import { LOOPBACK, type RawTlsResult, closeServer, listen, rawTlsRequest, waitFor } from '../helpers/net.js';

const silent: Logger = { info() {}, warn() {}, error() {} } as unknown as Logger;
const KU = x509.KeyUsageFlags;

interface AppServer {
  mesh: Mesh;
  server: HttpsServer;
  port: number;
  calls: number;
  /** isSessionReused() of every connection the server completed, in order. */
  resumed: boolean[];
}

function app(state: { calls: number }) {
  return (req: IncomingMessage, res: ServerResponse) => {
    state.calls++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ peer: peerOf(req), headers: req.headers, rawHeaders: req.rawHeaders }));
  };
}

async function meshServer(options: Parameters<typeof createMesh>[0]): Promise<AppServer> {
  const mesh = await createMesh({ logger: silent, ...options } as Parameters<typeof createMesh>[0]);
  const state = { calls: 0 };
  const server = mesh.createServer(app(state));
  const resumed: boolean[] = [];
  server.on('secureConnection', (s: TLSSocket) => resumed.push(s.isSessionReused()));
  const port = await listen(server);
  const out: AppServer = {
    mesh,
    server,
    port,
    resumed,
    get calls() {
      return state.calls;
    },
  } as AppServer;
  return out;
}

async function stop(s: AppServer | undefined): Promise<void> {
  if (!s) return;
  await closeServer(s.server);
  await s.mesh.close();
}

function body(r: RawTlsResult): { peer: unknown; headers: Record<string, string>; rawHeaders: string[] } {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.response.slice(0, 200)} ${r.error?.message ?? ''}`);
  return JSON.parse(r.body);
}

let ca: DevCa; // cluster.local
let caI: DevCa; // cluster.local, issuing through one intermediate
let unknownCa: DevCa; // same trust-domain name, another key
let caB: DevCa; // other.example
let strict: AppServer;
let permissive: AppServer;
let goodClient: Crafted;

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  caI = await createDevCa({ trustDomain: TD, intermediates: 1 });
  unknownCa = await createDevCa({ trustDomain: TD });
  caB = await createDevCa({ trustDomain: 'other.example' });
  strict = await meshServer({ service: 'payments', identity: { ca } });
  permissive = await meshServer({
    service: 'open',
    identity: { ca },
    inbound: { mode: 'permissive', identityHeaders: ['X-Client-Identity'] },
  });
  goodClient = await craftLeaf(ca, { uris: [idOf('orders')] });
});

after(async () => {
  await stop(strict);
  await stop(permissive);
});

function send(port: number, c?: { certChainPem: string; keyPem: string }, extra: Partial<Parameters<typeof rawTlsRequest>[0]> = {}) {
  return rawTlsRequest({ port, ...(c && { cert: c.certChainPem, key: c.keyPem }), ...extra });
}

/** Sends with `client` and asserts the STRICT server refused the connection before the app ran. */
async function assertRefused(server: AppServer, client: { certChainPem: string; keyPem: string } | undefined, why: string) {
  const calls = server.calls;
  const hs = server.mesh.stats().inbound.handshakes;
  const before = hs.rejected + hs.tlsErrors;
  const r = await send(server.port, client);
  assert.equal(r.status, undefined, `${why}: the server answered ${r.response.slice(0, 100)}`);
  assert.doesNotMatch(r.response, /HTTP\//, why);
  assert.equal(server.calls, calls, `${why}: the app handler ran`);
  // The refusal was the mesh's doing, and it is counted.
  await waitFor(() => {
    const h = server.mesh.stats().inbound.handshakes;
    return h.rejected + h.tlsErrors > before;
  }, 5_000, `${why}: a counted rejection`);
}

describe('baseline', () => {
  test('a valid SVID is admitted with its identity', async () => {
    const r = await send(strict.port, goodClient);
    const b = body(r);
    assert.deepEqual(b.peer, { id: idOf('orders'), kind: 'spiffe', spiffeId: idOf('orders'), trustDomain: TD, namespace: 'default', serviceAccount: 'orders' });
    assert.equal(strict.calls >= 1, true);
  });

  test('an SVID issued by the dev CA itself is admitted', async () => {
    const issued = await ca.issue({ spiffeId: idOf('web', 'shop') });
    const b = body(await send(strict.port, issued));
    assert.deepEqual(b.peer, { id: idOf('web', 'shop'), kind: 'spiffe', spiffeId: idOf('web', 'shop'), trustDomain: TD, namespace: 'shop', serviceAccount: 'web' });
  });
});

describe('STRICT: hostile client certificates are refused before the app runs', () => {
  // Validity is set from the moment each certificate is made, right before its attempt, with margins
  // no slow machine can eat (OpenSSL checks it against the real clock). The exact ±1 s bounds are
  // tested in test/identity/svid.test.ts at fixed instants.
  const cases: Array<[string, () => Promise<Crafted>]> = [
    ['case 1: two URI SANs', () => craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] })],
    ['case 1: a SPIFFE URI and an https URI', () => craftLeaf(ca, { uris: [idOf('orders'), 'https://example.com/'] })],
    ['case 2: only a DNS SAN', () => craftLeaf(ca, { uris: [], dnsNames: ['orders.default.svc.cluster.local'] })],
    ['case 2: no SAN at all', () => craftLeaf(ca, { san: null, subject: `CN=${idOf('admin')}` })],
    ['case 3: cA=true', () => craftLeaf(ca, { isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign })],
    ['case 3: keyCertSign', () => craftLeaf(ca, { keyUsage: KU.digitalSignature | KU.keyCertSign })],
    ['case 3: cRLSign', () => craftLeaf(ca, { keyUsage: KU.digitalSignature | KU.cRLSign })],
    ['case 4: no digitalSignature', () => craftLeaf(ca, { keyUsage: KU.keyEncipherment })],
    ['case 4: no key usage at all', () => craftLeaf(ca, { keyUsage: null })],
    ['case 5: spiffe://td without a path', () => craftLeaf(ca, { uris: [`spiffe://${TD}`] })],
    ['case 5: spiffe://td/ (trailing slash)', () => craftLeaf(ca, { uris: [`spiffe://${TD}/`] })],
    ['case 7: expired 1 s ago', () => craftLeaf(ca, { notBefore: Date.now() - 3_600_000, notAfter: Date.now() - 1_000 })],
    ['case 7: not valid for another 10 minutes', () => craftLeaf(ca, { notBefore: Date.now() + 600_000, notAfter: Date.now() + 3_600_000 })],
    ['case 9: NUL byte in the URI SAN', () => craftLeaf(ca, { san: rawUriSan([`${idOf('admin')}\u0000.evil`]) })],
    ['case 9: ", URI:spiffe://…" inside the URI SAN', () => craftLeaf(ca, { san: rawUriSan([`${idOf('evil')}, URI:${idOf('admin')}`]) })],
    ['case 12: a certificate from an unknown CA', () => craftLeaf(unknownCa, { uris: [idOf('orders')] })],
    ['case 12: a leaf of a CA with intermediates, sent without them', async () => {
      const c = await craftLeaf(caI, { uris: [idOf('orders')] });
      return { ...c, certChainPem: c.leafPem };
    }],
  ];
  for (const [name, make] of cases) {
    test(name, async () => {
      await assertRefused(strict, await make(), name);
    });
  }

  test('case 12: no client certificate', async () => {
    await assertRefused(strict, undefined, 'no client certificate');
  });

  test('case 12: a self-signed certificate naming a mesh identity', async () => {
    const self = await createDevCa({ trustDomain: TD });
    const { certPem } = await self.exportPem();
    const leaf = await craftLeaf(self, { uris: [idOf('orders')] });
    await assertRefused(strict, { certChainPem: leaf.leafPem + certPem, keyPem: leaf.keyPem }, 'self-made chain');
  });

  test('the connection that follows a refusal is judged afresh (a valid client still gets in)', async () => {
    await assertRefused(strict, await craftLeaf(ca, { uris: [idOf('a'), idOf('b')] }), 'two URIs');
    assert.equal((body(await send(strict.port, goodClient)).peer as { spiffeId: string }).spiffeId, idOf('orders'));
  });
});

describe('case 6: federation: a chain is verified against the leaf’s own trust domain', () => {
  let fed: AppServer;
  before(async () => {
    const fedCa = await createDevCa({ trustDomain: TD });
    const source = new ManualSource();
    source.set(filesOf(await fedCa.issue({ spiffeId: idOf('payments') }), caB.bundlePem));
    assert.deepEqual([...source.getBundles().keys()].sort(), ['cluster.local', 'other.example']);
    fed = await meshServer({ service: 'payments', identity: { source } });
    (fed as AppServer & { fedCa: DevCa }).fedCa = fedCa;
  });
  after(() => stop(fed));

  test('the CA of B signs a leaf naming A → refused, though OpenSSL alone would accept the chain', async () => {
    await assertRefused(fed, await craftLeaf(caB, { uris: [idOf('admin')] }), 'B vouching for A');
    assert.match(fed.mesh.stats().inbound.handshakes.lastRejection ?? '', /does not lead to a root of trust domain "cluster.local"/);
  });

  test('B’s own workloads are admitted with B’s identity; A’s with A’s', async () => {
    const b = body(await send(fed.port, await craftLeaf(caB, { uris: ['spiffe://other.example/ns/x/sa/y'] })));
    assert.deepEqual(b.peer, { id: 'spiffe://other.example/ns/x/sa/y', kind: 'spiffe', spiffeId: 'spiffe://other.example/ns/x/sa/y', trustDomain: 'other.example', namespace: 'x', serviceAccount: 'y' });
    const fedCa = (fed as AppServer & { fedCa: DevCa }).fedCa;
    const a = body(await send(fed.port, await craftLeaf(fedCa, { uris: [idOf('orders')] })));
    assert.equal((a.peer as { trustDomain: string }).trustDomain, TD);
  });

  test('a trust domain with no bundle is refused', async () => {
    const caC = await createDevCa({ trustDomain: 'third.example' });
    await assertRefused(fed, await craftLeaf(caC, { uris: ['spiffe://third.example/x'] }), 'unknown trust domain');
  });
});

describe('case 12: PERMISSIVE: unauthenticated peers reach the app with peerOf(req) === null', () => {
  const cases: Array<[string, () => Promise<Crafted | undefined>]> = [
    ['no client certificate', async () => undefined],
    ['a certificate from an unknown CA', () => craftLeaf(unknownCa, { uris: [idOf('orders')] })],
    ['a leaf with two URI SANs', () => craftLeaf(ca, { uris: [idOf('orders'), idOf('admin')] })],
    ['case 6 in permissive: another CA naming us', () => craftLeaf(caB, { uris: [idOf('admin')] })],
  ];
  for (const [name, make] of cases) {
    test(name, async () => {
      const b = body(await send(permissive.port, await make()));
      assert.equal(b.peer, null);
    });
  }

  test('a valid SVID is still authenticated', async () => {
    const b = body(await send(permissive.port, goodClient));
    assert.equal((b.peer as { spiffeId: string }).spiffeId, idOf('orders'));
  });

  test('never plaintext: an HTTP/1.1 request without TLS gets no answer from the app', async () => {
    const { connect } = await import('node:net');
    const calls = permissive.calls;
    const text = await new Promise<string>((resolve) => {
      const s = connect(permissive.port, LOOPBACK, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve(out));
      setTimeout(() => s.destroy(), 3_000).unref();
    });
    assert.doesNotMatch(text, /HTTP\/1\.1 200/);
    assert.equal(permissive.calls, calls);
  });
});

describe('case 13: identity headers never change peerOf and never reach the app', () => {
  const claims: Array<[string, string]> = [
    ['x-forwarded-client-cert', `By=${idOf('orders')};URI=${idOf('admin')}`],
    ['X-Forwarded-Client-Cert', `URI=${idOf('admin')}`],
    ['l5d-client-id', 'admin.default.serviceaccount.identity.linkerd.cluster.local'],
    ['L5D-Client-Identity', 'admin.default.serviceaccount.identity.linkerd.cluster.local'],
  ];
  const names = new Set(['x-forwarded-client-cert', 'l5d-client-id', 'l5d-client-identity', 'x-client-identity']);
  const assertStripped = (b: { headers: Record<string, string>; rawHeaders: string[] }) => {
    for (const h of Object.keys(b.headers)) assert.ok(!names.has(h), `req.headers still has ${h}`);
    for (let i = 0; i < b.rawHeaders.length; i += 2) assert.ok(!names.has(b.rawHeaders[i]!.toLowerCase()), `rawHeaders still has ${b.rawHeaders[i]}`);
    assert.equal(b.headers['x-kept'], 'yes', 'other headers are untouched');
    assert.ok(b.rawHeaders.includes('X-Kept'));
  };

  test('STRICT: the verified SVID decides, the headers are removed from headers and rawHeaders', async () => {
    const b = body(await send(strict.port, goodClient, { headers: [...claims, ['X-Kept', 'yes']] }));
    assert.equal((b.peer as { spiffeId: string }).spiffeId, idOf('orders'));
    assertStripped(b);
    assert.ok(strict.mesh.stats().inbound.requests.identityHeadersRemoved >= 1);
  });

  test('PERMISSIVE without a certificate: still null; configured identity headers are removed too', async () => {
    const b = body(await send(permissive.port, undefined, { headers: [...claims, ['x-client-identity', idOf('admin')], ['X-Kept', 'yes']] }));
    assert.equal(b.peer, null);
    assertStripped(b);
  });

  test('a header that only looks similar is kept (exact names, not prefixes)', async () => {
    const b = body(await send(strict.port, goodClient, { headers: [['x-forwarded-client-cert-extra', 'v'], ['X-Kept', 'yes']] }));
    assert.equal(b.headers['x-forwarded-client-cert-extra'], 'v');
  });

  test('through mesh.fetch: the server sees the caller’s SVID, not the claimed header', async (t) => {
    const client = await createMesh({
      service: 'orders',
      identity: { ca },
      logger: silent,
      outbound: { services: { payments: { endpoints: [`${LOOPBACK}:${strict.port}`] } } },
    } as Parameters<typeof createMesh>[0]);
    t.after(() => client.close());
    const res = await client.fetch('http://payments/who', { headers: { 'x-forwarded-client-cert': `URI=${idOf('admin')}`, 'l5d-client-id': 'admin' } });
    assert.equal(res.status, 200);
    const b = (await res.json()) as { peer: { spiffeId: string }; headers: Record<string, string> };
    assert.equal(b.peer.spiffeId, idOf('orders'));
    assert.equal(b.headers['x-forwarded-client-cert'], undefined);
    assert.equal(b.headers['l5d-client-id'], undefined);
  });
});

describe('case 10: the client checks the server’s SPIFFE ID, not its hostname', () => {
  let evil: HttpsServer | undefined;
  let evilCalls = 0;
  after(async () => {
    if (evil) await closeServer(evil);
  });

  async function evilServer(c: { certChainPem: string; keyPem: string }): Promise<number> {
    if (evil) await closeServer(evil);
    evil = createHttpsServer({ cert: c.certChainPem, key: c.keyPem }, (_req, res) => {
      evilCalls++;
      res.end('evil');
    });
    return listen(evil);
  }

  async function client(port: number, identity: Parameters<typeof createMesh>[0]['identity'] = { ca }) {
    return createMesh({
      service: 'orders',
      identity,
      logger: silent,
      outbound: { egress: 'deny', services: { payments: { endpoints: [`${LOOPBACK}:${port}`] } } },
    } as Parameters<typeof createMesh>[0]);
  }

  async function assertFetchRefused(mesh: Mesh, pattern: RegExp, code = 'ERR_SIDECARLESS_PEER_IDENTITY') {
    const calls = evilCalls;
    const err = await mesh.fetch('http://payments/charge', { method: 'POST', body: 'secret' }).then(
      (r) => assert.fail(`expected a refusal, got ${r.status}`),
      (e: unknown) => e,
    );
    const peerErr = findCode(err, code);
    assert.ok(peerErr, `${code} expected, got: ${messages(err)}`);
    assert.match(peerErr.message, pattern);
    assert.equal(evilCalls, calls, 'no request reached the impostor');
  }

  const DNS = ['payments', 'payments.default', 'payments.default.svc', 'payments.default.svc.cluster.local', 'localhost'];

  test('matching DNS SAN, another SPIFFE ID → ERR_SIDECARLESS_PEER_IDENTITY', async (t) => {
    const port = await evilServer(await craftLeaf(ca, { uris: [idOf('evil')], dnsNames: DNS }));
    const mesh = await client(port);
    t.after(() => mesh.close());
    await assertFetchRefused(mesh, /expected spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments, the peer presented spiffe:\/\/cluster\.local\/ns\/default\/sa\/evil/);
  });

  test('matching DNS SAN and no URI SAN → refused', async (t) => {
    const port = await evilServer(await craftLeaf(ca, { uris: [], dnsNames: DNS }));
    const mesh = await client(port);
    t.after(() => mesh.close());
    await assertFetchRefused(mesh, /no URI SAN/);
  });

  test('the right SPIFFE ID from an unknown CA → refused', async (t) => {
    const port = await evilServer(await craftLeaf(unknownCa, { uris: [idOf('payments')], dnsNames: DNS }));
    const mesh = await client(port);
    t.after(() => mesh.close());
    // OpenSSL refuses it first (the root is unknown): Node's own TLS error, no fallback.
    await assertFetchRefused(mesh, /unable to verify|unable to get/, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test('the right SPIFFE ID, server leaf with two URI SANs → refused', async (t) => {
    const port = await evilServer(await craftLeaf(ca, { uris: [idOf('payments'), idOf('evil')], dnsNames: DNS }));
    const mesh = await client(port);
    t.after(() => mesh.close());
    await assertFetchRefused(mesh, /2 URI SANs/);
  });

  test('case 6 client side: B’s CA vouching for A’s payments → refused even with B’s bundle known', async (t) => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: idOf('orders') }), caB.bundlePem));
    const port = await evilServer(await craftLeaf(caB, { uris: [idOf('payments')], dnsNames: DNS }));
    const mesh = await client(port, { source });
    t.after(() => mesh.close());
    await assertFetchRefused(mesh, /does not lead to a root of trust domain "cluster.local"/);
  });

  test('control: the real payments server is accepted', async (t) => {
    const mesh = await client(strict.port);
    t.after(() => mesh.close());
    const res = await mesh.fetch('http://payments/charge');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { peer: { spiffeId: string } }).peer.spiffeId, idOf('orders'));
  });
});

describe('case 11: resumed TLS sessions', () => {
  test('client side: a resumed session still enforces the expected server ID', async (t) => {
    const server = await meshServer({ service: 'payments', identity: { ca } });
    t.after(() => stop(server));
    const mesh = await createMesh({
      service: 'orders',
      identity: { ca },
      logger: silent,
      outbound: { services: { payments: { endpoints: [{ address: `${LOOPBACK}:${server.port}`, identity: idOf('payments') }] } } },
    } as Parameters<typeof createMesh>[0]);
    t.after(() => mesh.close());
    const first = await mesh.fetch('http://payments/one');
    assert.equal(first.status, 200);
    await first.text();
    assert.deepEqual(server.resumed, [false]);

    // Drop the idle connection: the next call reconnects and resumes the session it kept.
    server.server.closeIdleConnections();
    await new Promise((r) => setTimeout(r, 100));
    const second = await mesh.fetch('http://payments/two');
    assert.equal(second.status, 200);
    await second.text();
    await waitFor(() => server.resumed.length >= 2, 3_000, 'the second handshake on the server');
    assert.equal(server.resumed[1], true, 'the client offers its session and the server resumes it');

    // Same address, another expected identity: a new pool, a new connection that offers the session again.
    mesh.setEndpoints('payments', [{ address: `${LOOPBACK}:${server.port}`, identity: idOf('other') }]);
    const calls = server.calls;
    const err = await mesh.fetch('http://payments/three').then(
      (r) => assert.fail(`a resumed session skipped the identity check: ${r.status}`),
      (e: unknown) => e,
    );
    const peerErr = findCode(err, 'ERR_SIDECARLESS_PEER_IDENTITY');
    assert.ok(peerErr, messages(err));
    assert.match(peerErr.message, /expected spiffe:\/\/cluster\.local\/ns\/default\/sa\/other, the peer presented spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
    assert.equal(server.calls, calls);

    // Back to the right identity: works again.
    mesh.setEndpoints('payments', [{ address: `${LOOPBACK}:${server.port}`, identity: idOf('payments') }]);
    const again = await mesh.fetch('http://payments/four');
    assert.equal(again.status, 200);
    await again.text();
  });

  test('server side: a resumed connection still carries the verified peer identity', async () => {
    const r1 = await send(strict.port, goodClient);
    assert.equal((body(r1).peer as { spiffeId: string }).spiffeId, idOf('orders'));
    assert.ok(r1.session, 'the server issued a session ticket');
    const r2 = await send(strict.port, goodClient, { session: r1.session! });
    assert.equal(r2.sessionReused, true, 'resumed');
    assert.deepEqual(body(r2).peer, { id: idOf('orders'), kind: 'spiffe', spiffeId: idOf('orders'), trustDomain: TD, namespace: 'default', serviceAccount: 'orders' });
  });

  test('server side: a session from another client’s ticket still names that client, not the presenter', async () => {
    // Resumption carries the original peer: presenting another certificate does not change the identity.
    const r1 = await send(strict.port, goodClient);
    const other = await craftLeaf(ca, { uris: [idOf('admin')] });
    const r2 = await send(strict.port, other, { session: r1.session! });
    const peer = body(r2).peer as { spiffeId: string };
    assert.equal(peer.spiffeId, r2.sessionReused ? idOf('orders') : idOf('admin'));
  });

  test('server side: PERMISSIVE resumption of an unauthenticated session stays unauthenticated', async () => {
    const r1 = await send(permissive.port, undefined);
    assert.equal(body(r1).peer, null);
    const r2 = await send(permissive.port, undefined, { session: r1.session! });
    assert.equal(body(r2).peer, null);
  });
});

// SPIRE deployments usually issue through intermediates (UpstreamAuthority): svid.pem is the leaf
// then intermediates. These fail today: src/tls/peer.ts calls socket.getPeerX509Certificate() before
// socket.getPeerCertificate(true), and Node's getPeerX509Certificate() removes the leaf from
// OpenSSL's peer-chain stack (nodejs/node#65579), so the intermediates are never seen.
describe('chains through an intermediate CA', () => {
  let server: AppServer;
  before(async () => {
    server = await meshServer({ service: 'payments', identity: { ca: caI } });
  });
  after(() => stop(server));

  test('a client SVID issued through an intermediate is admitted (server side)', async () => {
    const c = await craftLeaf(caI, { uris: [idOf('orders')] });
    const b = body(await send(server.port, c));
    assert.equal((b.peer as { spiffeId: string }).spiffeId, idOf('orders'));
  });

  test('mesh.fetch to a server whose SVID is issued through an intermediate (client side)', async (t) => {
    const client = await createMesh({
      service: 'orders',
      identity: { ca: caI },
      logger: silent,
      outbound: { services: { payments: { endpoints: [`${LOOPBACK}:${server.port}`] } } },
    } as Parameters<typeof createMesh>[0]);
    t.after(() => client.close());
    const res = await client.fetch('http://payments/x');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { peer: { spiffeId: string } }).peer.spiffeId, idOf('orders'));
  });

  test('hostile leaves of the intermediate-issuing CA are still refused', async () => {
    await assertRefused(server, await craftLeaf(caI, { uris: [idOf('a'), idOf('b')] }), 'two URIs via intermediate');
    await assertRefused(server, await craftLeaf(caB, { uris: [idOf('admin')] }), 'another CA');
  });
});
