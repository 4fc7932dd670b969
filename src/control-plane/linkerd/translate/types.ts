/**
 * The decoded Linkerd messages the translators read: the subset of linkerd2-proxy-api's messages
 * (names camelCased, oneof members as optional fields, repeated fields as arrays, unset messages
 * undefined) that translation needs. Structural on purpose: the codecs in src/proto/linkerd/*.ts
 * produce values of these shapes, and tests write them as plain objects. Pure types.
 */
import type { Duration } from '../../../proto/google/protobuf/duration.js';

export type { Duration };

// --- net.proto ---
export interface IPv6 {
  /** The first eight octets, big-endian (fixed64). */
  readonly first: bigint;
  readonly last: bigint;
}
export interface IPAddress {
  /** The four octets, big-endian (fixed32). */
  readonly ipv4?: number;
  readonly ipv6?: IPv6;
}
export interface TcpAddress {
  readonly ip?: IPAddress;
  readonly port: number;
}

// --- destination.proto ---
export interface TlsIdentity {
  readonly dnsLikeIdentity?: { readonly name: string };
  readonly uriLikeIdentity?: { readonly uri: string };
  /** The SNI to send (a DNS-like name). */
  readonly serverName?: { readonly name: string };
}
export interface ProtocolHint {
  readonly h2?: object;
  readonly opaque?: object;
  readonly opaqueTransport?: { readonly inboundPort: number };
}
export interface WeightedAddr {
  readonly addr?: TcpAddress;
  readonly weight: number;
  readonly metricLabels?: Readonly<Record<string, string>>;
  readonly tlsIdentity?: TlsIdentity;
  readonly protocolHint?: ProtocolHint;
  readonly authorityOverride?: { readonly authorityOverride: string };
}
export interface DestinationUpdate {
  readonly add?: { readonly addrs: readonly WeightedAddr[]; readonly metricLabels?: Readonly<Record<string, string>> };
  readonly remove?: { readonly addrs: readonly TcpAddress[] };
  readonly noEndpoints?: { readonly exists: boolean };
}

// --- http_types.proto / http_route.proto ---
export interface HttpMethod {
  /** The registered method's enum value (GET = 0, POST = 1, …) when it is one. */
  readonly registered?: number;
  readonly unregistered?: string;
}
export interface PathMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}
export interface HeaderMatch {
  readonly name: string;
  readonly exact?: Uint8Array;
  readonly regex?: string;
}
export interface QueryParamMatch {
  readonly name: string;
  readonly exact?: string;
  readonly regex?: string;
}
export interface HttpRouteMatch {
  readonly path?: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
  readonly method?: HttpMethod;
}
export interface HostMatch {
  readonly exact?: string;
  readonly suffix?: { readonly reverseLabels: readonly string[] };
}
export interface GrpcRouteMatch {
  readonly rpc?: { readonly service: string; readonly method: string };
  readonly headers: readonly HeaderMatch[];
}
/** Filters exist in several messages; any that is set is named by its key. */
export type Filter = Readonly<Record<string, unknown>>;

// --- outbound.proto ---
export interface ExponentialBackoff {
  readonly minBackoff?: Duration;
  readonly maxBackoff?: Duration;
  readonly jitterRatio: number;
}
export interface FailureAccrual {
  readonly consecutiveFailures?: { readonly maxFailures: number; readonly backoff?: ExponentialBackoff };
}
export interface Queue {
  readonly capacity: number;
  readonly failfastTimeout?: Duration;
}
export interface Backend {
  readonly forward?: WeightedAddr;
  readonly balancer?: {
    readonly discovery?: { readonly dst?: { readonly path: string } };
    readonly peakEwma?: { readonly defaultRtt?: Duration; readonly decay?: Duration };
  };
  readonly queue?: Queue;
}
export interface RouteBackend {
  readonly backend?: Backend;
  readonly filters: readonly Filter[];
  /** Deprecated per-backend request timeout. */
  readonly requestTimeout?: Duration;
}
export interface Distribution {
  readonly empty?: object;
  readonly firstAvailable?: { readonly backends: readonly RouteBackend[] };
  readonly randomAvailable?: { readonly backends: readonly { readonly backend?: RouteBackend; readonly weight: number }[] };
}
export interface RouteTimeouts {
  readonly response?: Duration;
  readonly request?: Duration;
  readonly idle?: Duration;
}
export interface HttpRetry {
  readonly maxRetries: number;
  readonly maxRequestBytes: number;
  readonly conditions?: { readonly statusRanges: readonly { readonly start: number; readonly end: number }[] };
  readonly timeout?: Duration;
  readonly backoff?: ExponentialBackoff;
}
export interface GrpcRetry {
  readonly maxRetries: number;
  readonly maxRequestBytes: number;
  readonly conditions?: Readonly<Record<string, boolean>>;
  readonly timeout?: Duration;
  readonly backoff?: ExponentialBackoff;
}
export interface OutboundRule<M, R> {
  readonly matches: readonly M[];
  readonly filters: readonly Filter[];
  readonly backends?: Distribution;
  /** Deprecated request timeout (older controllers). */
  readonly requestTimeout?: Duration;
  readonly timeouts?: RouteTimeouts;
  readonly retry?: R;
}
export interface OutboundRoute<M, R> {
  readonly metadata?: unknown;
  readonly hosts: readonly HostMatch[];
  readonly rules: readonly OutboundRule<M, R>[];
}
export type OutboundHttpRoute = OutboundRoute<HttpRouteMatch, HttpRetry>;
export type OutboundGrpcRoute = OutboundRoute<GrpcRouteMatch, GrpcRetry>;
export interface HttpProtocol {
  readonly routes: readonly OutboundHttpRoute[];
  readonly failureAccrual?: FailureAccrual;
}
export interface GrpcProtocol {
  readonly routes: readonly OutboundGrpcRoute[];
  readonly failureAccrual?: FailureAccrual;
}
export interface OutboundProxyProtocol {
  readonly detect?: { readonly timeout?: Duration; readonly opaque?: object; readonly http1?: HttpProtocol; readonly http2?: HttpProtocol };
  readonly opaque?: object;
  readonly http1?: HttpProtocol;
  readonly http2?: HttpProtocol;
  readonly grpc?: GrpcProtocol;
  readonly tls?: object;
}
export interface OutboundPolicy {
  readonly protocol?: OutboundProxyProtocol;
  readonly metadata?: unknown;
}

// --- inbound.proto ---
export interface Network {
  readonly net?: { readonly ip?: IPAddress; readonly prefixLen: number };
  readonly except: readonly { readonly ip?: IPAddress; readonly prefixLen: number }[];
}
export interface Authn {
  readonly unauthenticated?: object;
  readonly meshTLS?: {
    readonly unauthenticated?: object;
    readonly identities?: {
      readonly identities: readonly { readonly name: string }[];
      readonly suffixes: readonly { readonly parts: readonly string[] }[];
    };
  };
}
export interface Authz {
  readonly networks: readonly Network[];
  readonly authentication?: Authn;
  readonly labels?: Readonly<Record<string, string>>;
  readonly metadata?: unknown;
}
export interface InboundRoute<M> {
  readonly metadata?: unknown;
  readonly hosts: readonly HostMatch[];
  readonly authorizations: readonly Authz[];
  readonly rules: readonly { readonly matches: readonly M[]; readonly filters: readonly Filter[] }[];
}
export type InboundHttpRoute = InboundRoute<HttpRouteMatch>;
export type InboundGrpcRoute = InboundRoute<GrpcRouteMatch>;
export interface InboundProxyProtocol {
  readonly detect?: { readonly timeout?: Duration; readonly httpRoutes: readonly InboundHttpRoute[] };
  readonly opaque?: object;
  readonly tls?: object;
  readonly http1?: { readonly routes: readonly InboundHttpRoute[] };
  readonly http2?: { readonly routes: readonly InboundHttpRoute[] };
  readonly grpc?: { readonly routes: readonly InboundGrpcRoute[] };
}
export interface InboundServer {
  readonly protocol?: InboundProxyProtocol;
  readonly serverIps: readonly IPAddress[];
  readonly authorizations: readonly Authz[];
  readonly labels?: Readonly<Record<string, string>>;
}
