import { type Condition, type Operation, type Policy, type Rule, type Server } from './model.js';

/**
 * How the app's router compares paths. The policy must judge every path the router treats as the
 * same one, or a deny for `/admin` is bypassed by `/ADMIN` (Express routes case-insensitively by
 * default) or by `/admin/` (Express ignores a trailing slash by default).
 */
export interface RouterSemantics {
  /** The router matches paths case-insensitively (Express's default). */
  readonly caseInsensitive: boolean;
  /** The router treats `/a/` as `/a` (Express's default, Fastify's `ignoreTrailingSlash`). */
  readonly ignoreTrailingSlash: boolean;
}

/** node:http and Fastify's defaults: the path is compared exactly. */
export const EXACT_ROUTING: RouterSemantics = Object.freeze({ caseInsensitive: false, ignoreTrailingSlash: false });
/** Express's defaults, and those of `express.Router()` whatever the app's settings. */
export const EXPRESS_ROUTING: RouterSemantics = Object.freeze({ caseInsensitive: true, ignoreTrailingSlash: true });

/**
 * The other spellings of `path` a router with `semantics` routes alike, besides `path` itself:
 * at most one (the trailing slash toggled). Case is handled by judging a lower-cased path against
 * a policy whose path patterns are lower-cased ({@link foldPathCase}).
 */
export function trailingSlashTwin(path: string): string | undefined {
  if (path === '/' || path === '*' || path.length === 0) return undefined;
  return path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
}

function foldOperation<T extends Operation>(op: T): T {
  if (!op.paths && !op.notPaths) return op;
  return {
    ...op,
    ...(op.paths && { paths: op.paths.map((p) => p.toLowerCase()) }),
    ...(op.notPaths && { notPaths: op.notPaths.map((p) => p.toLowerCase()) }),
  };
}

function foldRule(rule: Rule): Rule {
  return { ...rule, to: rule.to.map(foldOperation), when: rule.when.map((c) => foldOperation<Condition>(c)) };
}

function foldServer(server: Server): Server {
  return { ...server, routes: server.routes.map(foldOperation), rules: server.rules.map(foldRule) };
}

/** The same policy with every path pattern lower-cased: judge a lower-cased path against it. */
export function foldPathCase(policy: Policy): Policy {
  return { rules: policy.rules.map(foldRule), servers: policy.servers.map(foldServer) };
}
