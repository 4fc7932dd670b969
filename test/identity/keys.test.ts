import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/identity/certificate.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { createCsr, generateKeyPair, importPrivateKeyPem, keyMatchesCertificate, privateKeyToPem } from '../../src/identity/keys.js';
import { x509 } from '../helpers/x509.js';
import { TD, idOf, pemDers, tempDir } from '../helpers/certs.js';

let tmp: { dir: string; remove: () => Promise<void> };
before(async () => {
  tmp = await tempDir('sidecarless-keys-');
});
after(async () => {
  await tmp.remove();
});

test('generateKeyPair: ECDSA P-256 by default, P-384 on request; PKCS#8 PEM round trip', async () => {
  const p256 = await generateKeyPair();
  assert.equal((p256.privateKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-256');
  const p384 = await generateKeyPair('ec-p384');
  assert.equal((p384.privateKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-384');
  const pem = await privateKeyToPem(p384.privateKey);
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const back = await importPrivateKeyPem(pem);
  assert.equal((back.algorithm as EcKeyAlgorithm).namedCurve, 'P-384');
  assert.deepEqual(back.usages, ['sign']);
});

test('importPrivateKeyPem refuses RSA keys with a message saying what to use', async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await assert.rejects(importPrivateKeyPem(pem), /unsupported key type rsa: use an EC P-256 or P-384 key/);
});

test('keyMatchesCertificate: the right key matches, another key or garbage does not', async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const a = await ca.issue({ spiffeId: idOf('a') });
  const b = await ca.issue({ spiffeId: idOf('b') });
  const derA = pemDers(a.certChainPem)[0]!;
  assert.equal(keyMatchesCertificate(a.keyPem, derA), true);
  assert.equal(keyMatchesCertificate(b.keyPem, derA), false);
  assert.equal(keyMatchesCertificate('not a key', derA), false);
  assert.equal(keyMatchesCertificate(a.keyPem, Buffer.from('not a cert')), false);
  // A SEC1 "EC PRIVATE KEY" of the same key still matches.
  const { createPrivateKey } = await import('node:crypto');
  const sec1 = createPrivateKey(a.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
  assert.equal(keyMatchesCertificate(sec1, derA), true);
});

test('createCsr: PKCS#10 with exactly the SPIFFE ID as URI SAN, signed by the key (x509 and openssl agree)', async () => {
  const keys = await generateKeyPair();
  const pem = await createCsr(keys, idOf('orders'));
  assert.match(pem, /-----BEGIN CERTIFICATE REQUEST-----/);
  const csr = new x509.Pkcs10CertificateRequest(pem);
  assert.equal(await csr.verify(), true);
  const sanExts = csr.extensions.filter((e) => e.type === '2.5.29.17');
  assert.equal(sanExts.length, 1);
  const san = new x509.SubjectAlternativeNameExtension(sanExts[0]!.rawData);
  assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['url', idOf('orders')]]);
  const spkiFromKey = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey));
  assert.deepEqual(Buffer.from(csr.publicKey.rawData), spkiFromKey);

  const path = join(tmp.dir, 'req.pem');
  writeFileSync(path, pem);
  const out = execFileSync('openssl', ['req', '-in', path, '-noout', '-text', '-verify'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(out.split('URI:').length - 1, 1);
  assert.ok(out.includes(`URI:${idOf('orders')}`));
  // openssl prints "verify OK" on stderr (3.x) or stdout; run again capturing both.
  const both = execFileSync('sh', ['-c', `openssl req -in '${path}' -noout -verify 2>&1`], { encoding: 'utf8' });
  assert.match(both, /verify OK/i);
});

test('createCsr with P-384 signs with SHA-384', async () => {
  const keys = await generateKeyPair('ec-p384');
  const csr = new x509.Pkcs10CertificateRequest(await createCsr(keys, idOf('x'), 'ec-p384'));
  assert.equal(await csr.verify(), true);
  assert.equal((csr.signatureAlgorithm as EcdsaParams & { hash: { name: string } }).hash.name, 'SHA-384');
});

test('a certificate from a CSR-less issuance still carries the key it was issued for', async () => {
  const ca = await createDevCa({ trustDomain: TD });
  const keys = await generateKeyPair();
  const cert = await ca.sign({ publicKey: keys.publicKey, notBefore: Date.now() - 1000, notAfter: Date.now() + 60_000, extensions: [] });
  const pem = await privateKeyToPem(keys.privateKey);
  assert.equal(keyMatchesCertificate(pem, parseCertificate(new Uint8Array(cert.rawData)).der), true);
});
