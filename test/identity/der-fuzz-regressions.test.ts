// What the DER fuzz target (test/fuzz/targets/der-chain.ts) found: certificates our DER reader
// took and OpenSSL (the signature checker behind it) refuses, or that RFC 5280 forbids. Each is a
// real dev-CA leaf with one field bent; each must be a DerError naming what is wrong.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, test } from 'node:test';
import { DerError, parseCertificateDer } from '../../src/identity/der.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { pemToCertDers } from '../../src/identity/pem.js';

let leaf: Buffer;
before(async () => {
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  leaf = pemToCertDers((await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/web' })).certChainPem)[0]!;
});

/** `leaf` with the byte `offset` bytes after the first occurrence of `pattern` (hex) set to `value`. */
function bent(pattern: string, offset: number, value: number, occurrence = 0): Buffer {
  let at = -1;
  for (let i = 0; i <= occurrence; i++) at = leaf.indexOf(Buffer.from(pattern, 'hex'), at + 1);
  assert.ok(at >= 0, `pattern ${pattern} in the leaf`);
  const b = Buffer.from(leaf);
  b[at + offset] = value;
  return b;
}

const openSslTakes = (der: Buffer) => {
  try {
    new X509Certificate(der);
    return true;
  } catch {
    return false;
  }
};

const ECDSA_SHA256 = '300a06082a8648ce3d040302';
const cases: Array<[string, () => Buffer, RegExp, boolean]> = [
  // [what, the certificate, our error, whether OpenSSL parses it (and refuses it only at verification)]
  ['the signature AlgorithmIdentifier of tbsCertificate differs from signatureAlgorithm', () => bent(ECDSA_SHA256, 11, 0x03), /signatureAlgorithm differs from the signature AlgorithmIdentifier/, true],
  ['an AlgorithmIdentifier whose OID length runs past its SEQUENCE', () => bent(ECDSA_SHA256, 3, 0x09), /length 9 runs past the end of its container/, false],
  ['a Name attribute that is not a string (UTCTime where a PrintableString or UTF8String goes)', () => bent('0603550403', 5, 0x17), /attribute 2\.5\.4\.3 is not a string \(tag 0x17\)/, false],
  ['a public key BIT STRING with unused bits', () => bent('034200', 2, 0x01), /subjectPublicKey: the BIT STRING has unused bits/, true],
  ['EC parameters that are neither a named curve nor explicit parameters', () => bent('06082a8648ce3d030107', 0, 0x26), /EC public key: the parameters must name a curve/, false],
  ['an issuerUniqueID that is not a BIT STRING (the extensions tag bent to [1])', () => bent('a3', 0, 0x81, extensionsOccurrence()), /issuerUniqueID: not a BIT STRING/, false],
  ['a negative serial number', () => bent('a0030201020210', 7, 0x99), /serialNumber is negative/, true],
];

/** Which occurrence of 0xa3 is the extensions tag: the one after the SubjectPublicKeyInfo. */
function extensionsOccurrence(): number {
  const spki = leaf.indexOf(Buffer.from('034200', 'hex'));
  let n = 0;
  for (let at = leaf.indexOf(0xa3); at >= 0 && at < spki + 67; at = leaf.indexOf(0xa3, at + 1)) n++;
  return n;
}

for (const [what, make, message, openSsl] of cases) {
  test(`refused: ${what}`, () => {
    const der = make();
    assert.throws(() => parseCertificateDer(der), (e: unknown) => e instanceof DerError && message.test(e.message));
    assert.equal(openSslTakes(der), openSsl, 'what OpenSSL makes of it (the fuzz oracle)');
  });
}

test('the unbent leaf parses, and OpenSSL takes it', () => {
  assert.equal(parseCertificateDer(leaf).uris[0], 'spiffe://cluster.local/ns/default/sa/web');
  assert.ok(openSslTakes(leaf));
});
