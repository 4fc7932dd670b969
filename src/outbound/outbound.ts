/**
 * The outbound side of one mesh, wired: the live set of services (balancer, pools, retry budget
 * each) over one mTLS client, the host router, and the dispatcher (made on first use: a process
 * that only serves never loads undici). The set changes only through `upsert` / `remove` /
 * `changed`, which control-plane/reconcile.ts calls with a validated snapshot.
 */
import { type Clock } from '../clock.js';
import { ChangeSignal } from '../change-signal.js';
import { type Logger } from '../logger.js';
import { type MeshEvents } from '../telemetry/events.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type ClientTls } from '../tls/connect.js';
import { type EgressMode, type JwtSvidIssuer, type MeshDispatcher, type ServiceRegistry, createMeshDispatcher } from './dispatcher.js';
import { HostRouter } from './router.js';
import { type ServiceSpec } from './settings.js';
import { OutboundService, type OutboundServiceStats } from './service.js';
import { loadUndici } from './undici.js';

/** How long a request waits for a pending reference unless `outbound.pendingTimeout` says otherwise (linkerd2-proxy's failfast). */
export const DEFAULT_PENDING_TIMEOUT_MS = 3_000;

export interface OutboundMeshStats {
  egress: string;
  /** Per service: balancer, EWMA/pending/state per endpoint, requests, retries, budget, ejections, split shares. */
  services: Record<string, OutboundServiceStats>;
}

export interface OutboundDeps {
  tls: ClientTls;
  clock: Clock;
  traffic: TrafficStats;
  /** The mesh's event bus: ejections are published there once. */
  events: MeshEvents;
  logger: Logger;
  egress: EgressMode;
  pendingTimeoutMs: number;
  /** Throws when our own SVID is not valid now (no call goes out with it). */
  checkIdentity: () => void;
  /** Names the control plane in errors about what it has not delivered. */
  source: () => string;
  /** A discovering control plane's answer for hosts no service holds (ServiceRegistry.discover). */
  discover?: ServiceRegistry['discover'];
  /** This mesh's JWT-SVIDs, for services with `jwtSvid` (mesh/jwt.ts). */
  jwtSvid?: JwtSvidIssuer;
}

export class Outbound implements ServiceRegistry {
  readonly #services = new Map<string, OutboundService>();
  readonly #router = new HostRouter<OutboundService>();
  /** Requests waiting for a pending reference: woken by every change. */
  readonly #changes: ChangeSignal;
  #dispatcher: MeshDispatcher | undefined;
  #closed = false;
  #generation = 0;
  /** Services taken out of the set: their pools finish in-flight requests, then close. */
  readonly #retiring = new Set<Promise<void>>();

  /** Set only with a discovering control plane: the dispatcher asks it about unknown hosts. */
  readonly discover?: ServiceRegistry['discover'];

  constructor(private readonly d: OutboundDeps) {
    this.#changes = new ChangeSignal(d.clock);
    if (d.discover) this.discover = d.discover;
  }

  get pendingTimeoutMs(): number {
    return this.d.pendingTimeoutMs;
  }

  get source(): string {
    return this.d.source();
  }

  get generation(): number {
    return this.#generation;
  }

  now(): number {
    return this.d.clock.now();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get(name: string): OutboundService | undefined {
    return this.#services.get(name);
  }

  resolve(host: string): OutboundService | undefined {
    return this.#router.resolve(host);
  }

  names(): string[] {
    return [...this.#services.keys()];
  }

  get services(): ReadonlyMap<string, OutboundService> {
    return this.#services;
  }

  /**
   * Adds a service or moves it to `spec`. One whose namespace or identity changes is a different
   * service: replaced (the old one drains). Otherwise it changes in place (service.ts `update`).
   */
  upsert(spec: ServiceSpec): void {
    const cur = this.#services.get(spec.name);
    if (cur && cur.namespace === spec.namespace && cur.identity === spec.identity) {
      const hostnamesChanged = cur.spec.hostnames !== spec.hostnames;
      cur.update(spec);
      if (hostnamesChanged) {
        this.#router.set(cur, spec.hostnames);
        this.#generation++;
      }
      return;
    }
    if (cur) this.remove(spec.name);
    const svc = new OutboundService({
      spec,
      tls: this.d.tls,
      clock: this.d.clock,
      traffic: this.d.traffic,
      onStateChange: (s, ch) => this.#stateChange(s, ch),
    });
    this.#services.set(spec.name, svc);
    this.#router.set(svc, spec.hostnames);
    this.#generation++;
  }

  /** Takes a service out of the set: new requests do not reach it; in-flight ones finish. */
  remove(name: string): void {
    const svc = this.#services.get(name);
    if (!svc) return;
    this.#services.delete(name);
    this.#router.delete(svc);
    this.#generation++;
    const closing = svc.close().catch(() => {});
    this.#retiring.add(closing);
    void closing.finally(() => this.#retiring.delete(closing));
  }

  /** Tells the requests waiting for pending references that the set changed. */
  changed(): void {
    this.#changes.changed();
  }

  /** Resolves at the next change (true), or after `ms` or when `stop` settles (false). */
  nextChange(ms: number, stop?: Promise<unknown>): Promise<boolean> {
    return this.#changes.next(ms, stop);
  }

  #stateChange(service: string, ch: { key: string; from: string; to: string; penaltyMs?: number }): void {
    if (ch.to === 'ejected') {
      const endpoint = ch.key.split(' ', 1)[0]!;
      this.d.events.ejection({ service, endpoint, key: ch.key, penaltyMs: ch.penaltyMs ?? 0 });
      this.d.logger.warn(`outbound: ${service} endpoint ${ch.key} ejected for ${Math.round(ch.penaltyMs ?? 0)} ms after consecutive failures`);
    } else if (ch.to === 'ready') this.d.logger.info(`outbound: ${service} endpoint ${ch.key} readmitted`);
  }

  /** Created on first use; one first asked for after close() is born closed, as an eager one was. */
  get dispatcher(): MeshDispatcher {
    if (this.#dispatcher) return this.#dispatcher;
    this.#dispatcher = createMeshDispatcher(this, this.d.egress, this.d.checkIdentity, this.d.jwtSvid);
    if (this.#closed) this.#dispatcher.close().catch(() => {});
    return this.#dispatcher;
  }

  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    return loadUndici().fetch(input as never, { ...(init as object), dispatcher: this.dispatcher }) as unknown as Promise<Response>;
  }

  stats(): OutboundMeshStats {
    const services: OutboundMeshStats['services'] = {};
    for (const [name, svc] of this.#services) services[name] = svc.stats();
    return { egress: this.d.egress, services };
  }

  /** Closes every service's pools (the dispatcher's egress agent too), waiting for in-flight requests. */
  /** Every service's idle pools destroyed (a thaw: see OutboundService.dropIdleConnections); returns how many. */
  async dropIdleConnections(): Promise<number> {
    const counts = await Promise.all([...this.#services.values()].map((s) => s.dropIdleConnections()));
    return counts.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.changed();
    if (this.#dispatcher) await this.#dispatcher.close();
    await Promise.all([...this.#services.values()].map((s) => s.close()));
    await Promise.all(this.#retiring);
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    this.changed();
    if (this.#dispatcher) await this.#dispatcher.destroy();
    await Promise.all([...this.#services.values()].map((s) => s.destroy()));
  }
}
