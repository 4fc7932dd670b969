/**
 * Compiles a policy for one workload: drops rules and servers scoped elsewhere, precomputes every
 * matcher and every decision object, so evaluating a request allocates nothing in the common case.
 */
import type { IpRange } from './cidr.js';
import { DEFAULT_CLUSTER_NETWORKS } from './cidr.js';
import { EMPTY, decision } from './decision.js';
import { evaluate } from './evaluate.js';
import type { CompiledPolicy, CompiledRule, CompiledScope, CompiledServer, DefaultDecisions, PolicyTables, RankedRoute } from './compiled.js';
import { policyError } from './issues.js';
import { buildIndex } from './rule-index.js';
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
export type { CompiledPolicy, CompiledRule, CompiledScope, CompiledServer, DefaultDecisions, PolicyTables, RankedRoute, RuleIndex } from './compiled.js';

/** The tables behind a compiled policy, for tests that look inside (rule-index.test.ts). Not public. */
export function tablesOf(compiled: CompiledPolicy): PolicyTables | undefined {
  return TABLES.get(compiled);
}

const TABLES = new WeakMap<CompiledPolicy, PolicyTables>();

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
  const tables: PolicyTables = {
    top: scope(topRules, options.trustDomain),
    servers,
    defaults: defaults(defaultPolicy),
    trustDomain: options.trustDomain,
    clusterRanges,
    clusterNetworksGiven: options.clusterNetworks !== undefined,
    scratch: newScratch(),
  };
  const compiled: CompiledPolicy = { evaluate: (req) => evaluate(tables, req), ruleCount, usesAlike, defaultPolicy };
  TABLES.set(compiled, tables);
  return compiled;
}

