/**
 * RouteConfiguration (RDS, or inline in a Listener) → a route table: virtual hosts by domain, each
 * with its routes in order (first match wins, as ours). A route's split names xDS clusters
 * (`outbound|8080|v2|payments.default.svc.cluster.local`); turning clusters into mesh services is
 * the caller's (a later step), so a single `cluster` is a split of one backend of weight 1.
 * Domains: exact names, a leading `*` (suffix), a trailing `.*` (prefix) or `*` alone, lower-cased,
 * as the snapshot's hostnames (validate.ts), plus `[v6]:port` VIPs;
 * a domain listed by two virtual hosts is a reason (Envoy's rule too). Pure.
 */
import type { RouteConfiguration, Route, VirtualHost } from '../../../proto/envoy/config/route/v3/route.js';
import type { RouteSpec, SplitBackend } from '../../../outbound/settings.js';
import { validHostname } from '../../validate.js';
import { Findings, quote, type Translation } from './result.js';
import { translateMatch } from './route-match.js';
import { policyOf } from './route-policy.js';
import { CLUSTER_WEIGHT, ROUTE, ROUTE_ACTION, ROUTE_CONFIGURATION, VIRTUAL_HOST, WEIGHTED_CLUSTER } from './envoy-fields.js';
import { checkPerFilterConfig } from './per-filter-config.js';
import { refuseUnknown } from './unknown-fields.js';

export interface VirtualHostSpec {
  readonly name: string;
  /** Lower case; `*`, `*suffix`, `prefix*` or exact, optional `:port`. */
  readonly domains: readonly string[];
  /** In order; each route's split names clusters. */
  readonly routes: readonly RouteSpec[];
}

export interface RouteTable {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHostSpec[];
}

export interface RouteContext {
  /** The HttpConnectionManager's default request timeout (common_http_protocol_options.max_stream_duration). */
  readonly defaultTimeoutMs?: number;
}

const MAX_TOTAL_WEIGHT = 0xffff_ffff;
const IPV6_DOMAIN = /^\[[0-9a-f:.]+\](:\d{1,5})?$/;

function splitOf(r: Route, f: Findings, at: string): SplitBackend[] | undefined {
  const a = r.route!;
  if (a.cluster !== undefined) {
    if (a.cluster === '') f.refuse(`${at}.route.cluster`, 'is empty');
    return [{ service: a.cluster, weight: 1 }];
  }
  if (a.weightedClusters !== undefined) {
    const wat = `${at}.route.weighted_clusters`;
    refuseUnknown(a.weightedClusters, f, wat, WEIGHTED_CLUSTER);
    const list = a.weightedClusters.clusters;
    let total = 0;
    const seen = new Set<string>();
    const split = list.map((c, i) => {
      refuseUnknown(c, f, `${wat}.clusters[${i}]`, CLUSTER_WEIGHT);
      checkPerFilterConfig(c.typedPerFilterConfig, f, `${wat}.clusters[${i}]`);
      if (c.name === '') f.refuse(`${at}.route.weighted_clusters.clusters[${i}].name`, 'is empty');
      if (seen.has(c.name)) f.refuse(`${at}.route.weighted_clusters.clusters[${i}].name`, `${quote(c.name)} is listed twice`);
      seen.add(c.name);
      total += c.weight ?? 0;
      return { service: c.name, weight: c.weight ?? 0 };
    });
    if (list.length === 0 || total === 0) f.refuse(`${at}.route.weighted_clusters`, 'needs at least one cluster with a weight > 0');
    if (total > MAX_TOTAL_WEIGHT) f.refuse(`${at}.route.weighted_clusters`, 'weights sum to more than 2^32 - 1');
    const tw = a.weightedClusters.totalWeight;
    if (tw !== undefined && tw !== total) f.refuse(`${wat}.total_weight`, `${tw} is not the sum of the weights (${total}), as Envoy requires`);
    return split;
  }
  f.refuse(`${at}.route.cluster_specifier`, 'neither cluster nor weighted_clusters is set (cluster_header and plugins are not supported)');
  return undefined;
}

function routeOf(r: Route, i: number, vh: VirtualHost, ctx: RouteContext, f: Findings, vhAt: string): RouteSpec | undefined {
  const at = `${vhAt}.routes[${i}]`;
  const match = translateMatch(r.match, f, `${at}.match`);
  if (r.nonForwardingAction !== undefined) f.refuse(`${at}.non_forwarding_action`, 'is for server-side (inbound) listeners, not a client route');
  else if (r.route === undefined) f.refuse(`${at}.action`, 'no route action is set (redirect, direct_response and filter_action are not supported)');
  refuseUnknown(r, f, at, ROUTE);
  checkPerFilterConfig(r.typedPerFilterConfig, f, at);
  if (r.route === undefined || r.nonForwardingAction !== undefined) return undefined;
  refuseUnknown(r.route, f, `${at}.route`, ROUTE_ACTION);
  const split = splitOf(r, f, at);
  const policy = policyOf(r.route, vh.retryPolicy, ctx.defaultTimeoutMs, f, `${at}.route`, vhAt);
  const spec: RouteSpec = { name: r.name !== '' ? r.name : `#${i}`, match, policy, ...(split && { split }) };
  if (ctx.defaultTimeoutMs === undefined && r.route.maxStreamDuration?.maxStreamDuration === undefined && r.route.timeout === undefined) TIMEOUT_UNSET.add(spec);
  return spec;
}

/** Routes of an RDS table that set no timeout: the Listener's HCM default applies to them (xds-tree.ts). */
const TIMEOUT_UNSET = new WeakSet<RouteSpec>();

/**
 * `route` with `defaultTimeoutMs` (its Listener's HttpConnectionManager default, gRFC A31) when the
 * route set no timeout of its own; itself otherwise. Inline tables had the default applied already.
 */
export function withListenerTimeout(route: RouteSpec, defaultTimeoutMs: number | undefined): RouteSpec {
  if (defaultTimeoutMs === undefined || defaultTimeoutMs <= 0 || !TIMEOUT_UNSET.has(route)) return route;
  return { ...route, policy: { ...route.policy, timeout: { ...route.policy.timeout, requestMs: defaultTimeoutMs } } };
}

function domainsOf(vh: VirtualHost, f: Findings, at: string, owners: Map<string, string>): string[] {
  if (vh.domains.length === 0) f.refuse(`${at}.domains`, 'a virtual host needs at least one domain');
  return vh.domains.map((raw, i) => {
    const d = raw.toLowerCase();
    if (!validHostname(d) && !IPV6_DOMAIN.test(d)) f.refuse(`${at}.domains[${i}]`, `${quote(raw)} is not a domain sidecarless routes (exact, "*", "*.suffix", "*-suffix", "prefix.*", optional :port; none after ".*")`);
    const owner = owners.get(d);
    if (owner !== undefined) f.refuse(`${at}.domains[${i}]`, `${quote(raw)} is also a domain of virtual host ${quote(owner)}`);
    owners.set(d, vh.name);
    return d;
  });
}

/** Translates a RouteConfiguration; `resource` names it in reasons (`RouteConfiguration "name"`, or the Listener's inline one). */
export function translateRouteConfiguration(rc: RouteConfiguration, ctx: RouteContext = {}, resource = `RouteConfiguration ${quote(rc.name)}`, at = ''): Translation<RouteTable> {
  const f = new Findings(resource);
  const value = routeTableOf(rc, ctx, f, at);
  return f.result(value);
}

/** The walk itself, reporting into `f` (listener.ts reuses it for an inline route_config). */
export function routeTableOf(rc: RouteConfiguration, ctx: RouteContext, f: Findings, at: string): RouteTable {
  const owners = new Map<string, string>();
  const rcAt = at.endsWith('.') ? at.slice(0, -1) : at;
  refuseUnknown(rc, f, rcAt, ROUTE_CONFIGURATION);
  checkPerFilterConfig(rc.typedPerFilterConfig, f, rcAt);
  const virtualHosts = rc.virtualHosts.map((vh, v) => {
    const vhAt = `${at}virtual_hosts[${v}]`;
    refuseUnknown(vh, f, vhAt, VIRTUAL_HOST);
    checkPerFilterConfig(vh.typedPerFilterConfig, f, vhAt);
    const domains = domainsOf(vh, f, vhAt, owners);
    const routes: RouteSpec[] = [];
    vh.routes.forEach((r, i) => {
      const x = routeOf(r, i, vh, ctx, f, vhAt);
      if (x) routes.push(x);
    });
    return { name: vh.name, domains, routes };
  });
  return { name: rc.name, virtualHosts };
}
