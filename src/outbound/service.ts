import { Pool } from 'undici';
import { type EndpointConfig, parseAddress } from '../config.js';
import { authorizeId } from '../identity/authorizer.js';
import { type ClientTls } from '../tls/connect.js';
import { type RoutableService, serviceHostnames } from './router.js';

export interface EndpointStats {
  readonly address: string;
  readonly identity: string;
  readonly weight: number;
  requests: number;
  failures: number;
  pending: number;
}

/** One endpoint: its expected identity and one undici Pool over mTLS. */
export class Endpoint {
  readonly pool: Pool;
  readonly stats: EndpointStats;
  constructor(
    readonly address: string,
    readonly origin: string,
    readonly identity: string,
    readonly weight: number,
    pool: Pool,
  ) {
    this.pool = pool;
    this.stats = { address, identity, weight, requests: 0, failures: 0, pending: 0 };
  }
}

/**
 * A mesh service as the client sees it: endpoints with their pools, and the pick. The pick is a
 * weighted round robin for now; the traffic layer's balancers replace it.
 */
export class OutboundService implements RoutableService {
  #endpoints: Endpoint[] = [];
  #cycle: Endpoint[] = [];
  #next = 0;
  readonly servername: string;

  constructor(
    readonly name: string,
    readonly namespace: string,
    /** The identity endpoints must present unless they name their own. */
    readonly identity: string,
    private readonly tls: ClientTls,
    endpoints: readonly EndpointConfig[],
    clusterDomain?: string,
  ) {
    this.servername = serviceHostnames(name, namespace, clusterDomain).at(-1)!;
    this.setEndpoints(endpoints);
  }

  get endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  /**
   * Replaces the endpoint set atomically. Endpoints that stay keep their pools (and connections);
   * new ones are added; removed ones stop taking requests and close after their in-flight requests.
   */
  setEndpoints(list: readonly EndpointConfig[]): void {
    const old = new Map(this.#endpoints.map((e) => [`${e.address}|${e.identity}`, e]));
    const next: Endpoint[] = [];
    for (const cfg of list) {
      const identity = cfg.identity ?? this.identity;
      const key = `${cfg.address}|${identity}`;
      const kept = old.get(key);
      if (kept && kept.weight === cfg.weight) {
        next.push(kept);
        old.delete(key);
        continue;
      }
      next.push(kept ? new Endpoint(cfg.address, kept.origin, identity, cfg.weight, kept.pool) : this.#create(cfg.address, identity, cfg.weight));
      if (kept) old.delete(key);
    }
    this.#endpoints = next;
    this.#cycle = weightedCycle(next);
    this.#next = 0;
    for (const gone of old.values()) void gone.pool.close().catch(() => {});
  }

  #create(address: string, identity: string, weight: number): Endpoint {
    const { host, port } = parseAddress(address)!;
    const origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const pool = new Pool(origin, {
      connect: this.tls.connector({
        authorize: authorizeId(identity),
        servername: this.servername,
        describe: `${this.name} endpoint ${address}`,
      }),
      keepAliveTimeout: 10_000,
      connections: 128,
    });
    return new Endpoint(address, origin, identity, weight, pool);
  }

  pick(): Endpoint | undefined {
    const cycle = this.#cycle;
    if (cycle.length === 0) return undefined;
    const e = cycle[this.#next % cycle.length]!;
    this.#next = (this.#next + 1) % cycle.length;
    return e;
  }

  async close(): Promise<void> {
    await Promise.all(this.#endpoints.map((e) => e.pool.close().catch(() => {})));
    this.#endpoints = [];
    this.#cycle = [];
  }
}

/** Interleaved weighted cycle (weights are small integers in static config). */
function weightedCycle(endpoints: readonly Endpoint[]): Endpoint[] {
  const out: Endpoint[] = [];
  const max = Math.max(0, ...endpoints.map((e) => e.weight));
  for (let round = 0; round < Math.min(max, 100); round++) for (const e of endpoints) if (e.weight > round) out.push(e);
  return out;
}
