// Peer verification without a socket (verifyPeerChain) and the shared secure-context material
// (secureContextOptions): the pure functions that HTTP/2 and gRPC hooks call, checked on their
// own and over a real handshake.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type TLSSocket, connect, createSecureContext, createServer } from 'node:tls';
import { allRoots, bundlesFromPem, mergeBundles } from '../../src/identity/bundle.js';
import { createDevCa, type DevCa } from '../../src/identity/dev-ca.js';
import { pemToCertDers } from '../../src/identity/pem.js';
import { derChainOf, verifyPeerChain } from '../../src/tls/peer.js';
import { HTTP1_ALPN, secureContextOptions } from '../../src/tls/secure-context.js';
import { TD, craftLeaf, idOf } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen } from '../helpers/net.js';

describe('verifyPeerChain: DER in, identity or reason out', () => {
  let ca: DevCa;
  let other: DevCa;
  before(async () => {
    ca = await createDevCa({ intermediates: 1 });
    other = await createDevCa({ trustDomain: 'other.test' });
  });

  test('a valid SVID through an intermediate: the peer, its Kubernetes parts and its validity', async () => {
    const svid = await ca.issue({ spiffeId: idOf('orders', 'shop') });
    const v = verifyPeerChain(pemToCertDers(svid.certChainPem), bundlesFromPem(ca.bundlePem, TD), Date.now());
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.deepEqual(v.verified.peer, { id: idOf('orders', 'shop'), kind: 'spiffe', spiffeId: idOf('orders', 'shop'), trustDomain: TD, namespace: 'shop', serviceAccount: 'orders' });
    assert.ok(Object.isFrozen(v.verified.peer));
    assert.ok(v.verified.notBefore <= Date.now() && v.verified.notAfter <= svid.notAfter);
  });

  test('validity at the bounds, with the caller’s time (±1 ms)', async () => {
    const svid = await ca.issue({ spiffeId: idOf('orders') });
    const chain = pemToCertDers(svid.certChainPem);
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    const ok = verifyPeerChain(chain, bundles, Date.now());
    assert.ok(ok.ok);
    const { notBefore, notAfter } = ok.verified;
    assert.ok(verifyPeerChain(chain, bundles, notAfter).ok);
    assert.ok(verifyPeerChain(chain, bundles, notBefore).ok);
    const late = verifyPeerChain(chain, bundles, notAfter + 1);
    assert.ok(!late.ok && /expired/.test(late.reason), JSON.stringify(late));
    const early = verifyPeerChain(chain, bundles, notBefore - 1);
    assert.ok(!early.ok && /not valid yet/.test(early.reason), JSON.stringify(early));
  });

  test('the bundle of the leaf’s own trust domain, never another one’s roots', async () => {
    // Signed by other.test's CA but naming cluster.local: both bundles are known.
    const forged = await craftLeaf(other, { uris: [idOf('admin')] });
    const both = mergeBundles(bundlesFromPem(ca.bundlePem, TD), bundlesFromPem(other.bundlePem, 'other.test'));
    const v = verifyPeerChain([forged.der], both, Date.now());
    assert.ok(!v.ok && /does not lead to a root of trust domain "cluster.local"/.test(v.reason), JSON.stringify(v));
    const unknown = verifyPeerChain([forged.der], bundlesFromPem(other.bundlePem, 'other.test'), Date.now());
    assert.ok(!unknown.ok && /no trust bundle for trust domain "cluster.local"/.test(unknown.reason), JSON.stringify(unknown));
  });

  test('leaf rules and missing intermediates are refused with a reason', async () => {
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    const twoUris = await craftLeaf(ca, { uris: [idOf('a'), idOf('b')] });
    const r1 = verifyPeerChain(pemToCertDers(twoUris.certChainPem), bundles, Date.now());
    assert.ok(!r1.ok && /URI/.test(r1.reason), JSON.stringify(r1));
    const leafOnly = await craftLeaf(ca, {});
    const r2 = verifyPeerChain([leafOnly.der], bundles, Date.now());
    assert.ok(!r2.ok && /does not lead to a root/.test(r2.reason), JSON.stringify(r2));
  });

  test('hostile input never throws: nothing, garbage, wrong types, an over-long chain', async () => {
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    const svid = await ca.issue({ spiffeId: idOf('orders') });
    const [leaf] = pemToCertDers(svid.certChainPem);
    const cases: Array<[unknown, RegExp]> = [
      [[], /presented no certificate/],
      [undefined, /must be an array of DER certificates/],
      ['not a chain', /must be an array of DER certificates/],
      [Buffer.from('a single buffer'), /must be an array of DER certificates/],
      [[Buffer.from('not DER')], /could not be parsed/],
      [[Buffer.alloc(0)], /could not be parsed/],
      [['a string'], /could not be parsed/],
      [[leaf, Buffer.from([0x30, 0x82, 0xff])], /could not be parsed/],
      [Array.from({ length: 50 }, () => leaf!), /more than \d+/],
    ];
    for (const [input, reason] of cases) {
      const v = verifyPeerChain(input as Uint8Array[], bundles, Date.now());
      assert.ok(!v.ok && reason.test(v.reason), `${String(input).slice(0, 30)}: ${JSON.stringify(v)}`);
    }
  });

  test('the same verdict from a live handshake: derChainOf(getPeerCertificate(true))', async () => {
    const server = await ca.issue({ spiffeId: idOf('server') });
    const client = await ca.issue({ spiffeId: idOf('client', 'web') });
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    let seen: ReturnType<typeof verifyPeerChain> | undefined;
    const srv = createServer({ ...secureContextOptions(server, bundles, { alpn: HTTP1_ALPN }), requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      seen = verifyPeerChain(derChainOf(s.getPeerCertificate(true)), bundles, Date.now());
      s.end();
    });
    const port = await listen(srv);
    try {
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host: LOOPBACK, port, ...secureContextOptions(client, bundles, { alpn: HTTP1_ALPN }), checkServerIdentity: () => undefined });
        s.on('close', () => resolve());
        s.on('error', reject);
        s.resume();
      });
    } finally {
      await closeServer(srv);
    }
    assert.ok(seen?.ok, JSON.stringify(seen));
    assert.equal(seen.verified.peer.spiffeId, idOf('client', 'web'));
  });
});

describe('secureContextOptions: one place for key, certificate, roots and ALPN', () => {
  let ca: DevCa;
  let other: DevCa;
  before(async () => {
    ca = await createDevCa();
    other = await createDevCa({ trustDomain: 'other.test' });
  });

  test('material from the SVID and every bundle’s roots; the ALPN asked for', async () => {
    const svid = await ca.issue({ spiffeId: idOf('orders') });
    const bundles = mergeBundles(bundlesFromPem(ca.bundlePem, TD), bundlesFromPem(other.bundlePem, 'other.test'));
    const o = secureContextOptions(svid, bundles, { alpn: ['h2', 'http/1.1'] });
    assert.equal(o.cert, svid.certChainPem);
    assert.equal(o.key, svid.keyPem);
    assert.equal(o.ca.length, allRoots(bundles).length);
    assert.equal(o.ca.length, 2);
    assert.equal(o.minVersion, 'TLSv1.2');
    assert.deepEqual(o.ALPNProtocols, ['h2', 'http/1.1']);
    assert.deepEqual(secureContextOptions(svid, bundles, { alpn: HTTP1_ALPN }).ALPNProtocols, ['http/1.1']);
    createSecureContext(o); // OpenSSL accepts it as it is
  });

  test('an empty or malformed ALPN list is refused (a mesh connection always names its protocol)', async () => {
    const svid = await ca.issue({ spiffeId: idOf('orders') });
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    for (const alpn of [[], [''], ['x'.repeat(256)], [1 as unknown as string]]) {
      assert.throws(() => secureContextOptions(svid, bundles, { alpn }), /alpn must list/);
    }
  });

  test('h2 is negotiated when both sides are built with it, http/1.1 when the client offers only that', async () => {
    const bundles = bundlesFromPem(ca.bundlePem, TD);
    const server = await ca.issue({ spiffeId: idOf('server') });
    const client = await ca.issue({ spiffeId: idOf('client') });
    const srv = createServer({ ...secureContextOptions(server, bundles, { alpn: ['h2', 'http/1.1'] }), requestCert: true }, (s) => s.end());
    const port = await listen(srv);
    const negotiated = (alpn: readonly string[]) =>
      new Promise<string | false>((resolve, reject) => {
        const s = connect({ host: LOOPBACK, port, ...secureContextOptions(client, bundles, { alpn }), checkServerIdentity: () => undefined }, () => {
          resolve(s.alpnProtocol ?? false);
          s.end();
        });
        s.on('error', reject);
      });
    try {
      assert.equal(await negotiated(['h2', 'http/1.1']), 'h2');
      assert.equal(await negotiated(HTTP1_ALPN), 'http/1.1');
    } finally {
      await closeServer(srv);
    }
  });
});
