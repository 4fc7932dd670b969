/**
 * Servers a framework builds from `mesh.serverTlsOptions()` (`https.createServer(opts, app)`,
 * `Fastify({ https: opts })`) are adopted by the mesh at their FIRST connection, before its TLS
 * handshake: Node publishes every accepted connection on the documented diagnostics channel
 * `net.server.socket` right after creating it, before any byte is read. The mesh recognises its
 * servers by the TLS session id context its options carry (kept by Node as
 * `server.sessionIdContext`), then verifies every connection's peer at the handshake and guards
 * every request event (server-guard.ts). Nothing is subscribed until a mesh hands out options.
 *
 * A server that never accepts a connection itself — it is handed sockets with
 * `server.emit('connection', socket)` (a PROXY-protocol front, one port for HTTP and HTTPS) — is
 * adopted at its first request instead: the options carry node:http's `IncomingMessage` option,
 * a subclass whose constructor runs when a request's header section is parsed, before node:http
 * emits 'request', 'upgrade' or 'connect' for it. That first connection is judged then.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { IncomingMessage } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import { type Socket } from 'node:net';

const CHANNEL = 'net.server.socket';

/** Process-wide (ESM and CJS copies share it): session id context → what adopts such a server. */
interface Registry {
  readonly adopters: Map<string, (server: object) => void>;
  readonly seen: WeakSet<object>;
  listening: boolean;
}
const kRegistry = Symbol.for('sidecarless.v1.adoption');
const g = globalThis as { [kRegistry]?: Registry };
const registry: Registry = (g[kRegistry] ??= { adopters: new Map(), seen: new WeakSet(), listening: false });

function onSocket(message: unknown): void {
  adoptOnce((message as { socket?: { server?: { sessionIdContext?: unknown } } })?.socket?.server);
}

/** Adopts `server` if it is one of ours and has not been looked at yet. */
function adoptOnce(server: { sessionIdContext?: unknown } | undefined): void {
  if (!server || registry.seen.has(server)) return;
  registry.seen.add(server);
  const id = server.sessionIdContext;
  if (typeof id !== 'string') return;
  const adopt = registry.adopters.get(id);
  if (adopt) adopt(server);
}

/**
 * The ALPN choice of `serverTlsOptions()` (node:tls's `ALPNCallback`, run with the connection's
 * socket during every handshake that offers ALPN — every h2 connection does): looks at the server
 * before its first session exists, so a node:http2 server handed its sockets with
 * `emit('connection')` whose only listeners are raw 'stream' ones (no compat request is ever
 * built) is adopted too. Picks the first protocol of `offered(server)` the client offers; none →
 * the handshake fails (no_application_protocol), as node:tls does for ALPNProtocols.
 */
export function adoptingAlpn(offered: (server: unknown) => readonly string[]): (this: unknown, info: { protocols: string[] }) => string | undefined {
  return function selectAlpn(this: unknown, info: { protocols: string[] }): string | undefined {
    const server = (this as { server?: { sessionIdContext?: unknown } } | undefined)?.server;
    adoptOnce(server);
    return offered(server).find((p) => info.protocols.includes(p));
  };
}

/**
 * node:http's request class for servers built from the mesh's options: looks at the server once,
 * at its first request (see the module comment). The same class for every mesh of the process.
 */
export class MeshIncomingMessage extends IncomingMessage {
  constructor(socket: Socket) {
    super(socket);
    adoptOnce((socket as Socket & { server?: { sessionIdContext?: unknown } } | undefined)?.server);
  }
}

/**
 * The same for node:http2's compatibility requests (`http2.createSecureServer(opts)`, h2 streams):
 * the server is found through the stream's session socket. (HTTP/1.1 on such a server, with
 * `allowHTTP1`, goes through `Http1IncomingMessage`, which is MeshIncomingMessage.)
 */
export class MeshHttp2ServerRequest extends Http2ServerRequest {
  constructor(stream: ConstructorParameters<typeof Http2ServerRequest>[0], headers: ConstructorParameters<typeof Http2ServerRequest>[1], options: ConstructorParameters<typeof Http2ServerRequest>[2], rawHeaders: ConstructorParameters<typeof Http2ServerRequest>[3]) {
    super(stream, headers, options, rawHeaders);
    const socket = (stream as unknown as { session?: { socket?: { server?: { sessionIdContext?: unknown } } } }).session?.socket;
    adoptOnce(socket?.server);
  }
}

/**
 * Adopts, at its first connection, every server whose options carry `sessionIdContext`. Returns
 * the function that ends it: a server built from these options afterwards (the mesh closed) has
 * every connection closed, never served unguarded.
 */
export function adoptServersOf(sessionIdContext: string, adopt: (server: object) => void): () => void {
  registry.adopters.set(sessionIdContext, adopt);
  if (!registry.listening) {
    subscribe(CHANNEL, onSocket);
    registry.listening = true;
  }
  return () => {
    registry.adopters.set(sessionIdContext, refuseAll);
  };
}

/** A closed mesh's servers (and servers the mesh cannot guard): no connection is ever served. */
export function refuseAll(server: object): void {
  // Before node:http's own listener, which would start parsing the connection's first bytes.
  const s = server as {
    prependListener?: (event: string, fn: (socket: { destroy(): void }) => void) => void;
    emit?: (event: string | symbol, ...args: unknown[]) => boolean;
  };
  s.prependListener?.('secureConnection', (socket) => socket.destroy());
  s.prependListener?.('connection', (socket) => socket.destroy());
  // A connection already being read when the server is looked at (adopted at its first request)
  // carries on: every event that would hand one of its requests to a listener closes it instead.
  const emit = s.emit;
  if (typeof emit !== 'function') return;
  s.emit = function refusingEmit(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
    const closed = closeCarrier(event, args);
    return closed ? true : emit.call(this, event, ...args);
  };
}

/** For a request-carrying event, closes what carries it and returns true. */
function closeCarrier(event: string | symbol, args: unknown[]): boolean {
  type Destroyable = { destroy(): void };
  switch (event) {
    case 'request':
    case 'checkContinue':
    case 'checkExpectation':
    case 'dropRequest': {
      const req = args[0] as { socket?: Destroyable; stream?: { session?: Destroyable } } | undefined;
      req?.stream?.session?.destroy();
      req?.socket?.destroy();
      return true;
    }
    case 'upgrade':
    case 'connect':
      (args[1] as Destroyable | undefined)?.destroy();
      return true;
    case 'stream':
      (args[0] as { session?: Destroyable } | undefined)?.session?.destroy();
      return true;
    default:
      return false;
  }
}

/** For tests: stop listening when no mesh needs it. */
export function stopAdoption(): void {
  if (registry.listening) unsubscribe(CHANNEL, onSocket);
  registry.listening = false;
}
