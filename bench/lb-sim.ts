/**
 * The classic load-balancer experiment (Buoyant, "Beyond Round Robin: Load Balancing for
 * Latency", 2016), replayed in virtual time against the REAL balancer code:
 *
 * - 11 backends answering in N(167 ms, 5 ms); one client sending 1,000 req/s (Poisson) for 60 s;
 * - from t = 15 s to t = 45 s, one backend answers every request in 2 s;
 * - the client gives up after 1 s (a timeout is a failure; no retries).
 *
 * Published: round robin ≈ 95 % success, least loaded ≈ 99 %, peak EWMA ≈ 99.9 %. Each balancer
 * runs twice: without failure accrual (the algorithm alone, as in the experiment) and with the
 * defaults (7 consecutive failures eject). Deterministic: discrete events in a priority queue,
 * `VirtualClock`, seeded randomness.
 *
 *   node --import tsx bench/lb-sim.ts          # full: 5 seeds per row
 *   node --import tsx bench/lb-sim.ts --quick  # 1 seed
 */
import { pathToFileURL } from 'node:url';
import { VirtualClock } from '../src/clock.js';
import { createBalancer, seededRandom, type BalancerKind, type InFlight } from '../src/outbound/balancer/index.js';

export interface LbSimParams {
  backends: number;
  medianMs: number;
  sdMs: number;
  qps: number;
  durationMs: number;
  slowFromMs: number;
  slowUntilMs: number;
  slowLatencyMs: number;
  timeoutMs: number;
}

export const CLASSIC: Readonly<LbSimParams> = Object.freeze({
  backends: 11,
  medianMs: 167,
  sdMs: 5,
  qps: 1000,
  durationMs: 60_000,
  slowFromMs: 15_000,
  slowUntilMs: 45_000,
  slowLatencyMs: 2000,
  timeoutMs: 1000,
});

export interface LbSimResult {
  requests: number;
  failures: number;
  successPct: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Requests sent to the slow backend while it was slow. */
  slowPicks: number;
  ejections: number;
}

/** A binary min-heap of events ordered by (time, sequence). */
class EventQueue {
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: Array<() => void> = [];
  private seq = 0;
  get size(): number {
    return this.times.length;
  }
  push(time: number, fn: () => void): void {
    const s = this.seq++;
    let i = this.times.length;
    this.times.push(time);
    this.seqs.push(s);
    this.fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.before(p, i)) break;
      this.swap(i, p);
      i = p;
    }
  }
  /** Removes the earliest event; returns its time and runs nothing. */
  pop(): { time: number; fn: () => void } {
    const time = this.times[0]!;
    const fn = this.fns[0]!;
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.fns.pop();
    let i = 0;
    const n = this.times.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(r, l) ? r : l;
      if (this.before(i, c)) break;
      this.swap(i, c);
      i = c;
    }
    return { time, fn };
  }
  private before(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.seqs[a]! < this.seqs[b]!);
  }
  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.seqs[a], this.seqs[b]] = [this.seqs[b]!, this.seqs[a]!];
    [this.fns[a], this.fns[b]] = [this.fns[b]!, this.fns[a]!];
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

/** Runs one simulation. */
export function runLbSim(
  kind: BalancerKind,
  opts: { seed: number; accrual: boolean; params?: Partial<LbSimParams> },
): LbSimResult {
  const P = { ...CLASSIC, ...opts.params };
  const clock = new VirtualClock(0);
  const rng = seededRandom(opts.seed); // traffic and latencies
  const lb = createBalancer(kind, {
    clock,
    random: seededRandom(opts.seed ^ 0x9e3779b9),
    ...(opts.accrual ? {} : { accrual: false as const }),
  });
  const keys = Array.from({ length: P.backends }, (_, i) => `10.0.0.${i + 1}:8443`);
  lb.setEndpoints(keys.map((key) => ({ key })));
  const slowKey = keys[P.backends - 1]!;

  const normal = (): number => {
    // Box-Muller
    const u = 1 - rng();
    const v = rng();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const q = new EventQueue();
  const latencies: number[] = [];
  let failures = 0;
  let slowPicks = 0;

  const arrive = (): void => {
    const now = clock.now();
    const ep = lb.pick()!;
    const t: InFlight = ep.start();
    const slow = ep.key === slowKey && now >= P.slowFromMs && now < P.slowUntilMs;
    if (slow) slowPicks++;
    const latency = slow ? P.slowLatencyMs : Math.max(1, P.medianMs + P.sdMs * normal());
    if (latency > P.timeoutMs) {
      q.push(now + P.timeoutMs, () => {
        failures++;
        latencies.push(P.timeoutMs);
        t.end({ ok: false, failure: 'timeout', latencyMs: P.timeoutMs });
      });
    } else {
      q.push(now + latency, () => {
        latencies.push(latency);
        t.end({ ok: true, latencyMs: latency });
      });
    }
    const next = now - Math.log(1 - rng()) * (1000 / P.qps);
    if (next < P.durationMs) q.push(next, arrive);
  };
  q.push(0, arrive);
  while (q.size > 0) {
    const e = q.pop();
    clock.set(e.time);
    e.fn();
  }
  const sorted = Float64Array.from(latencies).sort();
  const requests = latencies.length;
  return {
    requests,
    failures,
    successPct: (100 * (requests - failures)) / requests,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    p999Ms: percentile(sorted, 0.999),
    slowPicks,
    ejections: lb.stats().endpoints.reduce((a, e) => a + e.ejections, 0),
  };
}

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;

export async function benchLbSim(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const seeds = opts.quick ? [1] : [1, 2, 3, 4, 5];
  const rows: Array<Record<string, number | string>> = [];
  for (const accrual of [false, true]) {
    for (const kind of ['round-robin', 'least-request', 'p2c-ewma'] as const) {
      const rs = seeds.map((seed) => runLbSim(kind, { seed, accrual }));
      const mean = (f: (r: LbSimResult) => number): number => rs.reduce((a, r) => a + f(r), 0) / rs.length;
      rows.push({
        balancer: kind,
        accrual: accrual ? 'default' : 'off',
        seeds: seeds.length,
        successPct: round(mean((r) => r.successPct), 3),
        worstSuccessPct: round(Math.min(...rs.map((r) => r.successPct)), 3),
        failures: round(mean((r) => r.failures), 1),
        p50Ms: round(mean((r) => r.p50Ms), 1),
        p99Ms: round(mean((r) => r.p99Ms), 1),
        p999Ms: round(mean((r) => r.p999Ms), 1),
        slowPicks: round(mean((r) => r.slowPicks), 1),
        ejections: round(mean((r) => r.ejections), 1),
      });
    }
  }
  return { name: 'lb-sim: 11 backends, 1000 qps, one at 2 s for t = 15..45 s, 1 s timeout', rows };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const t0 = performance.now();
  const r = await benchLbSim({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
  console.log(`(${Math.round(performance.now() - t0)} ms)`);
}
