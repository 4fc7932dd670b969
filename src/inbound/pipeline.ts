import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Duplex } from 'node:stream';
import { type TLSSocket } from 'node:tls';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { EXACT_ROUTING, type RouterSemantics, coversRouting, unionRouting } from '../policy/router-semantics.js';
import { type InboundObserver } from '../telemetry/inbound.js';
import { socketPeer } from '../tls/peer.js';
import { type ServerTls, isRefused } from '../tls/server-context.js';
import { firstRequestSeen } from './first-request.js';
import { type Verdict } from './http1/judge.js';
import { respondHttp, respondSocket } from './http1/responders.js';
import { DEFAULT_IDENTITY_HEADERS, stripIdentityHeaders } from './http1/sanitize.js';
import { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { type Http2Request, compatStreamOf, existingHttp2Request, http2RequestOf } from './http2/request.js';
import { respondStream } from './http2/responders.js';
import { stripStreamIdentity } from './http2/sanitize.js';

export { DEFAULT_IDENTITY_HEADERS } from './http1/sanitize.js';

/**
 * The seam where authorization runs (the policy gate, through http1/judge.ts): given the verified
 * peer and the request, admit it or say why not. `recheck`: the request was admitted before under
 * narrower semantics.
 */
export type AuthorizeStep = (req: IncomingMessage, peer: PeerIdentity | null, routing: RouterSemantics, recheck: boolean) => Verdict;

/** The same seam for an HTTP/2 stream (http2/judge.ts). */
export type AuthorizeHttp2Step = (req: Http2Request, peer: PeerIdentity | null, routing: RouterSemantics, recheck: boolean) => Verdict;

export interface InboundStats {
  requests: number;
  admitted: number;
  refused: number;
  /** Requests that arrived with an identity header (or trailer), which was removed. */
  identityHeadersRemoved: number;
  /** HTTP/2 sessions closed with GOAWAY ENHANCE_YOUR_CALM for rapid resets (http2/reset-guard.ts). */
  rapidResetSessions: number;
}

/** Process-wide keys (ESM and CJS copies share them). */
const kAdmitted = Symbol.for('sidecarless.v1.admitted');
/**
 * Marks a socket whose request was malformed: it is answered 400 and closed, and nothing pipelined
 * after it on the same connection may reach the app (Node parses and emits such requests before the
 * socket is closed).
 */
const kClosing = Symbol.for('sidecarless.v1.closing');

/** Which pipeline admitted a request, and with which semantics: another mesh's verdict is not ours. */
interface Admission {
  readonly by: InboundPipeline;
  readonly routing: RouterSemantics;
}
type AdmittedCarrier = IncomingMessage & { [kAdmitted]?: Admission };
type ClosingCarrier = { [kClosing]?: boolean };

export interface PipelineHooks {
  /**
   * A request arrived on a TLS connection the mesh did not judge at its handshake: its server was
   * not built by the mesh nor from serverTlsOptions(). Adopt it (the next connections are judged at
   * the handshake); this connection is judged now.
   */
  unknownServer?: (server: unknown) => void;
  /** A request arrived on a connection that is not TLS at all (refused). */
  notTls?: (req: IncomingMessage) => void;
}

/** What a pipeline is built from. `authorize` is required: a pipeline without a gate cannot exist. */
export interface InboundPipelineDeps {
  readonly tls: ServerTls;
  /** The policy gate's HTTP/1.1 step; every request that reaches the app has passed it. */
  readonly authorize: AuthorizeStep;
  /** The gate's HTTP/2 step; without it every h2 stream is refused (its session closed). */
  readonly authorizeHttp2?: AuthorizeHttp2Step;
  /** Extra identity headers to remove (the defaults are always removed). */
  readonly identityHeaders?: readonly string[];
  /** Golden signals, metrics and the server span (telemetry/inbound.ts). */
  readonly observer?: InboundObserver;
  readonly hooks?: PipelineHooks;
}

/**
 * What every inbound request goes through before the app, whatever the framework and whichever
 * server event carries it: authenticate (the socket's verified peer, checked once per connection,
 * at the handshake) → strip identity headers and trailers → check the target and authorize
 * (policy) → the app. Idempotent per request: a server guard, a middleware and a plugin may all ask.
 */
export class InboundPipeline {
  readonly stats: InboundStats = { requests: 0, admitted: 0, refused: 0, identityHeadersRemoved: 0, rapidResetSessions: 0 };
  readonly #identityHeaders: Set<string>;
  readonly #authorize: AuthorizeStep;
  readonly #authorizeHttp2: AuthorizeHttp2Step | undefined;
  private readonly tls: ServerTls;
  private readonly observer: InboundObserver | undefined;
  private readonly hooks: PipelineHooks;

  constructor(deps: InboundPipelineDeps) {
    // Fail closed for JavaScript callers too: without a gate, nothing could be admitted safely.
    if (typeof deps?.authorize !== 'function') {
      throw new TypeError('InboundPipeline: `authorize` (the policy gate\'s step) is required; a pipeline without a gate would admit every request');
    }
    if (!deps.tls) throw new TypeError('InboundPipeline: `tls` (the ServerTls that admits connections) is required');
    this.tls = deps.tls;
    this.#authorize = deps.authorize;
    this.#authorizeHttp2 = deps.authorizeHttp2;
    this.observer = deps.observer;
    this.hooks = deps.hooks ?? {};
    this.#identityHeaders = new Set([...DEFAULT_IDENTITY_HEADERS, ...(deps.identityHeaders ?? []).map((h) => h.toLowerCase())]);
  }

  /**
   * Returns true when the request may reach the app (with `req.peer`-style access through peerOf);
   * otherwise the request has been answered or its connection closed. `closeOnRefusal`: a refusal
   * also ends the connection (an `Expect` request whose body may follow).
   */
  admit(req: IncomingMessage, res: ServerResponse, routing: RouterSemantics = EXACT_ROUTING, closeOnRefusal = false): boolean {
    const stream = compatStreamOf(req);
    if (stream) return this.admitStream(stream, req.headers as IncomingHttpHeaders, req.rawHeaders, routing);
    const before = this.#admittedBefore(req);
    if (before !== undefined) return this.#recheck(req, before, routing, (v) => respondHttp(res, v.status, v.status === 400 || closeOnRefusal));
    this.stats.requests++;
    const peer = this.#authenticate(req);
    if (peer === undefined) return this.#refused();
    this.#strip(req);
    this.observer?.start(req, res, peer);
    const v = this.#judge(req, peer, routing);
    if (!v.ok) {
      // A connection the refusal closes runs nothing pipelined behind it (node:http parses and
      // emits what is already buffered before the socket ends).
      if (closeOnRefusal) (req.socket as unknown as ClosingCarrier)[kClosing] = true;
      respondHttp(res, v.status, v.status === 400 || closeOnRefusal);
      return this.#refused();
    }
    return this.#admitted(req, routing);
  }

  /**
   * The same for a request whose socket node:http has handed over (upgrade, CONNECT): a refusal
   * is written on the socket, which is then closed.
   */
  admitSocket(req: IncomingMessage, socket: Duplex, routing: RouterSemantics = EXACT_ROUTING): boolean {
    const before = this.#admittedBefore(req);
    if (before !== undefined) return this.#recheck(req, before, routing, (v) => respondSocket(socket, v.status));
    this.stats.requests++;
    const peer = this.#authenticate(req);
    if (peer === undefined) return this.#refused();
    this.#strip(req);
    const v = this.#judge(req, peer, routing);
    if (!v.ok) {
      respondSocket(socket, v.status);
      return this.#refused();
    }
    return this.#admitted(req, routing);
  }

  /**
   * A request node:http refuses itself ('dropRequest': past `maxRequestsPerSocket`, answered 503)
   * may still be shown to listeners: only from an admitted connection, identity headers removed.
   */
  sanitize(req: IncomingMessage): boolean {
    if (this.#authenticate(req) === undefined) return false;
    this.#strip(req);
    return true;
  }

  /** The semantics this pipeline admitted `req` under (undefined: not admitted by this pipeline). */
  #admittedBefore(req: IncomingMessage): RouterSemantics | undefined {
    const a = (req as AdmittedCarrier)[kAdmitted];
    return a !== undefined && a.by === this ? a.routing : undefined;
  }

  /** Runs the app for an admitted request, with its server span (if any) as the active trace context. */
  within<T>(req: IncomingMessage | Http2Request, fn: () => T): T {
    if (!this.observer) return fn();
    const view = existingHttp2Request(compatStreamOf(req)) ?? req;
    return this.observer.within(view as IncomingMessage, fn);
  }

  /**
   * The same for an HTTP/2 stream, before any 'stream' or 'request' listener sees it (http2/): the
   * session's verified peer, identity fields removed (trailers too), `:path` checked and
   * normalized, the policy. A refusal is answered on the stream (400/403, gRPC: trailers-only);
   * a refused connection has its session closed. Idempotent, as admit().
   */
  admitStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[] | undefined, routing: RouterSemantics = EXACT_ROUTING): boolean {
    const r = http2RequestOf(stream, headers, rawHeaders);
    const before = (stream as unknown as { [kAdmitted]?: Admission })[kAdmitted];
    if (before !== undefined && before.by === this) return this.#recheckStream(r, before.routing, routing);
    this.stats.requests++;
    const peer = this.#authenticateStream(r);
    if (peer === undefined || !this.#authorizeHttp2) {
      stream.session?.destroy();
      return this.#refused();
    }
    stripStreamIdentity(stream, headers, r.rawHeaders, this.#identityHeaders, () => this.stats.identityHeadersRemoved++);
    this.observer?.start(r as unknown as IncomingMessage, r.response as unknown as ServerResponse, peer);
    const v = this.#authorizeHttp2(r, peer, routing, false);
    if (!v.ok) {
      respondStream(stream, v.status, headers, v.reason);
      return this.#refused();
    }
    (stream as unknown as { [kAdmitted]?: Admission })[kAdmitted] = { by: this, routing };
    this.stats.admitted++;
    return true;
  }

  /** The peer of an h2 stream's session (see #authenticate); its socket is node:http2's proxy. */
  #authenticateStream(r: Http2Request): PeerIdentity | null | undefined {
    const socket = r.socket;
    const session = r.stream.session;
    if (!socket || !session || session.destroyed) return undefined;
    const close = () => session.destroy();
    firstRequestSeen(socket);
    if (isRefused(socket) || (socket as ClosingCarrier)[kClosing]) return undefined;
    const peer = socketPeer(socket);
    if (peer !== undefined) return this.tls.stillServing(socket, close) ? peer : undefined;
    if (typeof socket.getPeerCertificate !== 'function') {
      this.hooks.notTls?.(r as unknown as IncomingMessage);
      close();
      return undefined;
    }
    this.hooks.unknownServer?.((socket as TLSSocket & { server?: unknown }).server);
    if (!this.tls.admit(socket, close)) return undefined;
    return socketPeer(socket) ?? null;
  }

  #recheckStream(r: Http2Request, before: RouterSemantics, routing: RouterSemantics): boolean {
    if (coversRouting(before, routing)) return true;
    const wider = unionRouting(before, routing);
    (r.stream as unknown as { [kAdmitted]?: Admission })[kAdmitted] = { by: this, routing: wider };
    const v = this.#authorizeHttp2!(r, socketPeer(r.socket) ?? null, wider, true);
    if (v.ok) return true;
    this.stats.refused++;
    respondStream(r.stream, v.status, r.headers, v.reason);
    return false;
  }

  /**
   * The verified peer of the request's connection: a PeerIdentity, null (unauthenticated,
   * PERMISSIVE), or undefined when the connection is refused (it has been closed).
   */
  #authenticate(req: IncomingMessage): PeerIdentity | null | undefined {
    const socket = req.socket as TLSSocket;
    firstRequestSeen(socket);
    if (socket.destroyed || isRefused(socket) || (socket as ClosingCarrier)[kClosing]) return undefined;
    const peer = socketPeer(socket);
    if (peer !== undefined) return this.tls.stillServing(socket) ? peer : undefined;
    if (typeof socket.getPeerCertificate !== 'function') {
      // Plaintext: never. (Not even in PERMISSIVE mode: it means TLS without a client certificate.)
      this.hooks.notTls?.(req);
      socket.destroy();
      return undefined;
    }
    this.hooks.unknownServer?.((socket as TLSSocket & { server?: unknown }).server);
    if (!this.tls.admit(socket)) return undefined;
    return socketPeer(socket) ?? null;
  }

  #judge(req: IncomingMessage, peer: PeerIdentity | null, routing: RouterSemantics): Verdict {
    const v = this.#authorize(req, peer, routing, false);
    if (!v.ok && v.status === 400) (req.socket as unknown as ClosingCarrier)[kClosing] = true;
    return v;
  }

  /** Admitted before under `before` semantics: judged again only if `routing` reaches further. */
  #recheck(req: IncomingMessage, before: RouterSemantics, routing: RouterSemantics, refuse: (v: Verdict & { ok: false }) => void): boolean {
    if (coversRouting(before, routing)) return true;
    const wider = unionRouting(before, routing);
    (req as AdmittedCarrier)[kAdmitted] = { by: this, routing: wider };
    const v = this.#authorize(req, socketPeer(req.socket) ?? null, wider, true);
    if (v.ok) return true;
    this.stats.refused++;
    refuse(v);
    return false;
  }

  #admitted(req: IncomingMessage, routing: RouterSemantics): true {
    (req as AdmittedCarrier)[kAdmitted] = { by: this, routing };
    this.stats.admitted++;
    return true;
  }

  #refused(): false {
    this.stats.refused++;
    return false;
  }

  #strip(req: IncomingMessage): void {
    stripIdentityHeaders(req, this.#identityHeaders, () => this.stats.identityHeadersRemoved++);
  }
}

/** Whether `req` was admitted by a mesh's pipeline. */
export function wasAdmitted(req: IncomingMessage): boolean {
  return (req as AdmittedCarrier)[kAdmitted] !== undefined;
}
