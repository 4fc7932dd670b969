// istiod-shaped xDS resources for the tests and the bench (bench/xds.ts): one service,
// payments.default.svc.cluster.local:8080, whose Listener names its RouteConfiguration over ADS,
// whose routes name EDS Clusters `outbound|8080|<subset>|<fqdn>`, each with a ClusterLoadAssignment.
import { ClusterCodec } from '../../src/proto/envoy/config/cluster/v3/cluster.js';
import { ClusterLoadAssignmentCodec } from '../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { ListenerCodec } from '../../src/proto/envoy/config/listener/v3/listener.js';
import { RouteConfigurationCodec } from '../../src/proto/envoy/config/route/v3/route.js';
import { HttpConnectionManagerCodec } from '../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../src/proto/envoy/extensions/filters/http/router/v3/router.js';
import { packAny } from '../../src/proto/any-pack.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL as EDS,
  CLUSTER_TYPE_URL as CDS,
  LISTENER_TYPE_URL as LDS,
  ROUTE_CONFIGURATION_TYPE_URL as RDS,
} from '../../src/control-plane/xds/discovery.js';
import type { XdsResponder } from './xds-responder.js';

export const FQDN = 'payments.default.svc.cluster.local';
export const LISTENER = `${FQDN}:8080`;
export const ROUTES = `outbound|8080||${FQDN}`;
export const cluster = (subset: string) => `outbound|8080|${subset}|${FQDN}`;

export function listener(name = LISTENER, rds = ROUTES): Uint8Array {
  const hcm = { rds: { configSource: { ads: {} }, routeConfigName: rds }, httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) }] };
  return ListenerCodec.encode({ name, apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) } });
}
const DOMAINS = ['payments', 'payments:8080', 'payments.default', 'payments.default:8080', FQDN, `${FQDN}:8080`];
export function routes(vhostRoutes: object[], name = ROUTES): Uint8Array {
  return RouteConfigurationCodec.encode({ name, virtualHosts: [{ name: `${FQDN}:8080`, domains: DOMAINS, routes: vhostRoutes }] } as never);
}
export const toCluster = (prefix: string, c: string) => ({ match: { prefix }, route: { cluster: c, maxStreamDuration: { maxStreamDuration: { seconds: 5 } } } });
export const weighted = (list: Array<[string, number]>) => ({ match: { prefix: '/' }, route: { weightedClusters: { clusters: list.map(([name, weight]) => ({ name, weight })) } } });
export function edsCluster(name: string): Uint8Array {
  return ClusterCodec.encode({ name, type: 3, edsClusterConfig: { edsConfig: { ads: {} }, serviceName: name } });
}
export function endpoints(name: string, addresses: string[]): Uint8Array {
  const lbEndpoints = addresses.map((a) => {
    const [host, port] = a.split(':');
    return { endpoint: { address: { socketAddress: { address: host!, portValue: Number(port) } } } };
  });
  return ClusterLoadAssignmentCodec.encode({ clusterName: name, endpoints: [{ locality: { zone: 'z1' }, lbEndpoints }] } as never);
}

/** The whole tree on `x`: the Listener, `vhostRoutes`, and Clusters v1 and v2 with one endpoint each; pushed. */
export function serve(x: XdsResponder, b: { v1: { address: string }; v2: { address: string } }, vhostRoutes: object[]): void {
  x.set(LDS, LISTENER, listener());
  x.set(RDS, ROUTES, routes(vhostRoutes));
  x.set(CDS, cluster('v1'), edsCluster(cluster('v1')));
  x.set(CDS, cluster('v2'), edsCluster(cluster('v2')));
  x.set(EDS, cluster('v1'), endpoints(cluster('v1'), [b.v1.address]));
  x.set(EDS, cluster('v2'), endpoints(cluster('v2'), [b.v2.address]));
  x.push();
}
