/**
 * mesh.grpc over a mesh's parts: built on first use (that is when grpc-js is loaded), with the
 * mesh's identity source, policy gate and telemetry, and the SPIFFE IDs the snapshot promises for
 * each service (else derived from the name).
 */
import { isDnsName } from '../identity/dns-id.js';
import { ConfigError } from '../errors.js';
import { MeshGrpc } from '../grpc/mesh-grpc.js';
import { type GrpcModule } from '../grpc/module.js';
import { type PolicyGate } from '../inbound/policy-gate.js';
import { parseSpiffeId } from '../identity/spiffe-id.js';
import { derivedSpiffeId } from '../identity/workload-id.js';
import { PeerVerifier } from '../tls/peer.js';
import { type MeshParts } from './parts.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The SPIFFE IDs `name` may present: a `spiffe://` ID or a DNS-like identity as is; a service of the snapshot: its
 * identity and its endpoints' (as outbound checks them); any other name: the derived ID
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<name>`.
 */
export function grpcIdentitiesOf(p: Pick<MeshParts, 'config' | 'reconciler'>, name: string): readonly string[] {
  if (typeof name !== 'string') throw new ConfigError(`mesh.grpc.channelCredentials: the service must be a name or a SPIFFE ID, got ${typeof name}`, [{ path: 'service', message: 'must be a string' }]);
  if (name.startsWith('spiffe://')) return [parseSpiffeId(name).id];
  // A dotted name is no service name (a DNS label): a DNS-like (Linkerd) identity, as is.
  if (name.includes('.') && isDnsName(name)) return [name];
  const svc = p.reconciler.current?.services.get(name);
  if (svc) return [...new Set([svc.identity, ...(svc.endpoints ?? []).flatMap((e) => [e.identity, ...(e.identities ?? [])])])];
  if (!DNS_LABEL.test(name)) {
    throw new ConfigError(`mesh.grpc.channelCredentials("${name}"): not a mesh service name (a DNS label: lower-case letters, digits and "-") nor a spiffe:// ID`, [
      { path: 'service', message: 'must be a DNS label or a SPIFFE ID' },
    ]);
  }
  return [derivedSpiffeId(p.config.trustDomain, p.config.namespace, name)];
}

export function openMeshGrpc(p: MeshParts, grpc: GrpcModule | undefined): MeshGrpc {
  return new MeshGrpc({
    ...(grpc && { grpc }),
    source: p.source,
    verifier: new PeerVerifier(() => p.source.getBundles(), p.clock),
    clock: p.clock,
    gate: p.inbound.gate as PolicyGate<unknown>,
    traffic: p.traffic,
    service: p.config.service,
    identityHeaders: p.config.inbound.identityHeaders,
    identitiesOf: (name) => grpcIdentitiesOf(p, name),
    logger: p.logger,
  });
}
