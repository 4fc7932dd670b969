/**
 * What the embedded control plane's ADS server serves (the ResourceSource of ads-service.ts), from
 * the mesh file's model and the registry:
 * - outbound (LDS api Listeners `host:port`, RDS, CDS, EDS): generateOutboundResources over the
 *   model's services with static ∪ registered endpoints, computed once per (model, registry)
 *   version and shared by every client; clients that are not sidecarless (grpc-js-xds, C-core) get
 *   the portable variant (every Cluster ROUND_ROBIN: the one lb_policy they all take);
 * - inbound (`xds.istio.io/grpc/lds/inbound/<ip>:<port>`): rendered per workload from the policy
 *   that applies to it (its namespace and labels, from its node), STRICT mTLS. A policy the
 *   renderer cannot express exactly is never served as something weaker: that workload gets a
 *   Listener that denies every request, and the reason is kept for status.
 * Pure apart from the caches; no I/O.
 */
import type { Node } from '../proto/envoy/config/core/v3/base.js';
import type { Policy } from '../policy/index.js';
import type { ServiceEndpoint } from '../outbound/settings.js';
import { INBOUND_PREFIX, inboundAddressOf } from '../control-plane/xds/translate/inbound.js';
import { type OutboundResources, type OutboundServiceInput, TYPE_URLS, generateOutboundResources, reuseUnchanged } from './xds/outbound-resources.js';
import { renderInboundListener } from './xds/inbound-listener.js';
import { type Registration, type Registry } from './registry/registry.js';
import type { MeshModel, MeshServiceModel } from './mesh-file/index.js';
import { isRefused, workloadOf } from './registry/workload-node.js';
import { MAX_ADDRESSES_PER_STREAM } from './registry/registrar.js';

export interface SourceClient {
  readonly id: string;
  readonly node: Node | undefined;
}

/**
 * Inbound Listeners served to one client in one response at most (the first inbound names in
 * sorted order, the ones the registrar may register; a workload listens on a few ports): each is rendered for the client, so without the bound
 * one request naming 10,000 of them (450 kB, plaintext port included) costs seconds of CPU and a
 * 6 MB response.
 */
export const MAX_INBOUND_LISTENERS_PER_CLIENT = MAX_ADDRESSES_PER_STREAM;

/** Istio's "allow nothing": an ALLOW filter with no policy. */
const DENY_ALL: Policy = { rules: [{ name: 'sidecarless-policy-not-renderable', action: 'allow', from: [], to: [], when: [], matchNothing: true }], servers: [] };

const EMPTY: ReadonlyMap<string, Uint8Array> = new Map();

/** Whether a name the shared resources do not hold asks for an inbound Listener. */
function someInbound(names: readonly string[], all: ReadonlyMap<string, Uint8Array>): boolean {
  for (const name of names) if (!all.has(name) && name.startsWith(INBOUND_PREFIX)) return true;
  return false;
}

export function endpointOf(r: Registration): ServiceEndpoint {
  return { address: r.address, identity: r.identity, weight: 1, ...(r.locality?.zone && { zone: r.locality.zone }), labels: r.labels };
}

interface Generated {
  readonly key: string;
  readonly full: OutboundResources;
  readonly portable: OutboundResources;
}

export class MeshResourceSource {
  #model: MeshModel;
  #outbound: Generated | undefined;
  /** What the last check() generated, until the model it was for is served. */
  #checked: Generated | undefined;
  #inbound = new Map<string, Uint8Array>();
  #inboundKey = '';
  /** Why a workload's inbound policy was served as deny-all, by workload key. */
  readonly renderFailures = new Map<string, string>();

  constructor(
    model: MeshModel,
    private readonly registry: Registry,
  ) {
    this.#model = model;
  }

  get model(): MeshModel {
    return this.#model;
  }

  /**
   * The resources `model` would serve now; throws (XdsGenerateError) when the model cannot be
   * expressed: the caller then keeps the previous model.
   */
  check(model: MeshModel): void {
    this.#checked = this.#generate(model);
  }

  /** Serves `model` from now on (check() it first). */
  setModel(model: MeshModel): void {
    this.#model = model;
  }

  resolve(client: SourceClient, typeUrl: string, names: readonly string[] | '*'): ReadonlyMap<string, Uint8Array> {
    const all = this.#outboundFor(client).get(typeUrl) ?? EMPTY;
    // The shared map as it is when it answers every name (the session takes only the names it asked
    // for): a push to 1,000 clients copies nothing. Inbound Listeners are per client.
    if (names === '*' || typeUrl !== TYPE_URLS.listener || !someInbound(names, all)) return all;
    const out = new Map<string, Uint8Array>();
    let inbound = 0;
    for (const name of names) {
      const isInbound = !all.has(name) && typeUrl === TYPE_URLS.listener && name.startsWith(INBOUND_PREFIX) && inbound++ < MAX_INBOUND_LISTENERS_PER_CLIENT;
      const bytes = all.get(name) ?? (isInbound ? this.#inboundFor(client, name) : undefined);
      if (bytes !== undefined) out.set(name, bytes);
    }
    return out;
  }

  #registered = (s: MeshServiceModel): ServiceEndpoint[] => this.registry.endpoints(s.name, s.namespace).map(endpointOf);
  /** Registered endpoints the generator could not serve (another identity, a bad address), for status; last set only. */
  readonly refusedEndpoints = new Map<string, string>();
  #refused = (s: MeshServiceModel, e: ServiceEndpoint, reason: string): void => {
    if (this.refusedEndpoints.size < 1_000) this.refusedEndpoints.set(`${s.key} ${e.address}`, reason);
  };

  #outboundFor(client: SourceClient): OutboundResources {
    const key = `${this.#model.version}/${this.registry.version}`;
    if (this.#outbound?.key !== key) {
      // What check() generated for this very model and registry is served as it is, not made again.
      this.#outbound = this.#checked?.key === key ? this.#checked : this.#generate(this.#model);
      this.#checked = undefined;
    }
    return client.node?.userAgentName === 'sidecarless' ? this.#outbound.full : this.#outbound.portable;
  }

  #generate(model: MeshModel): Generated {
    this.refusedEndpoints.clear();
    const services = model.outbound(this.#registered, this.#refused);
    // Unchanged resources keep the arrays already served (sessions skip them by identity).
    const prev = this.#outbound;
    return {
      key: `${model.version}/${this.registry.version}`,
      full: reuseUnchanged(generateOutboundResources(services), prev?.full),
      portable: reuseUnchanged(generateOutboundResources(services, { portableLbPolicy: true }), prev?.portable),
    };
  }

  #inboundFor(client: SourceClient, name: string): Uint8Array | undefined {
    const address = inboundAddressOf(name);
    if (!address) return undefined;
    const w = workloadOf(client.node);
    const workload = isRefused(w) ? { service: '', namespace: 'default', labels: {} } : w;
    if (this.#inboundKey !== this.#model.version) {
      this.#inbound.clear();
      this.#inboundKey = this.#model.version;
    }
    const key = `${name}|${workload.namespace}|${workload.service}|${JSON.stringify(workload.labels)}`;
    const cached = this.#inbound.get(key);
    if (cached) return cached;
    const bytes = this.#render(address, workload, key);
    if (this.#inbound.size >= 10_000) this.#inbound.clear();
    this.#inbound.set(key, bytes);
    return bytes;
  }

  #render(address: { ip: string; port: number }, w: { service: string; namespace: string; labels: Readonly<Record<string, string>> }, key: string): Uint8Array {
    const common = { ip: address.ip, port: address.port, mode: 'strict' as const, trustDomain: this.#model.trustDomain, namespace: w.namespace, labels: w.labels };
    try {
      const bytes = renderInboundListener({ ...common, policy: this.#model.policyFor(w) });
      this.renderFailures.delete(key);
      return bytes;
    } catch (e) {
      this.renderFailures.set(key, (e as Error).message);
      return renderInboundListener({ ...common, policy: DENY_ALL });
    }
  }
}
