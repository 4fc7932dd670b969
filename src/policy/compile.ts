/**
 * Compiles a policy for one workload: drops rules and servers scoped elsewhere, precomputes every
 * matcher and every decision object, so evaluating a request allocates nothing in the common case.
 */
import type { IpRange } from './cidr.js';
import { DEFAULT_CLUSTER_NETWORKS } from './cidr.js';
import { EMPTY, decision } from './decision.js';
import { evaluate } from './evaluate.js';
import { policyError } from './issues.js';
import { type RuleIndex as RuleIndexOf, buildIndex } from './rule-index.js';
import { type AlikeMode, type CompiledClause, type EvalScratch, NARROW_ALLOW, WIDEN_DENY, compileClause, compileRanges, newScratch } from './match.js';
import {
  type CompileOptions,
  type Decision,
  type DefaultPolicy,
  type Policy,
  type PolicyRequest,
  type Rule,
  type ServerRoute,
  DEFAULT_POLICIES,
  parsePolicy,
  selectorMatches,
} from './model.js';

/** A compiled rule with its two precomputed decisions. */
export interface CompiledRule {
  readonly name: string;
  /** Position in its scope's rules: among matching candidates the lowest position decides. */
  readonly order: number;
  readonly matchNothing: boolean;
  /** How the request's alike spellings count: widened for deny and audit rules, narrowed for allow rules. */
  readonly mode: AlikeMode;
  readonly from: readonly CompiledClause[];
  readonly to: readonly CompiledClause[];
  readonly when: readonly CompiledClause[];
  /** The decision this rule produces when it decides (allow or deny rules). */
  readonly decision: Decision;
  /** A server allow rule scoped to one route: applies only to requests classified into it. */
  readonly route?: string;
}

/** A named route entry of a server, in precedence order (highest rank first, then by name). */
export interface RankedRoute {
  readonly route: string;
  readonly rank: number;
  readonly clause: CompiledClause;
  /** The same entry with lower-cased path patterns, for a case-insensitive router's spellings. */
  readonly folded: CompiledClause;
}

/** Rules of one scope, split by action, each indexed by what they require of the peer (see rule-index.ts). */
export type RuleIndex = RuleIndexOf<CompiledRule>;

/** Rules of one scope, split by action. */
export interface CompiledScope {
  readonly denies: RuleIndex;
  /** Number of allow rules (matchNothing included): when > 0, no match means deny. */
  readonly allowCount: number;
  readonly allows: RuleIndex;
  readonly audits: RuleIndex;
}

/** A compiled server section. */
export interface CompiledServer {
  readonly name: string;
  readonly routes: readonly CompiledClause[];
  /** When the routes are named: one route is chosen per request (see model.ts, ServerRoute). */
  readonly ranked?: readonly RankedRoute[];
  readonly scope: CompiledScope;
  readonly fallback: DefaultPolicy;
  readonly noRoute: Decision;
  readonly defaults: DefaultDecisions;
}

/** The allow and deny decision of a default policy. */
export interface DefaultDecisions {
  readonly policy: DefaultPolicy;
  readonly allow: Decision;
  readonly deny: Decision;
}

/** A policy compiled for one workload. Immutable; swap the whole object to change policy. */
export interface CompiledPolicy {
  /** Judges one request. Synchronous; allocates only when audit rules matched. */
  evaluate(req: PolicyRequest): Decision;
  /** Number of rules that apply to this workload (top-level plus server rules). */
  readonly ruleCount: number;
  /**
   * Whether a request's alike spellings (policy/router-semantics.ts) can change a decision: a deny or
   * audit rule with paths or methods, an allow rule with notPaths or notMethods, or named server
   * routes. When false, the gate skips computing them.
   */
  readonly usesAlike: boolean;
  readonly defaultPolicy: DefaultPolicy;
  /** @internal */ readonly top: CompiledScope;
  /** @internal */ readonly servers: ReadonlyMap<number, CompiledServer>;
  /** @internal */ readonly defaults: DefaultDecisions;
  /** @internal */ readonly trustDomain: string;
  /** @internal */ readonly clusterRanges: readonly IpRange[];
  /** @internal */ readonly clusterNetworksGiven: boolean;
  /** @internal */ readonly scratch: EvalScratch;
}

function defaults(policy: DefaultPolicy, server?: string): DefaultDecisions {
  const audit = policy === 'audit' ? Object.freeze(['default:audit']) : EMPTY;
  return {
    policy,
    allow: decision(true, `default:${policy}`, 'default', server, audit),
    deny: decision(false, `default:${policy}`, 'default', server),
  };
}

function compileRule(r: Rule, order: number, server?: string): CompiledRule {
  const c: CompiledRule = {
    name: r.name,
    order,
    matchNothing: r.matchNothing === true,
    mode: r.action === 'allow' ? NARROW_ALLOW : WIDEN_DENY,
    from: r.from.map(compileClause),
    to: r.to.map(compileClause),
    when: r.when.map(compileClause),
    decision: decision(r.action === 'allow', r.name, r.action === 'deny' ? 'deny' : 'allow', server),
  };
  return r.route === undefined ? c : { ...c, route: r.route };
}

/** Named route entries in precedence order; undefined when no entry names its route. */
function rankRoutes(routes: readonly ServerRoute[]): RankedRoute[] | undefined {
  if (!routes.some((r) => r.route !== undefined)) return undefined;
  return routes
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (b.r.rank ?? 0) - (a.r.rank ?? 0) || a.i - b.i)
    .map(({ r }) => ({
      route: r.route ?? '',
      rank: r.rank ?? 0,
      clause: compileClause(r),
      folded: compileClause(r.paths ? { ...r, paths: r.paths.map((p) => p.toLowerCase()) } : r),
    }));
}

/** See CompiledPolicy.usesAlike. */
function ruleUsesAlike(r: Rule): boolean {
  const clauses = [...r.to, ...r.when];
  return r.action === 'allow'
    ? clauses.some((c) => c.notPaths !== undefined || c.notMethods !== undefined)
    : clauses.some((c) => c.paths !== undefined || c.methods !== undefined);
}

function applies(x: { namespace?: string; selector?: Rule['selector'] }, o: CompileOptions): boolean {
  if (x.namespace !== undefined && x.namespace !== o.namespace) return false;
  if (x.selector !== undefined && !selectorMatches(x.selector, o.labels ?? {})) return false;
  return true;
}

function scope(rules: readonly Rule[], trustDomain: string, server?: string): CompiledScope {
  const denies: CompiledRule[] = [];
  const allows: CompiledRule[] = [];
  const audits: CompiledRule[] = [];
  rules.forEach((r, i) => {
    const c = compileRule(r, i, server);
    (r.action === 'deny' ? denies : r.action === 'allow' ? allows : audits).push(c);
  });
  return {
    denies: buildIndex(denies, trustDomain),
    allowCount: allows.length,
    allows: buildIndex(allows, trustDomain),
    audits: buildIndex(audits, trustDomain),
  };
}

/**
 * Compiles `policy` (a canonical Policy, or a native document, validated again here) for the
 * workload described by `options`.
 * @throws PolicyError for an invalid policy or options (two servers on one port, bad networks).
 */
export function compilePolicy(policy: Policy | unknown, options: CompileOptions): CompiledPolicy {
  const p = parsePolicy(policy);
  const defaultPolicy = options.defaultPolicy ?? 'all-authenticated';
  if (!DEFAULT_POLICIES.includes(defaultPolicy)) {
    throw policyError([{ path: 'defaultPolicy', message: `must be one of ${DEFAULT_POLICIES.join(', ')}` }]);
  }
  let clusterRanges: IpRange[];
  try {
    clusterRanges = compileRanges(options.clusterNetworks ?? DEFAULT_CLUSTER_NETWORKS);
  } catch (e) {
    throw policyError([{ path: 'clusterNetworks', message: (e as Error).message }]);
  }
  const topRules = p.rules.filter((r) => applies(r, options));
  const servers = new Map<number, CompiledServer>();
  let ruleCount = topRules.length;
  p.servers.forEach((s, i) => {
    if (!applies(s, options)) return;
    const ranked = rankRoutes(s.routes);
    const cs: CompiledServer = {
      name: s.name,
      routes: s.routes.map(compileClause),
      ...(ranked && { ranked }),
      scope: scope(s.rules, options.trustDomain, s.name),
      fallback: s.accessPolicy,
      noRoute: decision(false, 'no-route', 'default', s.name),
      defaults: defaults(s.accessPolicy, s.name),
    };
    ruleCount += s.rules.length;
    for (const port of s.ports) {
      const other = servers.get(port);
      if (other) {
        throw policyError([{ path: `servers[${i}].ports`, message: `port ${port} is already covered by server "${other.name}"; servers must not overlap` }]);
      }
      servers.set(port, cs);
    }
  });
  const usesAlike =
    topRules.some(ruleUsesAlike) ||
    [...servers.values()].some((cs) => cs.ranked !== undefined) ||
    p.servers.some((s) => applies(s, options) && (s.rules.some(ruleUsesAlike) || s.routes.some((r) => r.notPaths !== undefined || r.notMethods !== undefined)));
  const compiled: CompiledPolicy = {
    evaluate: (req) => evaluate(compiled, req),
    ruleCount,
    usesAlike,
    defaultPolicy,
    top: scope(topRules, options.trustDomain),
    servers,
    defaults: defaults(defaultPolicy),
    trustDomain: options.trustDomain,
    clusterRanges,
    clusterNetworksGiven: options.clusterNetworks !== undefined,
    scratch: newScratch(),
  };
  return compiled;
}

