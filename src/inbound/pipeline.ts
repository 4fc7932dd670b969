import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type TLSSocket } from 'node:tls';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type InboundObserver } from '../telemetry/inbound.js';
import { EXACT_ROUTING, type RouterSemantics } from '../policy/equivalence.js';
import { socketPeer } from '../tls/peer.js';
import { type ServerTls } from '../tls/server-context.js';

/** Headers that claim an identity in other meshes. A client can send them; they never mean anything here. */
export const DEFAULT_IDENTITY_HEADERS = ['x-forwarded-client-cert', 'l5d-client-id', 'l5d-client-identity'];

/**
 * The seam where authorization runs: given the verified peer and the request, either let it
 * through (returning undefined) or answer it (403, 400) and return the status sent.
 */
export type AuthorizeStep = (req: IncomingMessage, res: ServerResponse, peer: PeerIdentity | null, routing: RouterSemantics) => number | undefined;

export interface InboundStats {
  requests: number;
  admitted: number;
  refused: number;
  /** Requests that arrived with an identity header, which was removed. */
  identityHeadersRemoved: number;
}

/**
 * What every inbound request goes through before the app, whatever the framework:
 * authenticate (the socket's verified peer, checked once per connection) → strip identity
 * headers → authorize (policy) → the app.
 */
export class InboundPipeline {
  readonly stats: InboundStats = { requests: 0, admitted: 0, refused: 0, identityHeadersRemoved: 0 };
  readonly #identityHeaders: Set<string>;
  #authorize: AuthorizeStep | undefined;

  constructor(
    private readonly tls: ServerTls,
    identityHeaders: readonly string[] = [],
    /** Golden signals, metrics and the server span (telemetry/inbound.ts). */
    private readonly observer?: InboundObserver,
  ) {
    this.#identityHeaders = new Set([...DEFAULT_IDENTITY_HEADERS, ...identityHeaders.map((h) => h.toLowerCase())]);
  }

  /** Installs the authorization step (the policy layer). */
  setAuthorize(step: AuthorizeStep | undefined): void {
    this.#authorize = step;
  }

  /**
   * Returns true when the request may reach the app (with `req.peer`-style access through peerOf);
   * otherwise the request has been answered or its connection closed.
   */
  admit(req: IncomingMessage, res: ServerResponse, routing: RouterSemantics = EXACT_ROUTING): boolean {
    this.stats.requests++;
    const socket = req.socket as TLSSocket;
    let peer = socketPeer(socket);
    if (peer === undefined) {
      // A server the mesh did not create (a framework's own): attach it now for rotation, and
      // judge this connection here, once.
      const server = (socket as TLSSocket & { server?: unknown }).server;
      if (server && typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function') {
        this.tls.attach(server as Parameters<ServerTls['attach']>[0]);
      }
      if (typeof socket.getPeerX509Certificate !== 'function' || !this.tls.admit(socket)) {
        this.stats.refused++;
        if (!socket.destroyed) socket.destroy();
        return false;
      }
      peer = socketPeer(socket) ?? null;
    } else if (!this.tls.stillServing(socket)) {
      this.stats.refused++;
      return false;
    }
    this.#stripIdentityHeaders(req);
    this.observer?.start(req, res, peer);
    const authorize = this.#authorize;
    if (authorize && authorize(req, res, peer, routing) !== undefined) {
      this.stats.refused++;
      return false;
    }
    this.stats.admitted++;
    return true;
  }

  /** Runs the app for an admitted request, with its server span (if any) as the active trace context. */
  within<T>(req: IncomingMessage, fn: () => T): T {
    return this.observer ? this.observer.within(req, fn) : fn();
  }

  #stripIdentityHeaders(req: IncomingMessage): void {
    let removed = false;
    for (const name of this.#identityHeaders) {
      if (name in req.headers) {
        delete req.headers[name];
        removed = true;
      }
    }
    if (!removed) return;
    this.stats.identityHeadersRemoved++;
    const raw = req.rawHeaders;
    const kept: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      if (!this.#identityHeaders.has(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
    }
    raw.length = 0;
    raw.push(...kept);
  }
}
