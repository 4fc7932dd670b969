/**
 * What the observers hand the Linkerd dialect (linkerd.ts) of an ended request: its authority,
 * local address, verified peer and outcome, read from the request only when the dialect is on.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import type { LinkerdOutcome, LinkerdStats } from './linkerd.js';

/** A grpc-status value (a number 0–16… as a string), else undefined. */
function grpcCode(v: unknown): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s === 'number') return Number.isInteger(s) && s >= 0 ? s : undefined;
  return typeof s === 'string' && /^\d{1,3}$/.test(s) ? Number(s) : undefined;
}

/**
 * An HTTP request the mesh server answered. gRPC over the mesh's own HTTP/2 server is classified
 * by a grpc-status in the response headers (a trailers-only response); a status sent in trailers
 * is not read there (grpc-js servers with mesh.grpc are observed by the interceptor instead).
 */
export function linkerdInbound(l: LinkerdStats, req: IncomingMessage, res: ServerResponse, ip: string, port: number, clientId: string | null, finished: boolean, ms: number): void {
  const h = req.headers;
  const authority = (h[':authority'] as string | undefined) ?? h.host ?? '';
  const status = res.headersSent ? res.statusCode : undefined;
  let out: LinkerdOutcome;
  if (!finished) out = { status, error: 'unclassified' };
  else {
    const ct = h['content-type'];
    const grpc = ct !== undefined && ct.startsWith('application/grpc') ? grpcCode(res.getHeader('grpc-status')) : undefined;
    out = grpc === undefined ? { status } : { status, grpc };
  }
  l.inbound(authority, ip, port, clientId, out, ms);
}
