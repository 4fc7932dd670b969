// The --state directory of the embedded control plane's CA: created with the modes DESIGN fixes,
// reloaded to the same root, Istio's plugged-in CA layout (cacerts) used as an intermediate, and
// every corrupt, mismatched or exposed file refused with a stable code, never overwritten.
import assert from 'node:assert/strict';
import { chmod, copyFile, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { bundlesFromPem } from '../../../src/identity/bundle.js';
import { createCsr, generateKeyPair } from '../../../src/identity/keys.js';
import { pemToCertDers } from '../../../src/identity/pem.js';
import { verifySvidChain } from '../../../src/identity/svid.js';
import { MAX_ISSUED_RECORDS, openCaState } from '../../../src/server/ca/state.js';
import { OpensslCa } from '../../helpers/openssl-ca.js';
import { tempDirFor } from '../../helpers/tmp.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const mode = async (p: string) => (await stat(p)).mode & 0o777;
const parse = (pem: string) => pemToCertDers(pem).map((d) => parseCertificate(d));
type T = Parameters<typeof tempDirFor>[0];
const stateDir = (t: T) => join(tempDirFor(t, 'sidecarless-ca-state-'), 'state');

async function csr(id = `spiffe://${TD}/ns/x/sa/whatever`): Promise<string> {
  return createCsr(await generateKeyPair(), id);
}

/** The chain verifies as an X.509-SVID of `id` against `rootPem` (the mesh's own verifier). */
function assertSvid(chain: string[], rootPem: string, id: string): void {
  chain.forEach((pem, i) => {
    assert.equal(pemToCertDers(pem).length, 1, `element ${i} is one PEM`);
    assert.ok(pem.endsWith('\n'), `element ${i} ends with a newline`);
  });
  const certs = chain.slice(0, -1).flatMap(parse);
  const v = verifySvidChain(certs, bundlesFromPem(rootPem, TD), Date.now());
  assert.equal(v.spiffeId.id, id);
  assert.equal(chain.at(-1), rootPem, 'root last');
}

describe('a new state directory', () => {
  test('first start: dir 0700, root-key.pem and token-key.pem 0600; a reload gives the same root and token key', async (t) => {
    const dir = stateDir(t);
    const a = await openCaState(dir, { trustDomain: TD });
    assert.equal(a.layout, 'created');
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, 'root-key.pem')), 0o600);
    assert.equal(await mode(join(dir, 'token-key.pem')), 0o600);
    assert.deepEqual((await readdir(dir)).sort(), ['root-cert.pem', 'root-key.pem', 'token-key.pem'], 'no temporary file left');
    assert.equal(a.rootFile, join(dir, 'root-cert.pem'));
    assert.equal(await readFile(a.rootFile, 'utf8'), a.rootPem);
    const root = parse(a.rootPem)[0]!;
    assert.equal(root.isCa, true);
    assert.deepEqual(root.uris, [`spiffe://${TD}`]);
    assert.equal(root.publicKey.curve, '1.2.840.10045.3.1.7', 'ECDSA P-256');
    const b = await openCaState(dir, { trustDomain: TD });
    assert.equal(b.layout, 'root');
    assert.equal(b.rootPem, a.rootPem);
    assert.equal(b.tokenKey.kid, a.tokenKey.kid);
    assertSvid(await b.sign(await csr(), ORDERS, 3_600_000), a.rootPem, ORDERS);
  });

  test('sign: the identity given, not the CSR’s; the lifetime asked; issued() records serial, id, expiry, bounded', async (t) => {
    let now = Date.now();
    const s = await openCaState(stateDir(t), { trustDomain: TD, maxIssuedRecords: 3, clock: { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) } as never });
    const chain = await s.sign(await csr(`spiffe://${TD}/ns/kube-system/sa/admin`), ORDERS, 7_200_000);
    assertSvid(chain, s.rootPem, ORDERS);
    const leaf = parse(chain[0]!)[0]!;
    assert.deepEqual(leaf.uris, [ORDERS], 'the CSR asked for admin: ignored');
    assert.equal(leaf.subject, '', 'empty subject, as istiod');
    assert.ok(Math.abs(leaf.notAfter - (now + 7_200_000)) <= 1000);
    const [rec] = s.issued();
    assert.deepEqual(rec, { serial: leaf.serialNumber.toLowerCase(), spiffeId: ORDERS, notAfter: leaf.notAfter, at: now });
    await assert.rejects(s.sign(await csr(), 'spiffe://other.td/ns/a/sa/b', 3_600_000), /trust domain cluster\.local/);
    await assert.rejects(s.sign('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', ORDERS, 3_600_000), { code: 'ERR_SIDECARLESS_CA_CSR_INVALID' });
    const one = await csr();
    for (let i = 0; i < 5; i++) {
      now += 1;
      await s.sign(one, ORDERS, 60_000);
    }
    assert.equal(s.issued().length, 3, 'bounded');
    assert.equal(MAX_ISSUED_RECORDS, 1000, 'the default bound');
    assert.equal(s.issued().at(-1)!.at, now, 'the newest kept');
  });

  test('CSR keys: RSA 2048 (istio-agent’s default), P-384 and Ed25519 signed; RSA 1024 refused; the CSR’s key is the leaf’s', async (t) => {
    const s = await openCaState(stateDir(t), { trustDomain: TD });
    const { webcrypto, createPublicKey } = await import('node:crypto');
    const { x509 } = await import('../../helpers/x509.js');
    const csrOf = async (alg: RsaHashedKeyGenParams | EcKeyGenParams | { name: 'Ed25519' }, signingAlgorithm: Algorithm | EcdsaParams) => {
      const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
      const pem = (await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm, name: 'CN=x' })).toString('pem');
      return { pem, spki: Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey)) };
    };
    const rsa = (bits: number) => ({ name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
    for (const [alg, sa] of [[rsa(2048), { name: 'RSASSA-PKCS1-v1_5' }], [{ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }], [{ name: 'Ed25519' }, { name: 'Ed25519' }]] as const) {
      const c = await csrOf(alg, sa);
      const chain = await s.sign(c.pem, ORDERS, 3_600_000);
      assertSvid(chain, s.rootPem, ORDERS);
      assert.ok(parse(chain[0]!)[0]!.node.publicKey.equals(createPublicKey({ key: c.spki, format: 'der', type: 'spki' })), `${alg.name}: the CSR's key`);
    }
    const weak = await csrOf(rsa(1024), { name: 'RSASSA-PKCS1-v1_5' });
    await assert.rejects(s.sign(weak.pem, ORDERS, 3_600_000), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_CSR_INVALID' && /RSA 1024 bits/.test(e.message));
  });

  test('issueServing: a serverAuth leaf by the same root, DNS and IP SANs, key PEM', async (t) => {
    const s = await openCaState(stateDir(t), { trustDomain: TD });
    const { certPem, keyPem } = await s.issueServing(['localhost', '127.0.0.1', 'istiod.istio-system.svc']);
    const [leaf] = parse(certPem);
    assert.deepEqual([...leaf!.dnsNames].sort(), ['istiod.istio-system.svc', 'localhost']);
    assert.ok(leaf!.node.checkIP('127.0.0.1'));
    const defaults = parse((await s.issueServing()).certPem)[0]!;
    assert.ok(defaults.node.checkIP('::1') && defaults.node.checkIP('127.0.0.1') && defaults.node.checkHost('istiod.istio-system.svc') && defaults.node.checkHost('localhost'), 'the default names');
    assert.ok(leaf!.node.verify(parse(s.rootPem)[0]!.node.publicKey));
    assert.ok(leaf!.extKeyUsage!.includes('1.3.6.1.5.5.7.3.1'));
    assert.match(keyPem, /BEGIN PRIVATE KEY/);
  });
});

describe('refused state', () => {
  test('a key readable by group/others, a world-writable dir: ERR_SIDECARLESS_CA_STATE_INSECURE, and nothing changed', async (t) => {
    const dir = stateDir(t);
    await openCaState(dir, { trustDomain: TD });
    const root = await readFile(join(dir, 'root-cert.pem'), 'utf8');
    await chmod(join(dir, 'root-key.pem'), 0o640);
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INSECURE' && /chmod 600 .*root-key\.pem/.test(e.message));
    await chmod(join(dir, 'root-key.pem'), 0o600);
    await chmod(join(dir, 'token-key.pem'), 0o604);
    await assert.rejects(openCaState(dir, { trustDomain: TD }), { code: 'ERR_SIDECARLESS_CA_STATE_INSECURE' });
    await chmod(join(dir, 'token-key.pem'), 0o600);
    await chmod(dir, 0o777);
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INSECURE' && /chmod 700/.test(e.message));
    await chmod(dir, 0o700);
    assert.equal(await readFile(join(dir, 'root-cert.pem'), 'utf8'), root, 'the root was never replaced');
  });

  test('corrupt, mismatched, half-written or another trust domain’s files: ERR_SIDECARLESS_CA_STATE_INVALID naming the file', async (t) => {
    const dir = stateDir(t);
    await openCaState(dir, { trustDomain: TD });
    const other = stateDir(t);
    await openCaState(other, { trustDomain: TD });
    const invalid = (file: RegExp) => (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && file.test(e.message);
    const keep = await readFile(join(dir, 'root-key.pem'), 'utf8');
    await copyFile(join(other, 'root-key.pem'), join(dir, 'root-key.pem'));
    await assert.rejects(openCaState(dir, { trustDomain: TD }), invalid(/root-key\.pem is not the private key of .*root-cert\.pem/));
    await writeFile(join(dir, 'root-key.pem'), keep, { mode: 0o600 });
    const cert = await readFile(join(dir, 'root-cert.pem'), 'utf8');
    await writeFile(join(dir, 'root-cert.pem'), 'not a certificate');
    await assert.rejects(openCaState(dir, { trustDomain: TD }), invalid(/root-cert\.pem must hold exactly one certificate/));
    await writeFile(join(dir, 'root-cert.pem'), cert);
    await assert.rejects(openCaState(dir, { trustDomain: 'example.org' }), invalid(/root of trust domain cluster\.local, not example\.org/));
    await writeFile(join(dir, 'token-key.pem'), 'garbage', { mode: 0o600 });
    await assert.rejects(openCaState(dir, { trustDomain: TD }), invalid(/token-key\.pem is not a PEM private key/));
    await rm(join(dir, 'root-cert.pem'));
    await assert.rejects(openCaState(dir, { trustDomain: TD }), invalid(/root-key\.pem is there but .*root-cert\.pem is not/));
    assert.equal(await readFile(join(dir, 'root-key.pem'), 'utf8'), keep, 'the key of a half-written state is kept, not replaced');
  });

  test('a leaf certificate as the root, a weak (RSA-1024) root: refused', async (t) => {
    const work = tempDirFor(t, 'sidecarless-ca-openssl-');
    const weak = await OpensslCa.root(work, TD, 'rsa-1024');
    const dir = stateDir(t);
    await openCaState(dir, { trustDomain: TD });
    await writeFile(join(dir, 'root-cert.pem'), weak.certPem);
    await writeFile(join(dir, 'root-key.pem'), weak.keyPem, { mode: 0o600 });
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /RSA 1024 bits/.test(e.message));
    const root = await OpensslCa.root(work, TD);
    const leaf = await root.leaf(ORDERS);
    await writeFile(join(dir, 'root-cert.pem'), leaf.certChainPem);
    await writeFile(join(dir, 'root-key.pem'), leaf.keyPem, { mode: 0o600 });
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /not a CA certificate/.test(e.message));
  });
});

describe("Istio's plugged-in CA layout (cacerts)", () => {
  test('ca-cert.pem signs as an intermediate of root-cert.pem (RSA, as Istio’s tools make them): chain leaf, ca-cert, root', async (t) => {
    const work = tempDirFor(t, 'sidecarless-ca-openssl-');
    const root = await OpensslCa.root(work, TD, 'rsa-2048');
    const inter = await root.intermediate('rsa-2048');
    const dir = stateDir(t);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, 'ca-cert.pem'), inter.certPem);
    await writeFile(join(dir, 'ca-key.pem'), inter.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'root-cert.pem'), root.certPem);
    await writeFile(join(dir, 'cert-chain.pem'), inter.certPem + root.certPem);
    const s = await openCaState(dir, { trustDomain: TD });
    assert.equal(s.layout, 'istio-cacerts');
    const chain = await s.sign(await csr(), ORDERS, 3_600_000);
    assert.equal(chain.length, 3, 'leaf, ca-cert, root (the root once, though cert-chain.pem has it)');
    assert.equal(parse(chain[1]!)[0]!.fingerprint, parse(inter.certPem)[0]!.fingerprint);
    assertSvid(chain, s.rootPem, ORDERS);
    assert.equal(await mode(join(dir, 'token-key.pem')), 0o600, 'a token key is added beside');
    // A chain that does not lead to the root, and a key of another certificate: refused.
    const stranger = await OpensslCa.root(work, TD, 'ec-P-256');
    await writeFile(join(dir, 'root-cert.pem'), stranger.certPem);
    await writeFile(join(dir, 'cert-chain.pem'), inter.certPem + stranger.certPem);
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /chain ca-cert\.pem → root-cert\.pem is broken/.test(e.message));
    await writeFile(join(dir, 'root-cert.pem'), root.certPem);
    await writeFile(join(dir, 'ca-key.pem'), root.keyPem, { mode: 0o600 });
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /ca-key\.pem is not the private key of/.test(e.message));
    await rm(join(dir, 'ca-key.pem'));
    await assert.rejects(openCaState(dir, { trustDomain: TD }), (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CA_STATE_INVALID' && /needs ca-cert\.pem, ca-key\.pem/.test(e.message));
  });
});
