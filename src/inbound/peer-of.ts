import { type IncomingMessage } from 'node:http';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { socketPeer } from '../tls/peer.js';

/**
 * The verified identity of the client that sent `req`, or null for an unauthenticated peer
 * (PERMISSIVE mode) or a request that did not come through the mesh. Accepts node:http and
 * Express requests, and Fastify requests (their `.raw`). It only ever comes from the TLS chain.
 */
export function peerOf(req: IncomingMessage | { raw: IncomingMessage } | null | undefined): PeerIdentity | null {
  if (!req) return null;
  const msg = 'raw' in req && req.raw ? req.raw : (req as IncomingMessage);
  return socketPeer(msg.socket) ?? null;
}
