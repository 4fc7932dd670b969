import type { Agent, Dispatcher } from 'undici';
import { EgressDeniedError, NoEndpointError } from '../errors.js';
import { closest } from '../suggest.js';
import { DiscoveryPendingError, MeshClosedError, PendingConfigError, UnknownServiceError } from './errors.js';
import { HeldRequest } from './held-request.js';
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
  /**
   * With a discovering control plane (xDS): asks it about a host no service holds yet, and waits
   * up to `ms` for its answer — 'found' (it is a mesh service now: resolve again), 'absent' (it
   * says there is none: the egress rule applies), 'pending' (no answer in time; `waitingFor`
   * says for what), or 'closed' (the control plane closed meanwhile: the mesh is closing).
   * `host` carries its port (`payments:80`).
   */
  discover?(host: string, protocol: string, ms: number, stop?: Promise<unknown>): Promise<DiscoveryAnswer>;
}

export type DiscoveryAnswer = { readonly kind: 'found' } | { readonly kind: 'absent' } | { readonly kind: 'pending'; readonly waitingFor: string } | { readonly kind: 'closed' };

interface Route {
  readonly host: string;
  /** What the host is looked up by: `host`, with its scheme's port made explicit when discovery may answer for it. */
  readonly lookup: string;
  readonly protocol: string;
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

/** This mesh's JWT-SVID for an audience (mesh/jwt.ts: cached until near its expiry). */
export type JwtSvidIssuer = (audience: readonly string[]) => Promise<string>;

type MeshDispatcherClass = new (registry: ServiceRegistry, egress: EgressMode, checkIdentity?: () => void, jwtSvid?: JwtSvidIssuer) => MeshDispatcher;

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
  /** For services with `jwtSvid`: the token each request to them carries. */
  jwtSvid?: JwtSvidIssuer,
): MeshDispatcher {
  Impl ??= defineMeshDispatcher(loadUndici().Dispatcher);
  return new Impl(registry, egress, checkIdentity, jwtSvid);
}

/** Parsed origins (host, lookup key, typo check), each with the service it resolved to at a registry generation. */
class RouteCache {
  readonly #routes = new Map<string, Route>();

  constructor(private readonly registry: ServiceRegistry) {}

  get(origin: string | URL | undefined): Route {
    const key = typeof origin === 'string' ? origin : String(origin ?? '');
    let r = this.#routes.get(key);
    if (r) {
      if (r.generation !== this.registry.generation) {
        r.service = this.registry.resolve(r.lookup);
        r.generation = this.registry.generation;
      }
      return r;
    }
    let host = '';
    let hostname = '';
    let protocol = '';
    try {
      ({ host, hostname, protocol } = new URL(key));
    } catch {
      host = hostname = key;
    }
    const lookup = this.registry.discover ? discoveryLookup(host, hostname, protocol) : host;
    r = { host, lookup, protocol, service: this.registry.resolve(lookup), generation: this.registry.generation, unknownService: isSingleLabel(hostname) };
    if (this.#routes.size >= ROUTE_CACHE_LIMIT) this.#routes.clear();
    this.#routes.set(key, r);
    return r;
  }
}

/** "Not a mesh service" for a host, with the closest service name when one is close. */
function unknownServiceError(registry: ServiceRegistry, host: string): UnknownServiceError {
  const names = registry.names().sort();
  const name = host.replace(/:\d*$/, '').replace(/\.$/, '');
  return new UnknownServiceError(name, names, closest(name, names));
}

function defineMeshDispatcher(Base: typeof Dispatcher): MeshDispatcherClass {
  return class MeshDispatcherImpl extends Base implements MeshDispatcher {
    #egressAgent: Agent | undefined;
    #closed = false;

    constructor(
      private readonly registry: ServiceRegistry,
      private readonly egress: EgressMode,
      /** Throws (IdentityUnavailableError) when our own SVID is not valid now: pooled connections made before it expired must not keep calling. */
      private readonly checkIdentity: () => void = () => {},
      private readonly jwtSvid?: JwtSvidIssuer,
    ) {
      super();
      this.#routes = new RouteCache(registry);
    }

    /** Parsed origins (host, typo check); the service is looked up per request, the set changes live. */
    readonly #routes: RouteCache;

    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (this.#closed) {
        failHandler(handler, new MeshClosedError());
        return false;
      }
      const route = this.#routes.get(opts.origin);
      const service = route.service;
      if (!service) {
        if (this.registry.discover) {
          void this.#discover(opts, handler, route);
          return true;
        }
        return this.#notMesh(opts, handler, route);
      }
      return this.#routed(opts, handler, service, route, undefined);
    }

    /** A host that is no mesh service: a typo of one, or egress (allowed or denied). */
    #notMesh(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, route: Route): boolean {
      if (route.unknownService) {
        failHandler(handler, unknownServiceError(this.registry, route.host));
        return false;
      }
      if (this.egress === 'deny') {
        failHandler(handler, new EgressDeniedError(route.host));
        return false;
      }
      this.#egressAgent ??= new (loadUndici().Agent)();
      return this.#egressAgent.dispatch(opts, handler);
    }

    /** Holds the request while the control plane is asked about its host, then routes it or applies egress. */
    async #discover(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, route: Route): Promise<void> {
      const held = await HeldRequest.hold(handler);
      if (!held) return;
      const waitMs = this.registry.pendingTimeoutMs;
      const answer = await this.registry.discover!(route.lookup, route.protocol, waitMs, held.abortedWhileWaiting);
      if (held.aborted) return held.fail(held.aborted);
      if (answer.kind === 'closed' || this.#closed || this.registry.closed) return held.fail(new MeshClosedError());
      if (answer.kind === 'pending') return held.fail(new DiscoveryPendingError(route.host, answer.waitingFor, waitMs, this.registry.source));
      const service = answer.kind === 'found' ? this.registry.resolve(route.lookup) : undefined;
      if (service) {
        this.#routed(opts, held.caller as Dispatcher.DispatchHandler, service, route, held);
        return;
      }
      if (route.unknownService) return held.fail(unknownServiceError(this.registry, route.host));
      if (this.egress === 'deny') return held.fail(new EgressDeniedError(route.host));
      this.#egressAgent ??= new (loadUndici().Agent)();
      this.#egressAgent.dispatch(opts, held.relaying());
    }

    /** A request whose host is a mesh service: its route, its split's backend, then the request (or a wait for what is pending). */
    #routed(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, service: OutboundService, route: Route, held: HeldRequest | undefined): boolean {
      const fail = (e: Error) => (held ? held.fail(e) : failHandler(handler, e), false);
      try {
        this.checkIdentity();
      } catch (e) {
        return fail(e as Error);
      }
      const jwt = service.spec.settings.jwtSvid;
      if (jwt && this.jwtSvid && requestHeader(opts.headers, 'authorization') === undefined) {
        void this.#withJwtSvid(opts, handler, service, route, held, jwt.audience);
        return true;
      }
      service.counters.routed++;
      const settings = settingsFor(service, opts);
      const picked = backendOf(this.registry, service, settings);
      if (picked instanceof Error) return fail(picked);
      const { backend, name: backendName } = picked;
      if (!backend || backend.pending) {
        void whenDelivered(this.registry, () => this.#closed, (h) => unknownServiceError(this.registry, h), { opts, handler, service, name: backendName, settings, host: route.host }, held);
        return true;
      }
      if (held) new MeshRequest(opts, held.caller, service, backend, settings, route.host, held.started).start();
      else new MeshRequest(opts, legacyHandler(handler), service, backend, settings, route.host).start();
      return true;
    }

    /**
     * Holds the request while this mesh's JWT-SVID for the service's audience is had (from the
     * cache, mostly), then routes it carrying `Authorization: Bearer <token>`; every try of it
     * (retries included) sends that one token. The app's own Authorization is never replaced (the
     * caller of #routed checked there is none). No token: the request fails with why.
     */
    async #withJwtSvid(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, service: OutboundService, route: Route, held: HeldRequest | undefined, audience: readonly string[]): Promise<void> {
      const got = await withToken(this.jwtSvid!, audience, opts, handler, held, () => this.#closed);
      if (got) this.#routed(got.opts, got.held.caller as Dispatcher.DispatchHandler, service, route, got.held);
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

/** The settings of the route a request takes (the service's own when it has no routes). */
function settingsFor(service: OutboundService, opts: Dispatcher.DispatchOptions): ReturnType<OutboundService['defaultSettings']> {
  if (!service.hasRoutes) return service.defaultSettings();
  return service.settingsFor({ method: opts.method ?? 'GET', path: opts.path ?? '/', header: (name) => requestHeader(opts.headers, name) });
}

/** The backend of a request to `service`: the service itself, or the backend its split picks (undefined while not delivered). */
function backendOf(registry: ServiceRegistry, service: OutboundService, settings: ReturnType<OutboundService['defaultSettings']>): { backend: OutboundService | undefined; name: string } | Error {
  if (!settings.split) return { backend: service, name: service.name };
  const name = settings.split.pick();
  if (name === undefined) return new NoEndpointError(service.name, 'every backend of its split has weight 0');
  return { backend: name === service.name ? service : registry.get(name), name };
}

/**
 * Holds the request (unless held already) while this mesh's JWT-SVID for `audience` is had, and
 * gives back its options carrying `Authorization: Bearer <token>`; undefined when the request
 * ended meanwhile (failed with why: no token, aborted, the mesh closed).
 */
async function withToken(
  issuer: JwtSvidIssuer,
  audience: readonly string[],
  opts: Dispatcher.DispatchOptions,
  handler: Dispatcher.DispatchHandler,
  held: HeldRequest | undefined,
  closed: () => boolean,
): Promise<{ opts: Dispatcher.DispatchOptions; held: HeldRequest } | undefined> {
  const h = held ?? (await HeldRequest.hold(handler));
  if (!h) return undefined;
  let token: string;
  try {
    token = await issuer(audience);
  } catch (e) {
    h.fail(e as Error);
    return undefined;
  }
  if (h.aborted) return (h.fail(h.aborted), undefined);
  if (closed()) return (h.fail(new MeshClosedError()), undefined);
  return { opts: { ...opts, headers: withHeader(opts.headers, 'authorization', `Bearer ${token}`) }, held: h };
}

/** `headers` (any form undici takes) with one more field. */
export function withHeader(headers: Dispatcher.DispatchOptions['headers'], name: string, value: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { [name]: value };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return [...(headers as unknown as Array<[string, string]>), [name, value]] as never;
    return [...(headers as string[]), name, value];
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const flat: string[] = [];
    for (const [k, v] of headers as Iterable<[string, string | string[]]>) for (const x of Array.isArray(v) ? v : [v]) flat.push(String(k), String(x));
    return [...flat, name, value];
  }
  return { ...(headers as Record<string, string | string[]>), [name]: value };
}

/**
 * What a host is looked up by with discovery: `payments` and `payments:8080` are different
 * Listeners, so the port is always written (the scheme's when the URL has none); the root dot
 * goes (`payments.default.svc.cluster.local.` is the router's `payments.default.svc.cluster.local`,
 * and a service's hostnames carry none).
 */
function discoveryLookup(host: string, hostname: string, protocol: string): string {
  if (protocol !== 'http:' && protocol !== 'https:') return host;
  const port = host === hostname ? (protocol === 'https:' ? '443' : '80') : host.slice(hostname.length + 1);
  const name = hostname.length > 1 && hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  return `${name}:${port}`;
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
 * naming what is missing. The request is held (held-request.ts): the caller's abort ends the wait
 * at once; once the request runs, the abort goes to it. `held`: already held (by discovery).
 */
async function whenDelivered(registry: ServiceRegistry, closed: () => boolean, unknown: (host: string) => Error, w: Waiting, held?: HeldRequest): Promise<void> {
  const h = held ?? (await HeldRequest.hold(w.handler));
  if (!h) return;
  const fail = (e: Error) => h.fail(e);
  const waitMs = registry.pendingTimeoutMs;
  const start = registry.now();
  for (;;) {
    if (h.aborted) return fail(h.aborted);
    if (closed() || registry.closed) return fail(new MeshClosedError());
    // The addressed service may itself have been replaced meanwhile: follow the live one. One
    // removed meanwhile fails now, as a new request to it would (not after pendingTimeout).
    const live = registry.get(w.service.name);
    if (!live) return fail(unknown(w.service.name));
    const backend = w.name === w.service.name ? live : registry.get(w.name);
    if (backend && !backend.pending) {
      new MeshRequest(w.opts, h.caller, live, backend, w.settings, w.host, h.started).start();
      return;
    }
    const left = waitMs - (registry.now() - start);
    if (left <= 0 || !(await registry.nextChange(left, h.abortedWhileWaiting))) {
      if (h.aborted) return fail(h.aborted);
      return fail(new PendingConfigError(w.service.name, w.name, waitMs, registry.source));
    }
  }
}
