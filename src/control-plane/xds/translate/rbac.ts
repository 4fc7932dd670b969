/**
 * The RBAC HTTP filters of a server Listener → native rules, with Envoy's meaning: a request that
 * matches any policy of a DENY filter is denied; when an ALLOW filter is present, a request must
 * match one of its policies (an ALLOW filter without policies denies everything: Istio's "allow
 * nothing"); a LOG filter only records (audit rules). Each RBAC policy is OR(permissions) AND
 * OR(principals); in the common shape (what istiod writes) it is one native rule named after the
 * policy, `from` the principals and `to` the permissions. Other shapes expand into several rules
 * (`<policy>#<n>`) with `when` conditions. An ALLOW policy is never translated into more than
 * Envoy allows, a DENY policy never into less (rbac-formula.ts). Pure.
 */
import type { Policy as RbacPolicy } from '../../../proto/envoy/config/rbac/v3/rbac.js';
import { RBAC_Action } from '../../../proto/envoy/config/rbac/v3/rbac.js';
import type { RBAC as RbacFilter } from '../../../proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import type { Condition, Operation, PolicyInput, Source } from '../../../policy/index.js';
import { type Findings, quote } from './result.js';
import { type Dnf, type Formula, MAX_CLAUSES, TooManyClauses, clauseConditions, dnf, isOperationOnly, isSourceOnly } from './rbac-formula.js';
import { principalFormula } from './rbac-principal.js';
import { permissionFormula } from './rbac-permission.js';
import { refuseUnknown } from './unknown-fields.js';
import { RBAC_FILTER, RBAC_POLICY, RBAC_RULES } from './envoy-fields.js';

type NativeRule = NonNullable<PolicyInput['rules']>[number];
type Action = NativeRule['action'];

/** An RBAC filter as it appears in the HCM: its name (for reasons) and its decoded config. */
export interface RbacFilterEntry {
  readonly at: string;
  readonly name: string;
  readonly config: RbacFilter;
}

function conditionsOf(d: Dnf): Condition[][] {
  const out: Condition[][] = [];
  for (const c of d) {
    const conds = clauseConditions(c);
    if (conds !== undefined) out.push(conds);
  }
  return out;
}

/** The side of a policy as one list of clauses (OR), each `from`- or `to`-shaped, or undefined when it needs `when`. */
function asEntries<T>(side: Condition[][], fits: (c: Condition) => boolean): T[] | undefined {
  if (!side.every((conds) => conds.length === 1 && fits(conds[0]!))) return undefined;
  if (side.some((conds) => Object.keys(conds[0]!).length === 0)) return []; // one clause always holds: the side matches anything
  return side.map((conds) => conds[0] as T);
}

function policyRules(name: string, p: RbacPolicy, action: Action, f: Findings, at: string): NativeRule[] {
  refuseUnknown(p, f, at, RBAC_POLICY);
  if (p.condition !== undefined || p.checkedCondition !== undefined) {
    f.refuse(`${at}.${p.condition !== undefined ? 'condition' : 'checked_condition'}`, 'CEL conditions are not supported (gRFC A41)');
    return [];
  }
  if (p.permissions.length === 0) f.refuse(`${at}.permissions`, 'must not be empty');
  if (p.principals.length === 0) f.refuse(`${at}.principals`, 'must not be empty');
  const perms = p.permissions.map((x, i) => permissionFormula(x, f, `${at}.permissions[${i}]`));
  const ids = p.principals.map((x, i) => principalFormula(x, f, `${at}.principals[${i}]`));
  if (perms.length === 0 || ids.length === 0 || !perms.every(Boolean) || !ids.every(Boolean)) return [];
  // ALLOW: never more than Envoy; DENY (and LOG, which only records): never less.
  const bound = action === 'allow' ? 'under' : 'over';
  let from: Condition[][];
  let to: Condition[][];
  try {
    from = conditionsOf(dnf({ t: 'or', xs: ids as Formula[] }, bound));
    to = conditionsOf(dnf({ t: 'or', xs: perms as Formula[] }, bound));
  } catch (e) {
    if (!(e instanceof TooManyClauses)) throw e;
    f.refuse(at, `expands to more than ${MAX_CLAUSES} alternatives: too deeply combined to translate`);
    return [];
  }
  if (from.length === 0 || to.length === 0) return []; // never matches
  const sources = asEntries<Source>(from, isSourceOnly);
  const operations = asEntries<Operation>(to, isOperationOnly);
  if (sources !== undefined && operations !== undefined) {
    return [{ name, action, ...(sources.length > 0 && { from: sources }), ...(operations.length > 0 && { to: operations }) }];
  }
  if (from.length * to.length > MAX_CLAUSES) {
    f.refuse(at, `expands to more than ${MAX_CLAUSES} rules: too deeply combined to translate`);
    return [];
  }
  const rules: NativeRule[] = [];
  for (const a of from) for (const b of to) {
    const when = [...a, ...b].filter((c) => Object.keys(c).length > 0);
    rules.push({ name: `${name}#${rules.length}`, action, ...(when.length > 0 && { when }) });
  }
  return rules;
}

/** Longest RBAC policy name taken (istiod's `ns[<ns>]-policy[<name>]-rule[<i>]` stays far below). */
export const MAX_POLICY_NAME = 512;

const ACTIONS: Record<number, Action> = { [RBAC_Action.ALLOW]: 'allow', [RBAC_Action.DENY]: 'deny', [RBAC_Action.LOG]: 'audit' };

/** Native rules for every RBAC filter of one HCM, DENY and ALLOW alike (the evaluator puts denies first, as Envoy's filter order does). */
export function rbacRules(filters: readonly RbacFilterEntry[], f: Findings): NativeRule[] {
  const rules: NativeRule[] = [];
  let allowFilters = 0;
  for (const { at, name, config } of filters) {
    refuseUnknown(config, f, at, RBAC_FILTER);
    refuseUnknown(config.rules, f, `${at}.rules`, RBAC_RULES);
    if (config.matcher !== undefined) f.refuse(`${at}.matcher`, 'the matcher form of RBAC is not supported: istiod writes rules');
    if (config.shadowRules !== undefined) f.note(`${at}.shadow_rules`, 'shadow rules only produce statistics in Envoy: not used');
    const r = config.rules;
    if (r === undefined) continue; // Envoy: no rules, no enforcement
    const action = ACTIONS[r.action];
    if (action === undefined) {
      f.refuse(`${at}.rules.action`, `${r.action} is not ALLOW, DENY or LOG`);
      continue;
    }
    const own: NativeRule[] = [];
    for (const [policy, p] of r.policies) {
      const pat = `${at}.rules.policies[${quote(policy)}]`;
      // The name becomes a rule name, in decisions, audit records and stats.
      if (policy === '' || policy.length > MAX_POLICY_NAME) f.refuse(pat, `a policy name must have 1 to ${MAX_POLICY_NAME} characters`);
      else own.push(...policyRules(policy, p, action, f, pat));
    }
    if (action === 'allow') {
      if (++allowFilters > 1) f.refuse(at, 'a second ALLOW filter (a request must pass each): sidecarless takes one, as istiod writes');
      // Present with no policy that can match: it allows nothing (and makes the workload deny-by-default).
      if (own.length === 0) own.push({ name: `${name}:allow-nothing`, action: 'allow', matchNothing: true });
    }
    rules.push(...own);
  }
  return rules;
}
