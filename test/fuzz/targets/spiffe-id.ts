// The SPIFFE ID parser against the grammar of the SPIFFE-ID standard (§2.1 trust domain: lower-case
// letters, digits, ".", "-", "_"; §2.2 path: segments of letters, digits, ".", "-", "_", none empty,
// none "." or "..", no trailing "/"; no query, fragment, port or userinfo; 2048 bytes in all, 255 for
// the trust domain), written as one regular expression. Both must agree; ours throws only
// SpiffeIdError and hands back the trust domain and path the grammar splits.
import fc from 'fast-check';
import { SpiffeIdError } from '../../../src/errors.js';
import { parseSpiffeId } from '../../../src/identity/spiffe-id.js';
import { type FuzzTarget, onlyThrows } from '../harness.js';

const GRAMMAR = /^spiffe:\/\/([a-z0-9._-]+)((?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+)*)$/;

function reference(s: string): { trustDomain: string; path: string } | null {
  const m = GRAMMAR.exec(s);
  if (!m || s.length > 2048 || m[1]!.length > 255) return null;
  return { trustDomain: m[1]!, path: m[2]! };
}

const PIECE = fc.constantFrom('spiffe://', 'SPIFFE://', 'spiffe:/', 'cluster.local', 'Cluster.local', 'td', 'a-b_c.d', '/', '//', '/ns', '/.', '/..', '/...', '/.a', '/a.', '%2F', ':8080', 'u@', '?q', '#f', '/sa/web', ' ', '\u00e9', '\u0000', 'é');
const ID = fc.oneof(
  { weight: 4, arbitrary: fc.array(PIECE, { maxLength: 6 }).map((p) => 'spiffe://' + p.join('')) },
  { weight: 2, arbitrary: fc.array(PIECE, { maxLength: 6 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 250, max: 260 }), fc.integer({ min: 0, max: 2100 })).map(([td, path]) => `spiffe://${'a'.repeat(td)}/${'b'.repeat(path)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => 'spiffe://' + s) },
);

export const spiffeId: FuzzTarget = {
  name: 'spiffe-id',
  oracle: 'accepts exactly what the SPIFFE-ID grammar (one regular expression) accepts, with the same trust domain and path; throws only SpiffeIdError',
  shortRuns: 3_000,
  property: () =>
    fc.property(ID, (s) => {
      const ref = reference(s);
      let parsed: ReturnType<typeof parseSpiffeId> | undefined;
      const err = onlyThrows([SpiffeIdError], () => (parsed = parseSpiffeId(s)));
      if (ref === null && !err) throw new Error(`accepted ${JSON.stringify(s)}, which the grammar refuses`);
      if (ref !== null && err) throw new Error(`refused ${JSON.stringify(s)} (${err.message}), which the grammar accepts`);
      if (ref && (parsed!.trustDomain !== ref.trustDomain || parsed!.path !== ref.path)) throw new Error(`${JSON.stringify(s)} split as ${parsed!.trustDomain} + ${parsed!.path}`);
      return true;
    }),
};
