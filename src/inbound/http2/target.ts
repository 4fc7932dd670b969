/**
 * HTTP/2 in front of the transport-neutral target check (../target-check.ts): an h2 request's
 * pseudo-headers and fields are checked first (RFC 9113 §8.2-8.3; nghttp2 refuses much of this
 * itself with a stream reset, this is the gate's own floor), then `:path` is normalized exactly as
 * an HTTP/1.1 request target, against `:authority` (or Host). Refused (→ 400):
 *
 * - a missing or repeated `:method`, `:scheme`, `:path`, `:authority`; a pseudo-header the gate
 *   does not know (`:protocol`: extended CONNECT), a response pseudo-header (`:status`);
 * - a `:method` node:http's parser would refuse over HTTP/1.1 (`get`, `FOO`: methods are
 *   case-sensitive, and the app sees over h2 only what it could see over HTTP/1.1);
 * - CONNECT (a tunnel is not a request the policy can judge by path);
 * - a `:scheme` other than `https`/`http`; a `:path` that is not origin-form (`/…`) or `*` with
 *   OPTIONS (an absolute form in `:path` is malformed in HTTP/2);
 * - more than one Host, a Host that is not the `:authority`;
 * - connection-specific fields (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
 *   Upgrade) and a TE other than `trailers`.
 *
 * Pure: headers and raw headers in, a CheckedTarget out.
 */
import { METHODS } from 'node:http';
import { type IncomingHttpHeaders } from 'node:http2';
import { sameAuthority } from '../../policy/authority.js';
import { type CheckedTarget, badTarget as bad, checkRequestTarget } from '../target-check.js';

const KNOWN_METHODS = new Set(METHODS);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** How many times each field name occurs in `raw` (name, value, name, value, …), lower-cased. */
function countNames(raw: readonly string[]): Map<string, number> {
  const n = new Map<string, number>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    n.set(name, (n.get(name) ?? 0) + 1);
  }
  return n;
}

/** Why the fields of an h2 request are malformed, or undefined. */
function fieldProblem(headers: IncomingHttpHeaders, counts: Map<string, number>): string | undefined {
  for (const [name, count] of counts) {
    if (name.startsWith(':')) {
      if (!REQUEST_PSEUDO.has(name)) return `the pseudo-header ${name} is not accepted behind the mesh`;
      if (count > 1) return `more than one ${name}`;
    } else if (CONNECTION_SPECIFIC.has(name)) {
      return `the connection-specific field ${name} is not allowed in HTTP/2`;
    }
  }
  if ((counts.get('host') ?? 0) > 1) return 'more than one Host header';
  const te = headers.te;
  if (te !== undefined && String(te).trim().toLowerCase() !== 'trailers') return `TE "${String(te)}" is not "trailers"`;
  return undefined;
}

/** Checks an h2 request's pseudo-headers and fields, then its `:path` and authority. */
export function checkHttp2Target(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): CheckedTarget {
  const counts = countNames(rawHeaders);
  const fields = fieldProblem(headers, counts);
  if (fields) return bad(fields);
  const method = headers[':method'];
  if (typeof method !== 'string' || method === '') return bad('no :method');
  if (!KNOWN_METHODS.has(method)) return bad(`:method "${method}" is not a method node:http accepts (methods are case-sensitive)`);
  if (method === 'CONNECT') return bad('CONNECT over HTTP/2 is not accepted behind the mesh (a tunnel cannot be judged by path)');
  const scheme = headers[':scheme'];
  if (scheme !== 'https' && scheme !== 'http') return bad(scheme === undefined ? 'no :scheme' : `:scheme "${String(scheme)}" is not https`);
  const path = headers[':path'];
  if (typeof path !== 'string' || path === '') return bad('no :path');
  if (!path.startsWith('/') && !(path === '*' && method === 'OPTIONS')) return bad(`:path "${path}" is not origin-form ("/…")`);
  const authority = headers[':authority'];
  const host = headers.host;
  if (authority !== undefined && host !== undefined && !sameAuthority(authority, host)) {
    return bad(`the Host "${host}" is not the :authority "${authority}"`);
  }
  const value = authority ?? host;
  return checkRequestTarget(method, path, value ?? '', value !== undefined, authority !== undefined ? ':authority' : 'Host');
}
