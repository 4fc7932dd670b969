import { type DetailedPeerCertificate, type SecureContext, type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { type Clock, systemClock } from '../clock.js';
import type { buildConnector } from 'undici';
import { PeerIdentityError, SidecarlessError } from '../errors.js';
import { type Authorizer } from '../identity/authorizer.js';
import { type X509Source } from '../sources/source.js';
import { type PeerSocket, type PeerVerifier, type VerifiedPeer, kPeer } from './peer.js';
import { HTTP1_ALPN, secureContextOptions } from './secure-context.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class ConnectTimeoutError extends SidecarlessError {
  constructor(target: string, ms: number) {
    super('ERR_SIDECARLESS_CONNECT_TIMEOUT', `connecting to ${target} took longer than ${ms} ms`);
  }
}

/**
 * The server did not select one of the ALPN protocols a connection required (a service declared
 * 'http2' or 'grpc' whose endpoint answers HTTP/1.1 only): the connection is closed, never spoken to
 * in another protocol.
 */
export class AlpnMismatchError extends SidecarlessError {
  constructor(describe: string, offered: readonly string[], selected: string | false, cause?: Error) {
    super(
      'ERR_SIDECARLESS_ALPN_MISMATCH',
      `${describe}: the server did not agree to ${offered.join(' or ')} (ALPN; it ${cause ? 'refused the handshake' : `selected ${selected ? JSON.stringify(selected) : 'none'}`}). ` +
        `A service with protocol 'http2' or 'grpc' is spoken to in HTTP/2 only: serve h2 there, or set its protocol to 'http'.`,
      cause && { cause },
    );
  }
}

/** OpenSSL's verdicts on a server chain: the server could not prove an identity we trust. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)|ERR_TLS_CERT/;

function asIdentityError(err: Error & { code?: string }, describe: string): Error {
  if (!err.code || !CERT_ERROR.test(err.code)) return err;
  return new PeerIdentityError(`${describe}: the server's certificate does not verify against our trust bundles (${err.code})`, { cause: err });
}

export interface MeshConnectTarget {
  /** Who the server must be (checked on every connection, resumed ones included). */
  authorize: Authorizer;
  /** SNI to send; IP addresses are never sent as SNI. */
  servername?: string;
  /** For error messages: the service and address. */
  describe: string;
  /**
   * ALPN protocols to offer (default `['http/1.1']`, and a server that selects none is accepted).
   * Given, the server must select one of them, or the connection fails with AlpnMismatchError.
   */
  alpn?: readonly string[];
}

/**
 * The client side of mutual TLS, as an undici connector: presents the workload's SVID, and accepts
 * the connection only when the server's chain verifies against the bundle of the server's own
 * trust domain AND its SPIFFE ID is the one discovery promised. Hostname checks are not identity
 * checks, so Node's is replaced by this one, which also runs for resumed sessions (where Node skips
 * checkServerIdentity). There is no plaintext or unverified fallback: any failure fails the attempt.
 */
export class ClientTls {
  #context: SecureContext | undefined;
  /** TLS sessions by endpoint, each with the peer that was verified when it was established. */
  readonly #sessions = new Map<string, { session: Buffer; verified: VerifiedPeer }>();
  readonly #unsubscribe: () => void;

  constructor(
    private readonly source: X509Source,
    private readonly verifier: PeerVerifier,
    private readonly connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
    private readonly clock: Clock = systemClock,
  ) {
    this.#unsubscribe = source.onUpdate(() => {
      // New SVID or bundles: new handshakes use them; sessions resumed from the old ones would not.
      this.#context = undefined;
      this.#sessions.clear();
    });
  }

  #secureContext(): SecureContext {
    // getX509Svid throws when the SVID expired: no call goes out with it.
    const svid = this.source.getX509Svid();
    this.#context ??= createSecureContext(secureContextOptions(svid, this.source.getBundles(), { alpn: HTTP1_ALPN }));
    return this.#context;
  }

  connector(target: MeshConnectTarget): buildConnector.connector {
    return (options, callback) => {
      let done = false;
      const finish = (err: Error | null, socket: TLSSocket | null) => {
        if (done) return;
        done = true;
        timer.cancel();
        if (err) {
          socket?.destroy();
          callback(err, null);
        } else callback(null, socket!);
      };
      let secureContext: SecureContext;
      try {
        secureContext = this.#secureContext();
      } catch (e) {
        queueMicrotask(() => callback(e as Error, null));
        return;
      }
      const host = options.hostname;
      const port = Number(options.port) || 443;
      const sessionKey = `${host}:${port}`;
      const offered = this.#sessions.get(sessionKey);
      const servername = target.servername && !isIP(target.servername) ? target.servername : undefined;
      // Node builds the server's detailed certificate for checkServerIdentity (full handshakes
      // only): keep it for the SPIFFE check instead of building it a second time.
      let presented: DetailedPeerCertificate | undefined;
      const socket = tlsConnect({
        host,
        port,
        ...(servername && { servername }),
        secureContext,
        ...(offered && { session: offered.session }),
        ALPNProtocols: [...(target.alpn ?? HTTP1_ALPN)],
        checkServerIdentity: (_host, cert) => {
          presented = cert as DetailedPeerCertificate; // Node passes getPeerCertificate(true)
          return undefined; // replaced by the SPIFFE check below, on every connection
        },
        ...(options.localAddress && { localAddress: options.localAddress }),
      });
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      const timer = this.clock.setTimeout(() => finish(new ConnectTimeoutError(target.describe, this.connectTimeoutMs), socket), this.connectTimeoutMs);
      // A resumable session is kept only once its peer has been verified (TLS 1.2 announces it
      // before the handshake ends, TLS 1.3 after).
      let verified: VerifiedPeer | undefined;
      let pendingSession: Buffer | undefined;
      socket.on('session', (session: Buffer) => {
        if (verified) this.#sessions.set(sessionKey, { session, verified });
        else pendingSession = session;
      });
      socket.once('secureConnect', () => {
        try {
          if (!socket.authorized) throw new PeerIdentityError(`${target.describe}: ${socket.authorizationError}`);
          verified = this.#verify(socket, offered, presented);
          const why = target.authorize(verified.id);
          if (why) throw new PeerIdentityError(`${target.describe}: ${why}`);
          if (target.alpn && !target.alpn.includes(socket.alpnProtocol as string)) throw new AlpnMismatchError(target.describe, target.alpn, socket.alpnProtocol ?? false);
          (socket as PeerSocket)[kPeer] = verified.peer;
          if (pendingSession) this.#sessions.set(sessionKey, { session: pendingSession, verified });
          finish(null, socket);
        } catch (e) {
          const err = e instanceof PeerIdentityError || e instanceof AlpnMismatchError ? e : new PeerIdentityError(`${target.describe}: ${(e as Error).message}`, { cause: e });
          this.#sessions.delete(sessionKey);
          finish(err, socket);
        }
      });
      socket.once('error', (err: Error & { code?: string }) => {
        // A server that speaks none of the required protocols may end the handshake with an alert.
        if (target.alpn && err.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') finish(new AlpnMismatchError(target.describe, target.alpn, false, err), socket);
        else finish(asIdentityError(err, target.describe), socket);
      });
    };
  }

  /**
   * The server's verified identity. A resumed session carries no certificate on the client side:
   * its identity is the one verified when the session was established (only the server that holds
   * that session's ticket key can resume it), still checked for expiry and against the authorizer.
   */
  #verify(socket: TLSSocket, offered: { verified: VerifiedPeer } | undefined, presented: DetailedPeerCertificate | undefined): VerifiedPeer {
    if (presented?.raw) return this.verifier.verifySocket(socket, presented);
    if (socket.isSessionReused() && !socket.getPeerCertificate()?.raw) {
      if (!offered) throw new PeerIdentityError('a session was resumed that this client did not offer');
      if (this.clock.now() > offered.verified.notAfter) throw new PeerIdentityError('the resumed session\'s certificate has expired');
      return offered.verified;
    }
    return this.verifier.verifySocket(socket);
  }

  close(): void {
    this.#unsubscribe();
    this.#sessions.clear();
  }
}
