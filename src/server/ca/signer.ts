/**
 * The CA's signing half: a signing authority (certificate + key, EC P-256/P-384 or RSA ≥ 2048),
 * a new self-signed root, and leaves made the way istiod makes them: an empty subject with a
 * critical SAN (RFC 5280 §4.2.1.6), cA=false, digitalSignature + keyEncipherment, EKU serverAuth +
 * clientAuth, and the authority's key identifier. The public key of a leaf comes from a verified
 * CSR (csr.ts) or a key made here; nothing else of the CSR is used.
 */
import { createHash, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import { type ParsedCertificate, parseCertificate } from '../../identity/certificate.js';
import { readTlv } from '../../identity/der.js';
import { weakKeyReason } from '../../identity/key-strength.js';
import { keyMatchesCertificate } from '../../identity/keys.js';
import { derToPem } from '../../identity/pem.js';
import { SPIFFE_SCHEME } from '../../identity/spiffe-id.js';
import { loadX509 } from '../../identity/x509.js';
import { CaStateError } from './errors.js';

/** Leaves are valid from a little before they are issued: the clocks of peers differ (SPIRE and istiod do the same). */
export const LEAF_BACKDATE_MS = 10_000;
/** A root made on first start lives 10 years (istiod's self-signed root: CITADEL_SELF_SIGNED_CA_CERT_TTL 3650 days). */
export const ROOT_TTL_MS = 3650 * 86_400_000;

/** A certificate that signs, with its key. */
export interface Authority {
  readonly cert: ParsedCertificate;
  readonly pem: string;
  readonly key: CryptoKey;
  readonly algorithm: Algorithm | EcdsaParams | RsaHashedImportParams;
  /** AuthorityKeyIdentifier of what it signs (its SubjectKeyIdentifier: SHA-1 of its key bits). */
  readonly keyId: string;
  /** Its subject as encoded, the issuer of what it signs (byte for byte: chain building compares names). */
  readonly subjectName: X509.Name;
}

/**
 * The authority of a certificate (PEM, one) and its PKCS#8/SEC1/PKCS#1 key (PEM). Checks, each
 * refused with CaStateError naming `files`: the key belongs to the certificate, cA=true with
 * keyCertSign when key usage is present, the key-strength floor, and time validity at `now`.
 */
export async function loadAuthority(certDer: Uint8Array, keyPem: string, now: number, files: { cert: string; key: string }): Promise<Authority> {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(certDer);
  } catch (e) {
    throw new CaStateError(files.cert, `${files.cert} is not a well-formed X.509 certificate (${(e as Error).message}): restore it, or move the state directory aside to start a new CA`, { cause: e });
  }
  const weak = weakKeyReason(cert.publicKey, `the CA certificate ${files.cert}`);
  if (weak) throw new CaStateError(files.cert, weak);
  if (!cert.isCa || (cert.keyUsage !== undefined && (cert.keyUsage & 32) === 0)) {
    throw new CaStateError(files.cert, `${files.cert} is not a CA certificate (it needs basicConstraints cA=true and, when key usage is present, keyCertSign): give the certificate of a CA`);
  }
  if (now >= cert.notAfter) throw new CaStateError(files.cert, `the CA certificate ${files.cert} expired at ${new Date(cert.notAfter).toISOString()}: replace it (or move the state directory aside to start a new CA; every workload must then pin the new root)`);
  if (cert.notBefore > now + 60_000) throw new CaStateError(files.cert, `the CA certificate ${files.cert} is not valid before ${new Date(cert.notBefore).toISOString()}: check this machine's clock`);
  if (!keyMatchesCertificate(keyPem, cert.der)) throw new CaStateError(files.key, `${files.key} is not the private key of ${files.cert}: restore the matching pair`);
  const { key, algorithm } = await importSigningKey(keyPem, files.key);
  const subjectName = new (loadX509().X509Certificate)(new Uint8Array(cert.der)).subjectName;
  return { cert, pem: derToPem(cert.der), key, algorithm, keyId: keyIdOf(cert.node.publicKey.export({ type: 'spki', format: 'der' })), subjectName };
}

async function importSigningKey(keyPem: string, file: string): Promise<{ key: CryptoKey; algorithm: EcdsaParams | RsaHashedImportParams }> {
  let ko;
  try {
    ko = createPrivateKey(keyPem);
  } catch (e) {
    throw new CaStateError(file, `${file} is not a PEM private key (${(e as Error).message})`, { cause: e });
  }
  const pkcs8 = ko.export({ type: 'pkcs8', format: 'der' });
  const curve = ko.asymmetricKeyDetails?.namedCurve;
  if (ko.asymmetricKeyType === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1')) {
    const namedCurve = curve === 'prime256v1' ? 'P-256' : 'P-384';
    const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve }, false, ['sign']);
    return { key, algorithm: { name: 'ECDSA', hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } };
  }
  if (ko.asymmetricKeyType === 'rsa' && (ko.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']), algorithm };
  }
  throw new CaStateError(file, `${file} is a ${ko.asymmetricKeyType} key${curve ? ` on ${curve}` : ''}: the CA signs with ECDSA P-256/P-384 or RSA ≥ 2048 bits`);
}

/** RFC 5280 key identifier, method 1: SHA-1 of the subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
export function keyIdOf(spki: Uint8Array): string {
  const outer = readTlv(spki, 0, spki.length);
  const algorithm = readTlv(spki, outer.contentStart, outer.end);
  const bits = readTlv(spki, algorithm.end, outer.end);
  return createHash('sha1').update(spki.subarray(bits.contentStart + 1, bits.end)).digest('hex');
}

/** A positive 128-bit serial with no leading zero byte. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! % 0x7f) + 1;
  return b.toString('hex');
}

/** A new self-signed ECDSA P-256 root for `trustDomain` (URI SAN spiffe://<td>): its PEM and its PKCS#8 key PEM. */
export async function createRoot(trustDomain: string, now: number, ttlMs = ROOT_TTL_MS): Promise<{ certPem: string; keyPem: string }> {
  const x509 = loadX509();
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=sidecarless control plane, CN=${trustDomain}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + ttlMs),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${SPIFFE_SCHEME}${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: derToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY') };
}

export interface LeafParams {
  /** DER SubjectPublicKeyInfo of the leaf's key. */
  readonly spki: Uint8Array;
  /** URI SANs (the SPIFFE ID of a workload; none for the serving certificate). */
  readonly uris?: readonly string[];
  /** DNS names and IP addresses (the serving certificate). */
  readonly names?: readonly string[];
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Signs a leaf with `a`. Returns its DER. */
export async function signLeaf(a: Authority, p: LeafParams): Promise<Uint8Array> {
  const x509 = loadX509();
  const sans: X509.JsonGeneralNames = [];
  for (const uri of p.uris ?? []) sans.push({ type: 'url', value: uri });
  for (const n of p.names ?? []) sans.push({ type: isIP(n) ? 'ip' : 'dns', value: n });
  const spki = new Uint8Array(p.spki);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: a.subjectName,
    notBefore: new Date(p.notBefore),
    notAfter: new Date(p.notAfter),
    publicKey: spki,
    signingKey: a.key,
    signingAlgorithm: a.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(sans, true), // critical: the subject is empty
      new x509.AuthorityKeyIdentifierExtension(a.keyId),
      new x509.SubjectKeyIdentifierExtension(keyIdOf(spki)),
    ],
  });
  return new Uint8Array(cert.rawData);
}
