/**
 * Turns what ADS streams say into registrations (registry.ts). A workload is registered when
 * - its stream is authenticated (never from the plaintext port: anyone could claim an address there),
 * - its node names a service the mesh file declares, in its namespace (workload-node.ts), and the
 *   identity it authenticated with is one that service's clients accept (else they would refuse
 *   its certificate anyway: we do not send them there),
 * - and it ACKs the inbound Listener of an address on one of its own IPs (INSTANCE_IPS): that
 *   address is registered; with SIDECARLESS_ADVERTISE, the advertised addresses are registered
 *   instead, on the first such ACK.
 * A workload that no longer subscribes to an inbound Listener withdraws that address at once; a
 * stream that ends leaves after the registry's grace. Why a stream is not registered is kept for
 * status. Pure (no I/O).
 */
import { INBOUND_PREFIX, inboundAddressOf } from '../../control-plane/xds/translate/inbound.js';
import { type Registration, type Registry } from './registry.js';
import { isRefused, type WorkloadNode, workloadOf } from './workload-node.js';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
/**
 * Addresses one stream registers at most (a workload serves a few ports): beyond, only the first
 * inbound Listener names (sorted) count, and status says why the rest are not registered. One ACK naming
 * 10,000 inbound Listeners on its own IPs would otherwise fill the registry every service shares.
 */
export const MAX_ADDRESSES_PER_STREAM = 64;

export interface RegistrarClient {
  readonly id: string;
  readonly node: Node | undefined;
  readonly identity: string | undefined;
  readonly plaintext: boolean;
}

export interface RegistrarRequest {
  readonly typeUrl: string;
  readonly names: readonly string[] | '*';
  readonly kind: 'subscribe' | 'ack' | 'nack';
}

export interface DeclaredService {
  /** The SPIFFE IDs its clients accept of its endpoints. */
  readonly identities: readonly string[];
}

export interface RegistrarOptions {
  readonly registry: Registry;
  /** The mesh file's service, or undefined when it declares none of that name in that namespace. */
  readonly declared: (service: string, namespace: string) => DeclaredService | undefined;
}

export interface ClientRegistration {
  readonly workload?: WorkloadNode;
  /** Why this stream registers nothing (absent when it does, or may once it ACKs). */
  readonly notRegistered?: string;
  readonly addresses: readonly string[];
}

interface ClientState {
  client: RegistrarClient;
  workload?: WorkloadNode;
  refused?: string;
  addresses: Set<string>;
}

export class Registrar {
  #clients = new Map<string, ClientState>();

  constructor(private readonly o: RegistrarOptions) {}

  connected(client: RegistrarClient): void {
    const state: ClientState = { client, addresses: new Set() };
    const w = workloadOf(client.node);
    if (isRefused(w)) state.refused = w.refused;
    else state.workload = w;
    if (client.plaintext) state.refused = 'connected on the plaintext port (unauthenticated streams never register)';
    this.#clients.set(client.id, state);
  }

  request(clientId: string, r: RegistrarRequest): void {
    const s = this.#clients.get(clientId);
    if (!s || r.typeUrl !== LISTENER_TYPE || r.kind !== 'ack' || r.names === '*') return;
    const served = this.#served(s, r.names);
    const reason = served.size === 0 ? undefined : this.#ineligible(s);
    const wanted = served.size === 0 || reason !== undefined ? new Set<string>() : s.workload!.advertise.length > 0 ? new Set(s.workload!.advertise) : served;
    for (const address of s.addresses) if (!wanted.has(address)) this.o.registry.withdraw(clientId, s.workload!.service, s.workload!.namespace, address);
    s.addresses = new Set();
    if (reason !== undefined) s.refused = reason;
    if (wanted.size === 0) return;
    delete s.refused;
    const w = s.workload!;
    for (const address of wanted) {
      const reg: Registration = {
        service: w.service,
        namespace: w.namespace,
        address,
        identity: s.client.identity!,
        labels: w.labels,
        ...(w.locality && { locality: w.locality }),
        ...(w.name !== undefined && { name: w.name }),
      };
      if (this.o.registry.register(clientId, reg)) s.addresses.add(address);
      else s.refused = `the registry is full (or ${reg.identity} holds as many registrations as one identity may)`;
    }
    const named = r.names.filter((n) => n.startsWith(INBOUND_PREFIX)).length;
    if (named > MAX_ADDRESSES_PER_STREAM) s.refused = `${named} inbound Listeners named, only the first ${MAX_ADDRESSES_PER_STREAM} served and registered: at most ${MAX_ADDRESSES_PER_STREAM} addresses per stream`;
  }

  disconnected(clientId: string): void {
    this.#clients.delete(clientId);
    this.o.registry.disconnected(clientId);
  }

  status(clientId: string): ClientRegistration | undefined {
    const s = this.#clients.get(clientId);
    if (!s) return undefined;
    return { ...(s.workload && { workload: s.workload }), ...(s.refused !== undefined && { notRegistered: s.refused }), addresses: [...s.addresses] };
  }

  /**
   * The addresses of inbound Listeners in `names` on the workload's own IPs, among the first
   * MAX_ADDRESSES_PER_STREAM inbound names (the ones resource-source.ts serves: no address is
   * registered whose Listener, its policy, the workload was not sent).
   */
  #served(s: ClientState, names: readonly string[]): Set<string> {
    const out = new Set<string>();
    if (!s.workload) return out;
    let inbound = 0;
    for (const name of names) {
      if (name.startsWith(INBOUND_PREFIX) && inbound++ >= MAX_ADDRESSES_PER_STREAM) break;
      const a = inboundAddressOf(name);
      if (!a || !s.workload.ips.includes(a.ip)) continue;
      out.add(a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);
    }
    return out;
  }

  #ineligible(s: ClientState): string | undefined {
    if (s.client.plaintext) return 'connected on the plaintext port (unauthenticated streams never register)';
    if (!s.workload) return s.refused ?? 'no workload in the node';
    if (s.client.identity === undefined) return 'the stream is not authenticated';
    const { service, namespace } = s.workload;
    const declared = this.o.declared(service, namespace);
    if (!declared) return `the mesh file declares no service ${service} in namespace ${namespace}`;
    if (!declared.identities.includes(s.client.identity)) {
      return `authenticated as ${s.client.identity}, but ${service}.${namespace}'s clients accept only ${declared.identities.join(', ')}`;
    }
    return undefined;
  }
}
