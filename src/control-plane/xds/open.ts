/**
 * Opens the xDS control plane of a mesh configured with `controlPlane`: the node istiod expects
 * (node.ts), the decoder (decode.ts), the ADS transport over the pinned channel, and the
 * XdsControlPlane over the options' control plane. Loaded only when `controlPlane` is set
 * (mesh.ts imports it dynamically): a mesh without one loads none of the xDS code.
 *
 * The node's IP is the pod's: `INSTANCE_IP` (what Istio's injector sets from status.podIP), else
 * 127.0.0.1 when the control plane itself is on loopback (a control plane on this host: the
 * workload is reached on loopback, where a laptop's servers listen), else the first non-internal
 * address of this host, else 127.0.0.1; the pod name is `POD_NAME`, else the service's.
 */
import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../../admin/server.js';
import { type Clock } from '../../clock.js';
import { type Logger, type MeshConfig } from '../../config.js';
import { DEFAULT_SERVICE_SETTINGS } from '../../outbound/settings.js';
import { VERSION } from '../../version.js';
import { AdsTransport } from './ads-transport.js';
import { xdsDecoder } from './decode.js';
import { translateInbound } from './translate/inbound.js';
import { searchDomains } from './host-candidates.js';
import { buildNode } from './node.js';
import { type BaseControlPlane, XdsControlPlane } from './xds-control-plane.js';

/** The address istiod knows the workload by. */
export function workloadIp(env: NodeJS.ProcessEnv, controlPlaneAddress?: string): string {
  const fromEnv = env.INSTANCE_IP?.trim();
  if (fromEnv) return fromEnv;
  if (controlPlaneAddress !== undefined && isLoopbackAddress(controlPlaneAddress)) return '127.0.0.1';
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

/** True for `localhost:p`, `127.x.y.z:p`, `[::1]:p`. */
export function isLoopbackAddress(hostPort: string): boolean {
  return isLoopbackHost(hostPort.replace(/:\d+$/, ''));
}

export interface OpenXdsInput {
  readonly config: MeshConfig;
  readonly base: BaseControlPlane;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
}

export function openXdsControlPlane(i: OpenXdsInput): XdsControlPlane {
  const cp = i.config.controlPlane!;
  const ip = workloadIp(i.env, cp.address);
  const node = buildNode({
    service: i.config.service,
    namespace: i.config.namespace,
    spiffeId: i.config.spiffeId,
    labels: i.config.labels,
    ip,
    ...(i.env.POD_NAME && { pod: i.env.POD_NAME }),
    ...(cp.clusterId !== undefined && { clusterId: cp.clusterId }),
    ...(cp.advertise !== undefined && { advertise: cp.advertise }),
    version: VERSION,
  });
  let plane: XdsControlPlane | undefined;
  const ads = new AdsTransport({
    address: cp.address,
    root: cp.root,
    token: cp.token,
    env: i.env,
    ...(cp.clusterId !== undefined && { clusterId: cp.clusterId }),
    node,
    decode: xdsDecoder({ baseSettings: DEFAULT_SERVICE_SETTINGS, inbound: translateInbound }),
    clock: i.clock,
    logger: i.logger,
    onUnimplemented: (reason) => plane?.xdsUnavailable(reason),
  });
  plane = new XdsControlPlane({
    address: cp.address,
    ads,
    base: i.base,
    tree: { trustDomain: i.config.trustDomain, namespace: i.config.namespace, baseSettings: DEFAULT_SERVICE_SETTINGS },
    search: searchDomains({ namespace: i.config.namespace }),
    inboundIp: ip,
    clock: i.clock,
    logger: i.logger,
  });
  plane.start();
  return plane;
}
