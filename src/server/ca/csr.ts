/**
 * A workload's PKCS#10 CSR, as istiod takes it: its signature must verify with the key it carries
 * (proof of possession: the sender holds that key), and that key must meet the key-strength floor.
 * Only the public key is used afterwards; the names the CSR asks for are ignored (the identity is
 * the caller's, from its token). Refusals are CsrError.
 */
import type * as X509 from '@peculiar/x509';
import { readTlv, readSubjectPublicKeyInfo } from '../../identity/der.js';
import { weakKeyReason } from '../../identity/key-strength.js';
import { decodePem } from '../../identity/pem.js';
import { loadX509 } from '../../identity/x509.js';
import { CsrError } from './errors.js';

/** Longest CSR text taken (a P-256 CSR is ~500 bytes, an RSA-4096 one ~1.7 KiB). */
export const MAX_CSR_LENGTH = 64 * 1024;

/** The DER SubjectPublicKeyInfo of a CSR whose signature verifies and whose key is strong enough. */
export async function verifiedCsrKey(csrPem: unknown): Promise<Uint8Array> {
  if (typeof csrPem !== 'string' || csrPem.length === 0) throw new CsrError('the request has no csr: send a PEM PKCS#10 certificate request');
  if (csrPem.length > MAX_CSR_LENGTH) throw new CsrError(`the csr is ${csrPem.length} characters, more than the ${MAX_CSR_LENGTH} allowed`);
  let blocks;
  try {
    blocks = decodePem(csrPem).filter((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  } catch (e) {
    throw new CsrError(`the csr is not PEM: ${(e as Error).message}`);
  }
  if (blocks.length !== 1) throw new CsrError(`the csr must be one PEM "CERTIFICATE REQUEST" block, it has ${blocks.length}`);
  const der = new Uint8Array(blocks[0]!.der);
  const x509 = loadX509();
  let csr: X509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
  } catch (e) {
    throw new CsrError(`the csr is not a PKCS#10 certificate request: ${(e as Error).message}`);
  }
  const spki = new Uint8Array(csr.publicKey.rawData);
  let info;
  try {
    info = readSubjectPublicKeyInfo(spki, readTlv(spki, 0, spki.length));
  } catch (e) {
    throw new CsrError(`the csr's public key is malformed: ${(e as Error).message}`);
  }
  const weak = weakKeyReason(info, 'the csr');
  if (weak) throw new CsrError(weak);
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrError("the csr's signature does not verify with the key it carries: its sender must sign it with that key (proof of possession)");
  return spki;
}

/**
 * The SPIFFE IDs a CSR asks for (its `spiffe://` URI SANs). istiod ignores them; the embedded CA
 * refuses a request that asks for another identity than its token's (DESIGN.md: a token for
 * another workload is refused), since a client asking for X with Y's token holds the wrong token.
 */
export function spiffeIdsAsked(csrPem: string): string[] {
  const x509 = loadX509();
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const san = csr.getExtension('2.5.29.17') as X509.SubjectAlternativeNameExtension | null;
  return (san?.names.items ?? []).filter((n) => n.type === 'url' && n.value.toLowerCase().startsWith('spiffe://')).map((n) => n.value);
}
