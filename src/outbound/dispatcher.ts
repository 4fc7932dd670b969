import type { Agent, Dispatcher } from 'undici';
import { EgressDeniedError, NoEndpointError } from '../errors.js';
import { closest } from '../suggest.js';
import { MeshClosedError, UnknownServiceError } from './errors.js';
import { failHandler, legacyHandler, requestHeader } from './handler.js';
import { MeshRequest } from './request.js';
import { HostRouter, isSingleLabel } from './router.js';
import { type OutboundService } from './service.js';
import { loadUndici } from './undici.js';

export type EgressMode = 'allow' | 'deny';

interface Route {
  readonly service: OutboundService | undefined;
  readonly host: string;
  /** Not a mesh service and a name without a dot (a typo of one, most likely): refused whatever the egress rule. */
  readonly unknownService: boolean;
}

const ROUTE_CACHE_LIMIT = 1000;

/**
 * The mesh's undici Dispatcher. The app writes `http://payments/charge`; this maps the host to a
 * mesh service, the request to a route (its timeout, retry and split settings), the split to a
 * backend service (chosen once per request), and hands the rest to a `MeshRequest`: each try goes
 * to an endpoint the backend's balancer picks, over that endpoint's mTLS pool, with the `host`
 * header the app wrote; failed tries are retried within the service's budget. Hosts that are not
 * mesh services follow the egress rule.
 */
export interface MeshDispatcher extends Dispatcher {
  /** Swaps the service set (after a config or discovery change). */
  setServices(services: ReadonlyMap<string, OutboundService>): void;
}

type MeshDispatcherClass = new (
  services: ReadonlyMap<string, OutboundService>,
  egress: EgressMode,
  checkIdentity?: () => void,
) => MeshDispatcher;

let Impl: MeshDispatcherClass | undefined;

/**
 * Creates the mesh's dispatcher. undici is loaded here, on first outbound use (see loadUndici), so
 * the class that extends undici's Dispatcher is defined then, once: a process that only serves
 * never loads undici, and the dispatcher is still a real Dispatcher (instanceof, compose()).
 */
export function createMeshDispatcher(
  services: ReadonlyMap<string, OutboundService>,
  egress: EgressMode,
  /** Throws (IdentityUnavailableError) when our own SVID is not valid now: pooled connections made before it expired must not keep calling. */
  checkIdentity: () => void = () => {},
): MeshDispatcher {
  Impl ??= defineMeshDispatcher(loadUndici().Dispatcher);
  return new Impl(services, egress, checkIdentity);
}

function defineMeshDispatcher(Base: typeof Dispatcher): MeshDispatcherClass {
  return class MeshDispatcherImpl extends Base implements MeshDispatcher {
    #router: HostRouter<OutboundService>;
    readonly #routes = new Map<string, Route>();
    #egressAgent: Agent | undefined;
    #closed = false;

    constructor(
      private services: ReadonlyMap<string, OutboundService>,
      private readonly egress: EgressMode,
      /** Throws (IdentityUnavailableError) when our own SVID is not valid now: pooled connections made before it expired must not keep calling. */
      private readonly checkIdentity: () => void = () => {},
    ) {
      super();
      this.#router = new HostRouter(services.values());
    }

    /** Swaps the service set (after a config or discovery change). */
    setServices(services: ReadonlyMap<string, OutboundService>): void {
      this.services = services;
      this.#router = new HostRouter(services.values());
      this.#routes.clear();
    }

    #route(origin: string | URL | undefined): Route {
      const key = typeof origin === 'string' ? origin : String(origin ?? '');
      let r = this.#routes.get(key);
      if (r) return r;
      let host = '';
      let hostname = '';
      try {
        ({ host, hostname } = new URL(key));
      } catch {
        host = hostname = key;
      }
      const service = this.#router.resolve(host);
      r = { service, host, unknownService: !service && isSingleLabel(hostname) };
      if (this.#routes.size >= ROUTE_CACHE_LIMIT) this.#routes.clear();
      this.#routes.set(key, r);
      return r;
    }

    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (this.#closed) {
        failHandler(handler, new MeshClosedError());
        return false;
      }
      const route = this.#route(opts.origin);
      const service = route.service;
      if (!service) {
        if (route.unknownService) {
          failHandler(handler, this.#unknownService(route.host));
          return false;
        }
        if (this.egress === 'deny') {
          failHandler(handler, new EgressDeniedError(route.host));
          return false;
        }
        this.#egressAgent ??= new (loadUndici().Agent)();
        return this.#egressAgent.dispatch(opts, handler);
      }
      try {
        this.checkIdentity();
      } catch (e) {
        failHandler(handler, e as Error);
        return false;
      }
      service.counters.routed++;
      const settings = service.hasRoutes
        ? service.settingsFor({
            method: opts.method ?? 'GET',
            path: opts.path ?? '/',
            header: (name) => requestHeader(opts.headers, name),
          })
        : service.defaultSettings();
      let backend = service;
      if (settings.split) {
        const name = settings.split.pick();
        const chosen = name === undefined ? undefined : name === service.name ? service : this.services.get(name);
        if (!chosen) {
          failHandler(handler, new NoEndpointError(service.name, name === undefined ? 'every backend of its split has weight 0' : `its split backend "${name}" is not a mesh service`));
          return false;
        }
        backend = chosen;
      }
      new MeshRequest(opts, legacyHandler(handler), service, backend, settings, route.host).start();
      return true;
    }

    #unknownService(host: string): UnknownServiceError {
      const names = [...this.services.keys()].sort();
      const name = host.replace(/:\d*$/, '').replace(/\.$/, '');
      return new UnknownServiceError(name, names, closest(name, names));
    }

    override async close(): Promise<void> {
      this.#closed = true;
      await Promise.all([...this.services.values()].map((s) => s.close()));
      await this.#egressAgent?.close();
    }

    override async destroy(): Promise<void> {
      this.#closed = true;
      await Promise.all([...this.services.values()].map((s) => s.destroy()));
      await this.#egressAgent?.destroy();
    }
  }
}
