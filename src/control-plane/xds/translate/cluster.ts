/**
 * A Cluster (CDS) → the service settings it implies, over a base the mesh already has (its
 * options' defaults): the EDS name to subscribe to, the balancer, failure accrual from
 * outlier_detection, and the expected SPIFFE IDs from its UpstreamTlsContext (upstream-tls.ts).
 *
 * - type must be EDS, its eds_config ADS (or self); `service_name` overrides the EDS name.
 * - lb_policy ROUND_ROBIN → round-robin, LEAST_REQUEST → least-request, RANDOM → random; ring
 *   hash, Maglev and the rest are reasons.
 * - outlier_detection → failure accrual: consecutive_5xx (default 5) → consecutiveFailures,
 *   base_ejection_time (default 30 s) → minMs, max_ejection_time (default 300 s) → maxMs; when
 *   enforcing_consecutive_5xx is 0 nothing ejects. Success-rate, failure-percentage and gateway
 *   failure detection, and a max_ejection_percent other than 100, are reasons when set; Envoy's
 *   defaults for them are noted (the mesh never ejects below one ready endpoint). No
 *   outlier_detection: the base's accrual stays (istiod never sends one).
 * - circuit_breakers thresholds are reasons; connect_timeout is noted (not configurable).
 * - typed_extension_protocol_options: explicit HTTP/2 (istiod's grpc/http2 ports) → protocol
 *   'http2' (upstream-protocol.ts); any other shape is a reason; none: the base's protocol.
 * - No transport_socket: no identity from the Cluster (istiod sends TLS only for ISTIO_MUTUAL);
 *   the mesh still never sends plaintext, and the caller supplies the identity. Pure.
 */
import { type Cluster, Cluster_DiscoveryType, Cluster_LbPolicy, type OutlierDetection } from '../../../proto/envoy/config/cluster/v3/cluster.js';
import type { BalancerKind } from '../../../outbound/balancer/types.js';
import { type FailureAccrualSettings, failureAccrualSettings } from '../../../outbound/balancer/failure-accrual.js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceSettings } from '../../../outbound/settings.js';
import { checkConfigSource } from './config-source.js';
import { Findings, durationMs, quote, type Translation } from './result.js';
import { expectedIdentities } from './upstream-tls.js';
import { upstreamProtocol } from './upstream-protocol.js';
import { CIRCUIT_BREAKERS, CLUSTER, EDS_CLUSTER_CONFIG, OUTLIER_DETECTION, THRESHOLDS } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

export interface ClusterSpec {
  readonly name: string;
  /** The ClusterLoadAssignment to subscribe to. */
  readonly edsName: string;
  readonly settings: ServiceSettings;
  /** SPIFFE IDs its endpoints may present; empty when the Cluster carries no TLS context. */
  readonly identities: readonly string[];
}

const BALANCERS: Record<number, BalancerKind> = {
  [Cluster_LbPolicy.ROUND_ROBIN]: 'round-robin',
  [Cluster_LbPolicy.LEAST_REQUEST]: 'least-request',
  [Cluster_LbPolicy.RANDOM]: 'random',
};
const LB_NAMES = Object.fromEntries(Object.entries(Cluster_LbPolicy).map(([k, v]) => [v, k]));
const TYPE_NAMES = Object.fromEntries(Object.entries(Cluster_DiscoveryType).map(([k, v]) => [v, k]));

function accrualOf(o: OutlierDetection, f: Findings): FailureAccrualSettings | false {
  const at = 'outlier_detection';
  refuseUnknown(o, f, at, OUTLIER_DETECTION);
  const unsupported: Array<[keyof OutlierDetection, string]> = [
    ['enforcingSuccessRate', 'enforcing_success_rate'],
    ['successRateMinimumHosts', 'success_rate_minimum_hosts'],
    ['successRateRequestVolume', 'success_rate_request_volume'],
    ['successRateStdevFactor', 'success_rate_stdev_factor'],
    ['consecutiveGatewayFailure', 'consecutive_gateway_failure'],
    ['failurePercentageThreshold', 'failure_percentage_threshold'],
    ['enforcingFailurePercentage', 'enforcing_failure_percentage'],
    ['failurePercentageMinimumHosts', 'failure_percentage_minimum_hosts'],
    ['failurePercentageRequestVolume', 'failure_percentage_request_volume'],
  ];
  for (const [key, field] of unsupported) {
    const v = o[key];
    // enforcing_* = 0 says "off", which is what the mesh does anyway.
    if (v !== undefined && !(field.startsWith('enforcing_') && v === 0)) f.refuse(`${at}.${field}`, 'only consecutive-failure ejection is supported');
  }
  if (o.enforcingSuccessRate === undefined) f.note(`${at}.enforcing_success_rate`, 'Envoy\'s default success-rate ejection is not run (set it to 0 to say so)');
  if (o.maxEjectionPercent !== undefined && o.maxEjectionPercent !== 100) f.refuse(`${at}.max_ejection_percent`, 'only 100 is supported: the mesh ejects any endpoint but the last ready one');
  if (o.interval) f.note(`${at}.interval`, 'not used: ejections are decided as failures arrive, not on a sweep');
  const e5 = o.enforcingConsecutive5xx;
  if (e5 !== undefined && e5 !== 0 && e5 !== 100) f.refuse(`${at}.enforcing_consecutive_5xx`, 'only 0 (off) or 100 is supported');
  if (e5 === 0) return false;
  if (o.consecutive5xx === 0) f.refuse(`${at}.consecutive_5xx`, 'must be at least 1');
  const minMs = o.baseEjectionTime ? durationMs(o.baseEjectionTime, f, `${at}.base_ejection_time`) : 30_000;
  const maxMs = o.maxEjectionTime ? durationMs(o.maxEjectionTime, f, `${at}.max_ejection_time`) : Math.max(300_000, minMs ?? 0);
  if (minMs === undefined || maxMs === undefined) return false;
  if (maxMs < minMs) {
    f.refuse(`${at}.max_ejection_time`, 'must not be shorter than base_ejection_time');
    return false;
  }
  return failureAccrualSettings({ consecutiveFailures: Math.max(1, o.consecutive5xx ?? 5), minMs, maxMs });
}

export function translateCluster(c: Cluster, base: ServiceSettings = DEFAULT_SERVICE_SETTINGS): Translation<ClusterSpec> {
  const f = new Findings(`Cluster ${quote(c.name)}`);
  if (c.name === '') f.refuse('name', 'is empty');
  refuseUnknown(c, f, '', CLUSTER);
  refuseUnknown(c.edsClusterConfig, f, 'eds_cluster_config', EDS_CLUSTER_CONFIG);
  refuseUnknown(c.circuitBreakers, f, 'circuit_breakers', CIRCUIT_BREAKERS);
  if (c.type !== Cluster_DiscoveryType.EDS) {
    f.refuse('type', c.type === undefined ? 'not set (a cluster_type extension, such as aggregate, is not supported): must be EDS' : `${TYPE_NAMES[c.type] ?? c.type} is not supported: must be EDS`);
  }
  checkConfigSource(c.edsClusterConfig?.edsConfig, f, 'eds_cluster_config.eds_config');
  const balancer = BALANCERS[c.lbPolicy];
  if (balancer === undefined) f.refuse('lb_policy', `${LB_NAMES[c.lbPolicy] ?? c.lbPolicy} is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM)`);
  const accrual = c.outlierDetection ? accrualOf(c.outlierDetection, f) : base.accrual;
  c.circuitBreakers?.thresholds.forEach((t, i) => {
    refuseUnknown(t, f, `circuit_breakers.thresholds[${i}]`, THRESHOLDS);
    if (t.maxConnections !== undefined || t.maxPendingRequests !== undefined || t.maxRequests !== undefined || t.maxRetries !== undefined || t.priority !== 0) {
      f.refuse(`circuit_breakers.thresholds[${i}]`, 'circuit breaking is not supported');
    }
  });
  if (c.connectTimeout) f.note('connect_timeout', 'not used: connect timeouts are the mesh\'s own');
  const identities = c.transportSocket ? expectedIdentities(c.transportSocket, f) : [];
  const protocol = upstreamProtocol(c.typedExtensionProtocolOptions, base.protocol, f);
  const edsName = c.edsClusterConfig?.serviceName || c.name;
  return f.result({ name: c.name, edsName, settings: { ...base, protocol, balancer: balancer ?? base.balancer, accrual }, identities });
}
