import { SvidError } from '../errors.js';
import { type BundleSet } from './bundle.js';
import { KeyUsage, type ParsedCertificate, isIssuedBy } from './certificate.js';
import { weakKeyReason } from './key-strength.js';
import { type SpiffeId, parseWorkloadId } from './spiffe-id.js';

/**
 * At most this many intermediate CAs between a leaf and its root (SPIRE deployments use 0–2;
 * nested SPIRE adds one per level).
 */
export const MAX_INTERMEDIATES = 6;

/**
 * A presented chain longer than this is refused before any signature is checked: the leaf, the
 * intermediates, and the root that OpenSSL appends to a peer's chain when it found it in the
 * trust store (or that a peer sends itself).
 */
export const MAX_CHAIN_CERTIFICATES = MAX_INTERMEDIATES + 2;

/**
 * Checks the leaf rules of the X.509-SVID specification and returns its SPIFFE ID:
 * exactly one URI SAN holding a workload SPIFFE ID; not a CA; key usage present with
 * digitalSignature and without keyCertSign or cRLSign.
 */
export function validateLeaf(leaf: ParsedCertificate): SpiffeId {
  if (leaf.uris.length === 0) throw new SvidError('the leaf certificate has no URI SAN: an X.509-SVID carries its SPIFFE ID there');
  if (leaf.uris.length > 1) throw new SvidError(`the leaf certificate has ${leaf.uris.length} URI SANs: an X.509-SVID has exactly one`);
  let id: SpiffeId;
  try {
    id = parseWorkloadId(leaf.uris[0]!);
  } catch (e) {
    throw new SvidError(`the leaf's URI SAN is not a valid SPIFFE ID: ${(e as Error).message}`, { cause: e });
  }
  if (leaf.isCa) throw new SvidError('the leaf certificate has cA=true: an X.509-SVID leaf must not be a CA');
  if (leaf.keyUsage === undefined) throw new SvidError('the leaf certificate has no key usage extension: digitalSignature is required');
  if ((leaf.keyUsage & KeyUsage.digitalSignature) === 0) throw new SvidError('the leaf certificate lacks the digitalSignature key usage');
  if (leaf.keyUsage & (KeyUsage.keyCertSign | KeyUsage.cRLSign)) {
    throw new SvidError('the leaf certificate has keyCertSign or cRLSign key usage: an X.509-SVID leaf must not sign certificates');
  }
  return id;
}

export interface VerifiedChain {
  readonly spiffeId: SpiffeId;
  readonly leaf: ParsedCertificate;
  /** The earliest notAfter on the verified path (leaf, intermediates, root). */
  readonly notAfter: number;
  /** The latest notBefore on the verified path. */
  readonly notBefore: number;
}

function checkValidity(cert: ParsedCertificate, role: string, now: number): void {
  if (now < cert.notBefore) throw new SvidError(`the ${role} certificate is not valid yet (notBefore ${new Date(cert.notBefore).toISOString()})`);
  if (now > cert.notAfter) throw new SvidError(`the ${role} certificate has expired (notAfter ${new Date(cert.notAfter).toISOString()})`);
}

function checkKey(cert: ParsedCertificate, role: string): void {
  const why = weakKeyReason(cert.publicKey, role);
  if (why) throw new SvidError(why);
}

function checkAuthority(cert: ParsedCertificate, role: string): void {
  if (!cert.isCa) throw new SvidError(`the ${role} certificate is not a CA (basicConstraints cA=false)`);
  if (cert.keyUsage !== undefined && (cert.keyUsage & KeyUsage.keyCertSign) === 0) {
    throw new SvidError(`the ${role} certificate lacks the keyCertSign key usage`);
  }
}

/**
 * Verifies an X.509-SVID chain (leaf first, then any intermediates the peer sent) at time `now`
 * against the bundle of the leaf's OWN trust domain — never against the union of all roots, so a
 * CA of trust domain B cannot vouch for an identity in trust domain A.
 */
export function verifySvidChain(chain: readonly ParsedCertificate[], bundles: BundleSet, now: number): VerifiedChain {
  const leaf = chain[0];
  if (!leaf) throw new SvidError('no certificate was presented');
  if (chain.length > MAX_CHAIN_CERTIFICATES) {
    throw new SvidError(
      `the chain has ${chain.length} certificates, more than ${MAX_CHAIN_CERTIFICATES} (a leaf, at most ${MAX_INTERMEDIATES} intermediate CAs and a root)`,
    );
  }
  const spiffeId = validateLeaf(leaf);
  checkKey(leaf, `the leaf certificate of ${spiffeId.id}`);
  const bundle = bundles.get(spiffeId.trustDomain);
  if (!bundle) throw new SvidError(`no trust bundle for trust domain "${spiffeId.trustDomain}" (the peer is ${spiffeId.id})`);
  checkValidity(leaf, 'leaf', now);

  let notAfter = leaf.notAfter;
  let notBefore = leaf.notBefore;
  const used = new Set<ParsedCertificate>([leaf]);
  let current = leaf;
  // `depth` intermediates have been walked so far.
  for (let depth = 0; ; depth++) {
    const root = bundle.roots.find((r) => isIssuedBy(current, r));
    if (root) {
      checkKey(root, `the root CA "${root.subject}" of trust domain "${spiffeId.trustDomain}"`);
      checkValidity(root, 'root', now);
      checkAuthority(root, 'root');
      notAfter = Math.min(notAfter, root.notAfter);
      notBefore = Math.max(notBefore, root.notBefore);
      return { spiffeId, leaf, notAfter, notBefore };
    }
    const next = chain.find((c) => !used.has(c) && isIssuedBy(current, c));
    if (!next) {
      throw new SvidError(
        `the chain of ${spiffeId.id} does not lead to a root of trust domain "${spiffeId.trustDomain}"`,
      );
    }
    if (depth === MAX_INTERMEDIATES) {
      throw new SvidError(`the chain of ${spiffeId.id} has more than ${MAX_INTERMEDIATES} intermediate CAs before a root`);
    }
    checkKey(next, `the intermediate CA "${next.subject}" in the chain of ${spiffeId.id}`);
    checkAuthority(next, 'intermediate');
    checkValidity(next, 'intermediate', now);
    if (next.pathLength !== undefined && next.pathLength < depth) {
      throw new SvidError('an intermediate certificate\'s pathLenConstraint is exceeded');
    }
    notAfter = Math.min(notAfter, next.notAfter);
    notBefore = Math.max(notBefore, next.notBefore);
    used.add(next);
    current = next;
  }
}
