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
import { type Socket } from 'node:net';

const CHANNEL = 'net.server.socket';

/** Process-wide (ESM and CJS copies share it): session id context → what adopts such a server. */
interface Registry {
  readonly adopters: Map<string, (server: object) => void>;
  readonly seen: WeakSet<object>;
  listening: boolean;
}
const kRegistry = Symbol.for('sidecarless.adoption');
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
  const s = server as { prependListener?: (event: string, fn: (socket: { destroy(): void }) => void) => void };
  s.prependListener?.('secureConnection', (socket) => socket.destroy());
  s.prependListener?.('connection', (socket) => socket.destroy());
}

/** For tests: stop listening when no mesh needs it. */
export function stopAdoption(): void {
  if (registry.listening) unsubscribe(CHANNEL, onSocket);
  registry.listening = false;
}
