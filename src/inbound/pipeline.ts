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

export { DEFAULT_IDENTITY_HEADERS } from './http1/sanitize.js';

/**
 * The seam where authorization runs (the policy gate, through http1/judge.ts): given the verified
 * peer and the request, admit it or say why not. `recheck`: the request was admitted before under
 * narrower semantics.
 */
export type AuthorizeStep = (req: IncomingMessage, peer: PeerIdentity | null, routing: RouterSemantics, recheck: boolean) => Verdict;

export interface InboundStats {
  requests: number;
  admitted: number;
  refused: number;
  /** Requests that arrived with an identity header (or trailer), which was removed. */
  identityHeadersRemoved: number;
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
  readonly stats: InboundStats = { requests: 0, admitted: 0, refused: 0, identityHeadersRemoved: 0 };
  readonly #identityHeaders: Set<string>;
  readonly #authorize: AuthorizeStep;
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
  within<T>(req: IncomingMessage, fn: () => T): T {
    return this.observer ? this.observer.within(req, fn) : fn();
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
