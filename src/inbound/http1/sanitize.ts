/**
 * Identity headers a client sent (`x-forwarded-client-cert`, `l5d-client-id`, configured ones)
 * never reach the app: removed from a node:http request's headers, raw headers, distinct headers
 * and, as they arrive, its chunked trailers. An identity comes only from the TLS chain.
 */
import { type IncomingMessage } from 'node:http';
import { stripTrailers } from './trailers.js';

/** Headers that claim an identity in other meshes. A client can send them; they never mean anything here. */
export const DEFAULT_IDENTITY_HEADERS = ['x-forwarded-client-cert', 'l5d-client-id', 'l5d-client-identity'];

/** Removes `names` (lower-case) from `req`; `onRemoved` is told once for the headers and once for trailers. */
export function stripIdentityHeaders(req: IncomingMessage, names: ReadonlySet<string>, onRemoved: () => void): void {
  stripTrailers(req, names, onRemoved);
  let removed = false;
  for (const name of names) {
    if (name in req.headers) {
      delete req.headers[name];
      removed = true;
    }
  }
  if (!removed) return;
  onRemoved();
  // node:http builds `headersDistinct` lazily from rawHeaders with the header count it parsed:
  // built after rawHeaders shrinks, it reads past the end and throws (a peer-triggered crash in
  // any handler that reads it). Build it now, from the full list, and remove the names there too.
  const distinct = (req as { headersDistinct?: Record<string, string[]> }).headersDistinct;
  if (distinct) for (const name of names) delete distinct[name];
  const raw = req.rawHeaders;
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!names.has(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
  }
  raw.length = 0;
  raw.push(...kept);
}
