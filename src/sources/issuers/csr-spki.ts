/**
 * The SubjectPublicKeyInfo (DER) of a PKCS#10 request (RFC 2986): CertificationRequest ::=
 * SEQUENCE { CertificationRequestInfo SEQUENCE { version, subject, subjectPKInfo, [0] attributes },
 * … }. Pure; throws DerError on bytes that are not that shape. What an issued leaf's key is
 * compared with: the CA must certify the key we hold.
 */
import { readTlv } from '../../identity/der.js';

export function csrSubjectPublicKeyInfo(der: Uint8Array): Buffer {
  const outer = readTlv(der, 0, der.length);
  const info = readTlv(der, outer.contentStart, outer.end);
  const version = readTlv(der, info.contentStart, info.end);
  const subject = readTlv(der, version.end, info.end);
  const spki = readTlv(der, subject.end, info.end);
  if (outer.tag !== 0x30 || info.tag !== 0x30 || version.tag !== 0x02 || subject.tag !== 0x30 || spki.tag !== 0x30) {
    throw new Error('not a PKCS#10 certification request');
  }
  return Buffer.from(der.subarray(spki.start, spki.end));
}
