/**
 * Least request via power of two choices: of two candidates, the one with fewer tries in flight
 * (ties to the first draw). Envoy's `LEAST_REQUEST` with `choice_count: 2`; Finagle's
 * `p2cLeastLoaded`. O(1). Blind to latency: an endpoint that answers slowly but steadily is
 * penalised only through its pending count.
 */
import type { BalancedEndpoint, Picker, ReadySet } from './mesh-balancer.js';

export function leastRequestPicker(random: () => number): Picker {
  return {
    kind: 'least-request',
    rebuild() {},
    pick(set: ReadySet): BalancedEndpoint {
      const i = set.draw(random);
      const j = set.drawSecond(i, random);
      const a = set.list[i]!;
      const b = set.list[j]!;
      return b.pending < a.pending ? b : a;
    },
  };
}
