// The request-target normalizer against a reference written from the documents, not from ours:
// RFC 9112 §3.2 (origin- and absolute-form, `*` for OPTIONS), RFC 3986 §2.3 (decode unreserved
// once), §5.2.4 (remove_dot_segments, as the RFC's own loop over an input buffer), with the
// project's refusals (DESIGN.md "path handling": encoded `/` `\` NUL, `\`, `#`, controls, space,
// non-ASCII). Adjacent slashes are merged before dot segments are removed. Both must agree on
// accept/refuse and on the path; the result must be a fixpoint (normalizing it again changes nothing).
import fc from 'fast-check';
import { normalizePath, normalizeTarget } from '../../../src/policy/normalize.js';
import { type FuzzTarget } from '../harness.js';

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** RFC 3986 §5.2.4, step by step on an input buffer (no segment stack). */
export function removeDotSegments(input: string): string {
  let inp = input;
  let out = '';
  while (inp.length > 0) {
    if (inp.startsWith('../')) inp = inp.slice(3);
    else if (inp.startsWith('./')) inp = inp.slice(2);
    else if (inp.startsWith('/./')) inp = '/' + inp.slice(3);
    else if (inp === '/.') inp = '/';
    else if (inp.startsWith('/../')) {
      inp = '/' + inp.slice(4);
      out = out.slice(0, Math.max(0, out.lastIndexOf('/')));
    } else if (inp === '/..') {
      inp = '/';
      out = out.slice(0, Math.max(0, out.lastIndexOf('/')));
    } else if (inp === '.' || inp === '..') inp = '';
    else {
      const next = inp.indexOf('/', inp.startsWith('/') ? 1 : 0);
      const seg = next < 0 ? inp : inp.slice(0, next);
      out += seg;
      inp = next < 0 ? '' : inp.slice(next);
    }
  }
  return out;
}

/** The reference: the normalized path, or null for a refusal (the reason is ours to word). */
export function referencePath(rawPath: string): string | null {
  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath[i]!;
    if (ch !== '%') {
      decoded += ch;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    const byte = parseInt(hex, 16);
    if (byte === 0x2f || byte === 0x5c || byte === 0) return null;
    const c = String.fromCharCode(byte);
    decoded += UNRESERVED.test(c) ? c : '%' + hex.toUpperCase();
    i += 2;
  }
  const merged = decoded.replace(/\/{2,}/g, '/');
  const path = removeDotSegments(merged);
  return path === '' ? '/' : path;
}

export function referenceTarget(raw: string, method: string): { path: string; query: string } | null {
  if (raw === '' || /[\x00-\x20\x7f-\uffff#\\]/.test(raw)) return null;
  if (raw === '*') return method === 'OPTIONS' ? { path: '*', query: '' } : null;
  let rest = raw;
  if (!rest.startsWith('/')) {
    const m = /^(https?):\/\/([^/?]+)(.*)$/i.exec(rest);
    if (!m || m[2]!.includes('@')) return null;
    rest = m[3]!.startsWith('/') ? m[3]! : '/' + m[3]!;
  }
  const q = rest.indexOf('?');
  const path = referencePath(q < 0 ? rest : rest.slice(0, q));
  return path === null ? null : { path, query: q < 0 ? '' : rest.slice(q + 1) };
}

const SEGMENT = fc.oneof(
  fc.constantFrom('', '.', '..', '%2e', '%2E%2e', '.%2e', 'a', 'A', 'admin', '%61dmin', '%41', '%2F', '%2f', '%5C', '%5c', '%00', '%25', '%2561', '%zz', '%4', ';', ';x=1', ':', '@', '~', '%7E', '%7e', '%3a', '%20', '%C3%A9', '-', '_', '..;', '.;', '%2e%2e%2f'),
  fc.stringMatching(/^[A-Za-z0-9%._~;:@!$&'()*+,=-]{0,6}$/),
);

const PATH = fc.array(SEGMENT, { minLength: 0, maxLength: 8 }).map((segs) => '/' + segs.join('/'));
const TARGET = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(PATH, fc.option(fc.stringMatching(/^[A-Za-z0-9=&%/?.]{0,8}$/))).map(([p, q]) => (q === null ? p : `${p}?${q}`)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', 'http://u@'), fc.constantFrom('h', 'h:80', ''), PATH).map(([s, h, p]) => s + h + p) },
  { weight: 1, arbitrary: fc.constantFrom('*', '', 'a', '/a#b', '/a\\b', '/a b', '/\u00e9', '/a\x00') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const METHOD = fc.constantFrom('GET', 'POST', 'OPTIONS', 'HEAD');

export const requestTarget: FuzzTarget = {
  name: 'request-target',
  oracle: 'agrees with a reference from RFC 9112 §3.2 and RFC 3986 §2.3/§5.2.4 on accept/refuse and the path; the result is a fixpoint; never throws',
  shortRuns: 3_000,
  property: () =>
    fc.property(TARGET, METHOD, (raw, method) => {
      const ours = normalizeTarget(raw, method);
      const ref = referenceTarget(raw, method);
      if (ref === null) {
        if (ours.ok) throw new Error(`accepted ${JSON.stringify(raw)} as ${JSON.stringify(ours.path)}; the reference refuses it`);
        return true;
      }
      if (!ours.ok) throw new Error(`refused ${JSON.stringify(raw)} (${ours.reason}); the reference takes it as ${JSON.stringify(ref.path)}`);
      if (ours.path !== ref.path) throw new Error(`${JSON.stringify(raw)} → ${JSON.stringify(ours.path)}, the reference says ${JSON.stringify(ref.path)}`);
      if (ours.query !== ref.query) throw new Error(`${JSON.stringify(raw)}: query ${JSON.stringify(ours.query)}, the reference says ${JSON.stringify(ref.query)}`);
      if (ours.path !== '*' && normalizePath(ours.path) !== ours.path) throw new Error(`${JSON.stringify(ours.path)} is not a fixpoint: ${JSON.stringify(normalizePath(ours.path))}`);
      return true;
    }),
};
