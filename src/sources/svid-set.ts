import { SvidError } from '../errors.js';
import { type BundleSet } from '../identity/bundle.js';
import { parseCertificate } from '../identity/certificate.js';
import { keyMatchesCertificate } from '../identity/keys.js';
import { pemToCertDers } from '../identity/pem.js';
import { verifySvidChain } from '../identity/svid.js';
import { type X509Svid } from './source.js';

/**
 * Builds the workload's SVID from PEM and accepts it only as a consistent set: the key matches the
 * leaf, the chain verifies against the bundle of its own trust domain, and it is valid now.
 * Throws SvidError naming what is wrong; the caller keeps the previous set.
 */
export function buildSvid(certChainPem: string, keyPem: string, bundles: BundleSet, now: number): X509Svid {
  let ders: Buffer[];
  try {
    ders = pemToCertDers(certChainPem);
  } catch (e) {
    throw new SvidError(`the certificate file is not valid PEM: ${(e as Error).message}`, { cause: e });
  }
  if (ders.length === 0) throw new SvidError('the certificate file holds no CERTIFICATE block');
  let chain;
  try {
    chain = ders.map(parseCertificate);
  } catch (e) {
    throw new SvidError(`a certificate cannot be parsed: ${(e as Error).message}`, { cause: e });
  }
  if (!/-----BEGIN (EC |)PRIVATE KEY-----/.test(keyPem)) throw new SvidError('the key file holds no PRIVATE KEY block');
  if (!keyMatchesCertificate(keyPem, chain[0]!.der)) {
    throw new SvidError('the private key does not belong to the leaf certificate (a rotation caught half-way?)');
  }
  const verified = verifySvidChain(chain, bundles, now);
  return {
    spiffeId: verified.spiffeId,
    chain,
    certChainPem,
    keyPem,
    notBefore: verified.notBefore,
    notAfter: verified.notAfter,
  };
}
