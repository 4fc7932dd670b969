/**
 * The gate on a node:http(s) server, in front of every listener: every event that hands a request
 * to app code — 'request', 'checkContinue', 'checkExpectation', 'upgrade' (WebSocket) and 'connect'
 * — is judged (and 'dropRequest', which node:http answers 503 itself, is only shown sanitized) by the inbound pipeline before any listener runs, whoever added the listener and
 * whenever (an app, `ws`, a framework). A refused request never reaches a listener: it is answered
 * 400/403 (on the raw socket for upgrade and CONNECT, which is then closed) or its connection closed.
 *
 * node:http emits 'checkContinue'/'checkExpectation' only when they have listeners, and otherwise
 * answers `100 Continue` before 'request' — before the gate could judge. So the guard listens to
 * both: an `Expect: 100-continue` request is judged before anything is sent back, and node:http's
 * own behaviour (100 then 'request'; 417 for other expectations) follows an admission when the app
 * has no listener of its own.
 */
import { type Clock } from '../clock.js';
import { type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { type Duplex } from 'node:stream';
import { type TLSSocket } from 'node:tls';
import { type RouterSemantics } from '../policy/router-semantics.js';
import { armFirstRequestTimer } from './first-request.js';
import { type InboundPipeline } from './pipeline.js';
import { respondHttp } from './http1/responders.js';
import { type IncomingHttpHeaders } from 'node:http2';
import { compatStreamOf } from './http2/request.js';
import { respondStream } from './http2/responders.js';
import { type ServerRouting, routingOfServer } from './router-kind.js';

const kGuard = Symbol.for('sidecarless.v1.guard');

/** What a guarded server knows about itself. */
export interface GuardState {
  /** The routing a framework plugin declared (Fastify); else derived from the 'request' listeners. */
  declared?: RouterSemantics;
  readonly pipeline: InboundPipeline;
}

type Guarded = HttpServer & { [kGuard]?: GuardState };
type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/** The guard's own listeners: node:http only emits these events when someone listens. */
function expectListener(): void {}

/** Whether app code listens to `event` (not only the guard; the app may have removed the guard's). */
function appListens(server: HttpServer, event: string): boolean {
  return server.listeners(event).some((l) => l !== expectListener);
}

export interface GuardOptions {
  /** How long a new connection may wait before its first request (ms; 0: no limit). */
  firstRequestTimeoutMs: number;
  clock: Clock;
  /** Told when the server's router cannot be judged safely (a request got 500). */
  onUnsafe: (why: string) => void;
}

/** The guard state of `server`, when it is guarded. */
export function guardOf(server: unknown): GuardState | undefined {
  return (server as Guarded | undefined)?.[kGuard];
}

/**
 * Puts the gate in front of every request-carrying event of `server`. Idempotent: a server is
 * guarded once, by the first mesh that adopts it.
 */
export function guardServer(server: HttpServer, pipeline: InboundPipeline, options: GuardOptions): GuardState {
  const s = server as Guarded;
  const existing = s[kGuard];
  if (existing) return existing;
  const state: GuardState = { pipeline };
  s[kGuard] = state;
  const emit = s.emit as Emit;
  const routing = (): ServerRouting => (state.declared ? { kind: 'known', routing: state.declared } : routingOfServer(server));
  const judged = (req: IncomingMessage, res: ServerResponse, then: () => boolean, closeOnRefusal = false): boolean => {
    const r = routing();
    if (r.kind === 'unsafe') {
      options.onUnsafe(r.why);
      // node:http2's compat response refuses connection-specific headers: answered on its stream.
      const stream = compatStreamOf(req);
      if (stream) respondStream(stream, 500, req.headers as IncomingHttpHeaders);
      else respondHttp(res, 500, true);
      return true;
    }
    if (!pipeline.admit(req, res, r.routing, closeOnRefusal)) return true;
    return pipeline.within(req, then);
  };
  const socketJudged = (req: IncomingMessage, socket: Duplex, then: () => boolean): boolean => {
    const r = routing();
    if (r.kind === 'unsafe') {
      options.onUnsafe(r.why);
      socket.destroy();
      return true;
    }
    if (!pipeline.admitSocket(req, socket, r.routing)) return true;
    return pipeline.within(req, then);
  };
  s.emit = function guardedEmit(this: HttpServer, event: string | symbol, ...args: unknown[]): boolean {
    switch (event) {
      case 'request': {
        const [req, res] = args as [IncomingMessage, ServerResponse];
        return judged(req, res, () => emit.call(this, event, req, res));
      }
      case 'checkContinue': {
        const [req, res] = args as [IncomingMessage, ServerResponse];
        return judged(req, res, () => {
          if (appListens(this, 'checkContinue')) return emit.call(this, event, req, res);
          res.writeContinue();
          return emit.call(this, 'request', req, res);
        }, true);
      }
      case 'checkExpectation': {
        const [req, res] = args as [IncomingMessage, ServerResponse];
        return judged(req, res, () => {
          if (appListens(this, 'checkExpectation')) return emit.call(this, event, req, res);
          respondHttp(res, 417);
          return true;
        }, true);
      }
      case 'dropRequest': {
        // node:http answers it 503 itself; a listener (logs, metrics) sees it only sanitized.
        const [req, socket] = args as [IncomingMessage, Duplex];
        return pipeline.sanitize(req) ? emit.call(this, event, req, socket) : true;
      }
      case 'upgrade':
      case 'connect': {
        const [req, socket, head] = args as [IncomingMessage, Duplex, Buffer];
        return socketJudged(req, socket, () => emit.call(this, event, req, socket, head));
      }
      default:
        return emit.call(this, event, ...args);
    }
  } as typeof s.emit;
  server.on('checkContinue', expectListener);
  server.on('checkExpectation', expectListener);
  // Without them node:http would answer `100 Continue` before the gate judged the request
  // (`server.removeAllListeners('checkContinue')` in app code): they come back at once.
  server.on('removeListener', (event: string | symbol, fn: unknown) => {
    if (fn === expectListener && (event === 'checkContinue' || event === 'checkExpectation')) server.on(event, expectListener);
  });
  if (options.firstRequestTimeoutMs > 0) {
    server.on('secureConnection', (socket: TLSSocket) => armFirstRequestTimer(socket, options.firstRequestTimeoutMs, undefined, options.clock));
  }
  return state;
}
