/**
 * Cost of one balancing decision: pick() + start() + end(), in nanoseconds, for each balancer with
 * 10 and 1,000 endpoints, equal and unequal weights. Production settings: system clock and
 * Math.random. Goal: <= 1 µs per pick+start+end.
 *
 *   node --import tsx bench/balancer.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { createBalancer, BALANCER_KINDS, type BalancerKind } from '../src/outbound/balancer/index.js';

function measure(kind: BalancerKind, endpoints: number, weighted: boolean, iterations: number): number {
  const lb = createBalancer(kind);
  lb.setEndpoints(Array.from({ length: endpoints }, (_, i) => ({ key: `10.0.${i >> 8}.${i & 255}:8443`, weight: weighted ? 1 + (i % 4) : 1 })));
  // Keep some tries in flight so pending counts differ, as in real traffic.
  const ring = new Array(64);
  let k = 0;
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const t = lb.pick()!.start();
      const prev = ring[k];
      if (prev) prev.end({ ok: true, latencyMs: 5 + (i & 7) });
      ring[k] = t;
      k = (k + 1) & 63;
    }
  };
  run(Math.min(iterations, 50_000)); // warm up
  const t0 = process.hrtime.bigint();
  run(iterations);
  return Number(process.hrtime.bigint() - t0) / iterations;
}

export async function benchBalancer(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const iterations = opts.quick ? 200_000 : 2_000_000;
  const rows: Array<Record<string, number | string>> = [];
  for (const kind of BALANCER_KINDS) {
    for (const endpoints of [10, 1000]) {
      for (const weighted of [false, true]) {
        const ns = measure(kind, endpoints, weighted, iterations);
        rows.push({ balancer: kind, endpoints, weights: weighted ? '1..4' : 'equal', nsPerPick: Math.round(ns), goalNs: 1000, ok: ns <= 1000 ? 'yes' : 'NO' });
      }
    }
  }
  return { name: 'balancer: ns per pick + start + end', rows };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchBalancer({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
