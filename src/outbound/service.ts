import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from '../clock.js';
import { authorizeId, authorizeOneOf } from '../identity/authorizer.js';
import { type ClientTls } from '../tls/connect.js';
import { parseAddress } from './address.js';
import { type Balancer, type BalancerKind, type EndpointSnapshot, type StateChange, createBalancer } from './balancer/index.js';
import { type RetryBudgetSnapshot, type RetryPolicySettings, type TimeoutSettings, RetryBudget } from './retry/index.js';
import { type CompiledRoute, type RouteRequest, compileRoute } from './routes.js';
import { type RoutableService, serviceHostnames } from './router.js';
import { type RequestPolicy, type RouteSpec, type ServiceEndpoint, type ServiceSettings, type ServiceProtocol, type ServiceSpec, type SplitBackend, sameBalancer, sameConnections, sameSplit, speaksH2 } from './settings.js';
import { Split, type SplitStats } from './split.js';
import { loadUndici } from './undici.js';
import { type TrafficStats } from '../telemetry/stats.js';

export { DEFAULT_CONNECTIONS_PER_ENDPOINT, DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from './settings.js';

/**
 * What carries an endpoint's requests: an undici Pool (HTTP/1.1, up to `connections.maxPerEndpoint`
 * connections) or, for a service that speaks HTTP/2, one undici Client (one h2 connection,
 * requests multiplexed as streams: see #pools).
 */
export type EndpointPool = Dispatcher;

/** Makes an endpoint's pool (one factory per service: the endpoints share it). */
export interface PoolFactory {
  make(endpoint: PooledEndpoint): EndpointPool;
}

/** Streams one h2 connection carries at once (undici's maxConcurrentStreams default); more wait in its queue. */
export const H2_MAX_CONCURRENT_STREAMS = 100;
/** ALPN of a service that speaks HTTP/2: h2 alone (no silent HTTP/1.1 fallback, docs/grpc.md). */
export const H2_ALPN: readonly string[] = Object.freeze(['h2']);

/**
 * One endpoint: where it is, who it must be, and one undici Pool over mTLS, made on first use (a
 * mesh that knows thousands of endpoints pays for the ones it calls).
 */
export class PooledEndpoint {
  #origin: string | undefined;

  constructor(
    /** The balancer's key: address, and the expected identity when it is not the service's. */
    readonly key: string,
    readonly spec: ServiceEndpoint,
    private readonly factory: PoolFactory,
    /** Shared by every version of this endpoint (a weight change is a new object, the same pool); made when first needed. */
    private slot?: { pool?: EndpointPool },
  ) {}

  get pool(): EndpointPool {
    const slot = (this.slot ??= {});
    return (slot.pool ??= this.factory.make(this));
  }

  /** `https://host:port` (IPv6 in brackets): what a try's dispatch options name. */
  get origin(): string {
    if (this.#origin === undefined) {
      const { host, port } = parseAddress(this.spec.address)!;
      this.#origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    return this.#origin;
  }

  /** The pool if one was made. */
  get made(): EndpointPool | undefined {
    return this.slot?.pool;
  }

  /**
   * Takes the pool out when no request runs or waits on it (the next request makes a new one) and
   * returns it for the caller to destroy: its sockets may have been closed by the server while the
   * process was frozen. A busy pool stays.
   */
  takeIdlePool(): EndpointPool | undefined {
    const pool = this.slot?.pool;
    const st = (pool as { stats?: { running?: number; pending?: number } } | undefined)?.stats;
    if (!pool || !st || (st.running ?? 0) + (st.pending ?? 0) > 0) return undefined;
    this.slot!.pool = undefined;
    return pool;
  }

  /** The same endpoint (and pool, now or when made) with a new weight, zone or labels. */
  with(spec: ServiceEndpoint): PooledEndpoint {
    return new PooledEndpoint(this.key, spec, this.factory, (this.slot ??= {}));
  }

  get address(): string {
    return this.spec.address;
  }

  get identity(): string {
    return this.spec.identity;
  }

  get weight(): number {
    return this.spec.weight;
  }

  get zone(): string | undefined {
    return this.spec.zone;
  }

  get labels(): Readonly<Record<string, string>> | undefined {
    return this.spec.labels;
  }
}

/** What one request runs with: the service's settings, overridden by the matching route's. */
export interface RequestSettings {
  /** Route name, or undefined for the service's defaults. */
  readonly route: string | undefined;
  /** null: no retries. */
  readonly retry: RetryPolicySettings | null;
  readonly maxReplayBodyBytes: number;
  readonly timeout: TimeoutSettings;
  /** When set, the backend service is chosen by this split. */
  readonly split: Split | undefined;
}

/** `mesh.stats().outbound.services[name]`. */
export interface OutboundServiceStats {
  identity: string;
  /** What its endpoints are spoken to in: 'http' (HTTP/1.1), 'http2' or 'grpc' (HTTP/2). */
  protocol: ServiceProtocol;
  balancer: BalancerKind;
  /** Requests whose host named this service. */
  routed: number;
  /** Requests whose endpoints came from this service (directly or as a split backend): deposits into its retry budget. */
  requests: number;
  /** Tries sent to its endpoints (first tries and retries). */
  attempts: number;
  retries: number;
  /** Retries refused because the budget was exhausted. */
  budgetExhausted: number;
  budget: RetryBudgetSnapshot;
  /** Total ejections of its endpoints. */
  ejections: number;
  ready: number;
  ejected: number;
  panicPicks: number;
  split?: SplitStats[];
  routes?: Array<{ name: string; requests: number; split?: SplitStats[] }>;
  endpoints: OutboundEndpointStats[];
}

/** An endpoint as `mesh.stats()` shows it: the balancer's snapshot, named by address and identity. */
export interface OutboundEndpointStats extends Omit<EndpointSnapshot, 'key' | 'probeAt'> {
  address: string;
  identity: string;
  zone?: string;
}

export interface OutboundServiceOptions {
  /** What the service is: name, identity, settings, routes, split, endpoints (a snapshot's part). */
  readonly spec: ServiceSpec;
  readonly tls: ClientTls;
  readonly clusterDomain?: string;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onStateChange?: (service: string, change: StateChange) => void;
  /** Where its requests' golden signals go: the mesh's (injected, as inbound's is). */
  readonly traffic: TrafficStats;
}

type CountedRoute = CompiledRoute<RequestSettings> & { requests: number };

/** What the hot path reads, swapped as one reference when settings, routes or split change. */
interface RequestState {
  readonly defaults: RequestSettings;
  readonly routes: readonly CountedRoute[];
}

function requestSettings(route: string | undefined, p: RequestPolicy, split: Split | undefined): RequestSettings {
  return { route, retry: p.retry, maxReplayBodyBytes: p.maxReplayBodyBytes, timeout: p.timeout, split };
}

/**
 * A mesh service as the client sees it: its endpoints (one undici Pool each, over mTLS, checked
 * against the identity discovery promised), its balancer, its retry budget, and its routes and
 * split. Requests are run by `MeshRequest` (request.ts); this holds the state they share.
 * Name, namespace and identity are fixed for its life (a change is a different service: the
 * reconciler replaces it); everything else changes in place, keeping what it can.
 *
 * What a request reads, and when: its settings, route and split come from one reference (the
 * RequestState, swapped whole), read once at dispatch; its retry budget is taken once at its start
 * (request.ts); the balancer and the endpoint map change together, synchronously, and each try
 * reads both live, so a retry goes to an endpoint that exists now.
 */
export class OutboundService implements RoutableService {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly servername: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly counters = { routed: 0, attempts: 0, retries: 0 };
  readonly traffic: TrafficStats;

  readonly #tls: ClientTls;
  readonly #onStateChange: ((change: StateChange) => void) | undefined;
  #spec: ServiceSpec;
  #balancer: Balancer;
  #budget: RetryBudget;
  #endpoints = new Map<string, PooledEndpoint>();
  /** Pools of removed endpoints, closing once their in-flight requests end. */
  readonly #draining = new Map<EndpointPool, Promise<void>>();
  #split: Split | undefined;
  #state: RequestState;
  #closed = false;

  constructor(o: OutboundServiceOptions) {
    const spec = o.spec;
    this.name = spec.name;
    this.namespace = spec.namespace;
    this.identity = spec.identity;
    this.#spec = spec;
    this.#tls = o.tls;
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.traffic = o.traffic;
    this.servername = serviceHostnames(spec.name, spec.namespace, o.clusterDomain).at(-1)!;
    const onStateChange = o.onStateChange;
    this.#onStateChange = onStateChange && ((ch: StateChange) => onStateChange(spec.name, ch));
    this.#balancer = this.#newBalancer(spec.settings);
    this.#budget = new RetryBudget(spec.settings.budget, this.clock);
    this.#split = spec.split ? new Split(spec.split) : undefined;
    this.#state = this.#requestState(spec.settings, spec.routes, []);
    this.#setEndpoints(spec.endpoints ?? []);
  }

  #newBalancer(s: ServiceSettings): Balancer {
    return createBalancer(s.balancer, {
      clock: this.clock,
      random: this.random,
      ewma: s.ewma,
      accrual: s.accrual,
      ...(this.#onStateChange && { onStateChange: this.#onStateChange }),
    });
  }

  #requestState(settings: ServiceSettings, routes: readonly RouteSpec[], old: readonly CountedRoute[]): RequestState {
    const byName = new Map(old.map((r) => [r.name, r]));
    return {
      defaults: requestSettings(undefined, settings, this.#split),
      routes: routes.map((r) => {
        const before = byName.get(r.name);
        let split: Split | undefined;
        if (r.split) {
          // Unchanged backends keep their place in the rotation (a re-sent 90/10 must still reach the 10).
          split = before?.settings.split ?? new Split(r.split);
          if (!sameSplit(split.backends, r.split)) split.set(r.split);
        }
        return { ...compileRoute(r, requestSettings(r.name, r.policy, split)), requests: before?.requests ?? 0 };
      }),
    };
  }

  /** Its balancer (replaced when the balancer kind, EWMA or accrual settings change). */
  get balancer(): Balancer {
    return this.#balancer;
  }

  get budget(): RetryBudget {
    return this.#budget;
  }

  /** What it runs on now. */
  get spec(): ServiceSpec {
    return this.#spec;
  }

  /** True while its endpoints have not been delivered (a live control plane's pending state). */
  get pending(): boolean {
    return this.#spec.endpoints === undefined;
  }

  /**
   * Moves to `next` (same name, namespace and identity), touching only what changed: endpoints
   * that stay keep their pools, EWMA and accrual state; the retry budget stays unless its
   * settings change; split counters stay.
   */
  update(next: ServiceSpec): void {
    const prev = this.#spec;
    if (next === prev) return;
    this.#spec = next;
    if (next.settings !== prev.settings) this.#applySettings(prev.settings, next.settings);
    if (next.split !== prev.split) this.#applySplit(next.split);
    if (next.settings !== prev.settings || next.routes !== prev.routes || next.split !== prev.split) {
      this.#state = this.#requestState(next.settings, next.routes, this.#state.routes);
    }
    if (next.endpoints !== prev.endpoints) this.#setEndpoints(next.endpoints ?? []);
  }

  /** Replaces its settings (balancer, budget, connections, retry and timeouts). */
  setSettings(settings: ServiceSettings): void {
    this.update({ ...this.#spec, settings });
  }

  /** Replaces its routes; a route that keeps its name keeps its counters and split state. */
  setRoutes(routes: readonly RouteSpec[]): void {
    this.update({ ...this.#spec, routes });
  }

  /** Replaces the service-level split (routes keep theirs); undefined removes it. Validated by the caller. */
  setSplit(split: readonly SplitBackend[] | undefined): void {
    this.update({ ...this.#spec, ...(split ? { split } : { split: undefined }) });
  }

  /** Replaces the endpoint set atomically (see #setEndpoints). */
  setEndpoints(list: readonly ServiceEndpoint[] | undefined): void {
    this.update({ ...this.#spec, endpoints: list });
  }

  #applySettings(prev: ServiceSettings, next: ServiceSettings): void {
    if (!sameBalancer(prev, next)) {
      // New estimates and accrual state: the old ones were computed under other rules.
      this.#balancer = this.#newBalancer(next);
      this.#balancer.setEndpoints([...this.#endpoints.values()].map((e) => ({ key: e.key, weight: e.weight })));
    }
    const pb = prev.budget;
    const nb = next.budget;
    if (pb.retryRatio !== nb.retryRatio || pb.minRetriesPerSecond !== nb.minRetriesPerSecond || pb.windowMs !== nb.windowMs || pb.slots !== nb.slots) {
      this.#budget = new RetryBudget(nb, this.clock);
    }
    if (!sameConnections(prev, next)) {
      // Pool options are fixed at creation: new pools, the old ones drain.
      const old = this.#endpoints;
      this.#endpoints = new Map();
      for (const e of old.values()) {
        this.#endpoints.set(e.key, this.#create(e.key, e.spec));
        this.#drain(e);
      }
    }
  }

  #applySplit(split: readonly SplitBackend[] | undefined): void {
    if (split === undefined) this.#split = undefined;
    else if (this.#split) {
      if (!sameSplit(this.#split.backends, split)) this.#split.set(split);
    }
    else this.#split = new Split(split);
  }

  get endpoints(): readonly PooledEndpoint[] {
    return [...this.#endpoints.values()];
  }

  endpoint(key: string): PooledEndpoint | undefined {
    return this.#endpoints.get(key);
  }

  get split(): readonly SplitBackend[] | undefined {
    return this.#split?.backends;
  }

  /** True when the service has routes (requests must be matched against them). */
  get hasRoutes(): boolean {
    return this.#state.routes.length > 0;
  }

  /** The service's own settings (no route matched, or none defined). */
  defaultSettings(): RequestSettings {
    return this.#state.defaults;
  }

  /** The settings for one request: the first matching route's, else the service's. */
  settingsFor(req: RouteRequest): RequestSettings {
    const state = this.#state;
    for (const r of state.routes) {
      if (r.matches(req)) {
        r.requests++;
        return r.settings;
      }
    }
    return state.defaults;
  }

  /**
   * Replaces the endpoint set atomically (validated by the caller: no address listed twice).
   * Endpoints that stay keep their pools (connections), latency estimates and accrual state, and
   * take the new weight; new ones are added; removed ones take no new tries and their pools close
   * once their in-flight requests have ended.
   */
  #setEndpoints(list: readonly ServiceEndpoint[]): void {
    const old = this.#endpoints;
    const next = new Map<string, PooledEndpoint>();
    for (const e of list) {
      // The key carries what the pool's authorizer checks: a change of identity is a new pool.
      const key = endpointKey(e, this.identity);
      const kept = old.get(key);
      next.set(key, kept === undefined ? this.#create(key, e) : kept.spec === e ? kept : kept.with(e));
    }
    // The endpoints are their own balancer specs (key, weight): no list made for it.
    this.#balancer.setEndpoints([...next.values()]);
    this.#endpoints = next;
    for (const [key, gone] of old) if (!next.has(key)) this.#drain(gone);
  }

  #drain(e: PooledEndpoint): void {
    const pool = e.made;
    if (pool) this.#draining.set(pool, pool.close().catch(() => {}).finally(() => this.#draining.delete(pool)));
  }

  #create(key: string, e: ServiceEndpoint): PooledEndpoint {
    return new PooledEndpoint(key, e, this.#pools);
  }

  /** True when its responses are judged the gRPC way (protocol 'grpc', request.ts). */
  get grpc(): boolean {
    return this.#spec.settings.protocol === 'grpc';
  }

  /** True when its endpoints are spoken to in HTTP/2 (protocol 'http2' or 'grpc'). */
  get h2(): boolean {
    return speaksH2(this.#spec.settings.protocol);
  }

  /**
   * Pools for this service's endpoints, with its connection settings at the time they are made.
   * HTTP/2: one undici Client per endpoint (an undici Pool opens a connection per request while its
   * first one is still connecting, and a Client with undici's default pipelining of 1 sends one
   * stream at a time), offering ALPN h2 only; the connector refuses a server that selects anything
   * else. Its streams are multiplexed up to H2_MAX_CONCURRENT_STREAMS (requests are dispatched as
   * `idempotent`, which in undici only lets them share the connection: retries are the mesh's).
   */
  readonly #pools: PoolFactory = {
    make: (endpoint) => {
      const e = endpoint.spec;
      const c = this.#spec.settings.connections;
      const h2 = this.h2;
      const connect = this.#tls.connector({
        authorize: e.identities && e.identities.length > 1 ? authorizeOneOf(...e.identities) : authorizeId(e.identity),
        servername: e.serverName ?? this.servername,
        describe: `${this.name} endpoint ${e.address}`,
        ...(h2 && { alpn: H2_ALPN }),
      });
      const undici = loadUndici();
      if (h2) {
        return new undici.Client(endpoint.origin, {
          connect,
          allowH2: true,
          maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
          pipelining: H2_MAX_CONCURRENT_STREAMS,
          keepAliveTimeout: c.keepAliveTimeoutMs,
        });
      }
      return new undici.Pool(endpoint.origin, { connect, keepAliveTimeout: c.keepAliveTimeoutMs, connections: c.maxPerEndpoint });
    },
  };

  stats(): OutboundServiceStats {
    const lb = this.#balancer.stats();
    const budget = this.#budget.snapshot();
    let ejections = 0;
    const endpoints: OutboundEndpointStats[] = lb.endpoints.map((s) => {
      ejections += s.ejections;
      const ep = this.#endpoints.get(s.key);
      return {
        address: ep?.address ?? s.key,
        identity: ep?.identity ?? this.identity,
        weight: s.weight,
        ...(ep?.zone !== undefined && { zone: ep.zone }),
        ewmaMs: Math.round(s.ewmaMs * 1000) / 1000,
        pending: s.pending,
        requests: s.requests,
        failures: s.failures,
        consecutiveFailures: s.consecutiveFailures,
        state: s.state,
        ejections: s.ejections,
      };
    });
    const out: OutboundServiceStats = {
      identity: this.identity,
      protocol: this.#spec.settings.protocol,
      balancer: lb.kind,
      routed: this.counters.routed,
      requests: budget.totalRequests,
      attempts: this.counters.attempts,
      retries: budget.totalRetries,
      budgetExhausted: budget.totalRejected,
      budget,
      ejections,
      ready: lb.ready,
      ejected: lb.ejected,
      panicPicks: lb.panicPicks,
      endpoints,
    };
    if (this.#split) out.split = this.#split.stats();
    if (this.#state.routes.length > 0) {
      out.routes = this.#state.routes.map((r) => ({ name: r.name, requests: r.requests, ...(r.settings.split && { split: r.settings.split.stats() }) }));
    }
    return out;
  }

  /** True once close() or destroy() was called: requests still in flight fail with MeshClosedError. */
  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#endpoints.values()].flatMap((e) => (e.made ? [e.made] : []));
    this.#endpoints = new Map();
    await Promise.all([...pools.map((p) => p.close().catch(() => {})), ...this.#draining.values()]);
  }

  /**
   * Destroys the pools of endpoints with no request in flight or queued (after a freeze: their
   * keep-alive sockets may be dead); the next request opens a new connection. Returns how many.
   */
  async dropIdleConnections(): Promise<number> {
    const idle = [...this.#endpoints.values()].flatMap((e) => {
      const p = e.takeIdlePool();
      return p ? [p] : [];
    });
    await Promise.all(idle.map((p) => p.destroy().catch(() => {})));
    return idle.length;
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#endpoints.values()].flatMap((e) => (e.made ? [e.made] : []));
    this.#endpoints = new Map();
    await Promise.all([...pools, ...this.#draining.keys()].map((p) => p.destroy().catch(() => {})));
  }
}

/**
 * The pool key of an endpoint: its address, and what its pool's connector checks when that is not
 * the service's default (another identity, several, another SNI): a change of either is a new pool.
 */
function endpointKey(e: ServiceEndpoint, serviceIdentity: string): string {
  const who = e.identities && e.identities.length > 1 ? ` ${e.identities.join(',')}` : e.identity === serviceIdentity ? '' : ` ${e.identity}`;
  return `${e.address}${who}${e.serverName !== undefined ? ` sni=${e.serverName}` : ''}`;
}
