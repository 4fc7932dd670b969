import { randomBytes } from 'node:crypto';
import { type SecureContextOptions, type Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { type X509Source } from '../sources/source.js';
import { type PeerSocket, type PeerVerifier, kPeer, kPeerError } from './peer.js';
import { HTTP1_ALPN, secureContextOptions } from './secure-context.js';

export { HTTP1_ALPN, HTTP2_ALPN } from './secure-context.js';

export { MIN_TLS_VERSION } from './secure-context.js';

/** STRICT: every connection must present a verified SVID. PERMISSIVE: TLS without a client certificate is accepted, its peer is unauthenticated. Never plaintext. */
export type InboundMode = 'strict' | 'permissive';

export interface HandshakeStats {
  authenticated: number;
  unauthenticated: number;
  rejected: number;
  tlsErrors: number;
  lastRejection?: string;
}

/** A client must finish its TLS handshake within this (Node's default is 120 s). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Process-wide key: the connection was refused (closed) by the mesh; nothing on it is ever admitted. */
const kRefused = Symbol.for('sidecarless.v1.refused');

/** Whether the mesh refused this connection (its peer failed verification, or our SVID expired). */
export function isRefused(socket: unknown): boolean {
  return (socket as { [kRefused]?: boolean } | undefined)?.[kRefused] === true;
}

/**
 * The server side of mutual TLS: secure-context options built once per rotation from the
 * X509Source, swapped into every attached server with `setSecureContext`, and a check of each new
 * connection's peer (cached on the socket) before any request on it reaches the app.
 */
export class ServerTls {
  readonly stats: HandshakeStats = { authenticated: 0, unauthenticated: 0, rejected: 0, tlsErrors: 0 };
  readonly #servers = new Set<TlsServer>();
  #context: SecureContextOptions;
  readonly #unsubscribe: () => void;
  /**
   * This mesh's TLS session id context, also the mark by which a server built from options() is
   * recognised at its first connection (Node keeps it as `server.sessionIdContext`).
   */
  readonly sessionIdContext = randomBytes(16).toString('hex');

  #mode: InboundMode;
  /** Attached servers built from options() (ours), whose TLS-level client check follows the mode. */
  readonly #ours = new WeakSet<TlsServer>();

  constructor(
    private readonly source: X509Source,
    private readonly verifier: PeerVerifier,
    mode: InboundMode,
    private readonly onReject: (reason: string) => void = () => {},
    /** ALPN protocols offered by default (an HTTP/2 server asks options() for HTTP2_ALPN). */
    readonly alpn: readonly string[] = HTTP1_ALPN,
  ) {
    this.#mode = mode;
    this.#context = this.#build();
    this.#unsubscribe = source.onUpdate(() => this.#rotate());
  }

  /** The mode new connections are admitted under. */
  get mode(): InboundMode {
    return this.#mode;
  }

  /**
   * Changes the mode for new connections on every attached server (and servers built from
   * options() later). Connections already admitted keep the peer they were admitted with.
   *
   * The check that counts is admit() (our code, at each new connection). A server built from
   * options() also has its TLS-level check follow the mode, so that in STRICT a client without a
   * certificate is refused in the handshake, exactly as a server built strict (OpenSSL's
   * certificate_required / unknown_ca alert): node:tls reads `server.rejectUnauthorized` for each
   * new connection. Servers built with other TLS options keep their own TLS-level setting.
   */
  setMode(mode: InboundMode): void {
    if (mode !== 'strict' && mode !== 'permissive') throw new TypeError(`inbound mode must be 'strict' or 'permissive', got ${JSON.stringify(mode)}`);
    this.#mode = mode;
    for (const s of this.#servers) this.#applyMode(s);
  }

  #applyMode(server: TlsServer): void {
    if (this.#ours.has(server)) (server as TlsServer & { rejectUnauthorized?: boolean }).rejectUnauthorized = this.#mode === 'strict';
  }

  #build(): SecureContextOptions {
    return {
      ...secureContextOptions(this.source.getX509Svid(), this.source.getBundles(), { alpn: this.alpn }),
      // Kept across rotations (setSecureContext would otherwise reset it to Node's default).
      sessionIdContext: this.sessionIdContext,
    };
  }

  #rotate(): void {
    let next: SecureContextOptions;
    try {
      next = this.#build();
    } catch {
      return; // keep the last context; the use-time check refuses connections if it expires
    }
    this.#context = next;
    this.verifier.clear();
    for (const s of this.#servers) s.setSecureContext(next);
  }

  /**
   * Options for `https.createServer` / `tls.createServer` / a framework's `https` option; `alpn`:
   * the protocols offered (node:http2 sets its own from allowHTTP1; rotation keeps a server's ALPN).
   */
  options(alpn: readonly string[] = this.alpn): TlsOptions {
    return {
      ...this.#context,
      ALPNProtocols: [...alpn],
      requestCert: true,
      rejectUnauthorized: this.#mode === 'strict',
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      // Node answers a Host-less HTTP/1.1 request with 400 yet still hands a request pipelined
      // behind it to the app; the policy gate answers it instead and closes the connection.
      requireHostHeader: false,
    } as TlsOptions;
  }

  /** Keeps a server's certificate current and checks every new connection's peer. Idempotent. */
  attach(server: TlsServer): void {
    if (this.#servers.has(server)) return;
    this.#servers.add(server);
    // Read before setSecureContext, which gives every attached server our session id context.
    if ((server as TlsServer & { sessionIdContext?: unknown }).sessionIdContext === this.sessionIdContext) this.#ours.add(server);
    this.#applyMode(server);
    server.setSecureContext(this.#context);
    server.prependListener('secureConnection', (socket: TLSSocket) => this.admit(socket));
    server.on('tlsClientError', (err: Error) => {
      this.stats.tlsErrors++;
      this.stats.lastRejection = err.message;
    });
    server.once('close', () => this.#servers.delete(server));
  }

  /**
   * Decides once per connection: verified peer, unauthenticated (permissive only), or closed.
   * Returns false when the connection was closed.
   */
  admit(socket: TLSSocket, close: () => void = () => socket.destroy()): boolean {
    const s = socket as PeerSocket;
    if (s[kPeer] !== undefined) return !s.destroyed && !isRefused(s);
    try {
      this.source.getX509Svid();
    } catch (e) {
      return this.#reject(s, (e as Error).message, close);
    }
    let peer = null;
    if (s.authorized) {
      try {
        peer = this.verifier.verifySocket(s).peer;
      } catch (e) {
        s[kPeerError] = (e as Error).message;
      }
    } else {
      s[kPeerError] = s.authorizationError ? String(s.authorizationError) : 'no client certificate';
    }
    if (!peer && this.#mode === 'strict') return this.#reject(s, s[kPeerError] ?? 'unverified peer', close);
    s[kPeer] = peer;
    if (peer) this.stats.authenticated++;
    else this.stats.unauthenticated++;
    return true;
  }

  /**
   * Per request: is our own SVID still valid? A connection admitted earlier must not keep serving
   * with an identity that has since expired (a cheap clock comparison).
   */
  stillServing(socket: TLSSocket, close: () => void = () => socket.destroy()): boolean {
    try {
      this.source.getX509Svid();
      return true;
    } catch (e) {
      this.#reject(socket as PeerSocket, (e as Error).message, close);
      return false;
    }
  }

  /** `close`: how the connection is closed (an HTTP/2 session's socket is closed through its session). */
  #reject(socket: PeerSocket, reason: string, close: () => void = () => socket.destroy()): boolean {
    (socket as PeerSocket & { [kRefused]?: boolean })[kRefused] = true;
    socket[kPeer] = null;
    socket[kPeerError] = reason;
    this.stats.rejected++;
    this.stats.lastRejection = reason;
    this.onReject(reason);
    close();
    return false;
  }

  close(): void {
    this.#unsubscribe();
    this.#servers.clear();
  }
}
