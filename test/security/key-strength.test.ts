// SECURITY-CASES 37 over real TLS sockets, both directions: weak keys (RSA < 2048, DSA, ECDSA on
// other curves) anywhere in a presented chain are refused at the handshake with OUR message —
// visible in the server's stats (lastRejection) and in the client's PeerIdentityError — and so is a
// weak key in our own SVID (dir source, user-given source). Chains are made by the openssl CLI.
// Also the chain-depth bound over TLS: 6 intermediate CAs pass, 7 are refused.
//
// Where OpenSSL decides first (TLS, not X.509): a DSA or P-224/secp256k1 LEAF cannot sign a TLS 1.3
// handshake, so an OpenSSL client does not send it (the server sees no certificate) and an OpenSSL
// server cannot use it (handshake failure, before any certificate); over TLS 1.2 a P-224 leaf is on
// a curve the server does not offer (refused by OpenSSL), while a DSA client leaf does reach the
// mesh, and is refused by our check. Intermediates and roots are never judged by
// TLS signature rules: only our check stands between them and the app.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import { type ConnectionOptions } from 'node:tls';
import { type Logger } from '../../src/config.js';
import { bundlesFromPem } from '../../src/identity/bundle.js';
import { parseCertificate } from '../../src/identity/certificate.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { pemToCertDers } from '../../src/identity/pem.js';
import { type Mesh, type X509Source, createMesh, peerOf } from '../../src/index.js';
import { ManualSource, TD, craftLeaf, findCode, idOf, messages, tempDir, writeSvidDir } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen, rawTlsRequest, waitFor } from '../helpers/net.js';
import { type KeySpec, OpensslCa } from '../helpers/openssl-ca.js';

type Options = Parameters<typeof createMesh>[0];
const silent: Logger = { info() {}, warn() {}, error() {} };
const RULE = /sidecarless requires RSA ≥ 2048 bits, ECDSA P-256\/P-384 or Ed25519/;

interface Pem {
  certChainPem: string;
  keyPem: string;
}

let work: Awaited<ReturnType<typeof tempDir>>;
let bundlePem: string; // the openssl root, weak.example's RSA-1024 root, the dev CAs with 6 and 7 intermediates
let own: Record<'payments' | 'orders', Pem>;
const clients: Record<string, Pem> = {};
const servers: Record<string, Pem> = {};
const ownSvids: Record<string, Pem & { bundlePem: string }> = {};
let deep6: DevCa;
let deep7: DevCa;

before(async () => {
  work = await tempDir('sidecarless-weak-keys-');
  try {
    const root = await OpensslCa.root(work.dir, TD, 'ec-P-256');
    const weakRoot = await OpensslCa.root(work.dir, 'weak.example', 'rsa-1024');
    const ints: Record<string, OpensslCa> = {};
    for (const k of ['rsa-1024', 'dsa-2048', 'ec-P-224', 'ec-secp256k1', 'rsa-2048'] as KeySpec[]) ints[k] = await root.intermediate(k);
    deep6 = await createDevCa({ trustDomain: TD, intermediates: 6 });
    deep7 = await createDevCa({ trustDomain: TD, intermediates: 7 });
    bundlePem = root.bundlePem + weakRoot.bundlePem + deep6.bundlePem + deep7.bundlePem;
    own = { payments: await root.leaf(idOf('payments')), orders: await root.leaf(idOf('orders')) };
    const weak = idOf('weak');
    const c = async (name: string, x: Promise<Pem>) => (clients[name] = await x);
    await c('rsa-1024 leaf', root.leaf(weak, 'rsa-1024'));
    await c('dsa-2048 leaf', root.leaf(weak, 'dsa-2048'));
    await c('P-224 leaf', root.leaf(weak, 'ec-P-224'));
    await c('rsa-1024 intermediate', ints['rsa-1024']!.leaf(weak));
    await c('dsa-2048 intermediate', ints['dsa-2048']!.leaf(weak));
    await c('P-224 intermediate', ints['ec-P-224']!.leaf(weak));
    await c('secp256k1 intermediate', ints['ec-secp256k1']!.leaf(weak));
    await c('rsa-1024 root', weakRoot.leaf('spiffe://weak.example/ns/default/sa/weak'));
    await c('rsa-2048 leaf', root.leaf(idOf('strong'), 'rsa-2048'));
    await c('rsa-4096 leaf', root.leaf(idOf('strong'), 'rsa-4096'));
    await c('ed25519 leaf', root.leaf(idOf('strong'), 'ed25519'));
    await c('P-384 leaf under an rsa-2048 intermediate', ints['rsa-2048']!.leaf(idOf('strong'), 'ec-P-384'));
    const pay = idOf('payments');
    const s = async (name: string, x: Promise<Pem>) => (servers[name] = await x);
    await s('rsa-1024 leaf', root.leaf(pay, 'rsa-1024'));
    await s('dsa-2048 leaf', root.leaf(pay, 'dsa-2048'));
    await s('rsa-1024 intermediate', ints['rsa-1024']!.leaf(pay));
    await s('dsa-2048 intermediate', ints['dsa-2048']!.leaf(pay));
    await s('P-224 intermediate', ints['ec-P-224']!.leaf(pay));
    await s('rsa-2048 leaf', root.leaf(pay, 'rsa-2048'));
    await s('ed25519 leaf', root.leaf(pay, 'ed25519'));
    const o = async (name: string, x: Promise<Pem & { bundlePem: string }>) => (ownSvids[name] = await x);
    await o('rsa-1024', root.leaf(idOf('orders'), 'rsa-1024'));
    await o('dsa-2048 intermediate', ints['dsa-2048']!.leaf(idOf('orders')));
    await o('rsa-2048', root.leaf(idOf('payments'), 'rsa-2048'));
    await o('ed25519', root.leaf(idOf('orders'), 'ed25519'));
  } finally {
    await work.remove(); // the CA keys were on disk only while signing
  }
});

function manual(svid: Pem): ManualSource {
  const source = new ManualSource();
  source.set({ ...svid, bundlePem });
  return source;
}

interface AppServer {
  mesh: Mesh;
  server: HttpsServer;
  port: number;
  calls: number;
}

async function meshServer(mode: 'strict' | 'permissive'): Promise<AppServer> {
  const mesh = await createMesh({ service: 'payments', logger: silent, identity: { source: manual(own.payments) }, inbound: { mode } } as Options);
  const state = { calls: 0 };
  const server = mesh.createServer((req: IncomingMessage, res: ServerResponse) => {
    state.calls++;
    res.end(JSON.stringify({ peer: peerOf(req) }));
  });
  const port = await listen(server);
  return {
    mesh,
    server,
    port,
    get calls() {
      return state.calls;
    },
  };
}

describe('inbound: the mesh server refuses a client whose chain holds a weak key', () => {
  let strict: AppServer;
  let permissive: AppServer;
  before(async () => {
    strict = await meshServer('strict');
    permissive = await meshServer('permissive');
  });
  after(async () => {
    for (const s of [strict, permissive]) {
      await closeServer(s.server);
      await s.mesh.close();
    }
  });

  async function refused(client: Pem, why: RegExp, tls: Partial<ConnectionOptions> = {}) {
    const calls = strict.calls;
    const before = strict.mesh.stats().inbound.handshakes;
    const r = await rawTlsRequest({ port: strict.port, cert: client.certChainPem, key: client.keyPem, tls });
    assert.equal(r.status, undefined, `the server answered: ${r.response.slice(0, 120)}`);
    assert.equal(strict.calls, calls, 'the app ran');
    await waitFor(() => {
      const h = strict.mesh.stats().inbound.handshakes;
      return h.rejected + h.tlsErrors > before.rejected + before.tlsErrors;
    }, 5_000, 'a counted rejection');
    const h = strict.mesh.stats().inbound.handshakes;
    assert.match(h.lastRejection ?? '', why);
    return h;
  }

  const ours: Array<[string, RegExp]> = [
    ['rsa-1024 leaf', /^the leaf certificate of spiffe:\/\/cluster\.local\/ns\/default\/sa\/weak has a weak or unsupported key \(RSA 1024 bits\)/],
    ['rsa-1024 intermediate', /^the intermediate CA "O=openssl test intermediate \d+ \(rsa-1024\)" in the chain of spiffe:\/\/cluster\.local\/ns\/default\/sa\/weak has a weak or unsupported key \(RSA 1024 bits\)/],
    ['dsa-2048 intermediate', /intermediate CA .* has a weak or unsupported key \(DSA 2048 bits\)/],
    ['P-224 intermediate', /intermediate CA .* has a weak or unsupported key \(ECDSA P-224\)/],
    ['secp256k1 intermediate', /intermediate CA .* has a weak or unsupported key \(ECDSA secp256k1\)/],
    ['rsa-1024 root', /^the root CA "O=openssl test root \d+ \(rsa-1024\)" of trust domain "weak\.example" has a weak or unsupported key \(RSA 1024 bits\)/],
  ];
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    for (const [name, why] of ours) {
      test(`${name} (${version}): refused by our check, with our message, before the app`, async () => {
        const h = await refused(clients[name]!, why, { maxVersion: version });
        assert.match(h.lastRejection!, RULE);
      });
    }
  }

  test('dsa-2048 leaf over TLS 1.2: OpenSSL lets it through, our check refuses it', async () => {
    await refused(clients['dsa-2048 leaf']!, /leaf certificate of .*sa\/weak has a weak or unsupported key \(DSA 2048 bits\)/, { maxVersion: 'TLSv1.2' });
  });

  test('dsa-2048 leaf over TLS 1.3: the OpenSSL client cannot sign with it and sends no certificate; refused as such', async () => {
    await refused(clients['dsa-2048 leaf']!, /peer did not return a certificate/);
  });

  test('P-224 leaf: OpenSSL refuses it first (TLS 1.3: no signature scheme, the client sends no certificate; TLS 1.2: a curve the server does not offer)', async () => {
    await refused(clients['P-224 leaf']!, /peer did not return a certificate/);
    await refused(clients['P-224 leaf']!, /wrong curve/, { maxVersion: 'TLSv1.2' });
  });

  test('PERMISSIVE: a weak chain is no identity (peerOf is null), never an identity', async () => {
    for (const name of ['rsa-1024 leaf', 'dsa-2048 intermediate']) {
      const c = clients[name]!;
      const r = await rawTlsRequest({ port: permissive.port, cert: c.certChainPem, key: c.keyPem });
      assert.equal(r.status, 200, r.response.slice(0, 120));
      assert.equal(JSON.parse(r.body).peer, null, name);
    }
  });

  for (const name of ['rsa-2048 leaf', 'rsa-4096 leaf', 'ed25519 leaf', 'P-384 leaf under an rsa-2048 intermediate']) {
    test(`the floor itself: ${name} is admitted with its identity`, async () => {
      const c = clients[name]!;
      const r = await rawTlsRequest({ port: strict.port, cert: c.certChainPem, key: c.keyPem });
      assert.equal(r.status, 200, `${r.response.slice(0, 120)} ${r.error?.message ?? ''}`);
      assert.equal(JSON.parse(r.body).peer.spiffeId, idOf('strong'));
    });
  }

  test('chain depth: 6 intermediate CAs are admitted, 7 are refused (9 certificates with the root OpenSSL appends)', async () => {
    const ok = await craftLeaf(deep6, { uris: [idOf('deep')] });
    const r = await rawTlsRequest({ port: strict.port, cert: ok.certChainPem, key: ok.keyPem });
    assert.equal(r.status, 200, `${r.response.slice(0, 120)} ${r.error?.message ?? ''}`);
    assert.equal(JSON.parse(r.body).peer.spiffeId, idOf('deep'));
    const tooDeep = await craftLeaf(deep7, { uris: [idOf('deep')] });
    await refused(tooDeep, /the chain has 9 certificates, more than 8 \(a leaf, at most 6 intermediate CAs and a root\)/);
  });
});

describe('outbound: the mesh client refuses a server whose chain holds a weak key', () => {
  let evil: HttpsServer | undefined;
  let evilCalls = 0;
  let client: Mesh;
  before(async () => {
    client = await createMesh({
      service: 'orders',
      logger: silent,
      identity: { source: manual(own.orders) },
      outbound: { egress: 'deny', services: { payments: { endpoints: [`${LOOPBACK}:1`], retry: false } } },
    } as Options);
  });
  after(async () => {
    if (evil) await closeServer(evil);
    await client.close();
  });

  async function serveWith(c: Pem, maxVersion?: 'TLSv1.2'): Promise<void> {
    if (evil) await closeServer(evil);
    evil = createHttpsServer({ cert: c.certChainPem, key: c.keyPem, ...(maxVersion && { maxVersion }) }, (_req, res) => {
      evilCalls++;
      res.end('served');
    });
    client.setEndpoints('payments', [`${LOOPBACK}:${await listen(evil)}`]);
  }

  async function fetchRefused(): Promise<unknown> {
    const calls = evilCalls;
    const err = await client.fetch('http://payments/charge', { method: 'POST', body: 'secret' }).then(
      (r) => assert.fail(`expected a refusal, got ${r.status}`),
      (e: unknown) => e,
    );
    assert.equal(evilCalls, calls, 'no request reached the server');
    return err;
  }

  const ours: Array<[string, RegExp, 'TLSv1.2'?]> = [
    ['rsa-1024 leaf', /the leaf certificate of spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments has a weak or unsupported key \(RSA 1024 bits\)/],
    ['rsa-1024 leaf', /the leaf certificate of .*sa\/payments has a weak or unsupported key \(RSA 1024 bits\)/, 'TLSv1.2'],
    ['rsa-1024 intermediate', /intermediate CA "O=openssl test intermediate \d+ \(rsa-1024\)" in the chain of .*sa\/payments has a weak or unsupported key \(RSA 1024 bits\)/],
    ['dsa-2048 intermediate', /intermediate CA .* in the chain of .*sa\/payments has a weak or unsupported key \(DSA 2048 bits\)/],
    ['P-224 intermediate', /intermediate CA .* has a weak or unsupported key \(ECDSA P-224\)/],
  ];
  for (const [name, why, version] of ours) {
    test(`${name}${version ? ' (server capped at TLS 1.2)' : ''}: PeerIdentityError with our message, the verifier's error as its cause`, async () => {
      await serveWith(servers[name]!, version);
      const err = await fetchRefused();
      const peerErr = findCode(err, 'ERR_SIDECARLESS_PEER_IDENTITY');
      assert.ok(peerErr, `ERR_SIDECARLESS_PEER_IDENTITY expected, got: ${messages(err)}`);
      assert.match(peerErr.message, why);
      assert.match(peerErr.message, RULE);
      assert.match(peerErr.message, /^payments/, 'names the service');
      assert.equal((peerErr.cause as { code?: string } | undefined)?.code, 'ERR_SIDECARLESS_SVID_INVALID');
    });
  }

  test('dsa-2048 leaf: no TLS handshake is possible with our client (no DSA signature in TLS 1.3, no DSS cipher suite in 1.2)', async () => {
    await serveWith(servers['dsa-2048 leaf']!);
    const err = await fetchRefused();
    assert.match(messages(err), /handshake failure|no shared cipher|no suitable signature/i);
  });

  for (const name of ['rsa-2048 leaf', 'ed25519 leaf']) {
    test(`the floor itself: a server with an ${name} is called`, async () => {
      await serveWith(servers[name]!);
      const r = await client.fetch('http://payments/charge');
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'served');
    });
  }

  test('chain depth: a server behind 6 intermediate CAs is called, behind 7 it is refused', async () => {
    await serveWith(await craftLeaf(deep6, { uris: [idOf('payments')] }));
    assert.equal((await client.fetch('http://payments/charge')).status, 200);
    await serveWith(await craftLeaf(deep7, { uris: [idOf('payments')] }));
    const err = await fetchRefused();
    const peerErr = findCode(err, 'ERR_SIDECARLESS_PEER_IDENTITY');
    assert.ok(peerErr, messages(err));
    assert.match(peerErr.message, /the chain has 9 certificates, more than 8 \(a leaf, at most 6 intermediate CAs and a root\)/);
  });
});

describe('our own SVID: a weak key is refused when a source loads it', () => {
  test('identity.dir with an RSA-1024 SVID: createMesh rejects, saying why', async (t) => {
    const d = await tempDir();
    t.after(d.remove);
    await writeSvidDir(d.dir, ownSvids['rsa-1024']!);
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { dir: d.dir, startTimeout: 300 } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match((e as Error).message, /the leaf certificate of spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders has a weak or unsupported key \(RSA 1024 bits\)/);
      assert.match((e as Error).message, RULE);
      return true;
    });
  });

  test('identity.dir whose svid.pem goes through a DSA intermediate: refused', async (t) => {
    const d = await tempDir();
    t.after(d.remove);
    await writeSvidDir(d.dir, ownSvids['dsa-2048 intermediate']!);
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { dir: d.dir, startTimeout: 300 } } as Options), /intermediate CA .* has a weak or unsupported key \(DSA 2048 bits\)/);
  });

  test('a user-given X509Source serving an RSA-1024 SVID without checking it: createMesh rejects at once, saying why', async () => {
    const svid = ownSvids['rsa-1024']!;
    const chain = pemToCertDers(svid.certChainPem).map((d) => parseCertificate(d));
    const bundles = bundlesFromPem(svid.bundlePem, TD);
    const careless: X509Source = {
      getX509Svid: () => ({
        spiffeId: { trustDomain: TD, path: '/ns/default/sa/orders', id: idOf('orders') },
        chain,
        certChainPem: svid.certChainPem,
        keyPem: svid.keyPem,
        notBefore: chain[0]!.notBefore,
        notAfter: chain[0]!.notAfter,
      }),
      getBundles: () => bundles,
      getBundle: (td) => bundles.get(td),
      onUpdate: () => () => {},
      ready: async () => {},
      status: () => ({ kind: 'careless', state: 'ready', rotations: 0, trustDomains: [TD] }),
      close: async () => {},
    };
    const started = Date.now();
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { source: careless, startTimeout: 10_000 } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match((e as Error).message, /refused: the leaf certificate of .*sa\/orders has a weak or unsupported key \(RSA 1024 bits\)/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000, 'did not wait for startTimeout');
  });

  test('the floor itself: an RSA-2048 SVID from a directory serves a client holding an Ed25519 SVID', async (t) => {
    const d = await tempDir();
    t.after(d.remove);
    await writeSvidDir(d.dir, ownSvids['rsa-2048']!);
    const server = await createMesh({ service: 'payments', logger: silent, identity: { dir: d.dir } } as Options);
    t.after(() => server.close());
    const http = server.createServer((req, res) => res.end(JSON.stringify(peerOf(req))));
    const port = await listen(http);
    t.after(() => closeServer(http));
    const d2 = await tempDir();
    t.after(d2.remove);
    await writeSvidDir(d2.dir, ownSvids['ed25519']!);
    const client = await createMesh({ service: 'orders', logger: silent, identity: { dir: d2.dir }, outbound: { services: { payments: { endpoints: [`${LOOPBACK}:${port}`] } } } } as Options);
    t.after(() => client.close());
    const r = await client.fetch('http://payments/');
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { spiffeId: string }).spiffeId, idOf('orders'));
  });
});
