/**
 * Opens the Linkerd control plane of a mesh configured with `controlPlane.linkerd`: grpc-js, the
 * destination and policy streams (streams.ts) over mutual TLS with the workload's Linkerd
 * certificate, the translators, and the LinkerdControlPlane over the options' control plane.
 * Loaded only when `controlPlane.linkerd` is set (mesh.ts imports it dynamically): a mesh without
 * it loads none of the Linkerd code.
 */
import { readFileSync } from 'node:fs';
import { type Clock } from '../../clock.js';
import { type Logger, type MeshConfig } from '../../config.js';
import { type LinkerdConfig, LINKERD_CLUSTER_DOMAIN } from '../../config/linkerd.js';
import { ConfigError } from '../../errors.js';
import { loadGrpc } from '../../sources/grpc.js';
import { type BaseControlPlane } from '../xds/xds-control-plane.js';
import { LinkerdControlPlane } from './linkerd-control-plane.js';
import { createLinkerdStreams } from './streams.js';
import { translateInbound } from './translate/inbound.js';
import { translateOutbound } from './translate/outbound.js';

export interface OpenLinkerdInput {
  readonly config: MeshConfig & { linkerd: LinkerdConfig };
  readonly base: BaseControlPlane;
  /** The workload's current certificate and key (PEM), undefined until it has one. */
  readonly certificate: () => { readonly certChainPem: string; readonly keyPem: string } | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random?: () => number;
}

/** The trust anchors PEM, read now (a file read again on every call: a rotated anchors file is followed). */
export function trustAnchorsReader(l: LinkerdConfig): () => string {
  const a = l.trustAnchors;
  if ('pem' in a) return () => a.pem;
  const read = () => readFileSync(a.file, 'utf8');
  try {
    read();
  } catch (e) {
    throw new ConfigError(`invalid sidecarless options:\n  - controlPlane.linkerd.trustAnchors.file: cannot read ${a.file}: ${(e as Error).message}`, [{ path: 'controlPlane.linkerd.trustAnchors.file', message: `cannot read ${a.file}` }]);
  }
  return read;
}

/** The identity Linkerd gives `<svc>.<ns>.svc.<domain>`'s pods when they run as service account `<svc>` (only for endpoints that name none; Linkerd's always do). */
function identityOf(l: LinkerdConfig): (authority: string) => string {
  return (authority) => {
    const [svc, ns] = authority.replace(/:\d+$/, '').split('.');
    return `${svc}.${ns}.serviceaccount.${l.identityDomain}`;
  };
}

export async function openLinkerdControlPlane(i: OpenLinkerdInput): Promise<LinkerdControlPlane> {
  const l = i.config.linkerd;
  const anchors = trustAnchorsReader(l);
  const grpc = await loadGrpc();
  const streams = createLinkerdStreams({
    grpc,
    destination: l.destination,
    policy: l.policy,
    trustAnchorsPem: anchors,
    clientCertificate: () => {
      const c = i.certificate();
      return c && { certChainPem: c.certChainPem, keyPem: c.keyPem };
    },
    clock: i.clock,
    random: i.random ?? Math.random,
    logger: i.logger,
    sourceWorkload: l.workloadToken,
  });
  return new LinkerdControlPlane({
    address: l.destination.address,
    streams,
    base: i.base,
    translate: {
      outbound: translateOutbound,
      inbound: (server, port) => {
        const r = translateInbound(server, { port });
        return r.ok ? { ok: true, value: r.value.policy, notes: r.notes } : r;
      },
    },
    authority: { namespace: l.workload.namespace, clusterDomain: LINKERD_CLUSTER_DOMAIN },
    contextToken: l.contextToken,
    workloadToken: l.workloadToken,
    identityOf: identityOf(l),
    clock: i.clock,
    logger: i.logger,
  });
}
