/**
 * The decision procedure (Istio's order, Linkerd's defaults):
 * 1. audit rules that match are recorded (they never decide);
 * 2. any deny rule matches → deny (top-level deny rules apply on every port);
 * 3. on a port covered by a server section: no matching route (when it has routes) → deny
 *    `no-route`; any of its allow rules matches → allow; else its `accessPolicy`. With named
 *    routes, the request is classified into one route (precedence order) and only that route's
 *    allow rules and the unrouted ones apply;
 * 4. otherwise: any top-level allow rule matches → allow; allow rules exist → deny
 *    `no-allow-match`; else the default policy.
 */
import type { CompiledRule, CompiledScope, CompiledServer, DefaultDecisions, PolicyTables, RankedRoute, RuleIndex } from './compiled.js';
import { NO_ALLOW_MATCH } from './decision.js';
import { type AlikeMode, type CompiledClause, type EvalScratch, NARROW_ALLOW, inRanges, matchClause, scratchIp } from './match.js';
import type { Decision, PolicyRequest } from './model.js';
import { candidates } from './rule-index.js';

function anyClause(list: readonly CompiledClause[], req: PolicyRequest, s: EvalScratch, td: string, mode: AlikeMode): boolean {
  if (list.length === 0) return true;
  for (let i = 0; i < list.length; i++) if (matchClause(list[i]!, req, s, td, mode)) return true;
  return false;
}

/** Whether one compiled rule matches `req`. */
export function ruleMatches(r: CompiledRule, req: PolicyRequest, s: EvalScratch, td: string): boolean {
  if (r.matchNothing) return false;
  const mode = r.mode;
  if (!anyClause(r.to, req, s, td, mode)) return false;
  if (!anyClause(r.from, req, s, td, mode)) return false;
  const w = r.when;
  for (let i = 0; i < w.length; i++) if (!matchClause(w[i]!, req, s, td, mode)) return false;
  return true;
}

function firstMatch(idx: RuleIndex, req: PolicyRequest, s: EvalScratch, td: string): CompiledRule | undefined {
  const rules = candidates(idx, req.peer);
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i]!, req, s, td)) return rules[i];
  return undefined;
}

function collectAudit(scope: CompiledScope, req: PolicyRequest, s: EvalScratch, td: string, into: string[] | null): string[] | null {
  const a = candidates(scope.audits, req.peer);
  for (let i = 0; i < a.length; i++) {
    if (ruleMatches(a[i]!, req, s, td)) (into ??= []).push(a[i]!.name);
  }
  return into;
}

function applyDefault(p: PolicyTables, d: DefaultDecisions, req: PolicyRequest, s: EvalScratch): Decision {
  switch (d.policy) {
    case 'all-unauthenticated':
    case 'audit':
      return d.allow;
    case 'deny':
      return d.deny;
    case 'all-authenticated':
      return req.peer !== null ? d.allow : d.deny;
    case 'cluster-authenticated':
      if (req.peer === null || req.peer.trustDomain !== p.trustDomain) return d.deny;
      if (p.clusterNetworksGiven && !inRanges(p.clusterRanges, scratchIp(s, req))) return d.deny;
      return d.allow;
    case 'cluster-unauthenticated':
      return inRanges(p.clusterRanges, scratchIp(s, req)) ? d.allow : d.deny;
  }
}

function withAudit(d: Decision, audit: string[] | null): Decision {
  if (audit === null) return d;
  return Object.freeze({ ...d, audit: Object.freeze(d.audit.length ? [...audit, ...d.audit] : audit) });
}

/** The first allow rule that matches and applies to `route` (unrouted rules apply to every route). */
function firstAllowFor(idx: RuleIndex, req: PolicyRequest, s: EvalScratch, td: string, route: string): CompiledRule | undefined {
  const rules = candidates(idx, req.peer);
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.route !== undefined && r.route !== route) continue;
    if (ruleMatches(r, req, s, td)) return r;
  }
  return undefined;
}

/**
 * The routes a request is classified into: the first matching entry in precedence order, with every
 * other route that matches at the same rank (a tie: each must admit the request, fail closed).
 */
function bestRoutes(ranked: readonly RankedRoute[], req: PolicyRequest, s: EvalScratch, td: string, folded: boolean): { rank: number; routes: string[] } | undefined {
  let found: { rank: number; routes: string[] } | undefined;
  for (let i = 0; i < ranked.length; i++) {
    const r = ranked[i]!;
    if (found !== undefined && r.rank < found.rank) break;
    if (!matchClause(folded ? r.folded : r.clause, req, s, td, NARROW_ALLOW)) continue;
    if (found === undefined) found = { rank: r.rank, routes: [r.route] };
    else if (!found.routes.includes(r.route)) found.routes.push(r.route);
  }
  return found;
}

/**
 * The routes a request must be authorized under: the one(s) its spelling is classified into and,
 * on a router that serves alike spellings from one handler, those of an alike spelling that OUTRANK
 * them (`/ADMIN` behind Express is the `/admin` route's; `/healthz/`, the twin of an Exact
 * `/healthz`, falling into a catch-all does not drag that catch-all's rules onto `/healthz`).
 */
function chosenRoutes(ranked: readonly RankedRoute[], req: PolicyRequest, s: EvalScratch, td: string, literal: { rank: number; routes: string[] }): string[] {
  const out = [...literal.routes];
  const a = req.alike;
  if (a === undefined) return out;
  const add = (b: { rank: number; routes: string[] } | undefined) => {
    if (b === undefined || b.rank <= literal.rank) return;
    for (const r of b.routes) if (!out.includes(r)) out.push(r);
  };
  for (const method of a.methods) {
    for (const path of a.paths) add(bestRoutes(ranked, { ...req, path, method, alike: undefined }, s, td, false));
    for (const path of a.folded) add(bestRoutes(ranked, { ...req, path, method, alike: undefined }, s, td, true));
  }
  return out;
}

/**
 * A request on a port covered by a server section (no deny rule matched): no route → `no-route`;
 * else its allow rules (for named routes: those of the chosen route(s) and the unrouted ones) or
 * its `accessPolicy`.
 */
function decideInServer(p: PolicyTables, server: CompiledServer, req: PolicyRequest, s: EvalScratch, td: string): Decision {
  if (server.ranked === undefined) {
    if (server.routes.length > 0 && !anyClause(server.routes, req, s, td, NARROW_ALLOW)) return server.noRoute;
    const hit = firstMatch(server.scope.allows, req, s, td);
    return hit !== undefined ? hit.decision : applyDefault(p, server.defaults, req, s);
  }
  const literal = bestRoutes(server.ranked, req, s, td, false);
  if (literal === undefined) return server.noRoute;
  let first: Decision | undefined;
  for (const route of chosenRoutes(server.ranked, req, s, td, literal)) {
    const hit = firstAllowFor(server.scope.allows, req, s, td, route);
    const d = hit !== undefined ? hit.decision : applyDefault(p, server.defaults, req, s);
    if (!d.allowed) return d;
    first ??= d;
  }
  return first!;
}

/** Evaluates `req` against a compiled policy. See the module comment for the order. */
export function evaluate(p: PolicyTables, req: PolicyRequest): Decision {
  const s = p.scratch;
  s.req = req;
  s.ipDone = false;
  s.ip = null;
  s.host = undefined;
  const td = p.trustDomain;
  const server = p.servers.size === 0 ? undefined : p.servers.get(req.port);
  let audit = collectAudit(p.top, req, s, td, null);
  if (server !== undefined) audit = collectAudit(server.scope, req, s, td, audit);

  let hit = firstMatch(p.top.denies, req, s, td);
  if (hit === undefined && server !== undefined) hit = firstMatch(server.scope.denies, req, s, td);
  if (hit !== undefined) return withAudit(hit.decision, audit);

  if (server !== undefined) return withAudit(decideInServer(p, server, req, s, td), audit);
  hit = firstMatch(p.top.allows, req, s, td);
  if (hit !== undefined) return withAudit(hit.decision, audit);
  if (p.top.allowCount > 0) return withAudit(NO_ALLOW_MATCH, audit);
  return withAudit(applyDefault(p, p.defaults, req, s), audit);
}
