import type { Decision } from './model.js';

/** The shared empty audit list. */
export const EMPTY: readonly string[] = Object.freeze([]);

/** Builds a frozen decision (precomputed at compile time, never per request). */
export function decision(allowed: boolean, rule: string, action: Decision['action'], server?: string, audit = EMPTY): Decision {
  const d: Decision =
    server === undefined
      ? { allowed, result: allowed ? 'allow' : 'deny', rule, action, audit }
      : { allowed, result: allowed ? 'allow' : 'deny', rule, action, audit, server };
  return Object.freeze(d);
}

/** The "no-allow-match" decision: top-level allow rules exist and none matched. */
export const NO_ALLOW_MATCH: Decision = decision(false, 'no-allow-match', 'default');
