import { type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import { type Clock } from '../clock.js';
import { SvidError } from '../errors.js';
import { type BundleSet } from '../identity/bundle.js';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { MAX_CHAIN_CERTIFICATES } from '../identity/svid.js';
import { type VerifiedPeer, verifyPeerChain } from './verify-peer.js';

export { type PeerVerdict, type VerifiedPeer, verifyPeerChain } from './verify-peer.js';

/** Process-wide key (shared by ESM and CJS copies) under which a socket's verified peer is cached. */
export const kPeer: unique symbol = Symbol.for('sidecarless.v1.peer') as never;
/** Why a socket has no verified peer (for logs and stats). */
export const kPeerError: unique symbol = Symbol.for('sidecarless.v1.peerError') as never;

export interface PeerSocket extends TLSSocket {
  [kPeer]?: PeerIdentity | null;
  [kPeerError]?: string;
}

interface CacheEntry extends VerifiedPeer {
  readonly bundles: BundleSet;
}

const CACHE_LIMIT = 4096;

/**
 * Verifies the peer of a TLS socket with verifyPeerChain (verify-peer.ts: its chain against the
 * bundle of the peer's own trust domain, the X.509-SVID leaf rules, and validity now). Results are cached by leaf fingerprint for as long as
 * the bundle set is the same object and the chain is valid, so a connection pays for parsing only
 * the first time a peer certificate is seen. A resumed TLS session carries only the leaf: it is
 * accepted only when that exact leaf was fully verified before (else the connection is refused).
 */
export class PeerVerifier {
  readonly #cache = new Map<string, CacheEntry>();

  constructor(
    private readonly getBundles: () => BundleSet,
    private readonly clock: Clock,
  ) {}

  /**
   * Returns the verified peer, or throws SvidError saying why not.
   *
   * Cost: the cache is looked up by the leaf's fingerprint from getPeerCertificate(false) (one
   * certificate, ~10× cheaper than the detailed chain); the chain is read with
   * getPeerCertificate(true) and walked only on a miss. A client passes the detailed certificate
   * Node already built for checkServerIdentity, so it is never built twice.
   *
   * Reads the peer's certificates only through getPeerCertificate: in Node, calling
   * getPeerX509Certificate first drops the leaf from the list of certificates the peer sent,
   * which would hide its intermediates (getPeerCertificate(false) has no such side effect).
   */
  verifySocket(socket: TLSSocket, detailed?: DetailedPeerCertificate): VerifiedPeer {
    const presented: PeerCertificate | undefined = detailed?.raw ? detailed : socket.getPeerCertificate(false);
    if (!presented || !presented.raw) throw new SvidError('the peer presented no certificate');
    const bundles = this.getBundles();
    const now = this.clock.now();
    const key = presented.fingerprint256;
    const hit = this.#cache.get(key);
    if (hit && hit.bundles === bundles && now >= hit.notBefore && now <= hit.notAfter) return hit;

    const chain = detailed?.raw ? detailed : socket.getPeerCertificate(true);
    if (!chain || !chain.raw || chain.fingerprint256 !== key) throw new SvidError('the peer\'s certificate chain does not start with the certificate it presented');
    const v = verifyPeerChain(derChainOf(chain), bundles, now);
    if (!v.ok) throw new SvidError(v.reason);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
    const entry: CacheEntry = { ...v.verified, bundles };
    this.#cache.set(key, entry);
    return entry;
  }

  clear(): void {
    this.#cache.clear();
  }
}

/**
 * The certificates the peer sent, leaf first, as DER, from Node's detailed certificate
 * (`getPeerCertificate(true)`, or what checkServerIdentity is handed), for verifyPeerChain. As
 * OpenSSL reports them: a root it appended from the trust store is harmless (only a candidate).
 * Read up to one past the limit, so an over-long chain is refused as such.
 */
export function derChainOf(leaf: DetailedPeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let c: DetailedPeerCertificate | undefined = leaf;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256) && out.length <= MAX_CHAIN_CERTIFICATES) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

/** The peer cached on a socket: a PeerIdentity, null (no verified peer), or undefined (not looked at yet). */
export function socketPeer(socket: unknown): PeerIdentity | null | undefined {
  return (socket as PeerSocket | undefined)?.[kPeer];
}
