import { type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';
import { type Clock } from '../clock.js';
import { SvidError } from '../errors.js';
import { type BundleSet } from '../identity/bundle.js';
import { type ParsedCertificate, parseCertificate } from '../identity/certificate.js';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type SpiffeId, kubernetesParts } from '../identity/spiffe-id.js';
import { MAX_CHAIN_CERTIFICATES, type VerifiedChain, verifySvidChain } from '../identity/svid.js';

/** Process-wide key (shared by ESM and CJS copies) under which a socket's verified peer is cached. */
export const kPeer: unique symbol = Symbol.for('sidecarless.v1.peer') as never;
/** Why a socket has no verified peer (for logs and stats). */
export const kPeerError: unique symbol = Symbol.for('sidecarless.v1.peerError') as never;

export interface PeerSocket extends TLSSocket {
  [kPeer]?: PeerIdentity | null;
  [kPeerError]?: string;
}

/** A verified peer: the public shape and the parsed ID (for authorizers). */
export interface VerifiedPeer {
  readonly peer: PeerIdentity;
  readonly id: SpiffeId;
  /** When the verified chain stops being valid. */
  readonly notAfter: number;
}

interface CacheEntry extends VerifiedPeer {
  readonly bundles: BundleSet;
  readonly verified: VerifiedChain;
}

const CACHE_LIMIT = 4096;

/**
 * Verifies the peer of a TLS socket: its chain against the bundle of the peer's own trust domain,
 * the X.509-SVID leaf rules, and validity now. Results are cached by leaf fingerprint for as long as
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
    if (hit && hit.bundles === bundles && now >= hit.verified.notBefore && now <= hit.verified.notAfter) return hit;

    const chain = detailed?.raw ? detailed : socket.getPeerCertificate(true);
    if (!chain || !chain.raw || chain.fingerprint256 !== key) throw new SvidError('the peer\'s certificate chain does not start with the certificate it presented');
    const verified = verifySvidChain(presentedChain(chain), bundles, now);
    const id = verified.spiffeId;
    const peer: PeerIdentity = Object.freeze({ spiffeId: id.id, trustDomain: id.trustDomain, ...kubernetesParts(id) });
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
    const entry: CacheEntry = { bundles, verified, peer, id, notAfter: verified.notAfter };
    this.#cache.set(key, entry);
    return entry;
  }

  clear(): void {
    this.#cache.clear();
  }
}

/**
 * The certificates the peer sent, leaf first, as OpenSSL reports them (a root it appended from the
 * trust store is harmless: it is only a candidate). Read up to one past the limit, so that an
 * over-long chain is refused as such by verifySvidChain, without parsing all of it.
 */
function presentedChain(leaf: DetailedPeerCertificate): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = leaf;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256) && out.length <= MAX_CHAIN_CERTIFICATES) {
    seen.add(c.fingerprint256);
    out.push(parseCertificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** The peer cached on a socket: a PeerIdentity, null (no verified peer), or undefined (not looked at yet). */
export function socketPeer(socket: unknown): PeerIdentity | null | undefined {
  return (socket as PeerSocket | undefined)?.[kPeer];
}
