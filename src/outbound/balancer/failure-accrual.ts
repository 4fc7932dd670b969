/**
 * Consecutive-failures accrual, as Linkerd's `balancer.linkerd.io/failure-accrual: consecutive`
 * (itself from Finagle's `FailureAccrualFactory`).
 *
 * Per endpoint:
 *
 * ```
 *            N consecutive failures            penalty elapsed (checked at pick time)
 *   ready ─────────────────────────▶ ejected ──────────────────────────────▶ probing
 *     ▲          (if another endpoint      ▲                                     │ one try admitted
 *     │           stays ready)             │ probe failed: longer penalty        │
 *     │                                    └─────────────────────────────────────┤
 *     └──────────────────────────────────────────────────────────────────────────┘
 *                                 probe succeeded: penalty resets
 * ```
 *
 * - Only failures seen while `ready` count; late outcomes of tries started before an ejection
 *   neither extend nor end it. Any success while ready resets the count.
 * - The penalty of the k-th ejection in a row is `penaltyBackoff(k)`: 1 s, 2 s, 4 s … capped at
 *   60 s, plus up to 50 % jitter (never above the cap) so endpoints ejected together do not all
 *   come back in the same instant.
 * - Never below one ready endpoint: the set asks `canEject` before ejecting; when ejecting would
 *   leave nothing ready, the endpoint stays ready (its count keeps growing, and the next failure
 *   asks again). Load on a bad endpoint is better than no endpoint at all.
 * - No timers: the transition to `probing` happens when the balancer next picks (`poll`), so a
 *   frozen serverless instance loses nothing.
 */
import { penaltyBackoff, type PenaltyBackoffSettings } from '../retry/backoff.js';

/** Settings of failure accrual. Defaults are Linkerd's consecutive-failures defaults. */
/** Failure-accrual state of an endpoint. */
export type EndpointState = 'ready' | 'ejected' | 'probing';

export interface FailureAccrualSettings extends PenaltyBackoffSettings {
  /** Consecutive failures that eject an endpoint. Default 7 (Linkerd `max-failures`, Finagle). */
  consecutiveFailures: number;
  /** First ejection penalty. Default 1 s (Linkerd `min-penalty`). */
  minMs: number;
  /** Longest ejection penalty. Default 60 s (Linkerd `max-penalty`). */
  maxMs: number;
  /** Random extra fraction of each penalty. Default 0.5 (Linkerd `jitter-ratio`). */
  jitterRatio: number;
}

export const DEFAULT_FAILURE_ACCRUAL_SETTINGS: Readonly<FailureAccrualSettings> = Object.freeze({
  consecutiveFailures: 7,
  minMs: 1_000,
  maxMs: 60_000,
  jitterRatio: 0.5,
});

/** Fills in defaults and checks ranges. */
export function failureAccrualSettings(partial: Partial<FailureAccrualSettings> = {}): FailureAccrualSettings {
  const s = { ...DEFAULT_FAILURE_ACCRUAL_SETTINGS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (s as Record<string, number>)[k] = v as number;
  if (!(s.consecutiveFailures >= 1)) throw new RangeError(`accrual.consecutiveFailures must be >= 1, got ${s.consecutiveFailures}`);
  if (!(s.minMs >= 0) || !Number.isFinite(s.minMs)) throw new RangeError(`accrual.minMs must be a finite number >= 0, got ${s.minMs}`);
  if (!(s.maxMs >= s.minMs) || !Number.isFinite(s.maxMs)) throw new RangeError(`accrual.maxMs must be finite and >= accrual.minMs, got ${s.maxMs}`);
  if (!(s.jitterRatio >= 0)) throw new RangeError(`accrual.jitterRatio must be >= 0, got ${s.jitterRatio}`);
  return s;
}

/** What `record` did. */
export type AccrualTransition = 'none' | 'ejected' | 'readmitted' | 'kept';

/** The failure-accrual state machine of one endpoint. Pure: time is passed in. */
export class EndpointAccrual {
  state: EndpointState = 'ready';
  consecutiveFailures = 0;
  /** Total ejections. */
  ejections = 0;
  /** Ejections in a row without a successful probe: the exponent of the penalty. */
  private streak = 0;
  /** While ejected: when the probe is admitted. */
  probeAt = 0;
  /** While probing: whether the probe try has started. */
  probeInFlight = false;

  /** `settings` undefined: accrual disabled, the endpoint is always ready. */
  constructor(
    private readonly settings: FailureAccrualSettings | undefined,
    private readonly random: () => number,
  ) {}

  /**
   * Records the outcome of a try. `probe`: the try was admitted as a probe (or a panic pick) and
   * decides the endpoint's fate. `canEject()`: whether another endpoint would remain ready.
   * Returns what changed; on 'ejected' the penalty is `probeAt − now`.
   */
  record(ok: boolean, probe: boolean, now: number, canEject: () => boolean): AccrualTransition {
    const s = this.settings;
    if (!s) return 'none';
    if (probe && this.state !== 'ready') {
      this.probeInFlight = false;
      if (ok) {
        this.state = 'ready';
        this.streak = 0;
        this.consecutiveFailures = 0;
        return 'readmitted';
      }
      if (this.state === 'probing') {
        this.eject(now);
        return 'ejected';
      }
      return 'none'; // a panic pick failed on an endpoint still serving its penalty
    }
    if (this.state !== 'ready') return 'none'; // late outcome of a try started before ejection
    if (ok) {
      this.consecutiveFailures = 0;
      return 'none';
    }
    this.consecutiveFailures++;
    if (this.consecutiveFailures < s.consecutiveFailures) return 'none';
    if (!canEject()) return 'kept';
    this.eject(now);
    return 'ejected';
  }

  /** Moves an ejected endpoint whose penalty has elapsed to `probing`. Returns true if it did. */
  poll(now: number): boolean {
    if (this.state === 'ejected' && now >= this.probeAt) {
      this.state = 'probing';
      this.probeInFlight = false;
      return true;
    }
    return false;
  }

  private eject(now: number): void {
    this.streak++;
    this.ejections++;
    this.consecutiveFailures = 0;
    this.state = 'ejected';
    this.probeInFlight = false;
    this.probeAt = now + penaltyBackoff(this.streak, this.settings!, this.random);
  }
}
