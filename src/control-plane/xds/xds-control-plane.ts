/**
 * The mesh's control plane when `controlPlane` is set: the options' snapshot (static services,
 * the local policy, a watched policy file) plus what the xDS control plane delivers, as one
 * MeshSnapshot. The ADS session (ads-state.ts over ads-transport.ts) keeps the last ACKed
 * resources; the tree (xds-tree.ts) turns them into services, complete or not at all; this class
 * keeps the subscriptions in step with the tree, emits a snapshot whenever the services change,
 * and answers the dispatcher's `discover(host)`.
 *
 * - Discovery is on demand: the first request to a host no service holds binds the host to its
 *   Listener candidates (host-candidates.ts), subscribes to them, and waits (bounded by the
 *   caller) for the whole tree; the answer is 'found' once a snapshot that routes the host has been
 *   applied, 'absent' once every candidate is known not to exist (the egress rule applies), else
 *   'pending'. A bound host stays subscribed: a service created later is found by the next request.
 * - The last good configuration is kept through any outage or NACK: the session keeps the ACKed
 *   resources, and a snapshot the mesh refuses leaves the previous one current.
 * - ready() resolves at once: the options' services serve from the start; discovered ones wait for
 *   their tree (a control plane that is down makes discovered hosts fail with
 *   DiscoveryPendingError, never fall back to egress).
 */
import { ChangeSignal } from '../../change-signal.js';
import { type Clock } from '../../clock.js';
import { type Logger } from '../../logger.js';
import { type Node } from '../../proto/envoy/config/core/v3/base.js';
import { type AdsSession } from './ads-state.js';
import { type XdsHostStatus, type XdsStatus } from './xds-status.js';

export type { XdsHostStatus, XdsStatus } from './xds-status.js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  LISTENER_TYPE_URL,
  ROUTE_CONFIGURATION_TYPE_URL,
} from './discovery.js';
import { listenerCandidates } from './host-candidates.js';
import { type HostBinding, type HostState, type TreeContext, type TreeInput, XdsTree } from './xds-tree.js';
import { optionsPartOf } from '../layered-update.js';
import { type ControlPlane, type ControlPlaneStatus, type LocalUpdates, type UpdateHint } from '../control-plane.js';
import { type InboundSnapshot, type MeshSnapshot, type ServiceSnapshot } from '../snapshot.js';
import { backendsOf, validHostname } from '../validate.js';
import { MeshLayerBuilder, type MeshLayer, type PortState } from './inbound-layer.js';
import { type InboundSpec, inboundListenerName } from './translate/inbound.js';
import { type DiscoveryAnswer } from '../../outbound/dispatcher.js';

/** Hosts bound at most (each one a few subscriptions): an app that makes up host names cannot grow the subscription without bound. */
export const MAX_DISCOVERED_HOSTS = 1000;

/** The ADS half this class drives: the session, and start/close of its stream. */
export interface AdsClient {
  readonly session: AdsSession<Node>;
  start(): void;
  close(): void;
  /** A new stream now (no backoff): the subscriptions re-sent with their ACKed versions. */
  restart?(): void;
  /** Resolves true at the next response on the stream, false after `ms` without one. */
  nextResponse?(ms: number): Promise<boolean>;
}

/**
 * A freeze this long may have hidden pushes (and a connection the server or a NAT dropped, which
 * grpc-js's keepalive, frozen too, did not notice): the thaw opens a new ADS stream, as after a
 * loss, and waits up to XDS_THAW_WAIT_MS for its first response before routing.
 */
export const XDS_THAW_GAP_MS = 30_000;
export const XDS_THAW_WAIT_MS = 1_000;

/** Where the options' part comes from (the static control plane: options, policy file, mesh.set*). */
export interface BaseControlPlane {
  current(): MeshSnapshot;
  /** mesh.set*: offered to the listeners, throws what they throw (static.ts). */
  update?(next: Omit<MeshSnapshot, 'version' | 'source'>, source: string, hint?: UpdateHint): MeshSnapshot;
  onUpdate(listener: (s: MeshSnapshot, hint?: UpdateHint) => void): () => void;
  status?(): ControlPlaneStatus;
  close(): Promise<void>;
}

export interface XdsControlPlaneOptions {
  /** `host:port` of the control plane, for names and messages. */
  readonly address: string;
  readonly ads: AdsClient;
  readonly base: BaseControlPlane;
  readonly tree: TreeContext;
  /** The search domains of the workload's namespace (host-candidates.ts searchDomains). */
  readonly search: readonly string[];
  /** The workload's IP, as in the node: its inbound Listeners are `xds.istio.io/grpc/lds/inbound/<ip>:<port>`. */
  readonly inboundIp: string;
  /** Hosts bound at most; default MAX_DISCOVERED_HOSTS. */
  readonly maxHosts?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

const TYPES = {
  listeners: LISTENER_TYPE_URL,
  routes: ROUTE_CONFIGURATION_TYPE_URL,
  clusters: CLUSTER_TYPE_URL,
  endpoints: CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
} as const;
type Kind = keyof typeof TYPES;

export class XdsControlPlane implements ControlPlane, LocalUpdates {
  readonly name: string;
  readonly #o: XdsControlPlaneOptions;
  readonly #maxHosts: number;
  readonly #tree: XdsTree;
  readonly #bindings = new Map<string, HostBinding>();
  #hostStates: ReadonlyMap<string, HostState> = new Map();
  readonly #subscribed: Record<Kind, Set<string>> = { listeners: new Set(), routes: new Set(), clusters: new Set(), endpoints: new Set() };
  #xdsServices: ReadonlyMap<string, ServiceSnapshot> = new Map();
  #current: MeshSnapshot;
  #serial = 0;
  readonly #listeners = new Set<(s: MeshSnapshot, hint?: UpdateHint) => void>();
  /** Callers of discover() waiting for the next rebuild. */
  readonly #builds: ChangeSignal;
  readonly #offs: Array<() => void> = [];
  /** Ports the mesh serves on → their inbound Listener's name. */
  readonly #ports = new Map<number, string>();
  readonly #layer = new MeshLayerBuilder();
  #meshLayer: MeshLayer = { policy: undefined, strict: false };
  /** Delivered services left out because the options' part holds their name, a hostname or a backend: told once each. */
  readonly #collisions = new Set<string>();
  /** Why a delivered front is left out of the current composition (its hosts wait for that, then fail). */
  #leftOut: ReadonlyMap<string, string> = new Map();
  /** Every service object a build delivered: mesh.set* hands them back inside `next` (update()). */
  readonly #delivered = new WeakSet<ServiceSnapshot>();
  #closed = false;
  #rebuildQueued = false;
  /** Why the control plane serves no xDS (xdsUnavailable), once it said so. */
  #unavailable: string | undefined;

  constructor(o: XdsControlPlaneOptions) {
    this.#o = o;
    this.name = `xds:${o.address}`;
    this.#maxHosts = o.maxHosts ?? MAX_DISCOVERED_HOSTS;
    this.#tree = new XdsTree(o.tree);
    this.#builds = new ChangeSignal(o.clock);
    this.#current = this.#compose(o.base.current());
    this.#offs.push(o.ads.session.on((e) => (e.kind === 'nacked' ? this.#nacked(e.message) : this.#rebuild())));
    // The options' part changed (policy file, mesh.set*): what the mesh refuses is thrown back to it.
    this.#offs.push(o.base.onUpdate((base, hint) => this.#emit(base, hint, true)));
  }

  /**
   * `mesh.set*`: `next` was computed from current(), delivered services included; they are taken
   * out (by object: a service the update touched is the caller's now, and as an options service it
   * wins over a delivered one of the same name) and the rest goes to the options' part.
   */
  update(next: Omit<MeshSnapshot, 'version' | 'source'>, source: string, hint?: UpdateHint): MeshSnapshot {
    if (!this.#o.base.update) throw new Error('XdsControlPlane: its options part takes no updates');
    this.#o.base.update(optionsPartOf(next, this.#current, this.#o.base.current(), this.#delivered), source, hint);
    return this.#current;
  }


  /** The mesh serves on `port`: its inbound Listener is asked for, and the port denies until it is decided. */
  servePort(port: number): void {
    if (this.#closed || this.#ports.has(port)) return;
    this.#ports.set(port, inboundListenerName(this.#o.inboundIp, port));
    this.#rebuild();
  }

  /**
   * The control plane has no ADS at all (UNIMPLEMENTED, from the server its pinned TLS verified):
   * nothing will be delivered, so every host is absent (the egress rule) and every port has no
   * control-plane layer (the local policy alone), rather than waiting and denying forever.
   */
  xdsUnavailable(reason: string): void {
    if (this.#closed || this.#unavailable !== undefined) return;
    this.#unavailable = reason;
    this.#rebuild();
  }

  /** Opens the ADS stream. */
  start(): void {
    this.#o.ads.start();
  }

  /** After a freeze of XDS_THAW_GAP_MS or more: a new stream, and its first response waited for (bounded; the last good state serves otherwise). */
  async thaw(gapMs: number): Promise<void> {
    const ads = this.#o.ads;
    if (this.#closed || this.#unavailable !== undefined || gapMs < XDS_THAW_GAP_MS || !ads.restart || !ads.nextResponse) return;
    const answered = ads.nextResponse(XDS_THAW_WAIT_MS);
    ads.restart();
    if (!(await answered)) this.#o.logger.warn(`xDS: no response from ${this.#o.address} within ${XDS_THAW_WAIT_MS} ms of a thaw after ${Math.round(gapMs / 1000)} s frozen: routing with the last configuration received`);
  }

  current(): MeshSnapshot {
    return this.#current;
  }

  onUpdate(listener: (s: MeshSnapshot, hint?: UpdateHint) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  status(): ControlPlaneStatus & { xds: XdsStatus } {
    return { ...this.#o.base.status?.(), xds: this.xdsStatus() };
  }

  xdsStatus(): XdsStatus {
    const hosts = [...this.#hostStates].map(([host, st]): XdsHostStatus => ({
      host,
      state: st.kind,
      ...(st.kind === 'found' && { listener: st.listener, ...(st.front !== undefined && { service: st.front }) }),
      ...(st.kind === 'pending' && { waitingFor: st.waitingFor }),
    }));
    return { address: this.#o.address, ads: this.#o.ads.session.status(), hosts, ...(this.#unavailable !== undefined && { unavailable: this.#unavailable }) };
  }

  /** The dispatcher's question about a host no service holds (see the module comment). */
  async discover(host: string, protocol: string, ms: number, stop?: Promise<unknown>): Promise<DiscoveryAnswer> {
    if (this.#closed) return { kind: 'closed' };
    if (this.#unavailable !== undefined) return { kind: 'absent' };
    const bound = this.#bind(host, protocol);
    if (bound === 'never') return { kind: 'absent' };
    if (bound === 'full') return { kind: 'pending', waitingFor: `room: more than ${this.#maxHosts} hosts were asked for` };
    const deadline = this.#o.clock.now() + ms;
    for (;;) {
      // close() wakes every waiter: a held request fails now, not after its whole wait.
      if (this.#closed) return { kind: 'closed' };
      const st = this.#hostStates.get(host);
      if (st?.kind === 'absent') return { kind: 'absent' };
      if (st?.kind === 'found' && st.front !== undefined && this.#current.services.get(st.front)?.hostnames.includes(host)) return { kind: 'found' };
      const left = deadline - this.#o.clock.now();
      const leftOut = st?.kind === 'found' && st.front !== undefined ? this.#leftOut.get(st.front) : undefined;
      const waitingFor = st?.kind === 'pending' ? st.waitingFor : leftOut ?? (st?.kind === 'found' ? `the snapshot routing ${host} to be applied` : `Listener ${host}`);
      if (left <= 0 || !(await this.#nextBuild(left, stop))) return { kind: 'pending', waitingFor };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs) off();
    this.#o.ads.close();
    this.#wake();
    this.#listeners.clear();
    await this.#o.base.close();
  }

  /**
   * Binds a host to its Listener candidates (once). 'never': not a name discovery answers for
   * (localhost, an IP v6 literal, or not a plain host name — a wildcard, a root dot: the router
   * would read it differently from the name bound), whatever the room; 'full': no room.
   */
  #bind(host: string, protocol: string): 'bound' | 'never' | 'full' {
    if (this.#bindings.has(host)) return 'bound';
    if (host.includes('*') || !validHostname(host)) return 'never';
    const candidates = listenerCandidates(host, protocol, this.#o.search);
    if (candidates.length === 0) return 'never';
    if (this.#bindings.size >= this.#maxHosts && !this.#evictAbsent()) return 'full';
    this.#bindings.set(host, { host, candidates });
    this.#scheduleRebuild();
    return 'bound';
  }

  /**
   * Makes room by forgetting the oldest host known not to exist (an egress host, most likely): its
   * Listener names are unsubscribed at the next rebuild; asked for again, it is looked up afresh.
   * False when every bound host exists or is still pending (those are never forgotten).
   */
  #evictAbsent(): boolean {
    for (const [host] of this.#bindings) {
      if (this.#hostStates.get(host)?.kind !== 'absent') continue;
      this.#bindings.delete(host);
      return true;
    }
    return false;
  }

  #input(): TreeInput {
    const s = this.#o.ads.session;
    return {
      listeners: s.resources(TYPES.listeners),
      routes: s.resources(TYPES.routes),
      clusters: s.resources(TYPES.clusters),
      endpoints: s.resources(TYPES.endpoints),
      missing: {
        listeners: s.doesNotExist(TYPES.listeners),
        routes: s.doesNotExist(TYPES.routes),
        clusters: s.doesNotExist(TYPES.clusters),
        endpoints: s.doesNotExist(TYPES.endpoints),
      },
    };
  }


  /**
   * New hosts bound in one turn of the event loop (a burst of first requests) share one rebuild and
   * one LDS request: SotW requests carry the whole name list, so one per host would be quadratic.
   */
  #scheduleRebuild(): void {
    if (this.#rebuildQueued) return;
    this.#rebuildQueued = true;
    queueMicrotask(() => {
      this.#rebuildQueued = false;
      this.#rebuild();
    });
  }

  /** Rebuilds the tree from the resources in force, follows its subscriptions, emits when the services changed. */
  #rebuild(): void {
    if (this.#closed) return;
    const input = this.#input();
    const built = this.#tree.build([...this.#bindings.values()], input);
    this.#hostStates = built.hosts;
    for (const svc of built.services.values()) this.#delivered.add(svc);
    const layer = this.#layer.build(this.#portStates(input));
    const changed = !sameServices(this.#xdsServices, built.services) || layer !== this.#meshLayer;
    this.#xdsServices = built.services;
    this.#meshLayer = layer;
    // Subscribing writes requests; the responses come later and rebuild again.
    const wanted = { ...built.wanted, listeners: new Set([...built.wanted.listeners, ...this.#ports.values()]) };
    // A control plane without ADS has a closed session: nothing to subscribe to.
    if (this.#unavailable === undefined) for (const kind of Object.keys(TYPES) as Kind[]) this.#follow(kind, wanted[kind]);
    if (changed) this.#emit();
    this.#wake();
  }

  /** Each served port: its inbound Listener delivered, known not to exist, or still pending. */
  #portStates(input: TreeInput): Map<number, PortState> {
    const out = new Map<number, PortState>();
    if (this.#unavailable !== undefined) return out;
    for (const [port, name] of this.#ports) {
      const v = input.listeners.get(name);
      if (isInboundSpec(v)) out.set(port, { kind: 'present', spec: v });
      else if (input.missing.listeners.has(name)) out.set(port, { kind: 'absent' });
      else out.set(port, { kind: 'pending', listener: name });
    }
    return out;
  }

  #follow(kind: Kind, wanted: ReadonlySet<string>): void {
    const have = this.#subscribed[kind];
    const add = [...wanted].filter((n) => !have.has(n));
    const drop = [...have].filter((n) => !wanted.has(n));
    if (add.length > 0) this.#o.ads.session.subscribe(TYPES[kind], add);
    if (drop.length > 0) this.#o.ads.session.unsubscribe(TYPES[kind], drop);
    this.#subscribed[kind] = new Set(wanted);
  }

  /**
   * The options' snapshot plus the delivered services. What the options hold is theirs: a
   * delivered service of the same name, or holding one of their hostnames, is left out; so is a
   * delivered front whose routes name a service of the options (its traffic would reach the
   * options' service, which the control plane never named). Left out, never composed into a
   * snapshot the mesh refuses whole: the other delivered services keep following the server.
   */
  #compose(base: MeshSnapshot): MeshSnapshot {
    const services = new Map(base.services);
    const hostnames = new Map<string, string>();
    for (const [name, svc] of base.services) for (const h of svc.hostnames) hostnames.set(h, name);
    const leftOut = new Map<string, string>();
    for (const [name, svc] of this.#xdsServices) {
      const why = this.#shadowedBy(base, hostnames, name, svc);
      if (why === undefined) {
        services.set(name, svc);
        continue;
      }
      leftOut.set(name, why);
      if (this.#collisions.size >= MAX_DISCOVERED_HOSTS) this.#collisions.clear(); // told again, rather than remembered without bound
      if (!this.#collisions.has(`${name}\u0000${why}`)) this.#o.logger.warn(`xDS: the control plane delivers a service "${name}" that is left out: ${why}`);
      this.#collisions.add(`${name}\u0000${why}`);
    }
    this.#leftOut = leftOut;
    return { version: String(++this.#serial), source: this.name, complete: false, inbound: withMeshLayer(base.inbound, this.#meshLayer), services };
  }

  /** Why the options' part shadows a delivered service, or undefined. */
  #shadowedBy(base: MeshSnapshot, hostnames: ReadonlyMap<string, string>, name: string, svc: ServiceSnapshot): string | undefined {
    if (base.services.has(name)) return `outbound.services (or mesh.setService) also names "${name}"; the options' one is kept`;
    const h = svc.hostnames.find((n) => hostnames.has(n));
    if (h !== undefined) return `its host ${h} is a hostname of the options' service "${hostnames.get(h)}", which keeps it`;
    const b = backendsOf(svc).find((n) => base.services.has(n));
    if (b !== undefined) return `its routes name the Cluster "${b}", and "${b}" is a service of the options (outbound.services or mesh.setService), not the control plane's`;
    return undefined;
  }

  /**
   * Offers the composed snapshot; it becomes current only when the mesh takes it. A refusal of a
   * local update (`rethrow`) goes back to its caller; one of a delivered update is logged (the
   * control plane has no caller to tell, and the previous snapshot stays).
   */
  #emit(base: MeshSnapshot = this.#o.base.current(), hint?: UpdateHint, rethrow = false): void {
    if (this.#closed) return;
    // `base` is the options' snapshot being offered (not yet their current one while it is offered).
    const next = this.#compose(base);
    try {
      for (const l of this.#listeners) l(next, hint);
      this.#current = next;
    } catch (e) {
      if (rethrow) throw e;
      this.#o.logger.error(`xDS: snapshot ${next.version} from ${this.name} rejected, keeping version ${this.#current.version}: ${(e as Error).message}`);
    }
  }

  #nacked(message: string): void {
    this.#o.logger.error(`xDS: ${message}; the last accepted configuration stays in force`);
  }

  #wake(): void {
    this.#builds.changed();
  }

  /** Resolves at the next rebuild (true), or after `ms` or when `stop` settles (false). */
  #nextBuild(ms: number, stop?: Promise<unknown>): Promise<boolean> {
    return this.#builds.next(ms, stop);
  }
}

function isInboundSpec(v: unknown): v is InboundSpec {
  return typeof v === 'object' && v !== null && 'mode' in v && 'policy' in v;
}

/**
 * The options' inbound part with the control plane's layer beside its policy (both must allow) and
 * the stricter mode: a delivered Listener that requires client certificates makes the mesh strict;
 * PERMISSIVE never relaxes a strict local mode. A default policy not set explicitly follows the mode.
 */
function withMeshLayer(i: InboundSnapshot, layer: MeshLayer): InboundSnapshot {
  if (layer.policy === undefined && !layer.strict) return i;
  const mode = i.mode === 'strict' || layer.strict ? 'strict' : 'permissive';
  const defaultPolicy = i.defaultPolicyExplicit ? i.defaultPolicy : mode === 'permissive' ? 'all-unauthenticated' : 'all-authenticated';
  return { ...i, mode, defaultPolicy, ...(layer.policy !== undefined && { meshPolicy: layer.policy }) };
}

function sameServices(a: ReadonlyMap<string, ServiceSnapshot>, b: ReadonlyMap<string, ServiceSnapshot>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
