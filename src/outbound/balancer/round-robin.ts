/**
 * Round robin. Equal weights: a cursor over the ready endpoints, O(1), starting at a random
 * offset (so that many clients built at once do not all hit the same endpoint first, as Envoy
 * does). Unequal weights: earliest-deadline-first (Envoy's weighted round robin), O(log n) per
 * pick with a binary heap: endpoint i's k-th turn is due at k / weight_i, ties broken by list
 * order, so over any Σw picks with integer weights each endpoint gets exactly its weight.
 * The schedule restarts whenever the ready set changes (endpoints updated, ejected, readmitted).
 */
import type { BalancedEndpoint, Picker, ReadySet } from './mesh-balancer.js';

export function roundRobinPicker(random: () => number): Picker {
  let cursor = 0;
  // EDF state (unequal weights only).
  let heap: number[] = []; // indices into set.list, a min-heap on (due, index)
  let due = new Float64Array(0);
  let turns = new Float64Array(0);
  let weights = new Float64Array(0);

  const less = (a: number, b: number): boolean => due[a]! < due[b]! || (due[a] === due[b] && a < b);
  const siftDown = (pos: number): void => {
    const n = heap.length;
    const item = heap[pos]!;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(heap[r]!, heap[l]!) ? r : l;
      if (!less(heap[c]!, item)) break;
      heap[pos] = heap[c]!;
      pos = c;
    }
    heap[pos] = item;
  };

  return {
    kind: 'round-robin',
    rebuild(set: ReadySet) {
      const n = set.list.length;
      cursor = n > 0 ? Math.min(n - 1, Math.floor(random() * n)) : 0;
      if (set.uniform) {
        heap = [];
        return;
      }
      weights = Float64Array.from(set.list, (e) => e.weight);
      turns = new Float64Array(n);
      due = Float64Array.from(weights, (w) => (w > 0 ? 1 / w : Infinity));
      heap = [];
      for (let i = 0; i < n; i++) heap.push(i);
      for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(i);
    },
    pick(set: ReadySet): BalancedEndpoint {
      if (set.uniform) {
        const n = set.list.length;
        if (cursor >= n) cursor = 0;
        return set.list[cursor++]!;
      }
      const i = heap[0]!;
      turns[i] = turns[i]! + 1;
      due[i] = (turns[i]! + 1) / weights[i]!;
      siftDown(0);
      return set.list[i]!;
    },
  };
}
