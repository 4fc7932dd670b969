// X.509-SVID leaf rules and chain verification at the verifier level (SECURITY-CASES 1–7, 9).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SvidError } from '../../src/errors.js';
import { type BundleSet, bundlesFromPem, mergeBundles } from '../../src/identity/bundle.js';
import { parseCertificate } from '../../src/identity/certificate.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { generateKeyPair, signingAlgorithm } from '../../src/identity/keys.js';
import { MAX_CHAIN_CERTIFICATES, MAX_INTERMEDIATES, validateLeaf, verifySvidChain } from '../../src/identity/svid.js';
import { x509 } from '../helpers/x509.js';
import { TD, craftLeaf, idOf, pemDers, rawUriSan } from '../helpers/certs.js';

const KU = x509.KeyUsageFlags;

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SvidError, `expected SvidError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_SVID_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

let caA: DevCa; // cluster.local
let caB: DevCa; // other.example
let bundlesA: BundleSet;
let bundlesAB: BundleSet;
const NOW = () => Date.now();

before(async () => {
  caA = await createDevCa({ trustDomain: TD });
  caB = await createDevCa({ trustDomain: 'other.example' });
  bundlesA = bundlesFromPem(caA.bundlePem, TD);
  bundlesAB = bundlesFromPem(caA.bundlePem + caB.bundlePem, 'unused.example');
  assert.deepEqual([...bundlesAB.keys()].sort(), ['cluster.local', 'other.example']);
});

describe('a well-formed SVID', () => {
  test('issued by the dev CA verifies, with its SPIFFE ID and the earliest expiry on the path', async () => {
    const issued = await caA.issue({ spiffeId: idOf('orders') });
    const chain = pemDers(issued.certChainPem).map((d) => parseCertificate(d));
    const v = verifySvidChain(chain, bundlesA, NOW());
    assert.equal(v.spiffeId.id, idOf('orders'));
    assert.equal(v.spiffeId.trustDomain, TD);
    assert.equal(v.notAfter, Math.min(chain[0]!.notAfter, caA.root.notAfter));
    assert.equal(v.notBefore, Math.max(chain[0]!.notBefore, caA.root.notBefore));
    assert.equal(validateLeaf(chain[0]!).id, idOf('orders'));
  });

  test('extra DNS SANs do not disturb the single URI SAN', async () => {
    const leaf = await craftLeaf(caA, { uris: [idOf('a')], dnsNames: ['a.default.svc', 'localhost'] });
    assert.equal(verifySvidChain(leaf.chain, bundlesA, NOW()).spiffeId.id, idOf('a'));
  });

  test('verifies through intermediates (1, 3 and 6 of them), in any order the peer sends them', async () => {
    for (const n of [1, 3, 6]) {
      const ca = await createDevCa({ trustDomain: TD, intermediates: n });
      const bundles = bundlesFromPem(ca.bundlePem, TD);
      const leaf = await craftLeaf(ca, { uris: [idOf('deep')] });
      assert.equal(leaf.chain.length, n + 1);
      assert.equal(verifySvidChain(leaf.chain, bundles, NOW()).spiffeId.id, idOf('deep'), `${n} intermediates`);
      const shuffled = [leaf.chain[0]!, ...leaf.chain.slice(1).reverse()];
      assert.equal(verifySvidChain(shuffled, bundles, NOW()).spiffeId.id, idOf('deep'));
      if (n > 0) {
        rejects(() => verifySvidChain([leaf.chain[0]!], bundles, NOW()), /does not lead to a root of trust domain "cluster.local"/);
        rejects(() => verifySvidChain(leaf.chain.slice(0, -1), bundles, NOW()), /does not lead to a root/);
      }
    }
  });
});

describe('leaf rules', () => {
  test('case 1: two URI SANs are rejected (both SPIFFE, identical, or one other URI)', async () => {
    for (const uris of [
      [idOf('a'), idOf('b')],
      [idOf('a'), idOf('a')],
      [idOf('a'), 'https://example.com/'],
      ['https://example.com/', idOf('a')],
      [idOf('a'), 'spiffe://other.example/ns/x/sa/y', idOf('c')],
    ]) {
      const leaf = await craftLeaf(caA, { uris });
      rejects(() => validateLeaf(leaf.parsed), new RegExp(`${uris.length} URI SANs`));
      rejects(() => verifySvidChain(leaf.chain, bundlesAB, NOW()), /URI SANs: an X.509-SVID has exactly one/);
    }
  });

  test('case 2: only a DNS SAN, or no SAN at all, is rejected', async () => {
    const dnsOnly = await craftLeaf(caA, { uris: [], dnsNames: ['orders.default.svc.cluster.local'] });
    assert.deepEqual(dnsOnly.parsed.uris, []);
    rejects(() => verifySvidChain(dnsOnly.chain, bundlesA, NOW()), /no URI SAN/);
    const none = await craftLeaf(caA, { san: null });
    rejects(() => verifySvidChain(none.chain, bundlesA, NOW()), /no URI SAN/);
    // A SPIFFE ID in the subject's CN does not count either.
    const inCn = await craftLeaf(caA, { san: null, subject: `CN=${idOf('admin')}` });
    rejects(() => verifySvidChain(inCn.chain, bundlesA, NOW()), /no URI SAN/);
  });

  test('case 3: cA=true, keyCertSign or cRLSign is rejected', async () => {
    const ca = await craftLeaf(caA, { isCa: true });
    rejects(() => verifySvidChain(ca.chain, bundlesA, NOW()), /cA=true/);
    const caWithSign = await craftLeaf(caA, { isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign });
    rejects(() => verifySvidChain(caWithSign.chain, bundlesA, NOW()), /cA=true/);
    for (const ku of [
      KU.digitalSignature | KU.keyCertSign,
      KU.digitalSignature | KU.cRLSign,
      KU.digitalSignature | KU.keyCertSign | KU.cRLSign,
    ]) {
      const leaf = await craftLeaf(caA, { keyUsage: ku });
      rejects(() => verifySvidChain(leaf.chain, bundlesA, NOW()), /keyCertSign or cRLSign/);
    }
  });

  test('basicConstraints absent is read as cA=false (allowed, as the spec permits)', async () => {
    const leaf = await craftLeaf(caA, { isCa: null });
    assert.equal(leaf.parsed.isCa, false);
    assert.equal(verifySvidChain(leaf.chain, bundlesA, NOW()).spiffeId.id, idOf('client'));
  });

  test('case 4: no digitalSignature, or no key usage extension at all, is rejected', async () => {
    for (const ku of [KU.keyEncipherment, KU.keyAgreement, KU.nonRepudiation | KU.keyEncipherment]) {
      const leaf = await craftLeaf(caA, { keyUsage: ku });
      rejects(() => verifySvidChain(leaf.chain, bundlesA, NOW()), /lacks the digitalSignature/);
    }
    const noKu = await craftLeaf(caA, { keyUsage: null });
    assert.equal(noKu.parsed.keyUsage, undefined);
    rejects(() => verifySvidChain(noKu.chain, bundlesA, NOW()), /no key usage extension/);
  });

  test('case 5: a SPIFFE ID without a path, or an invalid one, is rejected', async () => {
    for (const uri of [`spiffe://${TD}`, `spiffe://${TD}/`, `SPIFFE://${TD}/ns/a/sa/b`, `spiffe://${TD}/ns/../sa/b`, 'https://cluster.local/ns/a/sa/b', `spiffe://${TD}:443/a`]) {
      const leaf = await craftLeaf(caA, { uris: [uri] });
      rejects(() => verifySvidChain(leaf.chain, bundlesA, NOW()), /URI SAN is not a valid SPIFFE ID/);
    }
    const tdOnly = await craftLeaf(caA, { uris: [`spiffe://${TD}`] });
    rejects(() => validateLeaf(tdOnly.parsed), /names a trust domain, not a workload/);
  });

  test('case 9: a NUL byte or ", URI:spiffe://…" inside a SAN is read from DER as one name and rejected', async () => {
    const forged = [
      `${idOf('admin')}\u0000.evil`,
      `${idOf('evil')}\u0000${idOf('admin')}`,
      `${idOf('admin')}\u0000`,
      `${idOf('evil')}, URI:${idOf('admin')}`,
      `${idOf('evil')},URI:${idOf('admin')}`,
      `spiffe://evil.example/x, URI:${idOf('admin')}`,
      `${idOf('evil')}\r\nURI:${idOf('admin')}`,
    ];
    for (const value of forged) {
      const leaf = await craftLeaf(caA, { san: rawUriSan([value]) });
      assert.equal(leaf.parsed.uris.length, 1, JSON.stringify(value));
      assert.equal(leaf.parsed.uris[0], value, 'the name is kept whole, exactly as encoded');
      rejects(() => verifySvidChain(leaf.chain, bundlesA, NOW()), /not a valid SPIFFE ID/);
      // Node's own string form is never what decides: it does not yield the forged ID as a second name either.
      assert.ok(!leaf.parsed.node.subjectAltName?.split(', ').includes(`URI:${idOf('admin')}`), `node subjectaltname: ${leaf.parsed.node.subjectAltName}`);
    }
  });

  test('case 9 neighbour: the hand-built SAN encoder produces what the library produces for a plain ID', async () => {
    const raw = await craftLeaf(caA, { san: rawUriSan([idOf('plain')]) });
    assert.deepEqual(raw.parsed.uris, [idOf('plain')]);
    assert.equal(verifySvidChain(raw.chain, bundlesA, NOW()).spiffeId.id, idOf('plain'));
  });
});

describe('chain verification against the leaf’s own trust domain', () => {
  test('case 6: the CA of B signs a leaf naming A; both bundles known → rejected', async () => {
    const lie = await craftLeaf(caB, { uris: [idOf('admin')] });
    rejects(() => verifySvidChain(lie.chain, bundlesAB, NOW()), /does not lead to a root of trust domain "cluster.local"/);
    // Even when the peer appends B's root to its chain.
    const withRoot = [...lie.chain, caB.root];
    rejects(() => verifySvidChain(withRoot, bundlesAB, NOW()), /does not lead to a root of trust domain "cluster.local"/);
    // Bundles merged from several sources keep the separation.
    const merged = mergeBundles(bundlesFromPem(caA.bundlePem, TD), bundlesFromPem(caB.bundlePem, 'other.example'));
    rejects(() => verifySvidChain(lie.chain, merged, NOW()), /does not lead to a root/);
    // B's own workloads still verify against B's bundle.
    const honest = await craftLeaf(caB, { uris: ['spiffe://other.example/ns/x/sa/y'] });
    assert.equal(verifySvidChain(honest.chain, bundlesAB, NOW()).spiffeId.trustDomain, 'other.example');
  });

  test('case 6 neighbour: B signs a leaf naming A, only B’s bundle known → no bundle for A', async () => {
    const lie = await craftLeaf(caB, { uris: [idOf('admin')] });
    rejects(() => verifySvidChain(lie.chain, bundlesFromPem(caB.bundlePem, 'other.example'), NOW()), /no trust bundle for trust domain "cluster.local"/);
  });

  test('case 6 neighbour: B’s intermediate placed in A’s chain does not help', async () => {
    const caB2 = await createDevCa({ trustDomain: 'other.example', intermediates: 1 });
    const bundles = bundlesFromPem(caA.bundlePem + caB2.bundlePem, 'x');
    const lie = await craftLeaf(caB2, { uris: [idOf('admin')] });
    rejects(() => verifySvidChain(lie.chain, bundles, NOW()), /does not lead to a root of trust domain "cluster.local"/);
  });

  test('another CA of the same trust domain (same subject name, other key) is not trusted', async () => {
    const rogue = await createDevCa({ trustDomain: TD });
    assert.equal(rogue.root.subject, caA.root.subject, 'the names chain; only the signature tells them apart');
    const leaf = await craftLeaf(rogue, { uris: [idOf('admin')] });
    rejects(() => verifySvidChain(leaf.chain, bundlesA, NOW()), /does not lead to a root/);
    rejects(() => verifySvidChain([...leaf.chain, rogue.root], bundlesA, NOW()), /does not lead to a root/);
  });

  test('no certificate at all', () => {
    rejects(() => verifySvidChain([], bundlesA, NOW()), /no certificate/);
  });

  test(`chain depth: ${MAX_INTERMEDIATES} intermediates verify, ${MAX_INTERMEDIATES + 1} are refused`, async () => {
    assert.equal(MAX_INTERMEDIATES, 6);
    assert.equal(MAX_CHAIN_CERTIFICATES, 8);
    const ok = await createDevCa({ trustDomain: TD, intermediates: MAX_INTERMEDIATES });
    const okBundles = bundlesFromPem(ok.bundlePem, TD);
    const leafOk = await craftLeaf(ok, { uris: [idOf('deep')] });
    assert.equal(leafOk.chain.length, MAX_INTERMEDIATES + 1);
    assert.equal(verifySvidChain(leafOk.chain, okBundles, NOW()).spiffeId.id, idOf('deep'));
    // With the root appended (as OpenSSL reports a peer's chain): still within the limit.
    assert.equal(verifySvidChain([...leafOk.chain, ok.root], okBundles, NOW()).spiffeId.id, idOf('deep'));
    const tooDeep = await createDevCa({ trustDomain: TD, intermediates: MAX_INTERMEDIATES + 1 });
    const deepBundles = bundlesFromPem(tooDeep.bundlePem, TD);
    const leafDeep = await craftLeaf(tooDeep, { uris: [idOf('deep')] });
    assert.equal(leafDeep.chain.length, MAX_INTERMEDIATES + 2);
    // Within the certificate count (no root sent), refused by the walk …
    rejects(() => verifySvidChain(leafDeep.chain, deepBundles, NOW()), /has more than 6 intermediate CAs before a root/);
    // … and with the root appended, refused by the count before any signature is checked.
    rejects(() => verifySvidChain([...leafDeep.chain, tooDeep.root], deepBundles, NOW()), /9 certificates, more than 8 \(a leaf, at most 6 intermediate CAs and a root\)/);
    // Padding a good chain with junk is refused by length before any work.
    const padded = [...leafOk.chain, ...Array.from({ length: 5 }, () => caA.root)];
    rejects(() => verifySvidChain(padded, bundlesA, NOW()), /12 certificates, more than 8/);
  });
});

describe('authorities on the path', () => {
  async function selfSigned(ext: x509.Extension[], keys: CryptoKeyPair, name = `O=test root, CN=${TD}`) {
    return x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      keys,
      signingAlgorithm: signingAlgorithm('ec-p256'),
      extensions: ext,
    });
  }
  async function leafSignedBy(issuer: x509.X509Certificate, issuerKey: CryptoKey, uri = idOf('x')) {
    const keys = await generateKeyPair();
    return x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'O=SPIFFE',
      issuer: issuer.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      publicKey: keys.publicKey,
      signingKey: issuerKey,
      signingAlgorithm: signingAlgorithm('ec-p256'),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(KU.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
      ],
    });
  }
  const tdSan = () => new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}` }]);

  test('a root that is not a CA (cA=false) does not vouch for anything', async () => {
    const keys = await generateKeyPair();
    const root = await selfSigned([new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign | KU.digitalSignature, true), tdSan()], keys);
    const leaf = await leafSignedBy(root, keys.privateKey);
    const bundles = bundlesFromPem(root.toString('pem'), TD);
    rejects(() => verifySvidChain([parseCertificate(new Uint8Array(leaf.rawData))], bundles, NOW()), /root certificate is not a CA/);
  });

  test('a root without basicConstraints is not a CA either', async () => {
    const keys = await generateKeyPair();
    const root = await selfSigned([new x509.KeyUsagesExtension(KU.keyCertSign, true), tdSan()], keys);
    const leaf = await leafSignedBy(root, keys.privateKey);
    rejects(() => verifySvidChain([parseCertificate(new Uint8Array(leaf.rawData))], bundlesFromPem(root.toString('pem'), TD), NOW()), /not a CA/);
  });

  test('a CA root whose key usage lacks keyCertSign is refused', async () => {
    const keys = await generateKeyPair();
    const root = await selfSigned([new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(KU.cRLSign | KU.digitalSignature, true), tdSan()], keys);
    const leaf = await leafSignedBy(root, keys.privateKey);
    rejects(() => verifySvidChain([parseCertificate(new Uint8Array(leaf.rawData))], bundlesFromPem(root.toString('pem'), TD), NOW()), /lacks the keyCertSign|does not lead to a root/);
  });

  test('a leaf (cA=false) used as an intermediate is refused', async () => {
    // A valid SVID's holder signs a new leaf naming someone else with its own key.
    const keys = await generateKeyPair();
    const svidHolder = await caA.sign({
      publicKey: keys.publicKey,
      notBefore: Date.now() - 60_000,
      notAfter: Date.now() + 3_600_000,
      subject: 'CN=holder',
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(KU.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: idOf('holder') }]),
      ],
    });
    const forged = await leafSignedBy(svidHolder, keys.privateKey, idOf('admin'));
    const chain = [forged, svidHolder].map((c) => parseCertificate(new Uint8Array(c.rawData)));
    // OpenSSL's issuer check already refuses a digitalSignature-only issuer; either refusal will do.
    rejects(() => verifySvidChain(chain, bundlesA, NOW()), /intermediate certificate is not a CA|does not lead to a root/);
    // cA=false but keyCertSign asserted: only basicConstraints can tell, and it must.
    const k2 = await generateKeyPair();
    const signer = await caA.sign({
      publicKey: k2.publicKey,
      notBefore: Date.now() - 60_000,
      notAfter: Date.now() + 3_600_000,
      subject: 'CN=not-a-ca',
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign, true)],
    });
    const forged2 = await leafSignedBy(signer, k2.privateKey, idOf('admin'));
    const chain2 = [forged2, signer].map((c) => parseCertificate(new Uint8Array(c.rawData)));
    rejects(() => verifySvidChain(chain2, bundlesA, NOW()), /intermediate certificate is not a CA|does not lead to a root/);
  });

  test('pathLenConstraint: an intermediate with pathLen 0 cannot have an intermediate below it', async () => {
    const k1 = await generateKeyPair();
    const int1 = await caA.sign({
      publicKey: k1.publicKey,
      notBefore: Date.now() - 60_000,
      notAfter: Date.now() + 3_600_000,
      subject: 'CN=int1',
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(KU.keyCertSign, true)],
    });
    const k2 = await generateKeyPair();
    const int2 = await x509.X509CertificateGenerator.create({
      serialNumber: '03',
      subject: 'CN=int2',
      issuer: int1.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      publicKey: k2.publicKey,
      signingKey: k1.privateKey,
      signingAlgorithm: signingAlgorithm('ec-p256'),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign, true)],
    });
    const under1 = await leafSignedBy(int1, k1.privateKey, idOf('one'));
    const under2 = await leafSignedBy(int2, k2.privateKey, idOf('two'));
    const p = (c: x509.X509Certificate) => parseCertificate(new Uint8Array(c.rawData));
    assert.equal(verifySvidChain([p(under1), p(int1)], bundlesA, NOW()).spiffeId.id, idOf('one'));
    rejects(() => verifySvidChain([p(under2), p(int2), p(int1)], bundlesA, NOW()), /pathLenConstraint/);
  });
});

describe('case 7: validity at ±1 s around the bounds (fixed now)', () => {
  // X.509 times have one-second resolution: whole seconds make the bounds exact.
  const T0 = Math.floor(Date.now() / 1000) * 1000 - 30_000;
  const T1 = T0 + 600_000;

  test('leaf: valid at notBefore and notAfter, rejected 1 s outside either', async () => {
    const leaf = await craftLeaf(caA, { notBefore: T0, notAfter: T1 });
    assert.equal(leaf.parsed.notBefore, T0);
    assert.equal(leaf.parsed.notAfter, T1);
    rejects(() => verifySvidChain(leaf.chain, bundlesA, T0 - 1000), /leaf certificate is not valid yet/);
    assert.ok(verifySvidChain(leaf.chain, bundlesA, T0));
    assert.ok(verifySvidChain(leaf.chain, bundlesA, T0 + 1000));
    assert.ok(verifySvidChain(leaf.chain, bundlesA, T1 - 1000));
    assert.ok(verifySvidChain(leaf.chain, bundlesA, T1));
    rejects(() => verifySvidChain(leaf.chain, bundlesA, T1 + 1000), /leaf certificate has expired/);
    rejects(() => verifySvidChain(leaf.chain, bundlesA, T1 + 1), /expired/);
    rejects(() => verifySvidChain(leaf.chain, bundlesA, T0 - 1), /not valid yet/);
  });

  test('expired and not-yet-valid roots and intermediates fail the chain', async () => {
    // A CA whose root expires 5 s from now (its notBefore is 60 s ago).
    const shortRoot = await createDevCa({ trustDomain: TD, caTtlMs: 5_000 });
    const bundles = bundlesFromPem(shortRoot.bundlePem, TD);
    const leaf = await craftLeaf(shortRoot, { notBefore: Date.now() - 10_000, notAfter: Date.now() + 3_600_000 });
    const rootEnd = shortRoot.root.notAfter;
    const v = verifySvidChain(leaf.chain, bundles, rootEnd - 1000);
    assert.equal(v.notAfter, rootEnd, 'the SVID is only as good as its root');
    rejects(() => verifySvidChain(leaf.chain, bundles, rootEnd + 1000), /root certificate has expired/);

    const shortInt = await createDevCa({ trustDomain: TD, caTtlMs: 5_000, intermediates: 1 });
    const b2 = bundlesFromPem(shortInt.bundlePem, TD);
    const leaf2 = await craftLeaf(shortInt, { notBefore: Date.now() - 10_000, notAfter: Date.now() + 3_600_000 });
    const intEnd = leaf2.chain[1]!.notAfter;
    assert.ok(verifySvidChain(leaf2.chain, b2, intEnd - 1000));
    rejects(() => verifySvidChain(leaf2.chain, b2, intEnd + 1000), /(intermediate|root) certificate has expired/);
    const intStart = leaf2.chain[1]!.notBefore;
    rejects(() => verifySvidChain(leaf2.chain, b2, intStart - 1000), /not valid yet/);
  });
});
