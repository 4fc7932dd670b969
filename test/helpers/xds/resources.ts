// Builders for xDS resources shaped as istiod's proxyless (GENERATOR=grpc) generators make them
// (research §2.4), encoded with the project's own codecs (src/proto). Names follow istiod:
//   Listener            payments.default.svc.cluster.local:8080
//   RouteConfiguration  outbound|8080||payments.default.svc.cluster.local
//   Cluster             outbound|8080|v1|payments.default.svc.cluster.local (EDS name = cluster name)
// Each builder takes overrides merged over its result, so an invalid variant (for a NACK case) is
// the valid resource with one field changed.
import type { Any } from '../../../src/proto/google/protobuf/any.js';
import { packAny, type MessageCodec } from '../../../src/proto/any-pack.js';
import { type Listener, ListenerCodec } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import { type RouteConfiguration, RouteConfigurationCodec } from '../../../src/proto/envoy/config/route/v3/route.js';
import { type Cluster, ClusterCodec } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { type ClusterLoadAssignment, ClusterLoadAssignmentCodec } from '../../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { type HttpFilter, HttpConnectionManagerCodec } from '../../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../../src/proto/envoy/extensions/filters/http/router/v3/router.js';
import { UpstreamTlsContextCodec } from '../../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import type { DeepPartial } from '../../../src/proto/wire.js';

export const TYPE = {
  listener: ListenerCodec.typeUrl,
  route: RouteConfigurationCodec.typeUrl,
  cluster: ClusterCodec.typeUrl,
  endpoints: ClusterLoadAssignmentCodec.typeUrl,
} as const;

export const HOST = 'payments.default.svc.cluster.local';
export const PORT = 8080;
export const LISTENER_NAME = `${HOST}:${PORT}`;
export const ROUTE_NAME = `outbound|${PORT}||${HOST}`;
/** istiod's cluster name for a subset of the service ('' = the whole service). */
export const clusterName = (subset = '', host = HOST, port = PORT) => `outbound|${port}|${subset}|${host}`;

/** One resource as the server holds it: its type, name and the Any it is sent as. */
export interface XdsResource {
  readonly typeUrl: string;
  readonly name: string;
  readonly any: Any;
}

function resource<T>(codec: MessageCodec<T>, name: string, message: DeepPartial<T>): XdsResource {
  return { typeUrl: codec.typeUrl, name, any: packAny(codec, message) };
}

/** The fault filter istiod puts first (an empty HTTPFault: no fault configured); no codec of ours. */
const FAULT_FILTER = { name: 'envoy.filters.http.fault', typedConfig: { typeUrl: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', value: new Uint8Array() } };
const ROUTER_FILTER = { name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) };

/** The outbound API Listener `host:port`: HCM with RDS over ADS and http_filters [fault, router] (or `httpFilters`). */
export function listener(o: { name?: string; routeConfigName?: string; vip?: string; httpFilters?: DeepPartial<HttpFilter>[] } & DeepPartial<Listener> = {}): XdsResource {
  const { name = LISTENER_NAME, routeConfigName = ROUTE_NAME, vip = '10.96.0.10', httpFilters = [FAULT_FILTER, ROUTER_FILTER], ...rest } = o;
  const port = Number(name.slice(name.lastIndexOf(':') + 1)) || PORT;
  const hcm = {
    statPrefix: name,
    rds: { configSource: { ads: {}, resourceApiVersion: 2 }, routeConfigName },
    httpFilters,
  };
  return resource(ListenerCodec, name, {
    name,
    address: { socketAddress: { address: vip, portValue: port } },
    apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) },
    ...rest,
  });
}

/** Where a route sends: one cluster, or weighted clusters `{ cluster: weight }` (in order). */
export type RouteTarget = string | Readonly<Record<string, number>>;

export interface RouteInput {
  /** Plain string prefix (xDS `prefix`); default '' (everything) unless path or regex is given. */
  readonly prefix?: string;
  readonly path?: string;
  /** RE2, full match (`safe_regex`). */
  readonly regex?: string;
  /** Exact header matches. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly to: RouteTarget;
  /** Request timeout: istiod sets both `timeout` and `max_stream_duration` for proxyless clients. */
  readonly timeoutMs?: number;
}

const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

function routeOf(r: RouteInput) {
  const path = r.regex !== undefined ? { safeRegex: { regex: r.regex } } : r.path !== undefined ? { path: r.path } : { prefix: r.prefix ?? '' };
  const headers = Object.entries(r.headers ?? {}).map(([name, exact]) => ({ name, stringMatch: { exact } }));
  const target = typeof r.to === 'string' ? { cluster: r.to } : { weightedClusters: { clusters: Object.entries(r.to).map(([name, weight]) => ({ name, weight })) } };
  const timeout = r.timeoutMs === undefined ? {} : { timeout: duration(r.timeoutMs), maxStreamDuration: { maxStreamDuration: duration(r.timeoutMs) } };
  return { match: { ...path, headers }, route: { ...target, ...timeout } };
}

/**
 * The RouteConfiguration with one virtual host for the service (istiod's domains: the FQDN with and
 * without the port, the short names, the VIP), its routes in order (first match wins).
 */
export function routeConfiguration(routes: readonly RouteInput[], o: { name?: string; domains?: string[] } & DeepPartial<RouteConfiguration> = {}): XdsResource {
  const { name = ROUTE_NAME, domains = [HOST, `${HOST}:${PORT}`, 'payments', `payments:${PORT}`, 'payments.default', `payments.default:${PORT}`], ...rest } = o;
  return resource(RouteConfigurationCodec, name, { name, virtualHosts: [{ name: `${HOST}:${PORT}`, domains, routes: routes.map(routeOf) }], ...rest });
}

/** A Cluster: EDS over ADS (service_name = its name), ROUND_ROBIN, and an ISTIO_MUTUAL-style UpstreamTlsContext when `sans` is given. */
export function cluster(name: string, o: { sans?: readonly string[] } & DeepPartial<Cluster> = {}): XdsResource {
  const { sans, ...rest } = o;
  const tls = sans && {
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: packAny(UpstreamTlsContextCodec, {
        commonTlsContext: {
          tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
          combinedValidationContext: {
            defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })), caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' } },
          },
        },
      }),
    },
  };
  return resource(ClusterCodec, name, {
    name,
    type: 3, // EDS
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 2 }, serviceName: name },
    lbPolicy: 0, // ROUND_ROBIN
    connectTimeout: { seconds: 10 },
    ...tls,
    ...rest,
  });
}

/** Health status numbers (envoy.config.core.v3.HealthStatus). */
export const HEALTH = { UNKNOWN: 0, HEALTHY: 1, UNHEALTHY: 2, DRAINING: 3 } as const;

export interface EndpointInput {
  /** `ip:port` (an IP literal, as A27 requires; a hostname only for a NACK case). */
  readonly address: string;
  readonly health?: number;
  readonly weight?: number;
}

export interface LocalityInput {
  readonly region?: string;
  readonly zone?: string;
  /** Locality load_balancing_weight; default: the sum of its endpoints' weights (istiod's rule). */
  readonly weight?: number;
  readonly priority?: number;
  readonly endpoints: readonly EndpointInput[];
}

function lbEndpoint(e: EndpointInput) {
  const at = e.address.lastIndexOf(':');
  const host = e.address.slice(0, at).replace(/^\[|\]$/g, '');
  return {
    endpoint: { address: { socketAddress: { address: host, portValue: Number(e.address.slice(at + 1)) } } },
    healthStatus: e.health ?? HEALTH.HEALTHY,
    loadBalancingWeight: e.weight ?? 1,
  };
}

/** The ClusterLoadAssignment `name`: localities with their weights and priorities. */
export function endpoints(name: string, localities: readonly LocalityInput[], o: DeepPartial<ClusterLoadAssignment> = {}): XdsResource {
  return resource(ClusterLoadAssignmentCodec, name, {
    clusterName: name,
    endpoints: localities.map((l, i) => ({
      locality: { region: l.region ?? 'us-central1', zone: l.zone ?? `us-central1-${'abcdefgh'[i % 8]}` },
      lbEndpoints: l.endpoints.map(lbEndpoint),
      loadBalancingWeight: l.weight ?? l.endpoints.reduce((s, e) => s + (e.weight ?? 1), 0),
      priority: l.priority ?? 0,
    })),
    ...o,
  });
}

/** A Cluster and its one-locality ClusterLoadAssignment: the common case. */
export function service(name: string, addresses: readonly string[], o: { sans?: readonly string[] } = {}): XdsResource[] {
  return [cluster(name, o), endpoints(name, [{ endpoints: addresses.map((address) => ({ address })) }])];
}
