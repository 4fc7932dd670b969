/**
 * The outbound side of one mesh, wired: a service (balancer, pools, retry budget) per configured
 * name over one mTLS client, the dispatcher (made on first use: a process that only serves never
 * loads undici), and the live updates `mesh.setEndpoints` / `mesh.setSplit`, validated whole.
 */
import { z } from 'zod';
import { type Clock } from '../clock.js';
import { type EndpointInput, type Logger, type MeshConfig, type SplitInput, endpointSchema, formatIssues, splitSchema } from '../config.js';
import { ConfigError } from '../errors.js';
import { recordEjection } from '../telemetry/instruments.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type ClientTls } from '../tls/connect.js';
import { type MeshDispatcher, createMeshDispatcher } from './dispatcher.js';
import { OutboundService, type OutboundServiceStats } from './service.js';
import { loadUndici } from './undici.js';

export interface OutboundMeshStats {
  egress: string;
  /** Per service: balancer, EWMA/pending/state per endpoint, requests, retries, budget, ejections, split shares. */
  services: Record<string, OutboundServiceStats>;
}

export interface OutboundDeps {
  config: MeshConfig;
  tls: ClientTls;
  clock: Clock;
  traffic: TrafficStats;
  logger: Logger;
  /** Throws when our own SVID is not valid now (no call goes out with it). */
  checkIdentity: () => void;
}

type Issue = { path: string; message: string };

export class Outbound {
  readonly services = new Map<string, OutboundService>();
  #dispatcher: MeshDispatcher | undefined;
  #closed = false;

  constructor(private readonly d: OutboundDeps) {
    for (const [name, svc] of Object.entries(d.config.outbound.services)) {
      const ns = svc.namespace ?? d.config.namespace;
      const identity = svc.identity ?? `spiffe://${d.config.trustDomain}/ns/${ns}/sa/${name}`;
      this.services.set(name, new OutboundService({ name, namespace: ns, identity, tls: d.tls, config: svc, clock: d.clock, onStateChange: (s, ch) => this.#stateChange(s, ch), traffic: d.traffic }));
    }
  }

  #stateChange(service: string, ch: { key: string; from: string; to: string; penaltyMs?: number }): void {
    if (ch.to === 'ejected') {
      const endpoint = ch.key.split(' ', 1)[0]!;
      this.d.traffic.ejection(service, endpoint);
      recordEjection(service, endpoint);
      this.d.logger.warn(`outbound: ${service} endpoint ${ch.key} ejected for ${Math.round(ch.penaltyMs ?? 0)} ms after consecutive failures`);
    } else if (ch.to === 'ready') this.d.logger.info(`outbound: ${service} endpoint ${ch.key} readmitted`);
  }

  /** Created on first use; one first asked for after close() is born closed, as an eager one was. */
  get dispatcher(): MeshDispatcher {
    if (this.#dispatcher) return this.#dispatcher;
    this.#dispatcher = createMeshDispatcher(this.services, this.d.config.outbound.egress, this.d.checkIdentity);
    if (this.#closed) this.#dispatcher.close().catch(() => {});
    return this.#dispatcher;
  }

  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    return loadUndici().fetch(input as never, { ...(init as object), dispatcher: this.dispatcher }) as unknown as Promise<Response>;
  }

  #service(method: string, name: string): OutboundService {
    const svc = this.services.get(name);
    if (svc) return svc;
    throw new ConfigError(`${method}: "${name}" is not a mesh service; known: ${[...this.services.keys()].join(', ') || '(none)'}`, [
      { path: 'service', message: 'unknown service' },
    ]);
  }

  setEndpoints(name: string, endpoints: EndpointInput[]): void {
    const svc = this.#service('setEndpoints', name);
    const schema = z.array(endpointSchema);
    const parsed = schema.safeParse(endpoints);
    if (!parsed.success) {
      const issues = formatIssues(parsed.error.issues, endpoints, schema).map((i) => ({ ...i, path: `endpoints.${i.path}` }));
      throw new ConfigError(`setEndpoints("${name}") rejected, endpoints unchanged:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
    }
    svc.setEndpoints(parsed.data);
  }

  setSplit(name: string, split: SplitInput | null): void {
    const svc = this.#service('setSplit', name);
    if (split === null) {
      svc.setSplit(null);
      return;
    }
    const reject = (issues: Issue[]) =>
      new ConfigError(`setSplit("${name}") rejected, split unchanged:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
    const parsed = splitSchema.safeParse(split);
    if (!parsed.success) throw reject(formatIssues(parsed.error.issues, split, splitSchema).map((i) => ({ ...i, path: `split.${i.path}` })));
    const issues = this.#splitIssues(name, parsed.data);
    if (issues.length > 0) throw reject(issues);
    svc.setSplit(parsed.data);
  }

  /** A backend is a known service without a split of its own; `name` must not be another's backend. */
  #splitIssues(name: string, split: ReadonlyArray<{ service: string }>): Issue[] {
    const issues: Issue[] = [];
    split.forEach((b, i) => {
      if (b.service === name) return;
      const backend = this.services.get(b.service);
      if (!backend) issues.push({ path: `split.${i}.service`, message: `"${b.service}" is not a mesh service; add it to outbound.services` });
      else if (backend.hasSplit) issues.push({ path: `split.${i}.service`, message: `"${b.service}" has a split itself: a backend must be a service with endpoints` });
    });
    for (const [n, s] of this.services) {
      if (n !== name && s.backendNames().includes(name)) issues.push({ path: 'split', message: `"${name}" is a backend of "${n}"'s split, and a backend cannot split` });
    }
    return issues;
  }

  stats(): OutboundMeshStats {
    const services: OutboundMeshStats['services'] = {};
    for (const [name, svc] of this.services) services[name] = svc.stats();
    return { egress: this.d.config.outbound.egress, services };
  }

  /** The dispatcher closes the services' pools; without one, they are closed here. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#dispatcher) await this.#dispatcher.close();
    else await Promise.all([...this.services.values()].map((s) => s.close()));
  }
}
