import { X509Certificate as NodeX509, createHash } from 'node:crypto';
import { type CertificateFields, parseCertificateDer } from './der.js';

/**
 * A certificate parsed once from DER, with the fields the SPIFFE checks need. Names are read from
 * the DER structure (never by splitting Node's `subjectaltname` string, which a NUL byte or a
 * comma inside a name can forge).
 */
export interface ParsedCertificate extends Omit<CertificateFields, 'version' | 'extensions'> {
  readonly der: Buffer;
  /** SHA-256 of the DER, hex. Cache key for verification results. */
  readonly fingerprint: string;
  /** Node's view, used for signature checks. */
  readonly node: NodeX509;
}

export const KeyUsage = {
  digitalSignature: 1,
  keyEncipherment: 4,
  keyCertSign: 32,
  cRLSign: 64,
} as const;

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Parses a certificate: the SPIFFE-relevant fields from DER by the strict reader in der.ts (throws
 * DerError on malformed input), and node:crypto's X509Certificate (OpenSSL) for signature checks.
 */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const f = parseCertificateDer(buf);
  return {
    der: buf,
    fingerprint: createHash('sha256').update(buf).digest('hex'),
    serialNumber: f.serialNumber,
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    publicKey: f.publicKey,
    uris: f.uris,
    dnsNames: f.dnsNames,
    isCa: f.isCa,
    pathLength: f.pathLength,
    keyUsage: f.keyUsage,
    extKeyUsage: f.extKeyUsage,
    subject: f.subject,
    issuer: f.issuer,
    node: new NodeX509(buf),
  };
}

/** True when `issuer` issued `child`: names chain and the signature verifies with the issuer's key. */
export function isIssuedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return child.node.checkIssued(issuer.node) && child.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}
