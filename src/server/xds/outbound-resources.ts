/**
 * The embedded control plane's outbound resources: services in the project's typed model → the
 * xDS resources istiod's proxyless (GENERATOR=grpc) generator would serve for them (research §2.4),
 * encoded with our codecs, by type URL and name. The inverse of control-plane/xds/: a client
 * running our translators and XdsTree reads back the services, routes, splits, settings and
 * endpoints it was given (docs/control-planes.md "Resources the embedded control plane serves").
 *
 * Per service port (`payments` in `default`, port 8080, domain cluster.local):
 *   Listener              payments.default.svc.cluster.local:8080  api_listener → HCM, RDS over ADS, [router]
 *   RouteConfiguration    outbound|8080||payments.default.svc.cluster.local  one virtual host
 *   Cluster               outbound|8080||payments.default.svc.cluster.local  EDS, TLS with the SPIFFE IDs
 *   ClusterLoadAssignment outbound|8080||payments.default.svc.cluster.local  (omitted while endpoints are pending)
 * The virtual host's routes are the service's, in order, then a catch-all (`default`) with the
 * service's own policy and split (or its own cluster). A split backend names another service of
 * the input (`name` in the same namespace, or `name.namespace`): its cluster.
 *
 * Whole or nothing: a service the resources cannot express exactly (a split to an unknown
 * service, an endpoint given by host name, a regex RE2 refuses or reads differently, a retry
 * xDS cannot say) throws XdsGenerateError naming the service and field, rather than serve a
 * resource clients would NACK or read differently. Deterministic: the same input gives the same
 * bytes, and a resource whose inputs did not change keeps its bytes (the SotW server compares
 * bytes to decide what to push). Pure.
 */
import { ListenerCodec } from '../../proto/envoy/config/listener/v3/listener.js';
import { RouteConfigurationCodec } from '../../proto/envoy/config/route/v3/route.js';
import { HttpConnectionManagerCodec } from '../../proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../proto/envoy/extensions/filters/http/router/v3/router.js';
import { ClusterCodec } from '../../proto/envoy/config/cluster/v3/cluster.js';
import { ClusterLoadAssignmentCodec } from '../../proto/envoy/config/endpoint/v3/endpoint.js';
import { packAny } from '../../proto/any-pack.js';
import type { ServiceSpec } from '../../outbound/settings.js';
import { clusterOf, loadAssignmentOf } from './outbound-cluster.js';
import { DEFAULT_CLUSTER_DOMAIN, type GenerateOptions, type OutboundServiceInput, serviceNames, type ServiceNames, XdsGenerateError } from './outbound-model.js';
import { type ClusterOf, routeOf } from './outbound-routes.js';

export { DEFAULT_CLUSTER_DOMAIN, type GenerateOptions, type OutboundServiceInput, serviceNames, XdsGenerateError } from './outbound-model.js';

export const TYPE_URLS = {
  listener: ListenerCodec.typeUrl,
  routes: RouteConfigurationCodec.typeUrl,
  cluster: ClusterCodec.typeUrl,
  endpoints: ClusterLoadAssignmentCodec.typeUrl,
} as const;

/** Encoded resources (each the bytes of the message an Any carries) by type URL, then name. */
export type OutboundResources = ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const ROUTER_FILTER = { name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) };

interface Prepared {
  readonly input: OutboundServiceInput;
  readonly names: ServiceNames;
  readonly identities: readonly string[];
  readonly fail: (field: string, message: string) => never;
}

function failFor(spec: ServiceSpec): Prepared['fail'] {
  return (field, message) => {
    throw new XdsGenerateError(`${spec.name}.${spec.namespace}`, field, message);
  };
}

function prepare(input: OutboundServiceInput, domain: string): Prepared {
  const s = input.spec;
  const fail = failFor(s);
  if (!LABEL.test(s.name)) fail('name', 'must be a Kubernetes service name (a lower-case DNS label)');
  if (!LABEL.test(s.namespace)) fail('namespace', 'must be a Kubernetes namespace (a lower-case DNS label)');
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) fail('port', `${input.port} is not a port (1-65535)`);
  const identities = input.identities ?? [s.identity];
  if (!identities.includes(s.identity)) fail('identity', `${JSON.stringify(s.identity)} is not among the expected identities`);
  // The Cluster names one set of SPIFFE IDs for all its endpoints: each endpoint must accept exactly
  // that set (a narrower one would be widened for it: refused, never widened).
  const want = [...new Set(identities)].sort().join(' ');
  (s.endpoints ?? []).forEach((e, i) => {
    const ids = e.identities ?? [e.identity];
    if (!ids.includes(e.identity) || [...new Set(ids)].sort().join(' ') !== want) {
      fail(`endpoints[${i}].identity`, `accepts ${JSON.stringify(ids)}, not the service's expected identities ${JSON.stringify(identities)} (the Cluster names one set for all its endpoints)`);
    }
  });
  return { input, names: serviceNames(s.name, s.namespace, input.port, domain), identities, fail };
}

function listenerOf(p: Prepared): Uint8Array {
  const hcm = { rds: { configSource: { ads: {}, resourceApiVersion: 2 }, routeConfigName: p.names.cluster }, httpFilters: [ROUTER_FILTER] };
  return ListenerCodec.encode({ name: p.names.listener, apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) } });
}

function routeConfigurationOf(p: Prepared, clusterFor: ClusterOf): Uint8Array {
  const s = p.input.spec;
  const own = p.names.cluster;
  const routes = s.routes.map((r, i) => routeOf(r, own, clusterFor, p.fail, `routes[${i}]`));
  // The catch-all: the service's own policy, to its split or its own cluster (istiod's `default`;
  // `default#2`, … when a route of the service has that name already).
  const taken = new Set(s.routes.map((r) => r.name));
  let name = 'default';
  for (let i = 2; taken.has(name); i++) name = `default#${i}`;
  const last = routeOf({ name, match: {}, policy: s.settings, ...(s.split && { split: s.split }) }, own, clusterFor, p.fail, 'default', { policy: 'settings', split: 'split' });
  const vh = { name: p.names.listener, domains: [...p.names.domains], routes: [...routes, last] };
  return RouteConfigurationCodec.encode({ name: p.names.cluster, virtualHosts: [vh] });
}

/** Split backend resolution: `name` in the same namespace, or `name.namespace`. */
function resolver(byKey: ReadonlyMap<string, Prepared>, from: Prepared): ClusterOf {
  return (service, field) => {
    const key = service.includes('.') ? service : `${service}.${from.input.spec.namespace}`;
    const to = byKey.get(key);
    if (to === undefined) {
      const known = [...byKey.keys()].sort();
      return from.fail(field, `${JSON.stringify(service.slice(0, 200))} is not a service this control plane serves (write name or name.namespace; known: ${known.slice(0, 10).join(', ')}${known.length > 10 ? `, … ${known.length - 10} more` : ''})`);
    }
    return to.names.cluster;
  };
}

/** Every service's resources; throws XdsGenerateError (and emits nothing) when one cannot be expressed. */
export function generateOutboundResources(services: readonly OutboundServiceInput[], o: GenerateOptions = {}): OutboundResources {
  const domain = o.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  if (!DOMAIN.test(domain)) throw new XdsGenerateError('*', 'clusterDomain', `${JSON.stringify(domain)} is not a DNS domain`);
  const byKey = new Map<string, Prepared>();
  for (const input of services) {
    const p = prepare(input, domain);
    const key = `${input.spec.name}.${input.spec.namespace}`;
    if (byKey.has(key)) p.fail('name', 'is given twice (one port per service)');
    byKey.set(key, p);
  }
  const out = new Map<string, Map<string, Uint8Array>>(Object.values(TYPE_URLS).map((t) => [t, new Map()]));
  // Sorted by name, so the maps iterate alike whatever order the services came in.
  for (const key of [...byKey.keys()].sort()) {
    const p = byKey.get(key)!;
    const s = p.input.spec;
    out.get(TYPE_URLS.listener)!.set(p.names.listener, listenerOf(p));
    out.get(TYPE_URLS.routes)!.set(p.names.cluster, routeConfigurationOf(p, resolver(byKey, p)));
    out.get(TYPE_URLS.cluster)!.set(p.names.cluster, clusterOf(p.names.cluster, s.settings, p.identities, p.fail, o.portableLbPolicy === true));
    if (s.endpoints !== undefined) out.get(TYPE_URLS.endpoints)!.set(p.names.cluster, loadAssignmentOf(p.names.cluster, s.endpoints, p.fail));
  }
  return out;
}

/**
 * `next` with every resource whose bytes equal `prev`'s for the same type and name replaced by
 * `prev`'s own array. A regeneration makes new arrays for everything; an ADS session compares
 * arrays by identity before it hashes (ads-session.ts), so after this a push costs a lookup per
 * resource for what did not change instead of a sort, a hash and a response per client.
 */
export function reuseUnchanged(next: OutboundResources, prev: OutboundResources | undefined): OutboundResources {
  if (prev === undefined) return next;
  const out = new Map<string, ReadonlyMap<string, Uint8Array>>();
  for (const [typeUrl, resources] of next) {
    const before = prev.get(typeUrl);
    if (before === undefined) {
      out.set(typeUrl, resources);
      continue;
    }
    const merged = new Map<string, Uint8Array>();
    for (const [name, bytes] of resources) {
      const old = before.get(name);
      merged.set(name, old !== undefined && Buffer.from(old.buffer, old.byteOffset, old.byteLength).equals(bytes) ? old : bytes);
    }
    out.set(typeUrl, merged);
  }
  return out;
}
