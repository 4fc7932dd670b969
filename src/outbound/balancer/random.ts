/**
 * Random: one draw by weight (alias table), O(1). Also home of `seededRandom`, the deterministic
 * PRNG that tests, benchmarks and simulations inject wherever the code takes `random`.
 */
import type { Endpoint, Picker, ReadySet } from './weighted.js';

export function randomPicker(random: () => number): Picker {
  return {
    kind: 'random',
    rebuild() {},
    pick(set: ReadySet): Endpoint {
      return set.list[set.draw(random)]!;
    },
  };
}

/**
 * A small, fast, seedable PRNG (mulberry32) returning numbers in [0, 1). Not cryptographic: for
 * load balancing, jitter and reproducible tests only.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
