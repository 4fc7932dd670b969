/**
 * What the embedded control plane serves a client about one outbound service: the project's typed
 * ServiceSpec plus what xDS needs that it lacks (the port, the cluster domain, the expected SPIFFE
 * IDs), the names istiod's proxyless generator gives its resources, and the one error the
 * generator throws. Pure.
 */
import { SidecarlessError } from '../../errors.js';
import type { ServiceSpec } from '../../outbound/settings.js';
import { DEFAULT_CLUSTER_DOMAIN, serviceHostnames } from '../../outbound/router.js';
import { MAX_DURATION_MS } from '../../control-plane/xds/translate/result.js';

export { DEFAULT_CLUSTER_DOMAIN };

export interface OutboundServiceInput {
  /** `name` is the Kubernetes service name (a DNS label), `namespace` its namespace. */
  readonly spec: ServiceSpec;
  readonly port: number;
  /**
   * The SPIFFE IDs its endpoints may present (the Cluster's match_subject_alt_names), in order.
   * Default: `[spec.identity]`. Every endpoint's identity (and identities) must be among them.
   */
  readonly identities?: readonly string[];
}

export interface GenerateOptions {
  /** Default cluster.local. */
  readonly clusterDomain?: string;
  /**
   * true: every Cluster says ROUND_ROBIN, the one lb_policy every proxyless gRPC client takes
   * (grpc-js-xds 1.14 NACKs LEAST_REQUEST and RANDOM: "load_balancing_policy unset and unsupported
   * lb_policy"); our clients then balance round-robin. Default false: the service's balancer.
   */
  readonly portableLbPolicy?: boolean;
}

/** A service the generator cannot express as resources a client would accept: nothing is emitted. */
export class XdsGenerateError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly field: string,
    message: string,
  ) {
    super('ERR_SIDECARLESS_XDS_GENERATE', `service ${JSON.stringify(service.slice(0, 200))} ${field}: ${message}; nothing was generated: change the service or leave it out`);
  }
}

/** istiod's names for one service port. */
export interface ServiceNames {
  readonly fqdn: string;
  /** Listener `fqdn:port` (also the virtual host's name). */
  readonly listener: string;
  /** RouteConfiguration, Cluster and ClusterLoadAssignment: `outbound|port||fqdn`. */
  readonly cluster: string;
  /** The Kubernetes forms with and without the port. */
  readonly domains: readonly string[];
}

export function serviceNames(name: string, namespace: string, port: number, clusterDomain: string): ServiceNames {
  // The Kubernetes forms the mesh's own router gives a service (name, name.ns, name.ns.svc, fqdn).
  const forms = serviceHostnames(name, namespace, clusterDomain);
  const fqdn = forms[3]!;
  return { fqdn, listener: `${fqdn}:${port}`, cluster: `outbound|${port}||${fqdn}`, domains: forms.flatMap((d) => [d, `${d}:${port}`]) };
}

export type Fail = (field: string, message: string) => never;

/** Milliseconds as a protobuf Duration: whole, 0 .. MAX_DURATION_MS (what clients accept), else refused. */
export function durationOf(ms: number, fail: Fail, field: string): { seconds: number; nanos: number } {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_DURATION_MS) fail(field, `${ms} is not whole milliseconds from 0 to ${MAX_DURATION_MS} (31 days)`);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
