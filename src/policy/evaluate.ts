/**
 * The decision procedure (Istio's order, Linkerd's defaults):
 * 1. audit rules that match are recorded (they never decide);
 * 2. any deny rule matches → deny (top-level deny rules apply on every port);
 * 3. on a port covered by a server section: no matching route (when it has routes) → deny
 *    `no-route`; any of its allow rules matches → allow; else its `accessPolicy`;
 * 4. otherwise: any top-level allow rule matches → allow; allow rules exist → deny
 *    `no-allow-match`; else the default policy.
 */
import type { CompiledPolicy, CompiledRule, CompiledScope, DefaultDecisions, RuleIndex } from './compile.js';
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

function applyDefault(p: CompiledPolicy, d: DefaultDecisions, req: PolicyRequest, s: EvalScratch): Decision {
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

/** Evaluates `req` against a compiled policy. See the module comment for the order. */
export function evaluate(p: CompiledPolicy, req: PolicyRequest): Decision {
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

  if (server !== undefined) {
    if (server.routes.length > 0 && !anyClause(server.routes, req, s, td, NARROW_ALLOW)) return withAudit(server.noRoute, audit);
    hit = firstMatch(server.scope.allows, req, s, td);
    if (hit !== undefined) return withAudit(hit.decision, audit);
    return withAudit(applyDefault(p, server.defaults, req, s), audit);
  }
  hit = firstMatch(p.top.allows, req, s, td);
  if (hit !== undefined) return withAudit(hit.decision, audit);
  if (p.top.allowCount > 0) return withAudit(NO_ALLOW_MATCH, audit);
  return withAudit(applyDefault(p, p.defaults, req, s), audit);
}
