/**
 * Random: one draw by weight (alias table), O(1). Re-exports `seededRandom` (src/random.ts), the
 * deterministic PRNG that tests, benchmarks and simulations inject wherever the code takes `random`.
 */
import type { BalancedEndpoint, Picker, ReadySet } from './mesh-balancer.js';

export function randomPicker(random: () => number): Picker {
  return {
    kind: 'random',
    rebuild() {},
    pick(set: ReadySet): BalancedEndpoint {
      return set.list[set.draw(random)]!;
    },
  };
}

export { seededRandom } from '../../random.js';
