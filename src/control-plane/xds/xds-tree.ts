/**
 * The xDS resource tree → mesh services, complete or not at all (grpc-js-xds's XdsDependencyManager
 * model: a configuration is emitted only once every resource it depends on is decided). Pure.
 *
 * A host the application wrote (`payments:8080`) is bound to its Listener candidates
 * (host-candidates.ts). The first candidate present in the LDS cache wins: all candidates of a host
 * are subscribed in one request and an LDS response is the state of the world, so a response that
 * carries a later candidate and not an earlier one says the earlier one does not exist. A host
 * whose every candidate does not exist is `absent` (the egress rule applies); otherwise `pending`.
 *
 * Listener → RouteConfiguration (inline or RDS) → the virtual host the written host selects (as
 * Envoy: exact, longest suffix wildcard, longest prefix wildcard, `*`) → a *front* service: the
 * hosts bound to that virtual host as its hostnames, the virtual host's routes, no endpoints of its
 * own; every route's split names Clusters, each a *backend* service (settings, identity and the
 * endpoints of its ClusterLoadAssignment). A front is rebuilt only when everything under it is
 * decided (present, or known not to exist: a Cluster that does not exist stays out, its routes'
 * requests wait for it and then fail naming it; a ClusterLoadAssignment that does not exist is no
 * endpoints); until then its last complete build stays in force (the latch). Services are rebuilt
 * only when what they are built from changed, so unchanged ones keep their object and the
 * reconciler touches only what changed.
 */
import { type ServiceEndpoint, type ServiceSettings, type ServiceSpec } from '../../outbound/settings.js';
import { HostRouter } from '../../outbound/router.js';
import { type EndpointSet } from './decode.js';
import { type ClusterSpec } from './translate/cluster.js';
import { type ListenerSpec } from './translate/listener.js';
import { type RouteTable, type VirtualHostSpec, withListenerTimeout } from './translate/route.js';

export interface HostBinding {
  /** As the application wrote it, lower case: `payments:8080`, `payments`. */
  readonly host: string;
  readonly candidates: readonly string[];
}

export type HostState =
  | { readonly kind: 'found'; readonly listener: string; readonly front?: string }
  | { readonly kind: 'absent' }
  | { readonly kind: 'pending'; readonly waitingFor: string };

/** The decoded resources in force, by type, and the names known not to exist. */
export interface TreeInput {
  readonly listeners: ReadonlyMap<string, unknown>;
  readonly routes: ReadonlyMap<string, unknown>;
  readonly clusters: ReadonlyMap<string, unknown>;
  readonly endpoints: ReadonlyMap<string, unknown>;
  readonly missing: {
    readonly listeners: ReadonlySet<string>;
    readonly routes: ReadonlySet<string>;
    readonly clusters: ReadonlySet<string>;
    readonly endpoints: ReadonlySet<string>;
  };
}

export interface TreeContext {
  readonly trustDomain: string;
  /** The mesh's namespace: services whose name says none are taken to be in it. */
  readonly namespace: string;
  /** What a front's settings are (they carry no endpoints; requests run with their route's policy). */
  readonly baseSettings: ServiceSettings;
}

/** What to subscribe to, per type. */
export interface Wanted {
  readonly listeners: ReadonlySet<string>;
  readonly routes: ReadonlySet<string>;
  readonly clusters: ReadonlySet<string>;
  readonly endpoints: ReadonlySet<string>;
}

export interface TreeBuild {
  readonly services: ReadonlyMap<string, ServiceSpec>;
  readonly hosts: ReadonlyMap<string, HostState>;
  readonly wanted: Wanted;
}

function isListenerSpec(v: unknown): v is ListenerSpec {
  return typeof v === 'object' && v !== null && 'routes' in v;
}

/** The first candidate in the LDS cache wins; all known missing: absent. */
export function hostState(b: HostBinding, res: TreeInput): HostState {
  for (const name of b.candidates) if (isListenerSpec(res.listeners.get(name))) return { kind: 'found', listener: name };
  if (b.candidates.every((c) => res.missing.listeners.has(c))) return { kind: 'absent' };
  return { kind: 'pending', waitingFor: `Listener ${b.candidates.join(' or ')}` };
}

interface RoutedVirtualHost {
  readonly name: string;
  readonly namespace: string;
  readonly vh: VirtualHostSpec;
}

/** One router per route table object (tables are immutable and shared across builds). */
const routers = new WeakMap<RouteTable, HostRouter<RoutedVirtualHost>>();

/** The virtual host `host` selects, as Envoy picks one (router.ts's rules); undefined when none does. */
export function virtualHostFor(table: RouteTable, host: string): VirtualHostSpec | undefined {
  let router = routers.get(table);
  if (!router) {
    router = new HostRouter<RoutedVirtualHost>();
    for (const vh of table.virtualHosts) router.set({ name: vh.name, namespace: '', vh }, vh.domains);
    routers.set(table, router);
  }
  return router.resolve(host)?.vh;
}

/** `payments.default.svc.cluster.local[:port]` → default; `outbound|8080|v1|payments.default.svc…` → default. */
export function namespaceOf(name: string): string | undefined {
  const fqdn = name.includes('|') ? (name.split('|')[3] ?? '') : name;
  return /^[^.|:]+\.([a-z0-9-]+)\.svc(?:[.:]|$)/.exec(fqdn)?.[1];
}

/** The SPIFFE ID a service is taken to present when its Cluster names none: `…/ns/<ns>/sa/<first label>` (the options' default). */
export function derivedIdentity(name: string, ctx: TreeContext): string {
  const fqdn = name.includes('|') ? (name.split('|')[3] ?? name) : name;
  const label = /^[a-z0-9-]+/.exec(fqdn)?.[0] || 'default';
  return `spiffe://${ctx.trustDomain}/ns/${namespaceOf(name) ?? ctx.namespace}/sa/${label}`;
}

interface FrontMemo {
  readonly vhost: VirtualHostSpec;
  readonly hostsKey: string;
  readonly name: string;
  readonly spec: ServiceSpec;
  /** The backends as they were when this front was last complete. */
  readonly backends: readonly ServiceSpec[];
}

interface BackendMemo {
  readonly cluster: ClusterSpec;
  readonly endpoints: EndpointSet | undefined;
  readonly spec: ServiceSpec;
}

interface FrontGroup {
  readonly table: RouteTable;
  readonly vhost: VirtualHostSpec;
  /** The HCM default timeout of the Listener(s) that lead here (RDS routes without their own take it). */
  readonly defaultTimeoutMs: number | undefined;
  readonly hosts: string[];
}

export class XdsTree {
  #fronts = new Map<string, FrontMemo>();
  #backends = new Map<string, BackendMemo>();

  constructor(private readonly ctx: TreeContext) {}

  build(bindings: readonly HostBinding[], res: TreeInput): TreeBuild {
    const listeners = new Set<string>();
    const routes = new Set<string>();
    const clusters = new Set<string>();
    const endpoints = new Set<string>();
    const hosts = new Map<string, HostState>();
    const groups = new Map<string, FrontGroup>();
    for (const b of bindings) {
      // Every candidate stays subscribed, the winner's too: the others' does-not-exist timers then
      // run out once, so a host whose Listener is later removed is known absent at once.
      for (const c of b.candidates) listeners.add(c);
      let st = hostState(b, res);
      if (st.kind === 'found') st = this.#route(b.host, st.listener, res, routes, groups);
      hosts.set(b.host, st);
    }
    const services = new Map<string, ServiceSpec>();
    const fronts = new Map<string, FrontMemo>();
    const backendsUsed = new Map<string, BackendMemo>();
    /** Front names in use → their key: a second virtual host of the same name is told apart by its table. */
    const taken = new Map<string, string>();
    for (const [key, memo] of this.#fronts) if (groups.has(key)) taken.set(memo.name, key);
    // Fronts and backends are services of one name space: a front never takes the name of a
    // Cluster any front routes to (the backend would replace it, or a route would reach it).
    const backendNames = new Set<string>();
    for (const g of groups.values()) for (const n of clusterNamesOf(g.vhost)) backendNames.add(n);
    for (const memo of this.#fronts.values()) for (const b of memo.backends) backendNames.add(b.name);
    const naming: Naming = { taken, backendNames };
    for (const [key, g] of groups) {
      const names = clusterNamesOf(g.vhost);
      for (const n of names) clusters.add(n);
      const built = this.#backendsOf(names, res, endpoints, backendsUsed);
      const memo = built === undefined ? this.#latched(key, g, naming) : this.#front(key, g, built, naming);
      if (memo === undefined) {
        for (const h of g.hosts) hosts.set(h, { kind: 'pending', waitingFor: `the Clusters and endpoints of virtual host ${JSON.stringify(g.vhost.name)}` });
        continue;
      }
      fronts.set(key, memo);
      for (const h of g.hosts) hosts.set(h, { kind: 'found', listener: (hosts.get(h) as { listener: string }).listener, front: memo.name });
    }
    for (const memo of fronts.values()) {
      services.set(memo.name, memo.spec);
      for (const b of memo.backends) if (!services.has(b.name)) services.set(b.name, b);
    }
    // Fresh backends win over latched copies of themselves.
    for (const b of backendsUsed.values()) if (services.has(b.spec.name)) services.set(b.spec.name, b.spec);
    this.#fronts = fronts;
    this.#backends = backendsUsed;
    return { services, hosts, wanted: { listeners, routes, clusters, endpoints } };
  }

  /** Listener → route table → virtual host; groups the host under its front, or says what it waits for. */
  #route(host: string, listener: string, res: TreeInput, routes: Set<string>, groups: Map<string, FrontGroup>): HostState {
    const l = res.listeners.get(listener) as ListenerSpec;
    let table: RouteTable | undefined;
    if ('inline' in l.routes) table = { ...l.routes.inline, name: l.routes.inline.name || listener };
    else {
      routes.add(l.routes.rds);
      table = res.routes.get(l.routes.rds) as RouteTable | undefined;
      if (table === undefined) {
        const missing = res.missing.routes.has(l.routes.rds);
        return { kind: 'pending', waitingFor: `RouteConfiguration ${JSON.stringify(l.routes.rds)}${missing ? ', which the control plane says does not exist' : ''}` };
      }
    }
    const vhost = virtualHostFor(table, host);
    if (vhost === undefined) return { kind: 'pending', waitingFor: `a virtual host of RouteConfiguration ${JSON.stringify(table.name)} for ${host}` };
    // Two Listeners with different HCM defaults over one table are two fronts (their routes differ).
    const defaultTimeoutMs = 'rds' in l.routes ? l.defaultTimeoutMs : undefined;
    const key = `${table.name}\u0000${vhost.name}\u0000${defaultTimeoutMs ?? ''}`;
    const g = groups.get(key) ?? { table, vhost, defaultTimeoutMs, hosts: [] };
    g.hosts.push(host);
    groups.set(key, g);
    return { kind: 'found', listener };
  }

  /** The backends of a virtual host, when every one is decided; undefined while one is not. */
  #backendsOf(names: readonly string[], res: TreeInput, endpoints: Set<string>, used: Map<string, BackendMemo>): ServiceSpec[] | undefined {
    const out: ServiceSpec[] = [];
    let complete = true;
    for (const name of names) {
      const cluster = res.clusters.get(name) as ClusterSpec | undefined;
      if (cluster === undefined) {
        if (!res.missing.clusters.has(name)) complete = false;
        continue;
      }
      endpoints.add(cluster.edsName);
      const eps = res.endpoints.get(cluster.edsName) as EndpointSet | undefined;
      if (eps === undefined && !res.missing.endpoints.has(cluster.edsName)) {
        complete = false;
        continue;
      }
      const memo = this.#backend(cluster, eps);
      used.set(name, memo);
      out.push(memo.spec);
    }
    return complete ? out : undefined;
  }

  #backend(cluster: ClusterSpec, eps: EndpointSet | undefined): BackendMemo {
    const prev = this.#backends.get(cluster.name);
    if (prev && prev.cluster === cluster && prev.endpoints === eps) return prev;
    const ids = cluster.identities;
    const identity = ids[0] ?? derivedIdentity(cluster.name, this.ctx);
    // An endpoint that did not change keeps its object: the outbound service then keeps its pool
    // without comparing fields, and an EDS update of one endpoint among 10,000 costs about one.
    const before = new Map<string, ServiceEndpoint>();
    for (const e of prev?.spec.endpoints ?? []) before.set(e.address, e);
    const list: ServiceEndpoint[] = (eps?.endpoints ?? []).map((e) => {
      const old = before.get(e.address);
      if (old && old.identity === identity && old.weight === e.weight && old.zone === e.zone && (ids.length > 1 ? old.identities === ids || sameList(old.identities ?? [], ids) : old.identities === undefined)) return old;
      return { ...e, identity, ...(ids.length > 1 && { identities: ids }) };
    });
    const spec: ServiceSpec = {
      name: cluster.name,
      namespace: namespaceOf(cluster.name) ?? this.ctx.namespace,
      hostnames: [],
      identity,
      settings: cluster.settings,
      routes: [],
      endpoints: list,
    };
    return { cluster, endpoints: eps, spec };
  }

  #front(key: string, g: FrontGroup, backends: readonly ServiceSpec[], naming: Naming): FrontMemo {
    const hostsKey = [...g.hosts].sort().join(' ');
    const prev = this.#fronts.get(key);
    const keep = prev !== undefined && !clashes(naming, prev.name, key);
    if (keep && prev.vhost === g.vhost && prev.hostsKey === hostsKey) {
      return sameList(prev.backends, backends) ? prev : { ...prev, backends };
    }
    let name = keep ? prev.name : frontName(g);
    if (clashes(naming, name, key)) name = `${name}@${g.table.name}`;
    for (let i = 2; clashes(naming, name, key); i++) name = `${frontName(g)}@${g.table.name}#${i}`;
    naming.taken.set(name, key);
    const spec: ServiceSpec = {
      name,
      namespace: namespaceOf(g.vhost.name || g.table.name) ?? this.ctx.namespace,
      hostnames: hostsKey.split(' '),
      identity: derivedIdentity(g.vhost.name || g.table.name, this.ctx),
      settings: this.ctx.baseSettings,
      routes: g.defaultTimeoutMs === undefined ? g.vhost.routes : g.vhost.routes.map((r) => withListenerTimeout(r, g.defaultTimeoutMs)),
      endpoints: [],
    };
    return { vhost: g.vhost, hostsKey, name, spec, backends };
  }

  /** The last complete build of a front whose tree is not complete now, with the hosts it has now (none when its name is a backend's now). */
  #latched(key: string, g: FrontGroup, naming: Naming): FrontMemo | undefined {
    const prev = this.#fronts.get(key);
    if (!prev || clashes(naming, prev.name, key)) return undefined;
    const hostsKey = [...g.hosts].sort().join(' ');
    if (prev.hostsKey === hostsKey) return prev;
    return { ...prev, hostsKey, spec: { ...prev.spec, hostnames: hostsKey.split(' ') } };
  }
}

interface Naming {
  readonly taken: Map<string, string>;
  readonly backendNames: ReadonlySet<string>;
}

/** True when the front of `key` cannot be called `name`: another front has it, or a route names a Cluster of that name. */
function clashes(n: Naming, name: string, key: string): boolean {
  return (n.taken.get(name) ?? key) !== key || n.backendNames.has(name);
}

/** A front's service name: its virtual host's (istiod: `payments.default.svc.cluster.local:8080`), else its route table's. */
function frontName(g: FrontGroup): string {
  return g.vhost.name !== '' ? g.vhost.name : g.table.name;
}

function clusterNamesOf(vh: VirtualHostSpec): string[] {
  const out = new Set<string>();
  for (const r of vh.routes) for (const b of r.split ?? []) out.add(b.service);
  return [...out];
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
