/**
 * Peer verification without a socket: the certificates a peer presented (DER, leaf first), the
 * trust bundles and a time in, the verified identity or the reason out. What the server checks at
 * every handshake (PeerVerifier, server-context.ts) and the client for every server (connect.ts),
 * callable from any transport's hook: grpc-js's checkServerIdentity, an HTTP/2 session, a test.
 * Pure (no I/O); `now` is the caller's clock.
 */
import { type BundleSet } from '../identity/bundle.js';
import { type ParsedCertificate, parseCertificate } from '../identity/certificate.js';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type IdentityName, peerIdentityOf } from '../identity/name.js';
import { MAX_CHAIN_CERTIFICATES, verifySvidChain } from '../identity/svid.js';

/** A verified peer: the public shape and the parsed ID (for authorizers). */
export interface VerifiedPeer {
  readonly peer: PeerIdentity;
  /** The verified name: a SpiffeId, or a DnsIdentity (Linkerd). `id.id` is the string either way. */
  readonly id: IdentityName;
  /** When the verified chain stops being valid (the earliest notAfter on its path, ms). */
  readonly notAfter: number;
  /** When it starts being valid (the latest notBefore on its path, ms). */
  readonly notBefore: number;
}

export type PeerVerdict = { readonly ok: true; readonly verified: VerifiedPeer } | { readonly ok: false; readonly reason: string };

/**
 * Verifies a presented chain as an X.509-SVID at `now`: the leaf's SPIFFE rules, key strength,
 * and a path to a root of the bundle of the leaf's OWN trust domain (never the union of all
 * roots). A leaf without a URI SAN is a DNS-like identity when the bundles hold `dns:` anchors
 * (verifySvidChain): then its one DNS SAN is the identity, verified against its identity domain's anchors only. Extra certificates the peer sent are only candidates. At most one certificate past the
 * chain limit is parsed, so an over-long chain is refused as such without parsing all of it.
 */
export function verifyPeerChain(chain: readonly Uint8Array[], bundles: BundleSet, now: number): PeerVerdict {
  if (!Array.isArray(chain)) return { ok: false, reason: 'the peer chain must be an array of DER certificates, leaf first' };
  if (chain.length === 0) return { ok: false, reason: 'the peer presented no certificate' };
  let parsed: ParsedCertificate[];
  try {
    parsed = chain.slice(0, MAX_CHAIN_CERTIFICATES + 1).map((der) => parseCertificate(der));
  } catch (e) {
    return { ok: false, reason: `the peer's certificate could not be parsed: ${(e as Error).message}` };
  }
  try {
    const v = verifySvidChain(parsed, bundles, now);
    const id = v.identity;
    const peer: PeerIdentity = peerIdentityOf(id);
    return { ok: true, verified: { peer, id, notAfter: v.notAfter, notBefore: v.notBefore } };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
