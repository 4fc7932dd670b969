/**
 * When a server section's named routes can be rendered as RBAC without their precedence. The
 * native evaluator classifies a request into ONE route (the highest-ranked matching entry; on a
 * router that serves alike spellings from one handler, also into an alike spelling's OUTRANKING
 * route) and applies only that route's allow rules; RBAC ORs its policies and has no precedence.
 * The two agree when no request can be classified into two different routes one of which has
 * rules of its own: every entry of one route is DISJOINT from every entry of the other, also
 * under the alike spellings (case, trailing slash, `;`, percent-decoding, HEAD → GET).
 *
 * Disjointness is proven conservatively, field by field (a pair not proven disjoint is an
 * overlap): `paths` (exact or `prefix*`, ASCII, no `%` or `;`) whose literals, lower-cased and
 * without trailing `/`s, are not a prefix one of the other (every alike spelling of a request
 * matching one starts with that literal); `methods` with no common method (HEAD and GET
 * count as one); `ports` with no common port. Pure.
 */
import type { Server, ServerRoute } from '../../policy/model.js';

/**
 * The literal of an exact or `prefix*` path, lower-cased, without trailing `/`s; undefined for
 * anything else, and for literals an alike spelling could rewrite inside (`%`, `;`, non-ASCII
 * whose lower case is not per character).
 */
function literal(p: string): string | undefined {
  if (p === '*' || p.startsWith('*') || !/^[\x21-\x7e]*$/.test(p) || /[{}%;]/.test(p)) return undefined;
  const l = (p.endsWith('*') ? p.slice(0, -1) : p).toLowerCase();
  return l.replace(/\/+$/, '');
}

function pathsDisjoint(a: readonly string[], b: readonly string[]): boolean {
  for (const p of a) for (const q of b) {
    const x = literal(p);
    const y = literal(q);
    if (x === undefined || y === undefined || x.startsWith(y) || y.startsWith(x)) return false;
  }
  return true;
}

const methodKey = (m: string): string => (m === 'HEAD' ? 'GET' : m);

function methodsDisjoint(a: readonly string[], b: readonly string[]): boolean {
  if (a.includes('*') || b.includes('*')) return false;
  const bs = new Set(b.map(methodKey));
  return a.every((m) => !bs.has(methodKey(m)));
}

/** Whether no request (nor any of its alike spellings) can match both entries. */
export function entriesDisjoint(a: ServerRoute, b: ServerRoute): boolean {
  if (a.paths !== undefined && b.paths !== undefined && pathsDisjoint(a.paths, b.paths)) return true;
  if (a.methods !== undefined && b.methods !== undefined && methodsDisjoint(a.methods, b.methods)) return true;
  if (a.ports !== undefined && b.ports !== undefined && !a.ports.some((p) => b.ports!.includes(p))) return true;
  return false;
}

/** A pair of overlapping entries of two routes whose classification matters, or undefined when there is none. */
export function routeOverlap(s: Server): { a: number; b: number } | undefined {
  if (!s.routes.some((r) => r.route !== undefined)) return undefined; // unnamed: no classification
  const routed = new Set(s.rules.map((r) => r.route).filter((r): r is string => r !== undefined));
  if (routed.size === 0) return undefined; // every route's request is decided by the same rules
  const name = (r: ServerRoute) => r.route ?? '';
  for (let i = 0; i < s.routes.length; i++) {
    for (let j = i + 1; j < s.routes.length; j++) {
      const a = s.routes[i]!;
      const b = s.routes[j]!;
      if (name(a) === name(b) || (!routed.has(name(a)) && !routed.has(name(b)))) continue;
      if (!entriesDisjoint(a, b)) return { a: i, b: j };
    }
  }
  return undefined;
}
