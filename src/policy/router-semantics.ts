/**
 * Router semantics: which spellings of a request the protected router serves from one handler.
 * Pure. The policy must judge a request by what it reaches, or a DENY for `/admin` is bypassed by
 * `/ADMIN` (Express routes case-insensitively), `/admin/` (Express ignores a trailing slash),
 * `/admin;x` (Fastify's `useSemicolonDelimiter`), `/%E2%84%AAelvin` (find-my-way decodes, then
 * lower-cases: the Kelvin sign folds to `k`), or `HEAD /admin` (HEAD runs GET handlers).
 *
 * The set of spellings ({@link Alike}) over-approximates what the router treats alike, so it is
 * used only in the direction that fails closed (see match.ts):
 * - a DENY (or AUDIT) rule's positive conditions (`paths`, `methods`) hold when ANY alike spelling
 *   matches: more requests are denied;
 * - an ALLOW rule's negative conditions (`notPaths`, `notMethods`) exclude the request when ANY
 *   alike spelling is listed: fewer requests are allowed;
 * - everything else judges the spelling sent: an ALLOW admits only what it names, and a DENY's
 *   `notPaths` exempts only the spelling it names (so DENY-unless-`/healthz` never denies
 *   `/healthz` itself because its twin `/healthz/` is not listed).
 */

export interface RouterSemantics {
  /** The router matches paths case-insensitively (Express's default, Fastify's `caseSensitive: false`). */
  readonly caseInsensitive: boolean;
  /** The router treats `/a/` as `/a` (Express's default, Fastify's `ignoreTrailingSlash`). */
  readonly ignoreTrailingSlash: boolean;
  /** `;` ends the path (Fastify's `useSemicolonDelimiter`). */
  readonly semicolonDelimiter: boolean;
  /** The router percent-decodes the path (`decodeURI`) before matching it (find-my-way, Fastify's router). */
  readonly decodesPath: boolean;
  /** HEAD requests run GET handlers (Express; Fastify's `exposeHeadRoutes`, on by default). */
  readonly headAsGet: boolean;
  /**
   * A route parameter matches an empty segment: find-my-way serves `/orders/` from `/orders/:id`
   * (id ''), so a rule for `/orders/{id}` must judge it (found by fuzzing against find-my-way).
   */
  readonly emptyParam: boolean;
}

/**
 * The segment an empty route parameter stands for in an alike spelling: never in a normalized
 * path (the gate refuses NUL), non-empty, so `{id}`, `{*}`, prefixes and `*` match it and no exact
 * path a policy names does.
 */
export const EMPTY_PARAM_SEGMENT = '\u0000';

/** The policy as written, nothing alike: for what-if checks (`policy check --router exact`). */
export const EXACT_ROUTING: RouterSemantics = Object.freeze({
  caseInsensitive: false,
  ignoreTrailingSlash: false,
  semicolonDelimiter: false,
  decodesPath: false,
  headAsGet: false,
  emptyParam: false,
});

/**
 * A request listener the mesh cannot identify (a plain function — which may wrap Express, Koa, a
 * router library): every alike spelling any router serves counts, the fail-closed choice. DENY
 * rules widen and ALLOW exclusions narrow over case, trailing slash, `;`, decoding and HEAD → GET;
 * ALLOW rules still admit only what they name.
 */
export const ANY_ROUTING: RouterSemantics = Object.freeze({
  caseInsensitive: true,
  ignoreTrailingSlash: true,
  semicolonDelimiter: true,
  decodesPath: true,
  headAsGet: true,
  emptyParam: true,
});

/**
 * Express (4 and 5) with its defaults, and every `express.Router()` whatever the app's settings:
 * case-insensitive, a trailing slash ignored, HEAD served by GET routes, the path matched encoded.
 */
export const EXPRESS_ROUTING: RouterSemantics = Object.freeze({
  caseInsensitive: true,
  ignoreTrailingSlash: true,
  semicolonDelimiter: false,
  decodesPath: false,
  headAsGet: true,
  emptyParam: false,
});

/** What changes routing in a Fastify instance (find-my-way), as its options say. */
export interface FastifyRouterOptions {
  caseSensitive?: boolean;
  useSemicolonDelimiter?: boolean;
}

/**
 * Fastify's router (find-my-way): it percent-decodes before matching and lower-cases the decoded
 * path when `caseSensitive: false` (Unicode folding: the Kelvin sign is `k`); a prefixed plugin's
 * '/' route is served at `/prefix` and `/prefix/` (`prefixTrailingSlash: 'both'`, the default), so
 * a trailing slash is always judged alike; HEAD is always judged as GET (`exposeHeadRoutes`, the
 * default, serves HEAD from GET routes, and a route's own `exposeHeadRoute` does so even when the
 * instance turned it off). `ignoreDuplicateSlashes` needs no care: the gate merges `//` first.
 */
export function fastifyRouting(o: FastifyRouterOptions = {}): RouterSemantics {
  return Object.freeze({
    caseInsensitive: o.caseSensitive === false,
    ignoreTrailingSlash: true,
    semicolonDelimiter: o.useSemicolonDelimiter === true,
    decodesPath: true,
    headAsGet: true,
    emptyParam: true,
  });
}

const FASTIFY_FLAGS: Record<string, keyof FastifyRouterOptions> = {
  'case-insensitive': 'caseSensitive',
  semicolon: 'useSemicolonDelimiter',
};

/**
 * Router semantics by name, for the CLI: `any` (a listener the mesh cannot identify, the default),
 * `exact` (the policy as written), `express`, `fastify`, or
 * `fastify:<flag>,<flag>` with flags `case-insensitive`, `semicolon`. Returns an
 * error message for anything else.
 */
export function routingNamed(spec: string): RouterSemantics | string {
  if (spec === 'any') return ANY_ROUTING;
  if (spec === 'exact') return EXACT_ROUTING;
  if (spec === 'express') return EXPRESS_ROUTING;
  const m = /^fastify(?::(.*))?$/.exec(spec);
  if (!m) return `unknown router "${spec}": use any, express, fastify, fastify:${Object.keys(FASTIFY_FLAGS).join(',')} or exact`;
  const o: FastifyRouterOptions = {};
  for (const flag of m[1] ? m[1].split(',') : []) {
    const key = FASTIFY_FLAGS[flag];
    if (!key) return `unknown fastify router flag "${flag}": use ${Object.keys(FASTIFY_FLAGS).join(', ')}`;
    o[key] = key === 'useSemicolonDelimiter';
  }
  return fastifyRouting(o);
}

/** Whether `r` serves every spelling from its own handler (no alike spellings to judge). */
export function isExactRouting(r: RouterSemantics): boolean {
  return !r.caseInsensitive && !r.ignoreTrailingSlash && !r.semicolonDelimiter && !r.decodesPath && !r.headAsGet && !r.emptyParam;
}

/** Whether a router with `outer` semantics judges at least every spelling `inner` does. */
export function coversRouting(outer: RouterSemantics, inner: RouterSemantics): boolean {
  return (
    (outer.caseInsensitive || !inner.caseInsensitive) &&
    (outer.ignoreTrailingSlash || !inner.ignoreTrailingSlash) &&
    (outer.semicolonDelimiter || !inner.semicolonDelimiter) &&
    (outer.decodesPath || !inner.decodesPath) &&
    (outer.headAsGet || !inner.headAsGet) &&
    (outer.emptyParam || !inner.emptyParam)
  );
}

/** The union of two semantics: every spelling either router treats alike. */
export function unionRouting(a: RouterSemantics, b: RouterSemantics): RouterSemantics {
  return Object.freeze({
    caseInsensitive: a.caseInsensitive || b.caseInsensitive,
    ignoreTrailingSlash: a.ignoreTrailingSlash || b.ignoreTrailingSlash,
    semicolonDelimiter: a.semicolonDelimiter || b.semicolonDelimiter,
    decodesPath: a.decodesPath || b.decodesPath,
    headAsGet: a.headAsGet || b.headAsGet,
    emptyParam: a.emptyParam || b.emptyParam,
  });
}

/** The spellings a router serves from the handler of one (method, path). */
export interface Alike {
  /** Spellings compared with path patterns as written; the path sent is the first. */
  readonly paths: readonly string[];
  /** Lower-cased spellings, compared with lower-cased patterns (empty unless case-insensitive). */
  readonly folded: readonly string[];
  /** Methods whose handlers run; the method sent is the first. */
  readonly methods: readonly string[];
}

/**
 * The other spelling of `path` with its trailing slash toggled, or undefined for `/`, `*` and ''.
 * Both directions: Express's non-strict routes match `/a/` for `/a`, find-my-way trims both sides.
 */
export function trailingSlashTwin(path: string): string | undefined {
  if (path === '/' || path === '*' || path.length === 0) return undefined;
  return path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
}

/**
 * find-my-way's decoding: `decodeURI` (reserved characters stay encoded) with `%25` kept as it is.
 * Undefined when the sequence is not UTF-8 (the router answers 400: no handler runs).
 */
export function routerDecode(path: string): string | undefined {
  if (path.indexOf('%') < 0) return path;
  try {
    return decodeURI(path.replace(/%25/g, '%2525'));
  } catch {
    return undefined;
  }
}

/**
 * The spellings that `r` serves from the handler of `(method, path)` (`path` as normalizeTarget
 * made it), or undefined when there are none besides the request itself. Pure; at most 8 paths.
 */
export function alikeOf(path: string, method: string, r: RouterSemantics): Alike | undefined {
  if (isExactRouting(r) || path === '*' || path.length === 0) return undefined;
  const paths: string[] = [path];
  const add = (p: string | undefined) => {
    if (p !== undefined && p.length > 0 && !paths.includes(p)) paths.push(p);
  };
  if (r.semicolonDelimiter) {
    const semi = path.indexOf(';');
    if (semi >= 0) add(semi === 1 ? '/' : path.slice(0, semi));
  }
  if (r.decodesPath) for (const p of [...paths]) add(routerDecode(p));
  if (r.emptyParam) for (const p of [...paths]) if (p.length > 1 && p.endsWith('/')) add(p + EMPTY_PARAM_SEGMENT);
  if (r.ignoreTrailingSlash) for (const p of [...paths]) add(trailingSlashTwin(p));
  const folded: string[] = [];
  if (r.caseInsensitive) {
    for (const p of paths) {
      const l = p.toLowerCase();
      if (!folded.includes(l)) folded.push(l);
    }
  }
  const methods = r.headAsGet && method === 'HEAD' ? ['HEAD', 'GET'] : [method];
  // A lower-case path still needs `folded`: DENY `/Admin` must match `/admin` on a case-insensitive router.
  if (paths.length === 1 && folded.length === 0 && methods.length === 1) return undefined;
  return { paths, folded, methods };
}
