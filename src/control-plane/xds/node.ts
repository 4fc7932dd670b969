/**
 * The `envoy.config.core.v3.Node` the ADS client introduces itself with, built from the mesh's
 * config exactly as istiod reads a proxyless client (research §2.4, istio
 * pilot/pkg/model/context.go ParseServiceNodeWithMetadata, pkg/model/proxy.go NodeMetadata,
 * grpcgen_test.go GRPCBootstrap). Pure: no I/O.
 *
 * - id `sidecar~<IP>~<pod>.<ns>~<ns>.svc.cluster.local`: istiod takes the proxy's IP from
 *   INSTANCE_IPS or this second part, and refuses a node with no valid IP; the fourth part is the
 *   DNS domain it expands short host names with.
 * - metadata (a Struct, JSON names): GENERATOR `grpc` (selects istiod's proxyless generators: without
 *   it istiod sends Envoy's config), NAMESPACE, SERVICE_ACCOUNT, INSTANCE_IPS, NAME (the pod),
 *   LABELS, CLUSTER_ID when set, SIDECARLESS_ADVERTISE (controlPlane.advertise) when set: the
 *   address the embedded control plane registers the workload at (istiod ignores it). istiod checks NAMESPACE and SERVICE_ACCOUNT against the caller's
 *   authenticated identity (pilot/pkg/xds/auth.go checkConnectionIdentity) and refuses a mismatch
 *   with PermissionDenied: both come from the workload's SPIFFE ID, which must therefore be Istio's
 *   shape `spiffe://<td>/ns/<ns>/sa/<sa>` in the mesh's namespace.
 * - cluster `<service>.<namespace>` (istio-agent's service cluster shape), user_agent_name
 *   `sidecarless`, user_agent_version the package's version, client_features
 *   `envoy.lb.does_not_support_overprovisioning` (we apply no overprovisioning factor, as gRPC).
 */
import { isIP } from 'node:net';
import { ConfigError } from '../../errors.js';
import { kubernetesParts, parseWorkloadId } from '../../identity/spiffe-id.js';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';
import type { Struct, Value } from '../../proto/google/protobuf/struct.js';

export const USER_AGENT_NAME = 'sidecarless';
export const CLIENT_FEATURES: readonly string[] = Object.freeze(['envoy.lb.does_not_support_overprovisioning']);
/** What selects istiod's proxyless (gRPC) generators. */
export const GENERATOR = 'grpc';

export interface NodeInput {
  readonly service: string;
  readonly namespace: string;
  /** The workload's SPIFFE ID: its service account goes in SERVICE_ACCOUNT. */
  readonly spiffeId: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** The address the workload is reached at (the pod IP, INSTANCE_IP). */
  readonly ip: string | undefined;
  /** The pod's name; default the service's. */
  readonly pod?: string;
  /** Istio's cluster id (controlPlane.clusterId). */
  readonly clusterId?: string;
  /** sidecarless's version (user_agent_version). */
  readonly version: string;
  /** `host:port` to be registered at (controlPlane.advertise): SIDECARLESS_ADVERTISE metadata. */
  readonly advertise?: string;
}

/** The Node for `input`. Throws ConfigError (naming the option) for what istiod would refuse. */
export function buildNode(input: NodeInput): Node {
  const ip = checkIp(input.ip);
  const { namespace, serviceAccount } = identityParts(input.spiffeId, input.namespace);
  const pod = checkPod(input.pod ?? input.service);
  const fields = new Map<string, Value>([
    ['GENERATOR', str(GENERATOR)],
    ['NAMESPACE', str(namespace)],
    ['SERVICE_ACCOUNT', str(serviceAccount)],
    ['INSTANCE_IPS', str(ip)],
    ['NAME', str(pod)],
    ['LABELS', { structValue: stringStruct(input.labels ?? {}) }],
  ]);
  if (input.clusterId !== undefined) fields.set('CLUSTER_ID', str(input.clusterId));
  if (input.advertise !== undefined) fields.set('SIDECARLESS_ADVERTISE', str(input.advertise));
  return {
    id: `sidecar~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: `${input.service}.${namespace}`,
    metadata: { fields },
    userAgentName: USER_AGENT_NAME,
    userAgentVersion: input.version,
    clientFeatures: [...CLIENT_FEATURES],
  };
}

function str(stringValue: string): Value {
  return { stringValue };
}

function stringStruct(record: Readonly<Record<string, string>>): Struct {
  return { fields: new Map(Object.entries(record).map(([k, v]) => [k, str(v)])) };
}

function checkIp(ip: string | undefined): string {
  if (ip === undefined || ip === '') {
    const message = "is required with a control plane: istiod finds the workload (its inbound listener, its endpoints) by the IP in the node id, and refuses a node without one. Give the pod's IP (status.podIP, INSTANCE_IP)";
    throw new ConfigError(`the advertised IP ${message}`, [{ path: 'ip', message }]);
  }
  if (isIP(ip) === 0) {
    const message = `must be an IPv4 or IPv6 address (the pod's IP), not ${JSON.stringify(ip.slice(0, 100))}: istiod reads the node's address from it`;
    throw new ConfigError(`the advertised IP ${message}`, [{ path: 'ip', message }]);
  }
  return ip;
}

/** A pod's name is a DNS subdomain (RFC 1123): nothing that could add a `~` part to the node id. */
function checkPod(pod: string): string {
  if (pod.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(pod)) {
    const message = `must be a Kubernetes pod name (lower-case letters, digits, '-' and '.'), not ${JSON.stringify(pod.slice(0, 100))}: it goes into the node id istiod parses`;
    throw new ConfigError(`the pod name ${message}`, [{ path: 'pod', message }]);
  }
  return pod;
}

function identityParts(spiffeId: string, namespace: string): { namespace: string; serviceAccount: string } {
  const parts = kubernetesParts(parseWorkloadId(spiffeId));
  if (parts.namespace === undefined || parts.serviceAccount === undefined) {
    const message = `must have Istio's shape spiffe://<trust domain>/ns/<namespace>/sa/<service account> to join an Istio control plane (istiod authenticates the workload as that and checks it against the node's SERVICE_ACCOUNT), got ${spiffeId}`;
    throw new ConfigError(`the SPIFFE ID ${message}`, [{ path: 'spiffeId', message }]);
  }
  if (parts.namespace !== namespace) {
    const message = `names namespace "${parts.namespace}" but the mesh's namespace is "${namespace}": istiod refuses an xDS client whose NAMESPACE is not its identity's (PermissionDenied). Make them the same`;
    throw new ConfigError(`the SPIFFE ID ${spiffeId} ${message}`, [{ path: 'spiffeId', message }]);
  }
  return { namespace, serviceAccount: parts.serviceAccount };
}
