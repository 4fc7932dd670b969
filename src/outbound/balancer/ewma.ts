/**
 * Peak-EWMA latency estimate, as in linkerd2-proxy (tower `PeakEwma`) and Finagle (`PeakEwma`).
 *
 * - A sample above the current estimate replaces it at once (peak-sensitive: a slowdown is seen
 *   by the next response, not after many).
 * - A sample below it is blended in with an exponential weight that depends on elapsed time, not
 *   on request count: `estimate = estimate·w + sample·(1 − w)`, `w = exp(−Δt/τ)`, τ = `decayMs`.
 * - Read without a sample, the estimate decays toward 0 with the same τ (both anchors do this by
 *   "observing 0" on read). So an endpoint that stopped getting traffic because it looked slow
 *   becomes attractive again after a few τ and is re-measured, instead of being shunned forever.
 *   Here the read is side-effect free: the decay is computed, not stored.
 * - A failure is a latency sample of at least `estimate × failurePenaltyFactor` (capped at
 *   `maxFailurePenaltyMs`): an endpoint that fails fast must not look fast. Without a penalty a
 *   black hole that refuses connections in 1 ms would attract most of the traffic.
 */

/** Settings of the peak-EWMA estimator. */
export interface EwmaSettings {
  /** Estimate of an endpoint with no sample yet. Default 30 ms (linkerd2-proxy `DEFAULT_RTT`). */
  defaultRttMs: number;
  /** Decay time constant τ. Default 10 s (linkerd2-proxy `EWMA_DECAY`, Finagle `decayTime`). */
  decayMs: number;
  /** A failed try counts as a sample of at least `estimate × factor`. Default 2: each failure
   *  doubles the cost, one isolated failure fades in about τ·ln 2 ≈ 7 s. */
  failurePenaltyFactor: number;
  /** Cap on the penalty sample (a real latency above it still counts as itself). Default 10 s,
   *  so an endpoint shunned for failures is re-measured within about τ·ln(10 s / healthy RTT). */
  maxFailurePenaltyMs: number;
}

export const DEFAULT_EWMA_SETTINGS: Readonly<EwmaSettings> = Object.freeze({
  defaultRttMs: 30,
  decayMs: 10_000,
  failurePenaltyFactor: 2,
  maxFailurePenaltyMs: 10_000,
});

/** Fills in defaults and checks ranges. Throws RangeError on nonsense. */
export function ewmaSettings(partial: Partial<EwmaSettings> = {}): EwmaSettings {
  const s = { ...DEFAULT_EWMA_SETTINGS, ...stripUndefined(partial) };
  if (!(s.defaultRttMs >= 0) || !Number.isFinite(s.defaultRttMs)) throw new RangeError(`ewma.defaultRttMs must be a finite number >= 0, got ${s.defaultRttMs}`);
  if (!(s.decayMs > 0) || !Number.isFinite(s.decayMs)) throw new RangeError(`ewma.decayMs must be a finite number > 0, got ${s.decayMs}`);
  if (!(s.failurePenaltyFactor >= 1)) throw new RangeError(`ewma.failurePenaltyFactor must be >= 1, got ${s.failurePenaltyFactor}`);
  if (!(s.maxFailurePenaltyMs >= 0)) throw new RangeError(`ewma.maxFailurePenaltyMs must be >= 0, got ${s.maxFailurePenaltyMs}`);
  return s;
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** One endpoint's latency estimate. All times in milliseconds, `now` from the caller's clock. */
export class PeakEwma {
  private value: number;
  private stamp: number;

  constructor(
    private readonly settings: EwmaSettings,
    now: number,
  ) {
    this.value = settings.defaultRttMs;
    this.stamp = now;
  }

  /** The estimate at `now`: the stored value decayed toward 0 since the last sample. */
  get(now: number): number {
    const dt = now - this.stamp;
    return dt > 0 ? this.value * Math.exp(-dt / this.settings.decayMs) : this.value;
  }

  /** Records a latency sample taken at `now`. */
  observe(sampleMs: number, now: number): void {
    const rtt = sampleMs > 0 ? sampleMs : 0;
    if (rtt > this.value) {
      this.value = rtt;
    } else {
      const dt = now - this.stamp;
      const w = dt > 0 ? Math.exp(-dt / this.settings.decayMs) : 1;
      this.value = this.value * w + rtt * (1 - w);
    }
    if (now > this.stamp) this.stamp = now;
  }

  /** Records a failed try: a sample of at least the penalty (see the module comment). */
  observeFailure(latencyMs: number, now: number): void {
    const s = this.settings;
    const penalty = Math.min(this.get(now) * s.failurePenaltyFactor, s.maxFailurePenaltyMs);
    this.observe(Math.max(latencyMs, penalty), now);
  }

  /** Forgets the history: the estimate becomes `sampleMs` (used when an ejected endpoint returns). */
  reset(sampleMs: number, now: number): void {
    this.value = sampleMs > 0 ? sampleMs : 0;
    this.stamp = now;
  }
}
