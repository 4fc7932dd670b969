/**
 * A PKCS#10 certification request (RFC 2986) with one SAN, encoded here: a SPIFFE ID as its only
 * URI SAN, or (Linkerd's identity service, issue 16) a DNS-like name as its only DNS SAN, no URI:
 * the peculiar x509 library (with reflect-metadata, tsyringe and the asn1 packages) costs ~140 ms
 * of CPU to load, which a function bootstrapping its identity from a token paid on every cold start
 * (issue 14). The layout is the one that library wrote (test/identity/csr.test.ts compares the bytes):
 * version 0, an empty subject, the key's SubjectPublicKeyInfo, one extensionRequest attribute with
 * a non-critical subjectAltName, signed with ECDSA (DER signature) over SHA-256 or SHA-384. Pure but
 * for the signature, which node:crypto makes.
 */
import { KeyObject, sign } from 'node:crypto';

const OID = {
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  'SHA-256': '1.2.840.10045.4.3.2', // ecdsa-with-SHA256
  'SHA-384': '1.2.840.10045.4.3.3', // ecdsa-with-SHA384
} as const;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER TLV. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out: number[] = [a * 40 + b];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const SEQUENCE = 0x30;
const SET = 0x31;

/** What a CSR names: a SPIFFE ID (its URI SAN) or `{ dns }`, a DNS name (its DNS SAN, no URI). */
export type CsrName = string | { readonly dns: string };

/** An RFC 1123 host name, lower case, as IA5String allows (what Linkerd's identities are). */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The one GeneralName of the SAN: [6] uniformResourceIdentifier or [2] dNSName. */
function generalName(name: CsrName): Buffer {
  if (typeof name === 'string') return tlv(0x86, Buffer.from(name, 'ascii'));
  if (!DNS_NAME.test(name.dns)) throw new Error(`"${name.dns}" is not a lower-case DNS name: it cannot be a CSR's DNS SAN`);
  return tlv(0x82, Buffer.from(name.dns, 'ascii'));
}

/** The DER CertificationRequestInfo for `spki` (a SubjectPublicKeyInfo, DER) naming `name`. */
export function certificationRequestInfo(spki: Uint8Array, name: CsrName): Buffer {
  const generalNames = tlv(SEQUENCE, generalName(name));
  const san = tlv(SEQUENCE, oid(OID.subjectAltName), tlv(0x04, generalNames));
  const attribute = tlv(SEQUENCE, oid(OID.extensionRequest), tlv(SET, tlv(SEQUENCE, san)));
  return tlv(SEQUENCE, tlv(0x02, Buffer.from([0])), tlv(SEQUENCE), Buffer.from(spki), tlv(0xa0, attribute));
}

/** The PEM CSR: `info` signed with `privateKey` (ECDSA) over `hash`. */
export function signCertificationRequest(info: Buffer, privateKey: KeyObject, hash: 'SHA-256' | 'SHA-384'): string {
  const signature = sign(hash === 'SHA-256' ? 'sha256' : 'sha384', info, { key: privateKey, dsaEncoding: 'der' });
  const der = tlv(SEQUENCE, info, tlv(SEQUENCE, oid(OID[hash])), tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`;
}
