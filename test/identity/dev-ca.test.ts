// The dev CA: what it issues, checked by our parser and by the real openssl binary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualClock } from '../../src/clock.js';
import { bundlesFromPem } from '../../src/identity/bundle.js';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, KeyUsage, parseCertificate } from '../../src/identity/certificate.js';
import { DEV_CA_BACKDATE_MS, DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { keyMatchesCertificate } from '../../src/identity/keys.js';
import { verifySvidChain } from '../../src/identity/svid.js';
import { TD, idOf, pemDers, tempDir } from '../helpers/certs.js';

let tmp: { dir: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir('sidecarless-devca-');
});
after(async () => {
  await tmp.remove();
});

let fileCounter = 0;
function file(content: string): string {
  const p = join(tmp.dir, `f${++fileCounter}.pem`);
  writeFileSync(p, content);
  return p;
}
function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function opensslFails(...args: string[]): string {
  try {
    openssl(...args);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
  throw new Error(`openssl ${args.join(' ')} unexpectedly succeeded`);
}
const count = (s: string, sub: string) => s.split(sub).length - 1;

describe('issued SVIDs', () => {
  let ca: DevCa;
  let clock: VirtualClock;
  const T = Date.UTC(2030, 0, 1, 12, 0, 0);
  before(async () => {
    clock = new VirtualClock(T);
    ca = await createDevCa({ trustDomain: TD, clock, svidTtlMs: 3_600_000 });
  });

  test('the root: a CA for the trust domain, with its trust-domain URI SAN', () => {
    assert.equal(ca.trustDomain, TD);
    assert.equal(ca.root.isCa, true);
    assert.deepEqual(ca.root.uris, [`spiffe://${TD}`]);
    assert.ok((ca.root.keyUsage! & KeyUsage.keyCertSign) !== 0);
    assert.equal(ca.intermediatesPem, '');
    assert.deepEqual([...bundlesFromPem(ca.bundlePem, 'ignored.example').keys()], [TD]);
  });

  test('one URI SAN, cA=false, critical digitalSignature only, EKU serverAuth + clientAuth, times from the clock', async () => {
    const svid = await ca.issue({ spiffeId: idOf('orders') });
    const ders = pemDers(svid.certChainPem);
    assert.equal(ders.length, 1);
    const leaf = parseCertificate(ders[0]!);
    assert.deepEqual(leaf.uris, [idOf('orders')]);
    assert.deepEqual(leaf.dnsNames, []);
    assert.equal(leaf.isCa, false);
    assert.equal(leaf.keyUsage, KeyUsage.digitalSignature);
    assert.deepEqual([...leaf.extKeyUsage!].sort(), [EKU_SERVER_AUTH, EKU_CLIENT_AUTH].sort());
    assert.equal(leaf.notBefore, T - DEV_CA_BACKDATE_MS);
    assert.equal(leaf.notAfter, T + 3_600_000);
    assert.equal(svid.notBefore, leaf.notBefore);
    assert.equal(svid.notAfter, leaf.notAfter);
    assert.equal(svid.serialNumber, leaf.serialNumber);
    assert.equal(svid.spiffeId, idOf('orders'));
    assert.equal(svid.bundlePem, ca.bundlePem);
    assert.match(svid.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(keyMatchesCertificate(svid.keyPem, leaf.der));
    assert.equal(verifySvidChain([leaf], bundlesFromPem(ca.bundlePem, TD), T).spiffeId.id, idOf('orders'));
  });

  test('ttl, notBefore and DNS names are honoured; the URI SAN stays the only identity', async () => {
    const svid = await ca.issue({ spiffeId: idOf('a'), ttlMs: 60_000, notBefore: T + 5_000, dnsNames: ['a.default.svc', 'localhost'] });
    const leaf = parseCertificate(pemDers(svid.certChainPem)[0]!);
    assert.equal(leaf.notBefore, T + 5_000);
    assert.equal(leaf.notAfter, T + 5_000 + DEV_CA_BACKDATE_MS + 60_000);
    assert.deepEqual(leaf.uris, [idOf('a')]);
    assert.deepEqual(leaf.dnsNames, ['a.default.svc', 'localhost']);
  });

  test('serial numbers are unique and positive', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const s = await ca.issue({ spiffeId: idOf('s') });
      assert.match(s.serialNumber, /^[0-7][0-9a-f]{31}$/i);
      serials.add(s.serialNumber);
    }
    assert.equal(serials.size, 20);
  });

  test('refuses IDs of another trust domain, trust-domain IDs and invalid IDs', async () => {
    await assert.rejects(ca.issue({ spiffeId: 'spiffe://other.example/ns/a/sa/b' }), /signs for trust domain "cluster.local"/);
    await assert.rejects(ca.issue({ spiffeId: `spiffe://${TD}` }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
    await assert.rejects(ca.issue({ spiffeId: `spiffe://${TD}/a/../b` }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
    await assert.rejects(ca.issue({ spiffeId: `${idOf('a')}, URI:${idOf('admin')}` }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  });

  test('an invalid trust domain is refused at creation', async () => {
    await assert.rejects(createDevCa({ trustDomain: 'Cluster.Local' }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
    await assert.rejects(createDevCa({ trustDomain: 'td:8080' }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  });
});

describe('checked by the openssl binary', () => {
  test('x509 -text: one URI SAN, CA:FALSE, critical Digital Signature, EKU server + client auth', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const svid = await ca.issue({ spiffeId: idOf('payments') });
    const text = openssl('x509', '-in', file(svid.certChainPem), '-text', '-noout');
    assert.equal(count(text, 'URI:'), 1, text);
    assert.match(text, new RegExp(`URI:${idOf('payments').replace(/[./]/g, '\\$&')}\\s*$`, 'm'));
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\s*$/m);
    assert.doesNotMatch(text, /Certificate Sign|CRL Sign|Key Encipherment/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /Authority Key Identifier/);
    assert.match(text, /Subject Key Identifier/);
  });

  test('verify -CAfile: the leaf chains to the bundle for both TLS purposes; another CA’s bundle does not', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const svid = await ca.issue({ spiffeId: idOf('payments') });
    const bundle = file(svid.bundlePem);
    const leaf = file(svid.certChainPem);
    assert.match(openssl('verify', '-CAfile', bundle, leaf), /: OK/);
    assert.match(openssl('verify', '-purpose', 'sslserver', '-CAfile', bundle, leaf), /: OK/);
    assert.match(openssl('verify', '-purpose', 'sslclient', '-CAfile', bundle, leaf), /: OK/);
    const other = await createDevCa({ trustDomain: TD });
    assert.match(opensslFails('verify', '-CAfile', file(other.bundlePem), leaf), /signature failure|unable to get|verification failed/i);
  });

  test('the root is a CA that openssl accepts as a trust anchor; P-384 CAs issue P-384 leaves', async () => {
    const ca = await createDevCa({ trustDomain: TD, keyType: 'ec-p384' });
    const rootText = openssl('x509', '-in', file(ca.bundlePem), '-text', '-noout');
    assert.match(rootText, /CA:TRUE/);
    assert.match(rootText, /Certificate Sign, CRL Sign/);
    assert.match(rootText, new RegExp(`URI:spiffe://${TD.replace('.', '\\.')}\\s*$`, 'm'));
    const svid = await ca.issue({ spiffeId: idOf('big') });
    const text = openssl('x509', '-in', file(svid.certChainPem), '-text', '-noout');
    assert.match(text, /ASN1 OID: secp384r1/);
    assert.match(text, /ecdsa-with-SHA384/);
    assert.match(openssl('verify', '-CAfile', file(svid.bundlePem), file(svid.certChainPem)), /: OK/);
  });

  test('with intermediates: svid.pem is leaf then intermediates, verified with -untrusted', async () => {
    const ca = await createDevCa({ trustDomain: TD, intermediates: 2 });
    const svid = await ca.issue({ spiffeId: idOf('deep') });
    const ders = pemDers(svid.certChainPem);
    assert.equal(ders.length, 3);
    assert.equal(pemDers(ca.intermediatesPem).length, 2);
    assert.deepEqual(parseCertificate(ders[0]!).uris, [idOf('deep')]);
    assert.equal(parseCertificate(ders[1]!).isCa, true);
    const leafOnly = file(svid.certChainPem.slice(0, svid.certChainPem.indexOf('-----END CERTIFICATE-----') + 26));
    const bundle = file(svid.bundlePem);
    assert.match(openssl('verify', '-CAfile', bundle, '-untrusted', file(ca.intermediatesPem), leafOnly), /: OK/);
    assert.match(opensslFails('verify', '-CAfile', bundle, leafOnly), /unable to get local issuer/);
    // Our verifier agrees.
    const chain = ders.map((d) => parseCertificate(d));
    assert.equal(verifySvidChain(chain, bundlesFromPem(svid.bundlePem, TD), Date.now()).spiffeId.id, idOf('deep'));
  });
});

describe('ca init round trip', () => {
  test('exportPem → fromPem: the reloaded CA issues SVIDs that verify against the original bundle', async () => {
    const ca = await createDevCa({ trustDomain: 'example.org' });
    const { certPem, keyPem } = await ca.exportPem();
    assert.match(keyPem, /BEGIN PRIVATE KEY/);
    const again = await DevCa.fromPem(certPem, keyPem);
    assert.equal(again.trustDomain, 'example.org');
    const svid = await again.issue({ spiffeId: 'spiffe://example.org/w' });
    const chain = pemDers(svid.certChainPem).map((d) => parseCertificate(d));
    assert.equal(verifySvidChain(chain, bundlesFromPem(ca.bundlePem, 'example.org'), Date.now()).spiffeId.id, 'spiffe://example.org/w');
    assert.match(openssl('verify', '-CAfile', file(certPem), file(svid.certChainPem)), /: OK/);
  });

  test('fromPem refuses a leaf posing as a CA, and an empty file', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const svid = await ca.issue({ spiffeId: idOf('x') });
    await assert.rejects(DevCa.fromPem(svid.certChainPem, svid.keyPem), /not a sidecarless CA/);
    await assert.rejects(DevCa.fromPem('', svid.keyPem), /no certificate/);
  });
});
