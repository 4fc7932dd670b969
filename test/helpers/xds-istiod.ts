// istiod-shaped xDS resources (grpcgen's names and shapes, research §2.4) as the project's codecs
// encode them, for the loopback SotW server (xds-responder.ts).
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
import assert from 'node:assert/strict';
import type { XdsResponder } from './xds-responder.js';
import { createMesh, type Mesh } from '../../src/mesh.js';
import { devCa, quiet } from '../outbound/e2e/replicas.js';

export { CDS, EDS, LDS, RDS };
export const FQDN = 'payments.default.svc.cluster.local';
export const LISTENER = `${FQDN}:8080`;
export const ROUTES = `outbound|8080||${FQDN}`;
export const cluster = (subset: string) => `outbound|8080|${subset}|${FQDN}`;

export function listener(name = LISTENER, rds = ROUTES): Uint8Array {
  const hcm = { rds: { configSource: { ads: {} }, routeConfigName: rds }, httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) }] };
  return ListenerCodec.encode({ name, apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) } });
}
export const DOMAINS = ['payments', 'payments:8080', 'payments.default', 'payments.default:8080', FQDN, `${FQDN}:8080`];
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


/** payments' Listener, routes (`vhostRoutes`), clusters v1 and v2 with one endpoint each, pushed. */
export function serveIstiodShaped(x: XdsResponder, b: { v1: { address: string }; v2: { address: string } }, vhostRoutes: object[]): void {
  x.set(LDS, LISTENER, listener());
  x.set(RDS, ROUTES, routes(vhostRoutes));
  x.set(CDS, cluster('v1'), edsCluster(cluster('v1')));
  x.set(CDS, cluster('v2'), edsCluster(cluster('v2')));
  x.set(EDS, cluster('v1'), endpoints(cluster('v1'), [b.v1.address]));
  x.set(EDS, cluster('v2'), endpoints(cluster('v2'), [b.v2.address]));
  x.push();
}

/** The body of a 200 answer through the mesh; a failure says the URL, the error and its cause. */
export async function okText(m: { fetch(url: string, init?: RequestInit): Promise<Response> }, url: string, init?: RequestInit): Promise<string> {
  const r = await m.fetch(url, init).catch((e: Error) => {
    throw new Error(`${url}: ${e.message}: ${String((e.cause as Error | undefined)?.message ?? e.cause)}`);
  });
  assert.equal(r.status, 200, `${url}: ${r.status}`);
  return r.text();
}

/** A client mesh (dev-CA identity) whose controlPlane is `x`, at INSTANCE_IP 10.0.0.9. */
export async function xdsClient(x: XdsResponder, extra: Record<string, unknown> = {}): Promise<Mesh> {
  return createMesh(
    { service: 'client', identity: { ca: await devCa() }, controlPlane: { address: x.server.address, root: x.server.rootFile, token: 'good-token' }, logger: quiet, ...extra },
    { env: { INSTANCE_IP: '10.0.0.9' } },
  );
}
