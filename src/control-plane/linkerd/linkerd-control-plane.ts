/**
 * The mesh's control plane with `controlPlane.linkerd`: the options' snapshot (static services,
 * the local policy, a watched policy file) plus what Linkerd's controllers deliver, as one
 * MeshSnapshot — in the manner of the xDS one (xds/xds-control-plane.ts).
 *
 * - Discovery on demand: the first request to a host no service holds binds it to its Linkerd
 *   authority (authority.ts), opens `OutboundPolicies.Watch(authority)`, then `Destination.Get`
 *   for every backend path the policy names (linkerd-tree.ts composes the tree, complete or not at
 *   all). The answer is 'found' once a snapshot routing the host is applied, 'absent' when the
 *   policy controller says there is no such authority (NOT_FOUND, INVALID_ARGUMENT: the egress rule
 *   applies), else 'pending' (DiscoveryPendingError after the caller's wait).
 * - Every delivery is applied on the next microtask (coalesced): push → applied well within 50 ms.
 *   A message the translators refuse is refused whole and logged; the last good state stays. A
 *   stream that is lost keeps what it delivered (streams.ts reconnects).
 * - Inbound: `servePort(port)` opens `InboundServerPolicies.WatchPort(workload, port)`; the port
 *   denies (503 + Retry-After) until its first Server is taken; its policy is the snapshot's
 *   meshPolicy section for that port, beside the app's `inbound.policy` (both must allow).
 */
import { ChangeSignal } from '../../change-signal.js';
import { type Clock } from '../../clock.js';
import { type Logger } from '../../logger.js';
import { type DiscoveryAnswer } from '../../outbound/dispatcher.js';
import { type Policy } from '../../policy/index.js';
import { optionsPartOf } from '../layered-update.js';
import { type ControlPlane, type ControlPlaneStatus, type LocalUpdates, type UpdateHint } from '../control-plane.js';
import { type MeshSnapshot, type ServiceSnapshot } from '../snapshot.js';
import type { BaseControlPlane } from '../xds/xds-control-plane.js';
import { type AuthorityContext, linkerdAuthority } from './authority.js';
import { LinkerdLayerBuilder, type LinkerdPortState } from './inbound-layer.js';
import { LinkerdTree, renameBackends, type TargetInput, type TargetState } from './linkerd-tree.js';
import { type LinkerdStatus } from './linkerd-status.js';

export type { LinkerdStatus } from './linkerd-status.js';
import type { DestinationUpdate, InboundServer, LinkerdStreams, OutboundPolicy } from './streams.js';
import { DestinationState } from './translate/destination.js';
import type { Translation } from './translate/findings.js';
import type { OutboundContext, OutboundTranslation } from './translate/outbound.js';

/** The translators the control plane runs deliveries through (translate/). */
export interface LinkerdTranslators {
  outbound(policy: OutboundPolicy, ctx: OutboundContext): Translation<OutboundTranslation>;
  inbound(server: InboundServer, port: number): Translation<Policy>;
}

export interface LinkerdControlPlaneOptions {
  /** The destination controller's `host:port` (names and messages: `linkerd:<address>`). */
  readonly address: string;
  readonly streams: LinkerdStreams;
  readonly base: BaseControlPlane;
  readonly translate: LinkerdTranslators;
  readonly authority: AuthorityContext;
  /** Destination.Get's context token, WatchPort's workload (config/linkerd.ts). */
  readonly contextToken: string;
  readonly workloadToken: string;
  /** The identity endpoints must present when one names none (Linkerd's always do): the authority's service account's. */
  readonly identityOf: (authority: string) => string;
  readonly maxHosts?: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

interface Target {
  readonly authority: string;
  readonly hosts: Set<string>;
  readonly stop: () => void;
  policy?: OutboundPolicy;
  translation?: OutboundTranslation;
  absent?: string;
  lastError?: string;
}

interface Dest {
  readonly state: DestinationState;
  readonly stop: () => void;
  lastError?: string;
}

interface Port {
  readonly stop: () => void;
  state: LinkerdPortState;
  lastError?: string;
}

/** Hosts bound at most (as xDS's MAX_DISCOVERED_HOSTS): an app that makes up host names cannot open streams without bound. */
export const MAX_LINKERD_HOSTS = 1000;

const ABSENT_STATUSES = new Set(['NOT_FOUND', 'INVALID_ARGUMENT']);

export class LinkerdControlPlane implements ControlPlane, LocalUpdates {
  readonly name: string;
  readonly #o: LinkerdControlPlaneOptions;
  readonly #maxHosts: number;
  readonly #tree = new LinkerdTree();
  readonly #layer = new LinkerdLayerBuilder();
  /** Bound host → its authority (undefined: never a Linkerd service). */
  readonly #hosts = new Map<string, string | undefined>();
  readonly #targets = new Map<string, Target>();
  readonly #dests = new Map<string, Dest>();
  readonly #ports = new Map<number, Port>();
  #states: ReadonlyMap<string, TargetState> = new Map();
  #services: ReadonlyMap<string, ServiceSnapshot> = new Map();
  #meshPolicy: Policy | undefined;
  readonly #delivered = new WeakSet<ServiceSnapshot>();
  #current: MeshSnapshot;
  #serial = 0;
  readonly #listeners = new Set<(s: MeshSnapshot, hint?: UpdateHint) => void>();
  readonly #builds: ChangeSignal;
  readonly #offs: Array<() => void> = [];
  #queued = false;
  #closed = false;

  constructor(o: LinkerdControlPlaneOptions) {
    this.#o = o;
    this.name = `linkerd:${o.address}`;
    this.#maxHosts = o.maxHosts ?? MAX_LINKERD_HOSTS;
    this.#builds = new ChangeSignal(o.clock);
    this.#current = this.#compose(o.base.current());
    this.#offs.push(o.base.onUpdate((base, hint) => this.#emit(base, hint, true)));
  }

  current(): MeshSnapshot {
    return this.#current;
  }

  onUpdate(listener: (s: MeshSnapshot, hint?: UpdateHint) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The options' services serve at once; discovered ones wait for their tree. */
  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** `mesh.set*`: the delivered services are taken out (by object), the rest goes to the options' part. */
  update(next: Omit<MeshSnapshot, 'version' | 'source'>, source: string, hint?: UpdateHint): MeshSnapshot {
    if (!this.#o.base.update) throw new Error('LinkerdControlPlane: its options part takes no updates');
    this.#o.base.update(optionsPartOf(next, this.#current, this.#o.base.current(), this.#delivered), source, hint);
    return this.#current;
  }

  status(): ControlPlaneStatus & { linkerd: LinkerdStatus } {
    return { ...this.#o.base.status?.(), linkerd: this.linkerdStatus() };
  }

  linkerdStatus(): LinkerdStatus {
    const authorities = [...this.#targets.values()].map((t) => {
      const st = this.#states.get(t.authority);
      return {
        authority: t.authority,
        hosts: [...t.hosts],
        state: st?.kind ?? 'pending',
        ...(st?.kind === 'pending' && { waitingFor: st.waitingFor }),
        ...(t.lastError !== undefined && { lastError: t.lastError }),
      };
    });
    const destinations = [...this.#dests].map(([path, d]) => {
      const v = d.state.view();
      return { path, status: v.status, endpoints: v.endpoints.length, refused: v.refused.length, ...(d.lastError !== undefined && { lastError: d.lastError }) };
    });
    const ports = [...this.#ports].map(([port, p]) => ({ port, state: p.state.kind, ...(p.lastError !== undefined && { lastError: p.lastError }) }));
    return { destination: this.#o.address, authorities, destinations, ports };
  }

  /** The mesh serves on `port`: its Server is watched, and the port denies (503) until the first one is taken. */
  servePort(port: number): void {
    if (this.#closed || this.#ports.has(port)) return;
    const entry: Port = { state: { kind: 'pending' }, stop: () => {} };
    this.#ports.set(port, entry);
    const stop = this.#o.streams.watchPort(
      this.#o.workloadToken,
      port,
      (server) => this.#onServer(port, entry, server),
      (e) => (entry.lastError = e.message),
    );
    (entry as { stop: () => void }).stop = stop;
    this.#schedule();
  }

  #onServer(port: number, entry: Port, server: InboundServer): void {
    const t = this.#o.translate.inbound(server, port);
    if (!t.ok) {
      entry.lastError = reasonsText(t.reasons);
      this.#o.logger.error(`linkerd: the Server of port ${port} is refused, its last good policy stays in force: ${entry.lastError}`);
      return;
    }
    entry.lastError = undefined;
    entry.state = { kind: 'present', policy: t.value };
    this.#schedule();
  }

  /** The dispatcher's question about a host no service holds (see the module comment). */
  async discover(host: string, _protocol: string, ms: number, stop?: Promise<unknown>): Promise<DiscoveryAnswer> {
    if (this.#closed) return { kind: 'closed' };
    const authority = this.#bind(host);
    if (authority === 'never') return { kind: 'absent' };
    if (authority === 'full') return { kind: 'pending', waitingFor: `room: more than ${this.#maxHosts} hosts were asked for` };
    const deadline = this.#o.clock.now() + ms;
    for (;;) {
      if (this.#closed) return { kind: 'closed' };
      const st = this.#states.get(authority);
      if (st?.kind === 'absent') return { kind: 'absent' };
      if (st?.kind === 'found' && this.#current.services.get(authority)?.hostnames.includes(host)) return { kind: 'found' };
      const waitingFor = st?.kind === 'pending' ? st.waitingFor : st?.kind === 'found' ? `the snapshot routing ${host} to be applied` : `the OutboundPolicy of ${authority}`;
      const left = deadline - this.#o.clock.now();
      if (left <= 0 || !(await this.#builds.next(left, stop))) return { kind: 'pending', waitingFor };
    }
  }

  /** Binds a host to its authority (once), opening the authority's policy watch on first use. */
  #bind(host: string): string | 'never' | 'full' {
    if (this.#hosts.has(host)) return this.#hosts.get(host) ?? 'never';
    const authority = linkerdAuthority(host, this.#o.authority);
    if (authority === undefined) {
      if (this.#hosts.size < this.#maxHosts) this.#hosts.set(host, undefined);
      return 'never';
    }
    if (this.#hosts.size >= this.#maxHosts && !this.#evictAbsent()) return 'full';
    this.#hosts.set(host, authority);
    const t = this.#targets.get(authority) ?? this.#watch(authority);
    t.hosts.add(host);
    if (t.translation && t.policy) this.#translate(t, t.policy); // its hostnames grew
    this.#schedule();
    return authority;
  }

  /** Forgets the oldest host known absent (or never a Linkerd service) to make room; false when none is. */
  #evictAbsent(): boolean {
    for (const [host, authority] of this.#hosts) {
      if (authority !== undefined && this.#states.get(authority)?.kind !== 'absent') continue;
      this.#hosts.delete(host);
      if (authority !== undefined) {
        const t = this.#targets.get(authority);
        t?.hosts.delete(host);
        if (t && t.hosts.size === 0) {
          t.stop();
          this.#targets.delete(authority);
        }
      }
      return true;
    }
    return false;
  }

  #watch(authority: string): Target {
    const t: Target = { authority, hosts: new Set(), stop: () => {} };
    this.#targets.set(authority, t);
    const stop = this.#o.streams.watchOutbound(
      authority,
      (policy) => {
        t.absent = undefined;
        this.#translate(t, policy);
        this.#schedule();
      },
      (e) => {
        t.lastError = e.message;
        const status = (e as { grpcStatus?: string }).grpcStatus;
        // No such authority: the egress rule applies — unless a policy was taken (an outage keeps the last good one).
        if (status !== undefined && ABSENT_STATUSES.has(status) && !t.translation) t.absent = e.message;
        this.#schedule();
      },
    );
    (t as { stop: () => void }).stop = stop;
    return t;
  }

  #translate(t: Target, policy: OutboundPolicy): void {
    const r = this.#o.translate.outbound(policy, {
      authority: t.authority,
      namespace: namespaceOf(t.authority) ?? this.#o.authority.namespace,
      hostnames: [...t.hosts].sort(),
      identity: this.#o.identityOf(t.authority),
    });
    if (!r.ok) {
      t.lastError = reasonsText(r.reasons);
      this.#o.logger.error(`linkerd: the OutboundPolicy of ${t.authority} is refused, ${t.translation ? 'its last good one stays in force' : 'its hosts wait for a good one'}: ${t.lastError}`);
      return;
    }
    t.policy = policy;
    t.lastError = undefined;
    t.translation = renameBackends(r.value);
  }

  #dest(path: string): Dest {
    let d = this.#dests.get(path);
    if (d) return d;
    const entry: Dest = { state: new DestinationState(path), stop: () => {} };
    d = entry;
    this.#dests.set(path, entry);
    const stop = this.#o.streams.getDestination(
      path,
      this.#o.contextToken,
      (u: DestinationUpdate, delivery) => this.#onUpdate(path, entry, u, delivery.first),
      (e) => (entry.lastError = e.message),
    );
    (entry as { stop: () => void }).stop = stop;
    return entry;
  }

  #onUpdate(path: string, entry: Dest, u: DestinationUpdate, first: boolean): void {
    let state = entry.state;
    // The first message of a (re)opened stream is the whole set again: start over from it, atomically.
    if (first && state.view().status !== 'pending') state = new DestinationState(path);
    const r = state.apply(u);
    if (!r.ok) {
      entry.lastError = reasonsText(r.reasons);
      this.#o.logger.error(`linkerd: a Destination update for ${path} is refused, its endpoints stay as they were: ${entry.lastError}`);
      return;
    }
    entry.lastError = undefined;
    if (state !== entry.state) (entry as { state: DestinationState }).state = state;
    this.#schedule();
  }

  /** Deliveries in one turn of the event loop share one rebuild. */
  #schedule(): void {
    if (this.#queued || this.#closed) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      this.#rebuild();
    });
  }

  #rebuild(): void {
    if (this.#closed) return;
    const inputs: TargetInput[] = [...this.#targets.values()].map((t) => ({
      authority: t.authority,
      translation: t.translation,
      ...(t.absent !== undefined && { absent: t.absent }),
      ...(t.lastError !== undefined && { problem: t.lastError }),
    }));
    const views = new Map([...this.#dests].map(([p, d]) => [p, d.state.view()]));
    let built = this.#tree.build(inputs, views);
    // Paths the policies name that have no stream yet: open them (their first answers rebuild).
    let opened = false;
    for (const p of built.paths) if (!this.#dests.has(p)) (this.#dest(p), (opened = true));
    if (opened) built = this.#tree.build(inputs, new Map([...this.#dests].map(([p, d]) => [p, d.state.view()])));
    for (const [p, d] of [...this.#dests]) {
      if (built.paths.has(p)) continue;
      d.stop();
      this.#dests.delete(p);
    }
    this.#states = built.states;
    for (const svc of built.services.values()) this.#delivered.add(svc);
    const layer = this.#layer.build(new Map([...this.#ports].map(([p, e]) => [p, e.state])));
    const changed = !sameServices(this.#services, built.services) || layer !== this.#meshPolicy;
    this.#services = built.services;
    this.#meshPolicy = layer;
    if (changed) this.#emit();
    this.#builds.changed();
  }

  /** The options' snapshot plus the delivered services; what the options hold is theirs (a delivered service of the same name or hostname is left out). */
  #compose(base: MeshSnapshot): MeshSnapshot {
    const services = new Map(base.services);
    const hostnames = new Set<string>();
    for (const svc of base.services.values()) for (const h of svc.hostnames) hostnames.add(h);
    for (const [name, svc] of this.#services) {
      if (base.services.has(name) || svc.hostnames.some((h) => hostnames.has(h))) continue;
      services.set(name, svc);
    }
    const inbound = this.#meshPolicy === undefined ? base.inbound : { ...base.inbound, meshPolicy: this.#meshPolicy };
    return { version: String(++this.#serial), source: this.name, complete: false, inbound, services };
  }

  /** Offers the composed snapshot; current only once the mesh takes it. A refused delivery is logged, the previous snapshot stays. */
  #emit(base: MeshSnapshot = this.#o.base.current(), hint?: UpdateHint, rethrow = false): void {
    if (this.#closed) return;
    const next = this.#compose(base);
    try {
      for (const l of this.#listeners) l(next, hint);
      this.#current = next;
    } catch (e) {
      if (rethrow) throw e;
      this.#o.logger.error(`linkerd: snapshot ${next.version} from ${this.name} rejected, keeping version ${this.#current.version}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs) off();
    for (const t of this.#targets.values()) t.stop();
    for (const d of this.#dests.values()) d.stop();
    for (const p of this.#ports.values()) p.stop();
    this.#builds.changed();
    this.#listeners.clear();
    await this.#o.streams.close();
    await this.#o.base.close();
  }
}

/** `web.emojivoto.svc.cluster.local:80` → `emojivoto`. */
function namespaceOf(authority: string): string | undefined {
  const labels = authority.replace(/:\d+$/, '').split('.');
  return labels.length >= 3 && labels[2] === 'svc' ? labels[1] : undefined;
}

function reasonsText(reasons: ReadonlyArray<{ readonly resource: string; readonly field: string; readonly message: string }>): string {
  return reasons.map((r) => `${r.resource} ${r.field}: ${r.message}`).join('; ');
}

function sameServices(a: ReadonlyMap<string, ServiceSnapshot>, b: ReadonlyMap<string, ServiceSnapshot>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
