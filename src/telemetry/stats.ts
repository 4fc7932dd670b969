/**
 * The golden signals, kept by the mesh itself (no OpenTelemetry SDK needed): request counts by
 * direction, peer, route and status class, latency histograms, retries, denials, ejections and
 * authorization decisions. Read by `mesh.stats().traffic` and rendered as Prometheus text by the
 * admin endpoint's `/metrics`.
 *
 * Per request this costs three Map lookups keyed by the strings the request already holds (no key
 * is built, nothing is allocated once the series exists) and a few increments. The number of
 * series is capped (`MAX_SERIES`); past it, new label sets are folded into one `_other` series so a
 * flood of distinct peers or routes cannot grow memory without bound.
 */
import { type IstioStats } from './istio.js';
import type { LinkerdStats } from './linkerd.js';
import { MAX_SERIES } from './limits.js';

/** The HTTP semantic-convention bucket boundaries (seconds) of `http.*.request.duration`. */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);

/**
 * The buckets of the mesh's own latency histograms (seconds): a superset of the semantic-convention
 * boundaries (so they re-aggregate to them) with finer steps below 50 ms, where in-cluster calls live,
 * so `sidecarless stat` quantiles mean something there.
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2,
  2.5, 5, 7.5, 10,
]);

export { MAX_SERIES };
const OTHER = '_other';

export type Direction = 'inbound' | 'outbound';
/** `1xx` … `5xx`, or `error` when no response was had (reset, timeout, refused connection). */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

export function statusClass(status: number | undefined): StatusClass {
  if (status === undefined || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx` as StatusClass;
}

/** One (direction, service, peer, route): what a row of `sidecarless stat` shows. */
export class TrafficSeries {
  readonly byClass: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, error: 0 };
  /** Counts per bucket (non-cumulative); the last one is +Inf. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  /** Inbound: requests refused by policy. */
  denials = 0;
  readonly retries = new Map<string, number>();
  /** gRPC calls by grpc-status code (grpc_response_status), when the series has any. */
  grpc: Map<number, number> | undefined;

  constructor(
    readonly direction: Direction,
    readonly service: string,
    /** SPIFFE ID of the other side ('' when unauthenticated). */
    readonly peer: string,
    /** Route name or template ('' when unknown). */
    readonly route: string,
  ) {}

  /** Records one finished request: its status (undefined when it failed without one) and duration in seconds. */
  record(status: number | undefined, seconds: number): void {
    this.byClass[statusClass(status)]++;
    let i = 0;
    const b = LATENCY_BUCKETS;
    while (i < b.length && seconds > b[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }

  /** Records one finished gRPC call: HTTP status 200 (what gRPC always answers) and its grpc-status code. */
  recordGrpc(code: number, seconds: number): void {
    this.record(200, seconds);
    const m = (this.grpc ??= new Map());
    m.set(code, (m.get(code) ?? 0) + 1);
  }

  retry(reason: string): void {
    this.retries.set(reason, (this.retries.get(reason) ?? 0) + 1);
  }
}

/** `mesh.stats().traffic`. */
export interface TrafficSnapshot {
  active: Record<Direction, number>;
  series: Array<{
    direction: Direction;
    service: string;
    peer: string;
    route: string;
    requests: number;
    byClass: Record<StatusClass, number>;
    /** Not 5xx and not an error, over requests (Linkerd's success rate). */
    successRate: number | null;
    latencySeconds: { sum: number; p50: number | null; p95: number | null; p99: number | null };
    retries: Record<string, number>;
    denials: number;
    /** gRPC calls by grpc-status code (`grpc_response_status`); only on series that served gRPC. */
    grpcStatus?: Record<string, number>;
  }>;
  retryBudgetExhausted: Record<string, number>;
  ejections: Record<string, Record<string, number>>;
  authz: Array<{ decision: string; rule: string; action: string; count: number }>;
  /** Snapshots offered to the mesh, by source: how many were applied and how many rejected. */
  snapshots: Record<string, { accepted: number; rejected: number }>;
}

/** Quantile from non-cumulative bucket counts (as Prometheus' histogram_quantile: linear inside the bucket). */
export function bucketQuantile(q: number, counts: ArrayLike<number>, bounds: readonly number[] = LATENCY_BUCKETS): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (seen + c >= rank && c > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!; // +Inf bucket: the highest finite bound
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      const hi = bounds[i]!;
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bounds[bounds.length - 1]!;
}

/** service → peer → route → series, for one direction. */
type SeriesIndex = Map<string, Map<string, Map<string, TrafficSeries>>>;

export class TrafficStats {
  /** Istio's standard metrics, kept as well when `telemetry.dialect` is 'istio' (else null: one property read per request). */
  readonly istio: IstioStats | null;
  /** linkerd2-proxy's HTTP metrics, kept as well when `telemetry.dialect` is 'linkerd' (else null: one property read per request). */
  readonly linkerd: LinkerdStats | null;
  /** Every series, in creation order (what snapshots and /metrics iterate). */
  readonly #series: TrafficSeries[] = [];
  readonly #index: Record<Direction, SeriesIndex> = { inbound: new Map(), outbound: new Map() };
  readonly active: Record<Direction, number> = { inbound: 0, outbound: 0 };
  readonly budgetExhausted = new Map<string, number>();
  readonly ejections = new Map<string, Map<string, number>>();
  /** Snapshot source → accepted and rejected counts (sources are few: static, setService, xds…). */
  readonly snapshots = new Map<string, { accepted: number; rejected: number }>();
  /** Every authorization tally, in creation order. */
  readonly #authz: Array<{ decision: string; rule: string; action: string; count: number }> = [];
  /** decision → rule → action → its tally. */
  readonly #authzIndex = new Map<string, Map<string, Map<string, { decision: string; rule: string; action: string; count: number }>>>();

  constructor(istio: IstioStats | null = null, linkerd: LinkerdStats | null = null) {
    this.istio = istio;
    this.linkerd = linkerd;
  }

  /** The series of a (direction, service, peer, route), created on first use. */
  series(direction: Direction, service: string, peer: string, route: string): TrafficSeries {
    // Nested maps keyed by the strings themselves: a string key built per request (and the
    // flattening of it on lookup) was a per-request allocation on both sides.
    const byService = this.#index[direction];
    let byPeer = byService.get(service);
    if (byPeer === undefined) byService.set(service, (byPeer = new Map()));
    let byRoute = byPeer.get(peer);
    if (byRoute === undefined) byPeer.set(peer, (byRoute = new Map()));
    let s = byRoute.get(route);
    if (s !== undefined) return s;
    if (this.#series.length >= MAX_SERIES) {
      if (byRoute.size === 0) byPeer.delete(peer);
      if (byPeer.size === 0) byService.delete(service);
      return peer === OTHER && route === OTHER ? this.#other(direction, service) : this.series(direction, service, OTHER, OTHER);
    }
    s = new TrafficSeries(direction, service, peer, route);
    byRoute.set(route, s);
    this.#series.push(s);
    return s;
  }

  /** The `_other` series of a service once the cap is reached (created past the cap: one per service and direction). */
  #other(direction: Direction, service: string): TrafficSeries {
    const byService = this.#index[direction];
    let byPeer = byService.get(service);
    if (byPeer === undefined) byService.set(service, (byPeer = new Map()));
    let byRoute = byPeer.get(OTHER);
    if (byRoute === undefined) byPeer.set(OTHER, (byRoute = new Map()));
    let s = byRoute.get(OTHER);
    if (s === undefined) {
      s = new TrafficSeries(direction, service, OTHER, OTHER);
      byRoute.set(OTHER, s);
      this.#series.push(s);
    }
    return s;
  }

  allSeries(): IterableIterator<TrafficSeries> {
    return this.#series.values();
  }

  exhausted(service: string): void {
    this.budgetExhausted.set(service, (this.budgetExhausted.get(service) ?? 0) + 1);
  }

  ejection(service: string, endpoint: string): void {
    let m = this.ejections.get(service);
    if (!m) this.ejections.set(service, (m = new Map()));
    m.set(endpoint, (m.get(endpoint) ?? 0) + 1);
  }

  snapshotApplied(source: string, result: 'accepted' | 'rejected'): void {
    let c = this.snapshots.get(source);
    if (!c) this.snapshots.set(source, (c = { accepted: 0, rejected: 0 }));
    c[result]++;
  }

  authz(decision: string, rule: string, action: string): void {
    let byRule = this.#authzIndex.get(decision);
    if (byRule === undefined) this.#authzIndex.set(decision, (byRule = new Map()));
    let byAction = byRule.get(rule);
    if (byAction === undefined) byRule.set(rule, (byAction = new Map()));
    let e = byAction.get(action);
    if (e === undefined) {
      if (this.#authz.length >= MAX_SERIES && rule !== OTHER) {
        if (byAction.size === 0) byRule.delete(rule);
        return this.authz(decision, OTHER, action);
      }
      byAction.set(action, (e = { decision, rule, action, count: 0 }));
      this.#authz.push(e);
    }
    e.count++;
  }

  authzEntries(): IterableIterator<{ decision: string; rule: string; action: string; count: number }> {
    return this.#authz.values();
  }

  snapshot(): TrafficSnapshot {
    const series: TrafficSnapshot['series'] = [];
    for (const s of this.#series) {
      const ok = s.count - s.byClass['5xx'] - s.byClass.error;
      series.push({
        direction: s.direction,
        service: s.service,
        peer: s.peer,
        route: s.route,
        requests: s.count,
        byClass: { ...s.byClass },
        successRate: s.count > 0 ? ok / s.count : null,
        latencySeconds: { sum: s.sum, p50: bucketQuantile(0.5, s.buckets), p95: bucketQuantile(0.95, s.buckets), p99: bucketQuantile(0.99, s.buckets) },
        retries: Object.fromEntries(s.retries),
        denials: s.denials,
        ...(s.grpc && { grpcStatus: Object.fromEntries(s.grpc) }),
      });
    }
    return {
      active: { ...this.active },
      series,
      retryBudgetExhausted: Object.fromEntries(this.budgetExhausted),
      ejections: Object.fromEntries([...this.ejections].map(([k, m]) => [k, Object.fromEntries(m)])),
      authz: this.#authz.map((e) => ({ ...e })),
      snapshots: Object.fromEntries([...this.snapshots].map(([k, c]) => [k, { ...c }])),
    };
  }
}
