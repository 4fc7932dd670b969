// Our PKCS#10 encoder (src/identity/csr.ts, cold start: issue 14) writes the bytes @peculiar/x509
// wrote for the same key and SPIFFE ID (the part that is not the random ECDSA signature), and its
// CSR verifies in @peculiar/x509 and openssl (test/identity/keys.test.ts runs createCsr through both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { certificationRequestInfo } from '../../src/identity/csr.js';
import { createCsr, generateKeyPair, signingAlgorithm, type KeyType } from '../../src/identity/keys.js';
import { loadX509 } from '../../src/identity/x509.js';

/** The signed part (CertificationRequestInfo) of a parsed CSR: @peculiar/x509 keeps it, typed private. */
const tbs = (csr: object) => Buffer.from((csr as { tbs: ArrayBuffer }).tbs);

test('CertificationRequestInfo is byte for byte what @peculiar/x509 encodes; the CSR verifies there', async () => {
  const x509 = loadX509();
  for (const keyType of ['ec-p256', 'ec-p384'] as KeyType[]) {
    for (const id of ['spiffe://cluster.local/ns/default/sa/orders', `spiffe://example.org/${'long-path/'.repeat(30)}x`]) {
      const keys = await generateKeyPair(keyType);
      const theirs = await x509.Pkcs10CertificateRequestGenerator.create({
        keys,
        signingAlgorithm: signingAlgorithm(keyType),
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }])],
      });
      const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey));
      assert.deepEqual(certificationRequestInfo(spki, id), tbs(theirs), `${keyType} ${id.length}`);
      const ours = new x509.Pkcs10CertificateRequest(await createCsr(keys, id, keyType));
      assert.equal(await ours.verify(), true);
      assert.deepEqual(tbs(ours), tbs(theirs));
    }
  }
});
