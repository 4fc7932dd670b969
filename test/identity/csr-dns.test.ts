// The DNS-SAN form of our PKCS#10 encoder (Linkerd's CSR): one dNSName, no URI, checked here by
// node:crypto's and our own readers; python3-cryptography reads it in test/sources/linkerd-identity-issuer.test.ts.
import assert from 'node:assert/strict';
import { createPublicKey, webcrypto } from 'node:crypto';
import { test } from 'node:test';
import { createCsr, generateKeyPair } from '../../src/identity/keys.js';
import { decodePem } from '../../src/identity/pem.js';
import { csrSubjectPublicKeyInfo } from '../../src/sources/issuers/csr-spki.js';

const WEB = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';

test('a { dns } CSR holds the name as its one dNSName ([2]) and no URI ([6]); its SPKI is our key', async () => {
  const keys = await generateKeyPair();
  const der = decodePem(await createCsr(keys, { dns: WEB }))[0]!.der;
  const name = Buffer.from(WEB, 'ascii');
  const at = der.indexOf(name);
  assert.ok(at > 2, 'the name is in the CSR');
  assert.equal(der[at - 2], 0x82, 'as a dNSName');
  assert.equal(der.indexOf(Buffer.from('spiffe://')), -1, 'no URI');
  const ours = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  assert.deepEqual(csrSubjectPublicKeyInfo(der), ours);
  assert.equal(createPublicKey({ key: csrSubjectPublicKeyInfo(der), format: 'der', type: 'spki' }).asymmetricKeyType, 'ec');
});

test('a name that is not a lower-case DNS name is refused before anything is signed', async () => {
  const keys = await generateKeyPair();
  for (const bad of ['Web.emojivoto', 'web..emojivoto', '-web.x', 'web.x.', 'w b.x', 'wéb.x', `${'a'.repeat(64)}.x`, '']) {
    await assert.rejects(createCsr(keys, { dns: bad }), /not a lower-case DNS name/, bad);
  }
});

test('csrSubjectPublicKeyInfo refuses bytes that are not a CSR', () => {
  assert.throws(() => csrSubjectPublicKeyInfo(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])));
  assert.throws(() => csrSubjectPublicKeyInfo(Buffer.from('garbage')));
});
