/**
 * The gate on a node:http2 server (Http2SecureServer): every session the server creates has its
 * 'stream' event judged by the inbound pipeline before any listener runs — the server's own
 * 'stream' listeners (core API), node:http2's compat layer that turns a stream into a 'request'
 * (and so Fastify's handler), and a 'stream' listener the app puts on the session itself. A refused
 * stream never reaches a listener: it is answered 400/403 (gRPC: trailers-only) or its session
 * closed. HTTP/1.1 on the same port (allowHTTP1) goes through server-guard.ts.
 *
 * Each session also has a rapid-reset guard (reset-guard.ts): a client that opens and resets
 * streams in a tight loop has its session closed with GOAWAY ENHANCE_YOUR_CALM; and an idle
 * timeout (idle.ts): no open stream for 5 minutes closes it with GOAWAY NO_ERROR.
 */
import { constants, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { type Clock } from '../../clock.js';
import { type RouterSemantics } from '../../policy/router-semantics.js';
import { type ServerRouting } from '../router-kind.js';
import { type Http2Request, existingHttp2Request } from './request.js';
import { respondStream } from './responders.js';
import { DEFAULT_RESET_GUARD, ResetGuard, type ResetGuardOptions } from './reset-guard.js';
import { watchIdle } from './idle.js';

const kH2Guard = Symbol.for('sidecarless.v1.h2guard');
/** The TLS socket itself, kept on it: node:http2 hands out a proxy (`session.socket`) whose destroy() throws. */
const kSelf = Symbol.for('sidecarless.v1.h2socket');
/** How long a GOAWAY for rapid resets has to leave before the connection is closed. */
const GOAWAY_GRACE_MS = 100;

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

export interface Http2GuardDeps {
  /** Judges a stream (InboundPipeline.admitStream); false: it was answered or its session closed. */
  readonly admit: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[] | undefined, routing: RouterSemantics) => boolean;
  /** Runs a listener with the stream's server span active. */
  readonly within: <T>(req: Http2Request, fn: () => T) => T;
  /** The routing of the server's router (a Fastify plugin's, or derived from 'request' listeners). */
  readonly routing: () => ServerRouting;
  readonly onUnsafe: (why: string) => void;
  /** Told when a session is closed for rapid resets. */
  readonly onRapidReset?: (counts: { streams: number; premature: number }) => void;
  readonly clock: Clock;
  readonly resetGuard?: ResetGuardOptions;
}

export interface Http2GuardState {
  /** Open sessions (closed gracefully when the mesh closes a server it created). */
  readonly sessions: Set<ServerHttp2Session>;
}

type Guarded = Http2SecureServer & { [kH2Guard]?: Http2GuardState };

/** The guard state of an h2 server, when it is guarded. */
export function http2GuardOf(server: unknown): Http2GuardState | undefined {
  return (server as Guarded | undefined)?.[kH2Guard];
}

/** Puts the gate in front of every stream of every session of `server`. Idempotent. */
export function guardHttp2Server(server: Http2SecureServer, deps: Http2GuardDeps): Http2GuardState {
  const s = server as Guarded;
  const existing = s[kH2Guard];
  if (existing) return existing;
  const state: Http2GuardState = { sessions: new Set() };
  s[kH2Guard] = state;
  server.prependListener('secureConnection', (socket: { [kSelf]?: unknown }) => (socket[kSelf] = socket));
  const emit = s.emit as Emit;
  s.emit = function guardedH2Emit(this: Http2SecureServer, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'session') guardSession(args[0] as ServerHttp2Session, state, deps);
    return emit.call(this, event, ...args);
  } as typeof s.emit;
  return state;
}

/** Judges every 'stream' event of `session` before its listeners (node:http2's forwarding to the server is one). */
function guardSession(session: ServerHttp2Session, state: Http2GuardState, deps: Http2GuardDeps): void {
  state.sessions.add(session);
  session.once('close', () => state.sessions.delete(session));
  const resets = new ResetGuard(deps.resetGuard ?? DEFAULT_RESET_GUARD);
  const opened = watchIdle(session, deps.clock);
  const emit = session.emit as Emit;
  session.emit = function guardedSessionEmit(this: ServerHttp2Session, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'stream') return emit.call(this, event, ...args);
    const [stream, headers, , rawHeaders] = args as [ServerHttp2Stream, IncomingHttpHeaders, number, string[] | undefined];
    watchResets(session, stream, resets, deps);
    opened(stream);
    const r = deps.routing();
    if (r.kind === 'unsafe') {
      deps.onUnsafe(r.why);
      respondStream(stream, 500, headers);
      return true;
    }
    if (!deps.admit(stream, headers, rawHeaders, r.routing)) return true;
    const view = existingHttp2Request(stream);
    const run = () => emit.call(this, event, ...args);
    return view ? deps.within(view, run) : run();
  } as typeof session.emit;
}

/** Counts the stream for the session's rapid-reset guard; closes the session when it trips. */
function watchResets(session: ServerHttp2Session, stream: ServerHttp2Stream, resets: ResetGuard, deps: Http2GuardDeps): void {
  const t0 = deps.clock.now();
  resets.opened();
  let aborted = false;
  let local = false;
  stream.once('aborted', () => (aborted = true));
  // 'aborted' also follows the server's own close()/destroy() of an unfinished stream: those are
  // not the peer's. (node:http2 destroys a stream the peer reset too, but only once it is closed.)
  for (const m of ['close', 'destroy'] as const) {
    const fn = stream[m] as (...a: unknown[]) => unknown;
    (stream as unknown as Record<string, unknown>)[m] = function localEnd(this: ServerHttp2Stream, ...a: unknown[]) {
      if (!this.closed) local = true;
      return fn.apply(this, a);
    };
  }
  // A stream's own errors (a reset) must not become an uncaught 'error'; the app's listeners still see them.
  stream.on('error', noop);
  stream.once('close', () => {
    const byPeer = !local && (aborted || (stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR && !stream.writableEnded));
    if (!resets.closed(byPeer, deps.clock.now() - t0) || resets.tripped || session.destroyed) return;
    resets.tripped = true;
    deps.onRapidReset?.(resets.counts);
    // Outside nghttp2's stream-close callback: GOAWAY, then the connection is closed once it has
    // had a moment to leave (node:http2 would otherwise wait for the flooding peer to drain).
    setImmediate(() => {
      if (session.destroyed) return;
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      const socket = (session.socket as unknown as { [kSelf]?: { destroy(): void } } | undefined)?.[kSelf];
      deps.clock.setTimeout(() => socket?.destroy(), GOAWAY_GRACE_MS);
    });
  });
}

function noop(): void {}
