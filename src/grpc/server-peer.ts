/**
 * The verified peer of a grpc-js server call. grpc-js gives interceptors only the leaf
 * (`getAuthContext()`), which cannot prove a chain to the bundle of the peer's own trust domain;
 * the call's HTTP/2 session can. Its TLS socket is checked once per connection with the same
 * PeerVerifier as every HTTPS connection (tls/peer.ts: SPIFFE leaf rules, chain against the
 * bundle of the client's own trust domain, resumed sessions only for a leaf verified before), the
 * result cached on the socket; a connection that fails is closed and none of its calls runs.
 * Every call also checks that our own SVID is still valid (as the HTTP gate does per request).
 */
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type GrpcSessionLike as SessionLike, grpcSessionOf as sessionOfCall } from '../inbound/peer-of.js';
import { type X509Source } from '../sources/source.js';
import { type PeerSocket, type PeerVerifier, kPeer, kPeerError } from '../tls/peer.js';

export type CallPeer = { readonly ok: true; readonly peer: PeerIdentity; readonly socket: PeerSocket } | { readonly ok: false; readonly reason: string };

export interface GrpcPeerStats {
  authenticated: number;
  rejected: number;
  lastRejection?: string;
}

export class GrpcPeers {
  readonly stats: GrpcPeerStats = { authenticated: 0, rejected: 0 };

  constructor(
    private readonly source: X509Source,
    private readonly verifier: PeerVerifier,
  ) {}

  /** The call's verified peer, or why it has none (its connection is then closed). */
  of(call: unknown): CallPeer {
    const session = sessionOfCall(call);
    const socket = session?.socket as PeerSocket | undefined;
    if (!session || !socket || typeof socket.getPeerCertificate !== 'function') {
      return { ok: false, reason: 'the call did not arrive over TLS: serve with mesh.grpc.serverCredentials()' };
    }
    try {
      this.source.getX509Svid();
    } catch (e) {
      return this.#reject(session, socket, (e as Error).message);
    }
    const cached = socket[kPeer];
    if (cached) return { ok: true, peer: cached, socket };
    if (cached === null) return { ok: false, reason: socket[kPeerError] ?? 'unverified peer' };
    if (!socket.authorized) return this.#reject(session, socket, socket.authorizationError ? String(socket.authorizationError) : 'no client certificate');
    try {
      const peer = this.verifier.verifySocket(socket).peer;
      socket[kPeer] = peer;
      this.stats.authenticated++;
      return { ok: true, peer, socket };
    } catch (e) {
      return this.#reject(session, socket, (e as Error).message);
    }
  }

  #reject(session: SessionLike, socket: PeerSocket, reason: string): CallPeer {
    socket[kPeer] = null;
    socket[kPeerError] = reason;
    this.stats.rejected++;
    this.stats.lastRejection = reason;
    // After this call's status is written (the caller sends UNAUTHENTICATED first).
    setImmediate(() => session.destroy());
    return { ok: false, reason };
  }
}
