import { type IncomingMessage } from 'node:http';
import { type Http2ServerRequest } from 'node:http2';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { socketPeer } from '../tls/peer.js';

/** What peerOf reads of a @grpc/grpc-js server call (a handler's call, or an interceptor's). */
export interface GrpcCallLike {
  getPeer(): string;
}

/**
 * The verified identity of the client that sent `req`, or null for an unauthenticated peer
 * (PERMISSIVE mode) or a request that did not come through the mesh. Accepts node:http, node:http2
 * (compat) and Express requests, Fastify requests (their `.raw`), and @grpc/grpc-js server calls (the `call`
 * a handler is given, served with mesh.grpc credentials). It only ever comes from the TLS chain.
 */
export function peerOf(req: IncomingMessage | Http2ServerRequest | { raw: IncomingMessage | Http2ServerRequest } | GrpcCallLike | null | undefined): PeerIdentity | null {
  if (!req) return null;
  if ('raw' in req && req.raw) return socketPeer(req.raw.socket) ?? null;
  if ('socket' in req) return socketPeer(req.socket) ?? null;
  return socketPeer(grpcSessionOf(req)?.socket) ?? null;
}

/** What grpcSessionOf finds: the HTTP/2 session of a grpc-js server call. */
export interface GrpcSessionLike {
  readonly socket?: unknown;
  destroy(): void;
}

/**
 * The HTTP/2 session of a grpc-js server call: grpc-js's innermost call holds the stream;
 * interceptors wrap it (`nextCall`), handler calls (ServerUnaryCallImpl, …) wrap the outermost
 * (`call`). Undefined when there is none (not a grpc-js server call).
 */
export function grpcSessionOf(call: unknown): GrpcSessionLike | undefined {
  let c = call as { stream?: { session?: GrpcSessionLike }; nextCall?: unknown; call?: unknown } | undefined;
  for (let i = 0; c && typeof c === 'object' && i < 64; i++) {
    const session = c.stream?.session;
    if (session && typeof session.destroy === 'function') return session;
    c = (c.nextCall ?? c.call) as typeof c;
  }
  return undefined;
}
