import { SpiffeIdError } from '../errors.js';
import { printable } from './peer-text.js';

/**
 * SPIFFE IDs per the SPIFFE-ID specification:
 *   spiffe://<trust-domain>[/<segment>]*
 * trust domain: [a-z0-9.-_]+ (≤ 255 bytes); segments: [A-Za-z0-9.-_]+, never '.' or '..';
 * no port, userinfo, query, fragment, percent-encoding or trailing '/'; the whole ID ≤ 2048 bytes.
 * Every character allowed is ASCII, so byte and character lengths are the same.
 */
export interface SpiffeId {
  readonly trustDomain: string;
  /** '' for a trust-domain ID (`spiffe://td`), else '/a/b'. */
  readonly path: string;
  /** The canonical string form. */
  readonly id: string;
}

export const SPIFFE_SCHEME = 'spiffe://';
export const MAX_SPIFFE_ID_LENGTH = 2048;
export const MAX_TRUST_DOMAIN_LENGTH = 255;

// Lookup tables are faster than regular expressions on the connection path and make the
// character classes of the spec explicit.
const TD_CHARS = charset('abcdefghijklmnopqrstuvwxyz0123456789.-_');
const PATH_CHARS = charset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_');

function charset(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
}

function describeChar(code: number): string {
  return code < 0x20 || code > 0x7e ? `\\u${code.toString(16).padStart(4, '0')}` : JSON.stringify(String.fromCharCode(code));
}

/** Validates a trust domain name (`cluster.local`). Throws SpiffeIdError saying what is wrong. */
export function validateTrustDomain(td: string): string {
  if (td.length === 0) throw new SpiffeIdError('trust domain is empty');
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw new SpiffeIdError(`trust domain is ${td.length} bytes, longer than the ${MAX_TRUST_DOMAIN_LENGTH} allowed`);
  }
  for (let i = 0; i < td.length; i++) {
    const c = td.charCodeAt(i);
    if (c >= 128 || TD_CHARS[c] !== 1) {
      const hint =
        c >= 0x41 && c <= 0x5a ? ' (trust domains are lower case)'
        : c === 0x3a ? ' (a port is not allowed)'
        : c === 0x40 ? ' (userinfo is not allowed)'
        : c === 0x25 ? ' (percent-encoding is not allowed)'
        : '';
      throw new SpiffeIdError(`trust domain "${shown(td)}" has the invalid character ${describeChar(c)} at ${i}${hint}`);
    }
  }
  return td;
}

/** Validates a path (`/ns/a/sa/b`); '' is the path of a trust-domain ID. */
export function validatePath(path: string): string {
  if (path === '') return path;
  if (path.charCodeAt(0) !== 0x2f) throw new SpiffeIdError(`path "${shown(path)}" must start with "/"`);
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const len = i - segStart;
      if (len === 0) {
        throw new SpiffeIdError(
          i === path.length ? `path "${shown(path)}" has a trailing "/"` : `path "${shown(path)}" has an empty segment`,
        );
      }
      if ((len === 1 && path.charCodeAt(segStart) === 0x2e) || (len === 2 && path.startsWith('..', segStart))) {
        throw new SpiffeIdError(`path "${shown(path)}" has a "." or ".." segment`);
      }
      segStart = i + 1;
      continue;
    }
    if (c >= 128 || PATH_CHARS[c] !== 1) {
      const hint =
        c === 0x25 ? ' (percent-encoding is not allowed)'
        : c === 0x3f ? ' (a query is not allowed)'
        : c === 0x23 ? ' (a fragment is not allowed)'
        : '';
      throw new SpiffeIdError(`path "${shown(path)}" has the invalid character ${describeChar(c)} at ${i}${hint}`);
    }
  }
  return path;
}

/** Parses a SPIFFE ID. Throws SpiffeIdError with the reason. Accepts trust-domain IDs (`spiffe://td`). */
export function parseSpiffeId(input: string): SpiffeId {
  if (typeof input !== 'string') throw new SpiffeIdError('a SPIFFE ID must be a string');
  if (input.length > MAX_SPIFFE_ID_LENGTH) {
    throw new SpiffeIdError(`SPIFFE ID is ${input.length} bytes, longer than the ${MAX_SPIFFE_ID_LENGTH} allowed`);
  }
  if (!input.startsWith(SPIFFE_SCHEME)) {
    throw new SpiffeIdError(`"${shown(truncate(input))}" is not a SPIFFE ID: it must start with "spiffe://" (lower case)`);
  }
  const rest = input.slice(SPIFFE_SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain === '') throw new SpiffeIdError(`"${shown(truncate(input))}" has no trust domain`);
  validateTrustDomain(trustDomain);
  validatePath(path);
  return { trustDomain, path, id: input };
}

/** Parses a SPIFFE ID that must name a workload (non-empty path), as an X.509-SVID leaf must. */
export function parseWorkloadId(input: string): SpiffeId {
  const id = parseSpiffeId(input);
  if (id.path === '') {
    throw new SpiffeIdError(`"${shown(input)}" names a trust domain, not a workload: an SVID's SPIFFE ID needs a path`);
  }
  return id;
}

export function isSpiffeId(input: string): boolean {
  try {
    parseSpiffeId(input);
    return true;
  } catch {
    return false;
  }
}

/** Builds `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`, validated. */
export function kubernetesSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return parseWorkloadId(`${SPIFFE_SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`).id;
}

/** Splits a parsed ID into the PeerIdentity fields (namespace and service account when the path has the k8s shape). */
export function kubernetesParts(id: SpiffeId): { namespace?: string; serviceAccount?: string } {
  const segs = id.path.split('/');
  // ['', 'ns', <ns>, 'sa', <sa>]
  if (segs.length === 5 && segs[1] === 'ns' && segs[3] === 'sa') return { namespace: segs[2]!, serviceAccount: segs[4]! };
  return {};
}

/** An ID being refused, in its message: it may come from a peer (a certificate, a token), so control characters are escaped. */
function shown(s: string): string {
  return printable(s, MAX_SPIFFE_ID_LENGTH);
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
