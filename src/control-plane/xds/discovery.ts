/**
 * The SotW ADS messages as the protocol state machine sees them, and the four resource types a
 * proxyless client asks for. Field names are the proto fields in camelCase
 * (`envoy/service/discovery/v3/discovery.proto`: DiscoveryRequest version_info = 1, node = 2,
 * resource_names = 3, type_url = 4, response_nonce = 5, error_detail = 6; DiscoveryResponse
 * version_info = 1, resources = 2, type_url = 4, nonce = 5), so these shapes map 1:1 onto the codecs
 * generated from the project's own .proto files (src/proto/), which carry them on the wire. Only
 * what the client reads or sends is declared: canary, control_plane and resource_errors of a
 * response are not read; resource_locators of a request is never sent.
 */

/** `google.protobuf.Any`: a resource as it arrives, still encoded. */
export interface Any {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

/** `google.rpc.Status` as a NACK carries it (`details` is never sent). */
export interface Status {
  readonly code: number;
  readonly message: string;
}

/** `envoy.service.discovery.v3.DiscoveryRequest`. `Node` is the node message (config.core.v3.Node). */
export interface DiscoveryRequest<Node = unknown> {
  readonly versionInfo: string;
  /** Only on the first request of a stream (xds_protocol.rst: "only the first request on a stream is guaranteed to carry the node identifier"). */
  readonly node?: Node;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  /** Present on a NACK, and only there: servers tell a NACK by its presence. */
  readonly errorDetail?: Status;
}

/** `envoy.service.discovery.v3.DiscoveryResponse`. */
export interface DiscoveryResponse {
  readonly versionInfo: string;
  readonly resources: readonly Any[];
  readonly typeUrl: string;
  readonly nonce: string;
}

/** What a resource decoder makes of one resource: its name and its typed value. */
export interface Decoded {
  readonly name: string;
  readonly value: unknown;
}

/**
 * Decodes and validates one resource of `typeUrl`, or throws the reason it cannot be used (the
 * reason is the thrown Error's message, and goes into the NACK). A decoder that could read the
 * resource's name before finding it unusable says so by throwing a `ResourceRejection`: the NACK
 * then names the resource, and the name counts as delivered (it exists, it is just not usable),
 * which keeps it from being reported as not existing.
 */
export type Decode = (typeUrl: string, resource: Any) => Decoded;

/** A resource the decoder could name but not use. */
export class ResourceRejection extends Error {
  constructor(
    readonly resourceName: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'ResourceRejection';
  }
}

export const LISTENER_TYPE_URL = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE_URL = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT_TYPE_URL = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

/** The special resource name of a wildcard subscription (LDS and CDS only). */
export const WILDCARD = '*';

/** `google.rpc.Code.INVALID_ARGUMENT`: the code our NACKs carry. */
export const INVALID_ARGUMENT = 3;

export interface ResourceTypeTraits {
  /** The short name used in messages and status: LDS, RDS, CDS, EDS. */
  readonly short: 'LDS' | 'RDS' | 'CDS' | 'EDS';
  /**
   * Listener and Cluster: every response carries the full set ("state of the world"), so a
   * resource seen before and missing from a response is deleted; a wildcard subscription is
   * allowed. RouteConfiguration and ClusterLoadAssignment: a response may carry only some
   * resources; deletion is implied by the parent no longer naming them (xds_protocol.rst,
   * "Deleting Resources").
   */
  readonly fullState: boolean;
}

export const RESOURCE_TYPES: ReadonlyMap<string, ResourceTypeTraits> = new Map<string, ResourceTypeTraits>([
  [LISTENER_TYPE_URL, { short: 'LDS', fullState: true }],
  [ROUTE_CONFIGURATION_TYPE_URL, { short: 'RDS', fullState: false }],
  [CLUSTER_TYPE_URL, { short: 'CDS', fullState: true }],
  [CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, { short: 'EDS', fullState: false }],
]);
