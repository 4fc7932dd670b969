/**
 * The shapes of a compiled policy: what compile.ts builds and evaluate.ts reads. Types only, so the
 * two depend on this module and not on each other.
 */
import type { IpRange } from './cidr.js';
import type { RuleIndex as RuleIndexOf } from './rule-index.js';
import type { AlikeMode, CompiledClause, EvalScratch } from './match.js';
import type { Decision, DefaultPolicy, PolicyRequest } from './model.js';

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
}


/**
 * What evaluate() reads: the compiled policy's tables. Not part of the public type (a user holds a
 * CompiledPolicy); compilePolicy builds one and closes over it.
 */
export interface PolicyTables {
  readonly top: CompiledScope;
  readonly servers: ReadonlyMap<number, CompiledServer>;
  readonly defaults: DefaultDecisions;
  readonly trustDomain: string;
  readonly clusterRanges: readonly IpRange[];
  readonly clusterNetworksGiven: boolean;
  readonly scratch: EvalScratch;
}
