import type { Agent, Dispatcher } from 'undici';
import { EgressDeniedError, NoEndpointError } from '../errors.js';
import { closest } from '../suggest.js';
import { MeshClosedError, PendingConfigError, UnknownServiceError } from './errors.js';
import { failHandler, legacyHandler, requestHeader } from './handler.js';
import { MeshRequest } from './request.js';
import { isSingleLabel } from './router.js';
import { type OutboundService, type RequestSettings } from './service.js';
import { loadUndici } from './undici.js';

export type EgressMode = 'allow' | 'deny';

/** The live service set the dispatcher routes over (outbound.ts). */
export interface ServiceRegistry {
  get(name: string): OutboundService | undefined;
  /** The service a host names (exact, then wildcards), or undefined. */
  resolve(host: string): OutboundService | undefined;
  names(): string[];
  /** Changes whenever a host could resolve differently (services added, removed, replaced, renamed). */
  readonly generation: number;
  readonly closed: boolean;
  /** How long a request waits for a pending reference, and who should deliver it. */
  readonly pendingTimeoutMs: number;
  readonly source: string;
  /** The mesh's clock. */
  now(): number;
  /** Resolves at the next change of the set (true), or after `ms` or when `stop` settles (false). */
  nextChange(ms: number, stop?: Promise<unknown>): Promise<boolean>;
}

interface Route {
  readonly host: string;
  /** The service it resolved to, valid while the registry's generation is `generation`. */
  service: OutboundService | undefined;
  generation: number;
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
export type MeshDispatcher = Dispatcher;

type MeshDispatcherClass = new (registry: ServiceRegistry, egress: EgressMode, checkIdentity?: () => void) => MeshDispatcher;

let Impl: MeshDispatcherClass | undefined;

/**
 * Creates the mesh's dispatcher. undici is loaded here, on first outbound use (see loadUndici), so
 * the class that extends undici's Dispatcher is defined then, once: a process that only serves
 * never loads undici, and the dispatcher is still a real Dispatcher (instanceof, compose()).
 */
export function createMeshDispatcher(
  registry: ServiceRegistry,
  egress: EgressMode,
  /** Throws (IdentityUnavailableError) when our own SVID is not valid now: pooled connections made before it expired must not keep calling. */
  checkIdentity: () => void = () => {},
): MeshDispatcher {
  Impl ??= defineMeshDispatcher(loadUndici().Dispatcher);
  return new Impl(registry, egress, checkIdentity);
}

function defineMeshDispatcher(Base: typeof Dispatcher): MeshDispatcherClass {
  return class MeshDispatcherImpl extends Base implements MeshDispatcher {
    /** Parsed origins (host, typo check); the service is looked up per request, the set changes live. */
    readonly #routes = new Map<string, Route>();
    #egressAgent: Agent | undefined;
    #closed = false;

    constructor(
      private readonly registry: ServiceRegistry,
      private readonly egress: EgressMode,
      /** Throws (IdentityUnavailableError) when our own SVID is not valid now: pooled connections made before it expired must not keep calling. */
      private readonly checkIdentity: () => void = () => {},
    ) {
      super();
    }

    #route(origin: string | URL | undefined): Route {
      const key = typeof origin === 'string' ? origin : String(origin ?? '');
      let r = this.#routes.get(key);
      if (r) {
        if (r.generation !== this.registry.generation) {
          r.service = this.registry.resolve(r.host);
          r.generation = this.registry.generation;
        }
        return r;
      }
      let host = '';
      let hostname = '';
      try {
        ({ host, hostname } = new URL(key));
      } catch {
        host = hostname = key;
      }
      r = { host, service: this.registry.resolve(host), generation: this.registry.generation, unknownService: isSingleLabel(hostname) };
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
      let backend: OutboundService | undefined = service;
      let backendName = service.name;
      if (settings.split) {
        const name = settings.split.pick();
        if (name === undefined) {
          failHandler(handler, new NoEndpointError(service.name, 'every backend of its split has weight 0'));
          return false;
        }
        backendName = name;
        backend = name === service.name ? service : this.registry.get(name);
      }
      if (!backend || backend.pending) {
        void whenDelivered(this.registry, () => this.#closed, (h) => this.#unknownService(h), { opts, handler, service, name: backendName, settings, host: route.host });
        return true;
      }
      new MeshRequest(opts, legacyHandler(handler), service, backend, settings, route.host).start();
      return true;
    }

    #unknownService(host: string): UnknownServiceError {
      const names = this.registry.names().sort();
      const name = host.replace(/:\d*$/, '').replace(/\.$/, '');
      return new UnknownServiceError(name, names, closest(name, names));
    }

    override async close(): Promise<void> {
      this.#closed = true;
      await this.#egressAgent?.close();
    }

    override async destroy(): Promise<void> {
      this.#closed = true;
      await this.#egressAgent?.destroy();
    }
  };
}

interface Waiting {
  readonly opts: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  /** The service the app addressed. */
  readonly service: OutboundService;
  /** What it waits for: a split backend, or (its own name) the service's endpoints. */
  readonly name: string;
  readonly settings: RequestSettings;
  readonly host: string;
}

/**
 * A split backend or a service's endpoints that a live control plane has not delivered yet: wait
 * for the set to change, bounded by the registry's pendingTimeout, then run the request or fail
 * naming what is missing. The caller is told the request started before the wait, so its abort
 * (fetch's AbortSignal) ends the wait at once; once the request runs, the abort goes to it.
 */
async function whenDelivered(registry: ServiceRegistry, closed: () => boolean, unknown: (host: string) => Error, w: Waiting): Promise<void> {
  const caller = legacyHandler(w.handler);
  const fail = (e: Error) => void caller.onError?.(e);
  let aborted: Error | undefined;
  let relay: ((reason?: Error) => void) | undefined;
  let onAbort: () => void = () => {};
  const abortedWhileWaiting = new Promise<void>((resolve) => (onAbort = resolve));
  try {
    caller.onConnect?.((reason?: Error) => {
      if (relay) return relay(reason);
      aborted ??= reason ?? Object.assign(new Error('Request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
      onAbort();
    });
  } catch (e) {
    return queueMicrotask(() => fail(e as Error));
  }
  // Nothing below tells the caller anything during dispatch itself (as failHandler defers).
  await null;
  const waitMs = registry.pendingTimeoutMs;
  const start = registry.now();
  for (;;) {
    if (aborted) return fail(aborted);
    if (closed() || registry.closed) return fail(new MeshClosedError());
    // The addressed service may itself have been replaced meanwhile: follow the live one. One
    // removed meanwhile fails now, as a new request to it would (not after pendingTimeout).
    const live = registry.get(w.service.name);
    if (!live) return fail(unknown(w.service.name));
    const backend = w.name === w.service.name ? live : registry.get(w.name);
    if (backend && !backend.pending) {
      const started = (abort: (reason?: Error) => void) => (relay = abort);
      new MeshRequest(w.opts, caller, live, backend, w.settings, w.host, started).start();
      return;
    }
    const left = waitMs - (registry.now() - start);
    if (left <= 0 || !(await registry.nextChange(left, abortedWhileWaiting))) {
      if (aborted) return fail(aborted);
      return fail(new PendingConfigError(w.service.name, w.name, waitMs, registry.source));
    }
  }
}
