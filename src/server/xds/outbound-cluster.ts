/**
 * A service → its Cluster and ClusterLoadAssignment, the inverse of control-plane/xds/translate/
 * cluster.ts, upstream-tls.ts and endpoints.ts, shaped as istiod's proxyless generator
 * (grpcgen/cds.go, research §2.4): EDS over ADS with service_name = the cluster name; lb_policy
 * from the balancer (p2c-ewma, which xDS has no name for, is LEAST_REQUEST: Envoy's least request
 * is power-of-two-choices too, and Istio's default; ROUND_ROBIN for all with `portableLbPolicy`); outlier_detection from failure accrual
 * (consecutive 5xx, base and max ejection time, success rate explicitly off; accrual off is
 * enforcing_consecutive_5xx 0); an UpstreamTlsContext whose certificate provider instances are
 * istiod's (`default`/`default`, `default`/`ROOTCA`) and whose match_subject_alt_names are the
 * expected SPIFFE IDs, exact. The assignment: one locality per zone (sorted; endpoints sorted by
 * address, so the bytes do not depend on the order endpoints arrived in), HEALTHY, each locality's
 * weight the sum of its endpoints' (istiod's rule, which our client reads as "weights unchanged").
 * Endpoint labels are not sent (no client field reads them). A service whose protocol is 'http2'
 * or 'grpc' carries istiod's HTTP/2 signal (its sidecar generator's, for grpc/http2 ports):
 * typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] =
 * explicit_http_config { http2_protocol_options {} }, which our client and grpc-js-xds read. Pure.
 */
import { isIP } from 'node:net';
import { type Cluster, ClusterCodec, Cluster_DiscoveryType, Cluster_LbPolicy, type OutlierDetection } from '../../proto/envoy/config/cluster/v3/cluster.js';
import { type ClusterLoadAssignment, ClusterLoadAssignmentCodec, type LocalityLbEndpoints } from '../../proto/envoy/config/endpoint/v3/endpoint.js';
import { HealthStatus } from '../../proto/envoy/config/core/v3/base.js';
import { UpstreamTlsContextCodec } from '../../proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { HttpProtocolOptionsCodec } from '../../proto/envoy/extensions/upstreams/http/v3/http_protocol_options.js';
import { packAny } from '../../proto/any-pack.js';
import type { DeepPartial } from '../../proto/wire.js';
import { DEFAULT_FAILURE_ACCRUAL_SETTINGS } from '../../outbound/balancer/failure-accrual.js';
import type { BalancerKind } from '../../outbound/balancer/types.js';
import { type ServiceEndpoint, type ServiceSettings, speaksH2 } from '../../outbound/settings.js';
import { durationOf, type Fail } from './outbound-model.js';

const ADS = { ads: {}, resourceApiVersion: 2 } as const; // ApiVersion V3
const LB: Record<BalancerKind, number> = {
  'round-robin': Cluster_LbPolicy.ROUND_ROBIN,
  'least-request': Cluster_LbPolicy.LEAST_REQUEST,
  'p2c-ewma': Cluster_LbPolicy.LEAST_REQUEST,
  random: Cluster_LbPolicy.RANDOM,
};
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;
const MAX_UINT32 = 0xffff_ffff;

function outlierOf(s: ServiceSettings, fail: Fail): DeepPartial<OutlierDetection> {
  // enforcing_success_rate 0: Envoy's default success-rate ejection is off, as the mesh does.
  if (s.accrual === false) return { enforcingConsecutive5xx: 0, enforcingSuccessRate: 0 };
  const a = s.accrual;
  const d = DEFAULT_FAILURE_ACCRUAL_SETTINGS as unknown as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!['consecutiveFailures', 'minMs', 'maxMs'].includes(k) && (a as unknown as Record<string, unknown>)[k] !== d[k]) fail(`settings.accrual.${k}`, 'xDS outlier detection cannot carry it: only the default is served');
  }
  if (!Number.isInteger(a.consecutiveFailures) || a.consecutiveFailures < 1 || a.consecutiveFailures > MAX_UINT32) fail('settings.accrual.consecutiveFailures', 'must be an integer from 1 to 2^32 - 1');
  const baseEjectionTime = durationOf(a.minMs, fail, 'settings.accrual.minMs');
  const maxEjectionTime = durationOf(a.maxMs, fail, 'settings.accrual.maxMs');
  if (a.maxMs < a.minMs) fail('settings.accrual.maxMs', 'must not be shorter than minMs');
  return { consecutive5xx: a.consecutiveFailures, baseEjectionTime, maxEjectionTime, enforcingSuccessRate: 0 };
}

/** istiod's ISTIO_MUTUAL context (grpcgen.go buildCommonTLSContext) with exact SPIFFE SANs. */
function tlsOf(identities: readonly string[], fail: Fail) {
  if (identities.length === 0) fail('identities', 'at least one expected SPIFFE ID is needed (none would accept any workload)');
  if (new Set(identities).size !== identities.length) fail('identities', 'lists a SPIFFE ID twice');
  identities.forEach((id, i) => {
    if (!SPIFFE_ID.test(id)) fail(`identities[${i}]`, `${JSON.stringify(id.slice(0, 100))} is not a SPIFFE ID`);
  });
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: packAny(UpstreamTlsContextCodec, {
      commonTlsContext: {
        tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: identities.map((exact) => ({ exact })), caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' } },
        },
      },
    }),
  };
}

/** The one typed_extension_protocol_options entry that says "speak HTTP/2" (translate/upstream-protocol.ts reads it). */
const H2_PROTOCOL_OPTIONS = new Map([[HttpProtocolOptionsCodec.typeUrl.slice('type.googleapis.com/'.length), packAny(HttpProtocolOptionsCodec, { explicitHttpConfig: { http2ProtocolOptions: {} } })]]);

export function clusterOf(name: string, settings: ServiceSettings, identities: readonly string[], fail: Fail, portable = false): Uint8Array {
  const c: DeepPartial<Cluster> = {
    name,
    type: Cluster_DiscoveryType.EDS,
    edsClusterConfig: { edsConfig: ADS, serviceName: name },
    lbPolicy: portable ? Cluster_LbPolicy.ROUND_ROBIN : (LB[settings.balancer] ?? fail('settings.balancer', `${JSON.stringify(settings.balancer)} has no xDS lb_policy`)),
    outlierDetection: outlierOf(settings, fail),
    transportSocket: tlsOf(identities, fail),
    ...(speaksH2(settings.protocol) && { typedExtensionProtocolOptions: H2_PROTOCOL_OPTIONS }),
  };
  return ClusterCodec.encode(c);
}

function socketOf(e: ServiceEndpoint, fail: Fail, field: string): { address: string; portValue: number } {
  // No leading zeros in the port, no IPv6 zone index: the client would read back another address.
  const m = /^(?:\[([^\]%]+)\]|([^:[\]%]+)):([1-9]\d{0,4})$/.exec(e.address);
  const host = m?.[1] ?? m?.[2] ?? '';
  const port = Number(m?.[3]);
  const family = isIP(host);
  if (!m || family === 0 || (m[1] !== undefined) !== (family === 6)) fail(`${field}.address`, `${JSON.stringify(e.address.slice(0, 100))} is not ip:port or [ipv6]:port (clients take IP literals only, gRFC A27)`);
  if (host === '0.0.0.0' || /^[0:]+$/.test(host)) fail(`${field}.address`, `${e.address} is the unspecified address, not an endpoint`);
  if (port < 1 || port > 65535) fail(`${field}.address`, `${m![3]} is not a port (1-65535)`);
  return { address: host, portValue: port };
}

/** Endpoints by zone ('' first), each list sorted by address. */
export function loadAssignmentOf(name: string, endpoints: readonly ServiceEndpoint[], fail: Fail): Uint8Array {
  const zones = new Map<string, Array<{ key: string; e: ServiceEndpoint; i: number }>>();
  const seen = new Set<string>();
  endpoints.forEach((e, i) => {
    const field = `endpoints[${i}]`;
    socketOf(e, fail, field);
    if (seen.has(e.address)) fail(`${field}.address`, `${e.address} is listed twice`);
    seen.add(e.address);
    if (!Number.isInteger(e.weight) || e.weight < 1 || e.weight > MAX_UINT32) fail(`${field}.weight`, `${e.weight} is not an integer 1..2^32-1`);
    const zone = e.zone ?? '';
    const list = zones.get(zone) ?? [];
    list.push({ key: e.address, e, i });
    zones.set(zone, list);
  });
  const localities: Array<DeepPartial<LocalityLbEndpoints>> = [...zones.keys()].sort().map((zone) => {
    const list = zones.get(zone)!.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const sum = list.reduce((s, x) => s + x.e.weight, 0);
    if (sum > MAX_UINT32) fail('endpoints', `the weights of zone ${JSON.stringify(zone)} sum to more than 2^32 - 1`);
    return {
      locality: zone === '' ? {} : { zone },
      lbEndpoints: list.map((x) => ({ endpoint: { address: { socketAddress: socketOf(x.e, fail, `endpoints[${x.i}]`) } }, healthStatus: HealthStatus.HEALTHY, loadBalancingWeight: x.e.weight })),
      loadBalancingWeight: sum,
    };
  });
  const cla: DeepPartial<ClusterLoadAssignment> = { clusterName: name, endpoints: localities };
  return ClusterLoadAssignmentCodec.encode(cla);
}
