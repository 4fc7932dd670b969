import { SvidError } from '../errors.js';
import { type BundleSet, type X509Bundle } from './bundle.js';
import { KeyUsage, type ParsedCertificate, isIssuedBy } from './certificate.js';
import { type DnsIdentity, dnsBundleKey, hasDnsBundles, identityDomainFor, identityDomainOfKey, parseDnsIdentity } from './dns-id.js';
import { weakKeyReason } from './key-strength.js';
import { type IdentityName } from './name.js';
import { printable } from './peer-text.js';
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
  leafRules(leaf, 'an X.509-SVID leaf');
  return id;
}

/** Not a CA; key usage present with digitalSignature and without keyCertSign or cRLSign. */
function leafRules(leaf: ParsedCertificate, what: string): void {
  if (leaf.isCa) throw new SvidError(`the leaf certificate has cA=true: ${what} must not be a CA`);
  if (leaf.keyUsage === undefined) throw new SvidError('the leaf certificate has no key usage extension: digitalSignature is required');
  if ((leaf.keyUsage & KeyUsage.digitalSignature) === 0) throw new SvidError('the leaf certificate lacks the digitalSignature key usage');
  if (leaf.keyUsage & (KeyUsage.keyCertSign | KeyUsage.cRLSign)) {
    throw new SvidError(`the leaf certificate has keyCertSign or cRLSign key usage: ${what} must not sign certificates`);
  }
}

/**
 * The leaf rules of a DNS-like identity (Linkerd's): no URI SAN, exactly one DNS SAN holding a
 * lower-case RFC 1123 name, and the X.509-SVID rules that apply (not a CA; digitalSignature, no
 * keyCertSign or cRLSign). Returns the parsed name.
 */
export function validateDnsLeaf(leaf: ParsedCertificate): DnsIdentity {
  if (leaf.uris.length > 0) throw new SvidError('the leaf certificate has a URI SAN: it is an X.509-SVID, not a DNS-like identity');
  if (leaf.dnsNames.length === 0) throw new SvidError('the leaf certificate has no URI SAN and no DNS SAN: it names no identity');
  if (leaf.dnsNames.length > 1) {
    throw new SvidError(`the leaf certificate has ${leaf.dnsNames.length} DNS SANs and no URI SAN: a DNS-like identity has exactly one DNS SAN`);
  }
  let name: DnsIdentity;
  try {
    name = parseDnsIdentity(leaf.dnsNames[0]!);
  } catch (e) {
    throw new SvidError(`the leaf's DNS SAN is not a valid DNS-like identity: ${(e as Error).message}`, { cause: e });
  }
  leafRules(leaf, 'a DNS-like identity leaf');
  return name;
}

export interface VerifiedChain {
  /** Who the leaf names: its SPIFFE ID, or its DNS-like identity (a Linkerd leaf). */
  readonly identity: IdentityName;
  /** The same as `identity` (the name from the SPIFFE-only days): a SpiffeId for an X.509-SVID. */
  readonly spiffeId: IdentityName;
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

/** The leaf's identity, the bundle it must chain to, and how messages name the bundle. */
interface LeafTrust {
  readonly identity: IdentityName;
  readonly bundle: X509Bundle;
  /** `trust domain "td"` or `identity domain "identity.linkerd.cluster.local"`. */
  readonly realm: string;
}

/**
 * A leaf with a URI SAN is an X.509-SVID, verified against its own trust domain's bundle (exactly
 * as ever). A leaf without one is a DNS-like identity only when the bundle set holds anchors of a
 * DNS identity domain (`dns:` keys): then against the anchors of the domain its name lies under,
 * label-wise, and nothing else. Without `dns:` bundles it is refused with the X.509-SVID reason.
 */
function leafTrust(leaf: ParsedCertificate, bundles: BundleSet): LeafTrust {
  if (leaf.uris.length === 0 && hasDnsBundles(bundles.keys())) {
    const name = validateDnsLeaf(leaf);
    checkKey(leaf, `the leaf certificate of ${name.id}`);
    const domain = identityDomainFor(name.name, bundles.keys());
    if (domain === undefined) {
      const known = [...bundles.keys()].map(identityDomainOfKey).filter((d) => d !== undefined);
      throw new SvidError(`the DNS-like identity ${printable(name.id)} lies in no identity domain this mesh trusts (${known.join(', ')}): no trust anchors vouch for it`);
    }
    // The namespace and service account are read relative to the domain whose anchors vouch for the
    // leaf, never from the first `serviceaccount.identity` labels a crafted name may hold.
    return { identity: parseDnsIdentity(name.name, domain), bundle: bundles.get(dnsBundleKey(domain))!, realm: `identity domain "${domain}"` };
  }
  const spiffeId = validateLeaf(leaf);
  checkKey(leaf, `the leaf certificate of ${spiffeId.id}`);
  const bundle = bundles.get(spiffeId.trustDomain);
  if (!bundle) throw new SvidError(`no trust bundle for trust domain "${spiffeId.trustDomain}" (the peer is ${spiffeId.id})`);
  return { identity: spiffeId, bundle, realm: `trust domain "${spiffeId.trustDomain}"` };
}

/**
 * Verifies an X.509-SVID chain (leaf first, then any intermediates the peer sent) at time `now`
 * against the bundle of the leaf's OWN trust domain — never against the union of all roots, so a
 * CA of trust domain B cannot vouch for an identity in trust domain A. A DNS-like leaf (Linkerd)
 * verifies the same way against the anchors of its own identity domain (see leafTrust).
 */
export function verifySvidChain(chain: readonly ParsedCertificate[], bundles: BundleSet, now: number): VerifiedChain {
  const leaf = chain[0];
  if (!leaf) throw new SvidError('no certificate was presented');
  if (chain.length > MAX_CHAIN_CERTIFICATES) {
    throw new SvidError(
      `the chain has ${chain.length} certificates, more than ${MAX_CHAIN_CERTIFICATES} (a leaf, at most ${MAX_INTERMEDIATES} intermediate CAs and a root)`,
    );
  }
  const trust = leafTrust(leaf, bundles);
  const { bundle, realm } = trust;
  const who = trust.identity.id;
  checkValidity(leaf, 'leaf', now);

  let notAfter = leaf.notAfter;
  let notBefore = leaf.notBefore;
  const used = new Set<ParsedCertificate>([leaf]);
  let current = leaf;
  // `depth` intermediates have been walked so far.
  for (let depth = 0; ; depth++) {
    const root = bundle.roots.find((r) => isIssuedBy(current, r));
    if (root) {
      checkKey(root, `the root CA "${root.subject}" of ${realm}`);
      checkValidity(root, 'root', now);
      checkAuthority(root, 'root');
      notAfter = Math.min(notAfter, root.notAfter);
      notBefore = Math.max(notBefore, root.notBefore);
      return { identity: trust.identity, spiffeId: trust.identity, leaf, notAfter, notBefore };
    }
    const next = chain.find((c) => !used.has(c) && isIssuedBy(current, c));
    if (!next) throw new SvidError(`the chain of ${who} does not lead to a root of ${realm}`);
    if (depth === MAX_INTERMEDIATES) {
      throw new SvidError(`the chain of ${who} has more than ${MAX_INTERMEDIATES} intermediate CAs before a root`);
    }
    checkKey(next, `the intermediate CA "${next.subject}" in the chain of ${who}`);
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
