import { type ParsedCertificate, parseCertificate } from './certificate.js';
import { readTlv } from './der.js';
import { dnsBundleKey } from './dns-id.js';
import { pemToCertDers } from './pem.js';
import { parseSpiffeId, validateTrustDomain } from './spiffe-id.js';

/** The trust roots (X.509 authorities) of one trust domain. */
export interface X509Bundle {
  readonly trustDomain: string;
  readonly roots: readonly ParsedCertificate[];
}

/**
 * Bundles by trust domain. A chain is verified only against the bundle of its leaf's own trust
 * domain. The anchors of a DNS-like identity domain (Linkerd's) live under `dnsBundleKey(domain)`
 * (`dns:identity.linkerd.cluster.local`), a key no SPIFFE trust domain can have.
 */
export type BundleSet = ReadonlyMap<string, X509Bundle>;

export function createBundle(trustDomain: string, roots: readonly ParsedCertificate[]): X509Bundle {
  validateTrustDomain(trustDomain);
  if (roots.length === 0) throw new Error(`the bundle of trust domain "${trustDomain}" has no certificates`);
  return { trustDomain, roots };
}

/**
 * The trust anchors of a DNS-like identity domain (`identity.<linkerd-ns>.<trust-domain>`), keyed
 * `dns:<domain>` in a BundleSet: a leaf whose one DNS SAN lies under the domain verifies against
 * these roots only (see verifySvidChain).
 */
export function createDnsBundle(identityDomain: string, roots: readonly ParsedCertificate[]): X509Bundle {
  const key = dnsBundleKey(identityDomain);
  if (roots.length === 0) throw new Error(`the trust anchors of identity domain "${identityDomain}" hold no certificates`);
  return { trustDomain: key, roots };
}

/** createDnsBundle from PEM trust anchors (Linkerd's LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS). */
export function dnsBundleFromPem(identityDomain: string, pem: string): X509Bundle {
  const ders = pemToCertDers(pem);
  if (ders.length === 0) throw new Error(`the trust anchors of identity domain "${identityDomain}" hold no CERTIFICATE blocks`);
  return createDnsBundle(identityDomain, ders.map((d) => parseCertificate(d)));
}

/** Anchors of DNS-like identity domains: what a source adds to its bundle set (e.g. Linkerd's trust anchors). */
export interface DnsDomainAnchors {
  /** `identity.<linkerd-ns>.<trust-domain>`. */
  readonly domain: string;
  readonly anchorsPem: string;
}

/** The bundle set with each domain's anchors added under its `dns:` key (replacing what that key held). */
export function withDnsBundles(bundles: BundleSet, domains: readonly DnsDomainAnchors[]): Map<string, X509Bundle> {
  const out = new Map(bundles);
  for (const d of domains) {
    const b = dnsBundleFromPem(d.domain, d.anchorsPem);
    out.set(b.trustDomain, b);
  }
  return out;
}

/**
 * Groups root certificates from a PEM file into bundles. A root whose URI SAN is a trust-domain ID
 * (`spiffe://other.td`, as SPIRE and this project's CAs set) belongs to that trust domain; a root
 * without one belongs to `defaultTrustDomain` (the file's own, as spiffe-helper writes it).
 */
export function bundlesFromPem(pem: string, defaultTrustDomain: string): Map<string, X509Bundle> {
  const ders = pemToCertDers(pem);
  if (ders.length === 0) throw new Error('the bundle has no CERTIFICATE blocks');
  const byTd = new Map<string, ParsedCertificate[]>();
  for (const der of ders) {
    const cert = parseCertificate(der);
    const td = trustDomainOfRoot(cert) ?? defaultTrustDomain;
    const list = byTd.get(td) ?? [];
    list.push(cert);
    byTd.set(td, list);
  }
  const out = new Map<string, X509Bundle>();
  for (const [td, roots] of byTd) out.set(td, createBundle(td, roots));
  return out;
}

function trustDomainOfRoot(cert: ParsedCertificate): string | undefined {
  for (const uri of cert.uris) {
    try {
      const id = parseSpiffeId(uri);
      if (id.path === '') return id.trustDomain;
    } catch {
      // not a SPIFFE trust-domain ID: ignore
    }
  }
  return undefined;
}

/** Merges bundle sets; later sets add roots to earlier ones (deduplicated by fingerprint). */
export function mergeBundles(...sets: BundleSet[]): Map<string, X509Bundle> {
  const out = new Map<string, X509Bundle>();
  for (const set of sets) {
    for (const [td, b] of set) {
      const prev = out.get(td);
      if (!prev) {
        out.set(td, b);
        continue;
      }
      const seen = new Set(prev.roots.map((r) => r.fingerprint));
      out.set(td, { trustDomain: td, roots: [...prev.roots, ...b.roots.filter((r) => !seen.has(r.fingerprint))] });
    }
  }
  return out;
}

/** Every root of every trust domain, as PEM DERs, for OpenSSL's first-pass chain check. */
export function allRoots(bundles: BundleSet): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  for (const b of bundles.values()) out.push(...b.roots);
  return out;
}

/**
 * Splits concatenated DER certificates (the SPIFFE Workload API's `bundle`, `federated_bundles`
 * and `x509_svid` fields: SPIRE appends each certificate's raw bytes) into one buffer per
 * certificate. Each must be a whole SEQUENCE; trailing or missing bytes are an error naming the offset.
 */
export function splitDerCertificates(bytes: Uint8Array): Buffer[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let tlv;
    try {
      tlv = readTlv(buf, pos, buf.length);
    } catch (e) {
      throw new Error(`the DER certificates are malformed at byte ${pos}: ${(e as Error).message}`, { cause: e });
    }
    if (tlv.tag !== 0x30) throw new Error(`the DER certificates are malformed at byte ${pos}: a certificate is a SEQUENCE (0x30), found tag 0x${tlv.tag.toString(16)}`);
    out.push(Buffer.from(buf.subarray(tlv.start, tlv.end)));
    pos = tlv.end;
  }
  return out;
}

/**
 * The bundle of `trustDomain` from concatenated DER roots, as the Workload API sends it: the trust
 * domain is the one the message names (the SVID's own, or a `federated_bundles` key), never read
 * from the certificates.
 */
export function bundleFromDer(trustDomain: string, bytes: Uint8Array): X509Bundle {
  const ders = splitDerCertificates(bytes);
  if (ders.length === 0) throw new Error(`the bundle of trust domain "${trustDomain}" is empty`);
  return createBundle(trustDomain, ders.map((d) => parseCertificate(d)));
}
