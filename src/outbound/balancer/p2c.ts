/**
 * Power of two choices over peak-EWMA cost — the default balancer, as in linkerd2-proxy (tower
 * `p2c` + `PeakEwma`) and Finagle (`Balancers.p2cPeakEwma`).
 *
 * Per pick: draw two candidates (see `weighted.ts` for how weights enter the draw), compute each
 * one's cost = ewma × (pending + 1), take the cheaper (ties to the first draw). O(1): two random
 * numbers, two `exp`. The `pending + 1` factor makes the cost react instantly to load, before any
 * latency sample arrives, and makes an endpoint that stopped answering expensive as its tries
 * pile up.
 */
import type { BalancedEndpoint, Picker, ReadySet } from './mesh-balancer.js';

/** The cost P2C-EWMA compares: latency estimate (decayed to `now`) × (pending + 1). */
export function ewmaCost(ep: BalancedEndpoint, now: number): number {
  return ep.ewma.get(now) * (ep.pending + 1);
}

export function p2cEwmaPicker(random: () => number): Picker {
  return {
    kind: 'p2c-ewma',
    rebuild() {},
    pick(set: ReadySet, now: number): BalancedEndpoint {
      const i = set.draw(random);
      const j = set.drawSecond(i, random);
      const a = set.list[i]!;
      if (j === i) return a;
      const b = set.list[j]!;
      return ewmaCost(b, now) < ewmaCost(a, now) ? b : a;
    },
  };
}
