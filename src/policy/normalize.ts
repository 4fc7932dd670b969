/**
 * Request-target normalization: the path a policy judges and the app receives (DESIGN.md, "path
 * handling"). Pure and exhaustive; anything ambiguous is refused (400) rather than guessed.
 *
 * | input                                              | outcome                                    |
 * | -------------------------------------------------- | ------------------------------------------ |
 * | `/a/./b`, `/a/x/../b`, `/../a`                     | dot segments removed: `/a/b`, `/a/b`, `/a` |
 * | `//a`, `/a//b`                                     | slashes merged: `/a`, `/a/b`               |
 * | `%61dmin` (unreserved `A-Za-z0-9-._~`)             | decoded once: `admin`; `%2e%2e` → `..` (then removed) |
 * | `%2561`                                            | stays `%2561` (never decoded twice)        |
 * | other `%xx` (`%3a`, `%20`)                         | kept, hex upper-cased: `%3A`, `%20`        |
 * | `%2F` `%2f` `%5C` `%5c` `%00` in the path          | 400                                        |
 * | `\`, NUL, `#`, control chars, space, non-ASCII, bad `%` | 400                                   |
 * | `http://host/admin` (absolute form)                | path `/admin`, authority `host`            |
 * | `*` with OPTIONS                                   | path `*`; any other method → 400           |
 * | empty, or not starting with `/`                    | 400                                        |
 * | `?query`                                           | kept apart, re-attached untouched          |
 */

/** The outcome of {@link normalizeTarget}. */
export type NormalizedTarget =
  | {
      readonly ok: true;
      /** The normalized path (no query), what policies match against. `*` for `OPTIONS *`. */
      readonly path: string;
      /** The query without its `?`, untouched; '' when the target had none. */
      readonly query: string;
      /** `path` plus `?query` when there was a query: what the app should see as `req.url`. */
      readonly target: string;
      /** The authority of an absolute-form target (`GET http://host:8080/x`), e.g. `host:8080`. */
      readonly authority?: string;
    }
  | { readonly ok: false; /** Why the target is malformed (→ 400). */ readonly reason: string };

const fail = (reason: string): NormalizedTarget => ({ ok: false, reason });

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126
  );
}

const HEX = '0123456789ABCDEF';
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)/;

/**
 * Normalizes a request target (`req.url` as received) for `method`. Never throws.
 * @returns `{ ok: true, path, query, target, authority? }`, or `{ ok: false, reason }` for a 400.
 */
export function normalizeTarget(rawTarget: string, method = 'GET'): NormalizedTarget {
  if (rawTarget.length === 0) return fail('empty request target');
  // Characters that are never acceptable anywhere in the target.
  for (let i = 0; i < rawTarget.length; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c === 0) return fail('NUL byte in request target');
    if (c < 0x20 || c === 0x7f) return fail('control character in request target');
    if (c === 0x20) return fail('space in request target');
    if (c === 0x23) return fail('"#" in request target');
    if (c === 0x5c) return fail('backslash in request target');
    if (c > 0x7e) return fail('non-ASCII character in request target (percent-encode it)');
  }
  if (rawTarget === '*') {
    return method === 'OPTIONS'
      ? { ok: true, path: '*', query: '', target: '*' }
      : fail('asterisk-form target "*" is only valid for OPTIONS');
  }
  let target = rawTarget;
  let authority: string | undefined;
  if (target.charCodeAt(0) !== 47) {
    const m = ABSOLUTE.exec(target);
    if (!m) return fail('request target must start with "/"');
    const scheme = m[1]!.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return fail(`unsupported scheme "${scheme}" in absolute-form target`);
    authority = m[2]!;
    if (authority === '') return fail('absolute-form target without an authority');
    if (authority.includes('@')) return fail('userinfo in absolute-form target');
    target = target.slice(m[0].length);
    if (target === '' || target.charCodeAt(0) === 63) target = '/' + target;
  }
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  const path = normalizePath(rawPath);
  if (path.charCodeAt(0) !== 47) return fail(path);
  const out = query === '' ? path : path + '?' + query;
  return authority === undefined
    ? { ok: true, path, query, target: out }
    : { ok: true, path, query, target: out, authority };
}

/**
 * Normalizes an origin-form path (starting with `/`, no query). Returns the normalized path, or a
 * reason (a string that does not start with `/`) when it must be refused.
 */
export function normalizePath(raw: string): string {
  // Pass 1: percent-decoding of unreserved characters; refuse encoded separators and NUL.
  let decoded = raw;
  if (raw.indexOf('%') >= 0) {
    let out = '';
    let from = 0;
    for (let i = 0; i < raw.length; i++) {
      if (raw.charCodeAt(i) !== 37) continue;
      const h = i + 2 < raw.length ? hexVal(raw.charCodeAt(i + 1)) : -1;
      const l = h >= 0 ? hexVal(raw.charCodeAt(i + 2)) : -1;
      if (h < 0 || l < 0) return 'malformed percent-encoding in path';
      const byte = h * 16 + l;
      if (byte === 0x2f) return 'encoded slash (%2F) in path';
      if (byte === 0x5c) return 'encoded backslash (%5C) in path';
      if (byte === 0) return 'encoded NUL (%00) in path';
      out += raw.slice(from, i) + (isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[h] + HEX[l]);
      from = i + 3;
      i += 2;
    }
    decoded = out + raw.slice(from);
  }
  // Fast path: nothing to merge or remove.
  if (decoded.indexOf('//') < 0 && decoded.indexOf('/.') < 0) return decoded;
  // Pass 2: merge empty segments and remove dot segments (RFC 3986 §5.2.4).
  const segs = decoded.split('/');
  const stack: string[] = [];
  let trailing = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '' || s === '.') {
      trailing = last;
    } else if (s === '..') {
      stack.pop();
      trailing = last;
    } else {
      stack.push(s);
      trailing = false;
    }
  }
  if (stack.length === 0) return '/';
  return '/' + stack.join('/') + (trailing ? '/' : '');
}
