/**
 * ClusterLoadAssignment (EDS) → the endpoints a service balances over.
 *
 * - Health: only HEALTHY and UNKNOWN endpoints are used (UNHEALTHY, DRAINING, TIMEOUT, DEGRADED
 *   and unknown values are left out, as gRFC A27 does).
 * - Priorities: the lowest priority with a usable endpoint is used whole; the others are standby
 *   (gRPC's rule; Envoy's overprovisioning spill-over is not done). Priorities must have no gaps.
 * - Weights: endpoint `load_balancing_weight` (default 1, 0 refused). When localities carry a
 *   `load_balancing_weight`, each locality gets its share: an endpoint's weight becomes
 *   locality weight × its share of the locality (scaled to integers); istiod sets the locality
 *   weight to the sum of its endpoints' weights, which leaves them unchanged. A locality of weight
 *   0 gets nothing; some localities weighted and others not is a reason.
 * - Address: `socket_address` with an IP literal and `port_value` (no named ports, no resolver,
 *   TCP only); each address once per cluster. `zone` ← locality.zone. Pure.
 */
import { isIP } from 'node:net';
import type { ClusterLoadAssignment, ClusterLoadAssignment_Policy, LbEndpoint, LocalityLbEndpoints } from '../../../proto/envoy/config/endpoint/v3/endpoint.js';
import { HealthStatus } from '../../../proto/envoy/config/core/v3/base.js';
import type { ServiceEndpoint } from '../../../outbound/settings.js';
import { Findings, quote, type Translation } from './result.js';
import { ADDRESS, CLA_POLICY, CLUSTER_LOAD_ASSIGNMENT, DROP_OVERLOAD, ENDPOINT, FRACTIONAL_PERCENT, LB_ENDPOINT, LOCALITY, LOCALITY_LB_ENDPOINTS, SOCKET_ADDRESS } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

/** Integer resolution when locality weights rescale endpoint weights. */
const SCALE = 1_000_000;
const USABLE = new Set<number>([HealthStatus.HEALTHY, HealthStatus.UNKNOWN]);

interface Candidate {
  readonly address: string;
  readonly weight: number;
  readonly zone: string;
}

function addressOf(e: LbEndpoint, f: Findings, at: string): string | undefined {
  refuseUnknown(e, f, at, LB_ENDPOINT);
  refuseUnknown(e.endpoint, f, `${at}.endpoint`, ENDPOINT);
  refuseUnknown(e.endpoint?.address, f, `${at}.endpoint.address`, ADDRESS);
  const sa = e.endpoint?.address?.socketAddress;
  if (sa === undefined) {
    f.refuse(`${at}.endpoint.address.socket_address`, 'is required (pipes and internal addresses are not supported)');
    return undefined;
  }
  const sat = `${at}.endpoint.address.socket_address`;
  refuseUnknown(sa, f, sat, SOCKET_ADDRESS);
  if (sa.protocol !== 0) f.refuse(`${sat}.protocol`, 'only TCP is supported');
  if (sa.resolverName !== '') f.refuse(`${sat}.resolver_name`, 'custom resolvers are not supported');
  if (sa.namedPort !== undefined) f.refuse(`${sat}.named_port`, 'named ports are not supported');
  const family = sa.address.includes('%') ? 0 : isIP(sa.address);
  if (family === 0) f.refuse(`${sat}.address`, `${quote(sa.address)} is not an IP literal (gRFC A27; no zone index)`);
  else if (sa.address === '0.0.0.0' || /^[0:]+$/.test(sa.address)) f.refuse(`${sat}.address`, `${sa.address} is the unspecified address, not an endpoint`);
  const port = sa.portValue;
  if (port === undefined || port < 1 || port > 65535) f.refuse(`${sat}.port_value`, `${port ?? 'unset'} is not a port (1-65535)`);
  return family === 6 ? `[${sa.address}]:${port}` : `${sa.address}:${port}`;
}

/** The usable endpoints of one locality, weights as sent. */
function localityOf(l: LocalityLbEndpoints, f: Findings, at: string, seen: Map<string, string>): Candidate[] {
  const out: Candidate[] = [];
  refuseUnknown(l, f, at, LOCALITY_LB_ENDPOINTS);
  refuseUnknown(l.locality, f, `${at}.locality`, LOCALITY);
  l.lbEndpoints.forEach((e, i) => {
    const eat = `${at}.lb_endpoints[${i}]`;
    const address = addressOf(e, f, eat);
    if (e.loadBalancingWeight === 0) f.refuse(`${eat}.load_balancing_weight`, 'must be at least 1');
    if (address === undefined) return;
    const first = seen.get(address);
    if (first !== undefined) f.refuse(`${eat}.endpoint.address`, `${address} is also ${first}`);
    seen.set(address, eat);
    if (USABLE.has(e.healthStatus)) out.push({ address, weight: e.loadBalancingWeight ?? 1, zone: l.locality?.zone ?? '' });
  });
  return out;
}

/**
 * The assignment's policy: overprovisioning_factor (istiod sets it) is noted, since the lowest
 * usable priority is used whole (no spill-over); a drop share above 0, endpoint_stale_after and
 * weighted_priority_health would change what is sent where, and are reasons.
 */
function checkPolicy(p: ClusterLoadAssignment_Policy, f: Findings): void {
  refuseUnknown(p, f, 'policy', CLA_POLICY);
  p.dropOverloads.forEach((d, i) => {
    const at = `policy.drop_overloads[${i}]`;
    refuseUnknown(d, f, at, DROP_OVERLOAD);
    refuseUnknown(d.dropPercentage, f, `${at}.drop_percentage`, FRACTIONAL_PERCENT);
    if ((d.dropPercentage?.numerator ?? 0) > 0) f.refuse(at, `dropping a share of requests (${quote(d.category)}) is not supported`);
    else f.note(at, 'no effect: drops 0 % of requests');
  });
  if (p.overprovisioningFactor !== undefined) f.note('policy.overprovisioning_factor', 'no effect: the lowest priority with a usable endpoint is used whole (no spill-over; gRPC\'s rule)');
  if (p.endpointStaleAfter !== undefined) f.refuse('policy.endpoint_stale_after', 'not supported: endpoints stay until the control plane replaces them');
  if (p.weightedPriorityHealth) f.refuse('policy.weighted_priority_health', 'not supported: an endpoint is usable or not (HEALTHY, UNKNOWN)');
}

/** Endpoint weights with locality weights applied (see the module comment). */
function weighted(groups: Array<{ lw: number | undefined; eps: Candidate[] }>, f: Findings): Candidate[] {
  const withLw = groups.filter((g) => g.lw !== undefined);
  if (withLw.length === 0) return groups.flatMap((g) => g.eps);
  if (withLw.length !== groups.length) {
    f.refuse('endpoints', 'some localities of the priority in use carry load_balancing_weight and others do not');
    return [];
  }
  const sums = groups.map((g) => g.eps.reduce((s, e) => s + e.weight, 0));
  if (groups.every((g, i) => g.lw === sums[i])) return groups.flatMap((g) => g.eps);
  const total = groups.reduce((s, g) => s + g.lw!, 0);
  if (total === 0) return [];
  return groups.flatMap((g, i) =>
    g.lw === 0 ? [] : g.eps.map((e) => ({ ...e, weight: Math.max(1, Math.round((SCALE * g.lw! * e.weight) / (total * sums[i]!))) })),
  );
}

/**
 * Translates a ClusterLoadAssignment; every endpoint presents `identity` (the Cluster's expected
 * SPIFFE ID, or the one the caller derives). `[]`: delivered, none usable.
 */
export function translateEndpoints(cla: ClusterLoadAssignment, identity: string): Translation<ServiceEndpoint[]> {
  const f = new Findings(`ClusterLoadAssignment ${quote(cla.clusterName)}`);
  refuseUnknown(cla, f, '', CLUSTER_LOAD_ASSIGNMENT);
  if (cla.policy) checkPolicy(cla.policy, f);
  const seen = new Map<string, string>();
  const byPriority = new Map<number, Array<{ lw: number | undefined; eps: Candidate[] }>>();
  const localities = new Map<string, number>();
  cla.endpoints.forEach((l, i) => {
    // One entry per locality and priority (gRPC's rule, A27): two would be two weights for one place.
    const key = JSON.stringify([l.locality?.region ?? '', l.locality?.zone ?? '', l.locality?.subZone ?? '', l.priority]);
    const first = localities.get(key);
    if (first !== undefined) f.refuse(`endpoints[${i}].locality`, `is the same locality and priority as endpoints[${first}]: list each locality once per priority`);
    else localities.set(key, i);
    const eps = localityOf(l, f, `endpoints[${i}]`, seen);
    const list = byPriority.get(l.priority) ?? [];
    list.push({ lw: l.loadBalancingWeight, eps });
    byPriority.set(l.priority, list);
  });
  const priorities = [...byPriority.keys()].sort((a, b) => a - b);
  if (priorities.some((p, i) => p !== i)) f.refuse('endpoints', `priorities must run 0, 1, 2 … without gaps; got ${priorities.join(', ')}`);
  const chosen = priorities.map((p) => byPriority.get(p)!).find((groups) => groups.some((g) => g.eps.length > 0 && g.lw !== 0));
  const list = chosen ? weighted(chosen, f) : [];
  return f.result(list.map((e) => ({ address: e.address, identity, weight: e.weight, ...(e.zone !== '' && { zone: e.zone }) })));
}
