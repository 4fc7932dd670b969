/**
 * The shapes every balancer shares. A balancer is per mesh service: the dispatcher keeps one, feeds
 * it the endpoint list from discovery (`setEndpoints`), and for each try asks it for an endpoint
 * (`pick`), brackets the try with `start()` / `end(outcome)`, and reads `stats()` for telemetry.
 *
 * Everything here is pure: no I/O and no timers. Time comes from an injected `Clock`, randomness
 * from an injected `() => number` in [0, 1), so tests and simulations run in virtual time.
 */
import type { Clock } from '../../clock.js';
import type { EwmaSettings } from './ewma.js';
import type { FailureAccrualSettings } from './failure-accrual.js';

/** The load-balancing algorithms. `p2c-ewma` is the default (linkerd2-proxy, Finagle). */
export type BalancerKind = 'p2c-ewma' | 'least-request' | 'round-robin' | 'random';

/** The balancer used when none is configured. */
export const DEFAULT_BALANCER: BalancerKind = 'p2c-ewma';

/** How a try failed, as far as the balancer and the retry policy care. */
export type FailureKind =
  /** The connection (TCP or TLS handshake) could not be established: nothing was sent. */
  | 'connect'
  /** The connection was reset or closed before response headers arrived. */
  | 'reset'
  /** A response arrived, with a status the caller counts as a failure (5xx). */
  | 'status'
  /** The try did not get its response within its (per-try) timeout. */
  | 'timeout';

/** One endpoint as discovery describes it. */
export interface EndpointSpec {
  /** Stable identity of the endpoint, e.g. `127.0.0.1:9001`. State survives `setEndpoints` by key. */
  readonly key: string;
  /** Relative share of traffic, finite and >= 0 (default 1). Weight 0 receives no traffic while
   *  any endpoint with a positive weight is ready. */
  readonly weight?: number;
}

/** What happened to one try, reported through `InFlight.end`. */
export interface Outcome {
  /** true when the endpoint answered acceptably (the caller decides: typically any non-5xx). */
  readonly ok: boolean;
  /** Time from `start()` to the end of the try. Default: measured with the balancer's clock. */
  readonly latencyMs?: number;
  /** Why it failed, when `ok` is false. Informational for the balancer (every failure counts). */
  readonly failure?: FailureKind;
}

/** A try in progress on an endpoint. `end` must be called exactly once (later calls are ignored). */
export interface InFlight {
  /** True when this try is the single probe that decides whether an ejected endpoint comes back. */
  readonly probe: boolean;
  end(outcome: Outcome): void;
}

export type { EndpointState } from './failure-accrual.js';
import type { EndpointState } from './failure-accrual.js';

/** A point-in-time view of one endpoint, for `mesh.stats()` and metrics. */
export interface EndpointSnapshot {
  key: string;
  weight: number;
  /** Current peak-EWMA latency estimate in milliseconds (decayed to now). */
  ewmaMs: number;
  /** Tries started and not yet ended. */
  pending: number;
  /** Tries ended (all outcomes). */
  requests: number;
  /** Tries ended with `ok: false`. */
  failures: number;
  consecutiveFailures: number;
  state: EndpointState;
  /** How many times this endpoint has been ejected (total). */
  ejections: number;
  /** When ejected: clock time at which its probe will be admitted. */
  probeAt?: number;
}

/** What `pick()` returns: the endpoint to send one try to. */
export interface EndpointHandle {
  readonly key: string;
  readonly weight: number;
  /** Marks a try as started on this endpoint (pending + 1). Call once per try, right after `pick`. */
  start(): InFlight;
  snapshot(): EndpointSnapshot;
}

/** A change of an endpoint's failure-accrual state, for metrics and logs. */
export interface StateChange {
  key: string;
  from: EndpointState;
  to: EndpointState;
  /** Clock time of the change. */
  at: number;
  /** When ejected: how long until the probe is admitted. */
  penaltyMs?: number;
}

/** The result of `setEndpoints`: the caller drains the `removed` endpoints' connections. */
export interface EndpointsDiff {
  added: string[];
  removed: string[];
  kept: string[];
}

export interface BalancerStats {
  kind: BalancerKind;
  endpoints: EndpointSnapshot[];
  ready: number;
  ejected: number;
  probing: number;
  /** Picks made while no endpoint was ready (every endpoint ejected or probing): such picks go
   *  to a non-ready endpoint rather than failing for certain, like Envoy's panic mode. */
  panicPicks: number;
}

/** A load balancer over the endpoints of one service. */
export interface Balancer {
  readonly kind: BalancerKind;
  /** Number of endpoints, whatever their state. */
  readonly size: number;
  /**
   * Replaces the endpoint list. Endpoints whose key remains keep their state (EWMA, pending,
   * failure accrual) and take the new weight; new keys start fresh; the others are dropped (tries
   * already in flight on them may still `end()`, harmlessly). Throws `ConfigError` on a duplicate
   * key or an invalid weight, leaving the previous list in place.
   */
  setEndpoints(list: readonly EndpointSpec[]): EndpointsDiff;
  /**
   * The endpoint for the next try, or undefined when there are no endpoints at all. O(1) for
   * p2c-ewma, least-request and random; O(1) for round-robin with equal weights and O(log n)
   * with unequal weights. Ejected endpoints are skipped; an endpoint due for its probe is
   * returned first (one try), and if no endpoint is ready a non-ready one is returned (panic).
   */
  pick(): EndpointHandle | undefined;
  /**
   * For a retry (Envoy's previous_hosts predicate): a ready endpoint whose key is not in `tried`,
   * by P2C over peak-EWMA among those, whatever the balancer kind; undefined when every ready
   * endpoint was tried. Allocates (retries only).
   */
  pickUntried(tried: ReadonlySet<string>): EndpointHandle | undefined;
  /** The current handle for a key, if present. */
  get(key: string): EndpointHandle | undefined;
  stats(): BalancerStats;
}

/** Options shared by every balancer. */
export interface BalancerOptions {
  /** Time source (default `systemClock`). */
  clock?: Clock;
  /** Uniform random numbers in [0, 1) (default `Math.random`). Pass `seededRandom(n)` in tests. */
  random?: () => number;
  /** Peak-EWMA settings (every balancer keeps the estimate for stats; p2c-ewma uses it to pick). */
  ewma?: Partial<EwmaSettings>;
  /** Failure-accrual settings, or `false` to never eject endpoints. */
  accrual?: Partial<FailureAccrualSettings> | false;
  /** Called on every accrual state change (ejection, probe admitted, readmission). Must not throw. */
  onStateChange?: (change: StateChange) => void;
}
