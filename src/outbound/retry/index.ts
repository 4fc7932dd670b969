/** Retries: which tries to retry (`retryDecision`), how often (`RetryBudget`), when (`backoff`). */
export {
  backoff,
  backoffCap,
  penaltyBackoff,
  DEFAULT_BACKOFF_SETTINGS,
  type BackoffSettings,
  type PenaltyBackoffSettings,
} from './backoff.js';
export {
  RetryBudget,
  DEFAULT_RETRY_BUDGET_SETTINGS,
  type RetryBudgetSettings,
  type RetryBudgetSnapshot,
} from './budget.js';
export {
  retryDecision,
  retryPolicySettings,
  parseRetryAfter,
  isIdempotent,
  Deadline,
  DEFAULT_RETRY_POLICY_SETTINGS,
  DEFAULT_RETRYABLE_METHODS,
  type RetryPolicySettings,
  type RetryInput,
  type RetryDecision,
  type RetryReason,
  type TimeoutSettings,
} from './policy.js';
