/**
 * `withMeshHttp(handler, options)`: a `(req, res)` HTTP function (Google Cloud Functions and Cloud
 * Run functions' functions-framework; any node:http-shaped server) with a mesh. Per request: the
 * mesh (made on the first, shared after), its thaw check, then the mesh's judgement of the request
 * as the platform's front end passed it on (method, req.url, Host, headers, the socket's remote
 * address): a refusal is written here (400/401/403, JSON body) and the handler never runs; an
 * admission runs it with `req.peer` set (the caller's identity, or null when admitted
 * unauthenticated). A mesh that cannot start, or an SVID that expired and was not renewed in
 * time, is a 503 (its code in the body, its message logged): fail closed.
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type MeshOptionsInput } from '../config.js';
import { type FrontedVerdict } from '../mesh/hooks.js';
import { type Mesh, createMesh } from '../mesh.js';
import { DEFAULT_IDENTITY_HEADERS, stripIdentityHeaders } from '../inbound/http1/sanitize.js';
import { stripTrailers } from '../inbound/http1/trailers.js';
import { FORWARDED_CERT_HEADERS } from '../inbound/fronted/judge.js';
import { FRONT_END_PORT } from './events.js';
import { frontEndOf, judgeOf, thawOf } from './hooks-of.js';
import { LazyMesh } from './lazy-mesh.js';

export type MeshRequest<Q extends IncomingMessage = IncomingMessage> = Q & { peer?: PeerIdentity | null };

export type MeshHttpHandler<Q extends IncomingMessage = IncomingMessage, S extends ServerResponse = ServerResponse> = (req: MeshRequest<Q>, res: S, mesh: Mesh) => unknown;

export function withMeshHttp<Q extends IncomingMessage = IncomingMessage, S extends ServerResponse = ServerResponse>(
  handler: MeshHttpHandler<Q, S>,
  options: MeshOptionsInput,
): (req: Q, res: S) => Promise<void> {
  if (typeof handler !== 'function') throw new TypeError('withMeshHttp(handler, options): handler must be a function (req, res, mesh) => …');
  const lazy = new LazyMesh(() => createMesh(options));
  let trailerNames: ReadonlySet<string> | undefined;
  return async function meshHttpHandler(req: Q, res: S): Promise<void> {
    let mesh: Mesh;
    try {
      mesh = await lazy.get();
      await thawOf(mesh)();
    } catch (e) {
      unavailable(res, e, lazy.current);
      return;
    }
    const verdict = await judgeOf(mesh)({
      method: req.method ?? '',
      target: req.url ?? '',
      host: typeof req.headers.host === 'string' ? req.headers.host : undefined,
      headers: req.headers,
      sourceIp: req.socket?.remoteAddress ?? '',
      port: FRONT_END_PORT,
    });
    if (!verdict.allowed) return refuse(res, verdict);
    // Identity headers (and an admitted JWT-SVID) never reach the app: headers, raw headers, trailers.
    if (verdict.stripHeaders.length > 0) stripIdentityHeaders(req, new Set(verdict.stripHeaders.map((h) => h.toLowerCase())), () => {});
    // Trailers arrive after the verdict: every identity header name, whatever the head held.
    stripTrailers(req, (trailerNames ??= identityHeaderNames(mesh)), () => {});
    req.url = judgedTarget(req.url ?? '', verdict.path);
    (req as MeshRequest<Q>).peer = verdict.peer;
    await handler(req as MeshRequest<Q>, res, mesh);
  };
}

/**
 * The target the app routes on: the path the policy judged with the query as sent (as the HTTP/1.1
 * gate rewrites req.url). The raw `/admin/../public/x`, judged as `/public/x`, would reach a router
 * that keeps dot segments (Express, the functions-framework) as `/admin/…`.
 */
function judgedTarget(raw: string, path: string): string {
  if (path === '*') return raw; // OPTIONS *
  const q = raw.indexOf('?');
  return q < 0 ? path : path + raw.slice(q);
}

/**
 * Headers that claim an identity, lower-case: in a trailer even the named front end's (it sets a
 * header, never a trailer), and Authorization where a bearer JWT-SVID is an identity (one in a
 * trailer was never judged).
 */
function identityHeaderNames(mesh: Mesh): ReadonlySet<string> {
  const inbound = mesh.config.inbound as { identityHeaders?: readonly string[]; jwtSvid?: unknown };
  const configured = [...(inbound.identityHeaders ?? []), ...(inbound.jwtSvid !== undefined ? ['authorization'] : [])];
  const front = frontEndOf(mesh) as { header?: unknown } | undefined;
  const named = typeof front?.header === 'string' ? [front.header] : [];
  return new Set([...DEFAULT_IDENTITY_HEADERS, ...FORWARDED_CERT_HEADERS, ...configured, ...named].map((h) => h.toLowerCase()));
}

function refuse(res: ServerResponse, v: Extract<FrontedVerdict, { allowed: false }>): void {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(v.wwwAuthenticate !== undefined && { 'www-authenticate': v.wwwAuthenticate }) };
  res.writeHead(v.status, headers).end(JSON.stringify({ error: v.message, code: v.code }));
}

/** The client learns the code; the message (paths, addresses of the function's own setup) goes to the log. */
function unavailable(res: ServerResponse, e: unknown, mesh: Mesh | undefined): void {
  const code = (e as { code?: unknown })?.code;
  const c = typeof code === 'string' && code.startsWith('ERR_SIDECARLESS_') ? code : 'ERR_SIDECARLESS_INTERNAL';
  const logger = mesh?.config.logger ?? console;
  logger.error(`sidecarless/serverless: ${mesh ? 'the thaw check failed' : 'the mesh could not start'}: ${(e as Error)?.message ?? String(e)}`);
  if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: mesh ? 'this function has no valid identity right now' : 'the mesh of this function could not start', code: c }));
}
