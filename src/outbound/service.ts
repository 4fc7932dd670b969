import type { Pool } from 'undici';
import { type Clock, systemClock } from '../clock.js';
import { type EndpointConfig, type RetryConfig, type RouteConfig, type ServiceConfig, type SplitConfig, type TimeoutConfig, parseAddress } from '../config.js';
import { ConfigError } from '../errors.js';
import { authorizeId } from '../identity/authorizer.js';
import { type ClientTls } from '../tls/connect.js';
import { type Balancer, type BalancerKind, type EndpointSnapshot, type StateChange, createBalancer } from './balancer/index.js';
import { type RetryBudgetSnapshot, type RetryPolicySettings, type TimeoutSettings, RetryBudget, retryPolicySettings } from './retry/index.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from './retry/replay-body.js';
import { type CompiledRoute, type RouteRequest, compileRoute } from './routes.js';
import { type RoutableService, serviceHostnames } from './router.js';
import { Split, type SplitStats } from './split.js';
import { loadUndici } from './undici.js';
import { TrafficStats } from '../telemetry/stats.js';

/** Connections per endpoint unless `connections.maxPerEndpoint` says otherwise. */
export const DEFAULT_CONNECTIONS_PER_ENDPOINT = 128;
/** Idle keep-alive connections are closed after this long unless `connections.keepAliveTimeout` says otherwise. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 10_000;

/** One endpoint: where it is, who it must be, and one undici Pool over mTLS. */
export class PooledEndpoint {
  constructor(
    /** The balancer's key: address and expected identity. */
    readonly key: string,
    readonly address: string,
    readonly origin: string,
    readonly identity: string,
    readonly pool: Pool,
    readonly zone: string | undefined,
    readonly labels: Readonly<Record<string, string>> | undefined,
  ) {}
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

/** Retry settings from config (`false`: none). A route's fields override its service's one by one. */
function retryPolicyOf(cfg: RetryConfig | undefined): RetryPolicySettings | null {
  if (cfg === false) return null;
  const c = cfg ?? {};
  const kinds = c.retryOn?.filter((x): x is 'connect' | 'reset' | 'timeout' => typeof x === 'string');
  const statuses = c.retryOn?.filter((x): x is number => typeof x === 'number');
  try {
    return retryPolicySettings({
      ...(c.maxRetries !== undefined && { maxRetries: c.maxRetries }),
      ...(c.methods !== undefined && { retryableMethods: c.methods }),
      ...(c.retryConnectFailuresForAnyMethod !== undefined && { retryConnectFailuresForAnyMethod: c.retryConnectFailuresForAnyMethod }),
      ...(kinds !== undefined && { retryOnFailures: kinds }),
      ...(statuses !== undefined && { retryOnStatuses: statuses }),
      ...(c.honourRetryAfter !== undefined && { honourRetryAfter: c.honourRetryAfter }),
      ...(c.maxRetryAfter !== undefined && { maxRetryAfterMs: c.maxRetryAfter }),
      backoff: {
        ...(c.backoff?.base !== undefined && { baseMs: c.backoff.base }),
        ...(c.backoff?.max !== undefined && { maxMs: c.backoff.max }),
        ...(c.backoff?.multiplier !== undefined && { multiplier: c.backoff.multiplier }),
      },
    });
  } catch (e) {
    throw new ConfigError(`invalid retry settings: ${(e as Error).message}`, [{ path: 'retry', message: (e as Error).message }]);
  }
}

function mergeRetry(service: RetryConfig | undefined, route: RetryConfig | undefined): RetryConfig | undefined {
  if (route === undefined) return service;
  if (route === false) return false;
  const base = service === false || service === undefined ? {} : service;
  return { ...base, ...route, backoff: { ...base.backoff, ...route.backoff } };
}

function timeoutOf(cfg: TimeoutConfig | undefined): TimeoutSettings {
  return { ...(cfg?.request !== undefined && { requestMs: cfg.request }), ...(cfg?.perTry !== undefined && { perTryMs: cfg.perTry }) };
}

export interface OutboundServiceOptions {
  readonly name: string;
  readonly namespace: string;
  /** The identity endpoints must present unless they name their own. */
  readonly identity: string;
  readonly tls: ClientTls;
  readonly config: ServiceConfig;
  readonly clusterDomain?: string;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onStateChange?: (service: string, change: StateChange) => void;
  /** Where its requests' golden signals go (the mesh's; default: its own). */
  readonly traffic?: TrafficStats;
}

/**
 * A mesh service as the client sees it: its endpoints (one undici Pool each, over mTLS, checked
 * against the identity discovery promised), its balancer, its retry budget, and its routes and
 * split. Requests are run by `MeshRequest` (request.ts); this holds the state they share.
 */
export class OutboundService implements RoutableService {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly servername: string;
  readonly balancer: Balancer;
  readonly budget: RetryBudget;
  readonly clock: Clock;
  readonly random: () => number;
  readonly counters = { routed: 0, attempts: 0, retries: 0 };
  readonly traffic: TrafficStats;

  readonly #tls: ClientTls;
  readonly #connections: number;
  readonly #keepAliveTimeout: number;
  #endpoints = new Map<string, PooledEndpoint>();
  /** Pools of removed endpoints, closing once their in-flight requests end. */
  readonly #draining = new Map<Pool, Promise<void>>();
  #split: Split | undefined;
  #closed = false;
  readonly #defaults: Omit<RequestSettings, 'split'>;
  readonly #routes: Array<CompiledRoute<RequestSettings> & { requests: number }>;

  constructor(o: OutboundServiceOptions) {
    this.name = o.name;
    this.namespace = o.namespace;
    this.identity = o.identity;
    this.#tls = o.tls;
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.traffic = o.traffic ?? new TrafficStats();
    this.servername = serviceHostnames(o.name, o.namespace, o.clusterDomain).at(-1)!;
    const c = o.config;
    this.#connections = c.connections?.maxPerEndpoint ?? DEFAULT_CONNECTIONS_PER_ENDPOINT;
    this.#keepAliveTimeout = c.connections?.keepAliveTimeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
    const a = c.failureAccrual;
    const onStateChange = o.onStateChange;
    this.balancer = createBalancer(c.balancer ?? 'p2c-ewma', {
      clock: this.clock,
      random: this.random,
      ewma: {
        ...(c.ewma?.defaultRtt !== undefined && { defaultRttMs: c.ewma.defaultRtt }),
        ...(c.ewma?.decay !== undefined && { decayMs: c.ewma.decay }),
        ...(c.ewma?.failurePenaltyFactor !== undefined && { failurePenaltyFactor: c.ewma.failurePenaltyFactor }),
        ...(c.ewma?.maxFailurePenalty !== undefined && { maxFailurePenaltyMs: c.ewma.maxFailurePenalty }),
      },
      accrual:
        a === false
          ? false
          : {
              ...(a?.consecutiveFailures !== undefined && { consecutiveFailures: a.consecutiveFailures }),
              ...(a?.minPenalty !== undefined && { minMs: a.minPenalty }),
              ...(a?.maxPenalty !== undefined && { maxMs: a.maxPenalty }),
              ...(a?.jitterRatio !== undefined && { jitterRatio: a.jitterRatio }),
            },
      ...(onStateChange && { onStateChange: (ch: StateChange) => onStateChange(o.name, ch) }),
    });
    const b = c.retry === false ? undefined : c.retry?.budget;
    try {
      this.budget = new RetryBudget(
        {
          ...(b?.retryRatio !== undefined && { retryRatio: b.retryRatio }),
          ...(b?.minRetriesPerSecond !== undefined && { minRetriesPerSecond: b.minRetriesPerSecond }),
          ...(b?.window !== undefined && { windowMs: b.window }),
        },
        this.clock,
      );
    } catch (e) {
      throw new ConfigError(`invalid retry budget for "${o.name}": ${(e as Error).message}`, [{ path: 'retry.budget', message: (e as Error).message }]);
    }
    const replayOf = (r: RetryConfig | undefined) => (r === false || r === undefined ? undefined : r.maxReplayBodyBytes);
    this.#defaults = {
      route: undefined,
      retry: retryPolicyOf(c.retry),
      maxReplayBodyBytes: replayOf(c.retry) ?? DEFAULT_MAX_REPLAY_BODY_BYTES,
      timeout: timeoutOf(c.timeout),
    };
    this.#split = c.split ? new Split(c.split) : undefined;
    this.#routes = (c.routes ?? []).map((r: RouteConfig, i) => {
      const retry = mergeRetry(c.retry, r.retry);
      const settings: RequestSettings = {
        route: r.name ?? `#${i}`,
        retry: retryPolicyOf(retry),
        maxReplayBodyBytes: replayOf(retry) ?? DEFAULT_MAX_REPLAY_BODY_BYTES,
        timeout: r.timeout ? { ...this.#defaults.timeout, ...timeoutOf(r.timeout) } : this.#defaults.timeout,
        split: r.split ? new Split(r.split) : undefined,
      };
      return { ...compileRoute(r, i, settings), requests: 0 };
    });
    this.setEndpoints(c.endpoints);
  }

  get endpoints(): readonly PooledEndpoint[] {
    return [...this.#endpoints.values()];
  }

  endpoint(key: string): PooledEndpoint | undefined {
    return this.#endpoints.get(key);
  }

  get split(): readonly SplitConfig[number][] | undefined {
    return this.#split?.backends;
  }

  /** True when the service has routes (requests must be matched against them). */
  get hasRoutes(): boolean {
    return this.#routes.length > 0;
  }

  /** The service's own settings (no route matched, or none defined). */
  defaultSettings(): RequestSettings {
    return this.#split ? { ...this.#defaults, split: this.#split } : (this.#defaults as RequestSettings);
  }

  /** The settings for one request: the first matching route's, else the service's. */
  settingsFor(req: RouteRequest): RequestSettings {
    for (const r of this.#routes) {
      if (r.matches(req)) {
        r.requests++;
        return r.settings;
      }
    }
    return this.defaultSettings();
  }

  /** Replaces the service-level split (routes keep theirs); null removes it. Validated by the caller. */
  setSplit(split: SplitConfig | null): void {
    if (split === null) this.#split = undefined;
    else if (this.#split) this.#split.set(split);
    else this.#split = new Split(split);
  }

  /** Services named by its splits (service-level and routes'), itself excluded. */
  backendNames(): string[] {
    const all = [...(this.#split?.backends ?? []), ...this.#routes.flatMap((r) => r.settings.split?.backends ?? [])];
    return [...new Set(all.map((b) => b.service).filter((n) => n !== this.name))];
  }

  /** True when this service sends (some of) its traffic elsewhere. */
  get hasSplit(): boolean {
    return this.#split !== undefined || this.#routes.some((r) => r.settings.split !== undefined);
  }

  /**
   * Replaces the endpoint set atomically. Endpoints that stay keep their pools (connections),
   * latency estimates and accrual state, and take the new weight; new ones are added; removed
   * ones take no new tries and their pools close once their in-flight requests have ended.
   */
  setEndpoints(list: readonly EndpointConfig[]): void {
    const specs = list.map((cfg) => {
      const identity = cfg.identity ?? this.identity;
      return { key: identity === this.identity ? cfg.address : `${cfg.address} ${identity}`, cfg, identity };
    });
    const seen = new Set<string>();
    specs.forEach((s, i) => {
      if (seen.has(s.key)) {
        throw new ConfigError(`endpoints of "${this.name}": ${s.cfg.address} is listed twice`, [{ path: `endpoints.${i}.address`, message: 'listed twice' }]);
      }
      seen.add(s.key);
    });
    this.balancer.setEndpoints(specs.map((s) => ({ key: s.key, weight: s.cfg.weight })));
    const old = this.#endpoints;
    const next = new Map<string, PooledEndpoint>();
    for (const s of specs) {
      const kept = old.get(s.key);
      if (kept) {
        old.delete(s.key);
        next.set(s.key, kept.zone === s.cfg.zone && kept.labels === s.cfg.labels ? kept : new PooledEndpoint(s.key, kept.address, kept.origin, kept.identity, kept.pool, s.cfg.zone, s.cfg.labels));
      } else next.set(s.key, this.#create(s.key, s.cfg, s.identity));
    }
    this.#endpoints = next;
    for (const gone of old.values()) this.#drain(gone.pool);
  }

  #drain(pool: Pool): void {
    this.#draining.set(pool, pool.close().catch(() => {}).finally(() => this.#draining.delete(pool)));
  }

  #create(key: string, cfg: EndpointConfig, identity: string): PooledEndpoint {
    const { host, port } = parseAddress(cfg.address)!;
    const origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const pool = new (loadUndici().Pool)(origin, {
      connect: this.#tls.connector({
        authorize: authorizeId(identity),
        servername: this.servername,
        describe: `${this.name} endpoint ${cfg.address}`,
      }),
      keepAliveTimeout: this.#keepAliveTimeout,
      connections: this.#connections,
    });
    return new PooledEndpoint(key, cfg.address, origin, identity, pool, cfg.zone, cfg.labels);
  }

  stats(): OutboundServiceStats {
    const lb = this.balancer.stats();
    const budget = this.budget.snapshot();
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
    if (this.#routes.length > 0) {
      out.routes = this.#routes.map((r) => ({ name: r.name, requests: r.requests, ...(r.settings.split && { split: r.settings.split.stats() }) }));
    }
    return out;
  }

  /** True once close() or destroy() was called: requests still in flight fail with MeshClosedError. */
  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#endpoints.values()].map((e) => e.pool);
    this.#endpoints = new Map();
    await Promise.all([...pools.map((p) => p.close().catch(() => {})), ...this.#draining.values()]);
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#endpoints.values()].map((e) => e.pool);
    this.#endpoints = new Map();
    await Promise.all([...pools, ...this.#draining.keys()].map((p) => p.destroy().catch(() => {})));
  }
}
