import { KeyObject, webcrypto, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { type CsrName, certificationRequestInfo, signCertificationRequest } from './csr.js';
import { derToPem } from './pem.js';

/** Key types: ECDSA P-256 is the default (cheaper handshakes than RSA-2048); P-384 is offered too. */
export type KeyType = 'ec-p256' | 'ec-p384';

const ALGORITHMS: Record<KeyType, EcKeyGenParams & { hash: string }> = {
  'ec-p256': { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  'ec-p384': { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
};

export function signingAlgorithm(keyType: KeyType): EcdsaParams {
  return { name: 'ECDSA', hash: ALGORITHMS[keyType].hash };
}

export async function generateKeyPair(keyType: KeyType = 'ec-p256'): Promise<CryptoKeyPair> {
  const { name, namedCurve } = ALGORITHMS[keyType];
  return (await webcrypto.subtle.generateKey({ name, namedCurve }, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** PKCS#8 PEM, as spiffe-helper writes svid_key.pem. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return derToPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function importPrivateKeyPem(pem: string, keyType?: KeyType): Promise<CryptoKey> {
  const keyObject = createPrivateKey(pem);
  const curve = keyObject.asymmetricKeyDetails?.namedCurve;
  const type: KeyType = keyType ?? (curve === 'secp384r1' ? 'ec-p384' : 'ec-p256');
  if (keyObject.asymmetricKeyType !== 'ec') throw new Error(`unsupported key type ${keyObject.asymmetricKeyType}: use an EC P-256 or P-384 key`);
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const { name, namedCurve } = ALGORITHMS[type];
  return webcrypto.subtle.importKey('pkcs8', pkcs8, { name, namedCurve }, true, ['sign']);
}

/** True when the private key (PEM) belongs to the certificate (DER). */
export function keyMatchesCertificate(keyPem: string, certDer: Uint8Array): boolean {
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const fromCert = new X509Certificate(Buffer.from(certDer)).publicKey.export({ type: 'spki', format: 'der' });
    return fromKey.equals(fromCert);
  } catch {
    return false;
  }
}

/**
 * A PKCS#10 CSR (PEM) carrying a SPIFFE ID as its URI SAN (what the Istio CA expects), or
 * `{ dns }` as its only DNS SAN (what Linkerd's identity service expects).
 */
export async function createCsr(keys: CryptoKeyPair, spiffeId: CsrName, keyType: KeyType = 'ec-p256'): Promise<string> {
  const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  const hash = ALGORITHMS[keyType].hash as 'SHA-256' | 'SHA-384';
  return signCertificationRequest(certificationRequestInfo(spki, spiffeId), KeyObject.from(keys.privateKey), hash);
}
