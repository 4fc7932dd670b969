/**
 * Typed per-service settings: what an outbound service runs with, in milliseconds and complete
 * (every default filled in), never the user's spellings ('10s', optional keys). Control planes
 * (options, `mesh.setService`, xDS, the mesh file) convert to these at their boundary and validate
 * there; everything below reads only these (linkerd2-proxy's `TryFrom<OutboundPolicy>` model).
 * Pure types and defaults; no I/O.
 */
import { type BalancerKind, DEFAULT_BALANCER } from './balancer/types.js';
import { DEFAULT_EWMA_SETTINGS, type EwmaSettings } from './balancer/ewma.js';
import { DEFAULT_FAILURE_ACCRUAL_SETTINGS, type FailureAccrualSettings } from './balancer/failure-accrual.js';
import { DEFAULT_RETRY_BUDGET_SETTINGS, type RetryBudgetSettings } from './retry/budget.js';
import { DEFAULT_RETRY_POLICY_SETTINGS, type RetryPolicySettings, type TimeoutSettings } from './retry/policy.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from './retry/replay-body.js';

/** Connections per endpoint unless a service says otherwise. */
export const DEFAULT_CONNECTIONS_PER_ENDPOINT = 128;
/** Idle keep-alive connections are closed after this long unless a service says otherwise. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 10_000;

export interface ConnectionSettings {
  /** undici Pool `connections` per endpoint. */
  readonly maxPerEndpoint: number;
  readonly keepAliveTimeoutMs: number;
}

/** What one request runs with (the service's, or a route's override). */
export interface RequestPolicy {
  /** null: no retries. */
  readonly retry: RetryPolicySettings | null;
  readonly maxReplayBodyBytes: number;
  readonly timeout: TimeoutSettings;
}

/**
 * What a service's endpoints speak: 'http' (HTTP/1.1, the default), 'http2' or 'grpc' (HTTP/2
 * only: ALPN offers h2 alone and a server that does not select it is refused, never spoken to in
 * HTTP/1.1). 'grpc' is 'http2' whose responses are judged the gRPC way (request.ts).
 */
export type ServiceProtocol = 'http' | 'http2' | 'grpc';
export const SERVICE_PROTOCOLS: readonly ServiceProtocol[] = Object.freeze(['http', 'http2', 'grpc'] as const);
export const DEFAULT_SERVICE_PROTOCOL: ServiceProtocol = 'http';

/** True when the protocol is spoken over HTTP/2. */
export function speaksH2(p: ServiceProtocol): boolean {
  return p !== 'http';
}

/** A service's settings, complete. */
export interface ServiceSettings extends RequestPolicy {
  /** Fixed per pool: a change between HTTP/1.1 and HTTP/2 makes new pools (the old ones drain). */
  readonly protocol: ServiceProtocol;
  readonly balancer: BalancerKind;
  readonly ewma: EwmaSettings;
  /** false: endpoints are never ejected. */
  readonly accrual: FailureAccrualSettings | false;
  readonly budget: RetryBudgetSettings;
  readonly connections: ConnectionSettings;
  /** Every request carries this mesh's JWT-SVID for `audience` as `Authorization: Bearer` (unless the app set an Authorization). */
  readonly jwtSvid?: { readonly audience: readonly string[] };
}

export const DEFAULT_SERVICE_SETTINGS: ServiceSettings = Object.freeze({
  protocol: DEFAULT_SERVICE_PROTOCOL,
  balancer: DEFAULT_BALANCER,
  ewma: DEFAULT_EWMA_SETTINGS,
  accrual: DEFAULT_FAILURE_ACCRUAL_SETTINGS,
  budget: DEFAULT_RETRY_BUDGET_SETTINGS,
  retry: DEFAULT_RETRY_POLICY_SETTINGS,
  maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES,
  timeout: Object.freeze({}),
  connections: Object.freeze({ maxPerEndpoint: DEFAULT_CONNECTIONS_PER_ENDPOINT, keepAliveTimeoutMs: DEFAULT_KEEP_ALIVE_TIMEOUT_MS }),
});

/**
 * Path match of a route; the query is ignored. A prefix matches by segment ('/a' matches '/a/b',
 * not '/ab'); a stringPrefix is a plain string prefix ('/a' matches '/ab' too: xDS
 * `RouteMatch.prefix`, which options do not offer).
 */
export type PathMatch = { readonly exact: string } | { readonly prefix: string } | { readonly stringPrefix: string } | { readonly regex: string };

/** Header match: exact value, anchored regex, or presence. Names are lower case. */
export type HeaderMatch =
  | { readonly name: string; readonly exact: string }
  | { readonly name: string; readonly regex: string }
  | { readonly name: string; readonly present: boolean };

export interface RouteMatch {
  readonly path?: PathMatch;
  /** Upper case; empty or absent: any method. */
  readonly methods?: readonly string[];
  readonly headers?: readonly HeaderMatch[];
}

/** A weighted backend: another service, or the service itself (its own endpoints). */
export interface SplitBackend {
  readonly service: string;
  readonly weight: number;
}

/** One route: the first whose match accepts a request supplies its policy and split. */
export interface RouteSpec {
  readonly name: string;
  readonly match: RouteMatch;
  readonly policy: RequestPolicy;
  readonly split?: readonly SplitBackend[];
}

/** One endpoint as a control plane delivers it. */
export interface ServiceEndpoint {
  /** `host:port`, `[v6]:port`. */
  readonly address: string;
  /**
   * The identity it must present: a SPIFFE ID, or a DNS-like identity (Linkerd's
   * `sa.ns.serviceaccount.identity.linkerd.td`, checked against the leaf's one DNS SAN).
   */
  readonly identity: string;
  /**
   * The TLS server name (SNI) to send (Linkerd's `tls_identity.server_name`: a meshed Linkerd
   * proxy terminates TLS only when the SNI is its own identity). Absent: the service's hostname.
   * Either way the server's chain must verify AND its identity equal `identity`.
   */
  readonly serverName?: string;
  /**
   * When it may present any of several (an xDS Cluster listing one SAN per service account):
   * every one accepted, `identity` among them. Absent: exactly `identity`.
   */
  readonly identities?: readonly string[];
  readonly weight: number;
  readonly zone?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** True when two settings objects would build the same balancer (kind, EWMA, accrual). */
export function sameBalancer(a: ServiceSettings, b: ServiceSettings): boolean {
  return a.balancer === b.balancer && shallowEqual(a.ewma, b.ewma) && (a.accrual === b.accrual || (a.accrual !== false && b.accrual !== false && shallowEqual(a.accrual, b.accrual)));
}

/** True when two settings objects would build the same pools (connection options, HTTP/1.1 or HTTP/2; 'grpc' and 'http2' share pools). */
export function sameConnections(a: ServiceSettings, b: ServiceSettings): boolean {
  return speaksH2(a.protocol) === speaksH2(b.protocol) && shallowEqual(a.connections, b.connections);
}

/** True when two splits name the same backends with the same weights, in the same order. */
export function sameSplit(a: readonly SplitBackend[], b: readonly SplitBackend[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x.service === b[i]!.service && x.weight === b[i]!.weight));
}

function shallowEqual(a: object, b: object): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}

/**
 * One outbound service, whole: what a control plane delivers and an OutboundService runs on
 * (control-plane/snapshot.ts calls it ServiceSnapshot). Pure data.
 */
export interface ServiceSpec {
  readonly name: string;
  readonly namespace: string;
  /**
   * The names an application may write for it: lower case, optional `:port`; `*.example.com`
   * (suffix), `example.*` (prefix) and `*` wildcards as xDS virtual hosts have them. Default: the
   * Kubernetes forms name, name.ns, name.ns.svc, name.ns.svc.<cluster domain>.
   */
  readonly hostnames: readonly string[];
  /** The SPIFFE ID its endpoints present unless an endpoint names its own. */
  readonly identity: string;
  readonly settings: ServiceSettings;
  readonly routes: readonly RouteSpec[];
  /** Service-level split; routes may have their own. */
  readonly split?: readonly SplitBackend[];
  /** undefined: not delivered yet (pending); [] is "delivered, none". */
  readonly endpoints: readonly ServiceEndpoint[] | undefined;
}
