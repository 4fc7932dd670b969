/**
 * What Linkerd delivered, as the mesh's services: for each watched authority its translated
 * OutboundPolicy (translate/outbound.ts) and the endpoints of every Destination path it names
 * (translate/destination.ts). Pure: the control plane feeds it and emits what it builds.
 *
 * - A target is composed only when complete: its policy translated and every Destination path it
 *   watches answered (endpoints, or none). Never half a tree: while a changed policy waits for a
 *   new backend's first answer, the target's last complete services stay in force.
 * - Backends are services named `backend:<dst path>` (never the name of a watched authority: a
 *   route's backend is that path's endpoints, not that service's routes); the watched service
 *   itself keeps the authority as its name. Two targets naming the same backend share it (the
 *   first authority in order supplies its settings).
 * - Objects are reused when nothing they are built from changed, so the reconciler sees the same
 *   ServiceSnapshot and keeps its pools, EWMA and budgets without comparing.
 */
import type { ServiceEndpoint, ServiceSpec } from '../../outbound/settings.js';
import type { ServiceSnapshot } from '../snapshot.js';
import { type DestinationView, snapshotEndpoints } from './translate/destination.js';
import type { OutboundTranslation } from './translate/outbound.js';

/** The prefix of backend service names. */
export const BACKEND_PREFIX = 'backend:';
export const backendName = (path: string): string => `${BACKEND_PREFIX}${path}`;

export type TargetState =
  | { readonly kind: 'found' }
  | { readonly kind: 'absent'; readonly why: string }
  | { readonly kind: 'pending'; readonly waitingFor: string };

export interface TargetInput {
  readonly authority: string;
  /** Its translated policy (the last good one), undefined until one was taken. */
  readonly translation: OutboundTranslation | undefined;
  /** The server says there is no such authority (NOT_FOUND / INVALID_ARGUMENT) and no policy was taken. */
  readonly absent?: string;
  /** Why nothing usable has arrived yet (a refused policy, a stream error). */
  readonly problem?: string;
}

interface Built {
  readonly translation: OutboundTranslation;
  readonly views: readonly DestinationView[];
  readonly services: ReadonlyMap<string, ServiceSnapshot>;
}

export interface TreeResult {
  readonly services: ReadonlyMap<string, ServiceSnapshot>;
  readonly states: ReadonlyMap<string, TargetState>;
  /** Destination paths to keep open (every path of every current translation). */
  readonly paths: ReadonlySet<string>;
}

/** Backend names renamed: `backend:<path>` for every service but the watched one. */
export function renameBackends(t: OutboundTranslation): OutboundTranslation {
  const own = t.service.name;
  const names = new Map<string, string>();
  for (const b of t.backends) names.set(b.spec.name, b.spec.name === own ? own : backendName(b.dstPath ?? b.spec.name));
  const rename = (n: string) => names.get(n) ?? n;
  const routes = t.service.routes.map((r) => (r.split ? { ...r, split: r.split.map((s) => ({ ...s, service: rename(s.service) })) } : r));
  const split = t.service.split?.map((s) => ({ ...s, service: rename(s.service) }));
  return {
    ...t,
    service: { ...t.service, routes, ...(split && { split }) },
    backends: t.backends.map((b) => ({ ...b, spec: { ...b.spec, name: rename(b.spec.name) } })),
    watch: t.watch.map((w) => ({ ...w, service: rename(w.service) })),
  };
}

export class LinkerdTree {
  readonly #built = new Map<string, Built>();

  /** `views`: the Destination state of every path opened so far. */
  build(targets: readonly TargetInput[], views: ReadonlyMap<string, DestinationView>): TreeResult {
    const services = new Map<string, ServiceSnapshot>();
    const states = new Map<string, TargetState>();
    const paths = new Set<string>();
    const live = new Set<string>();
    for (const t of [...targets].sort((a, b) => (a.authority < b.authority ? -1 : 1))) {
      live.add(t.authority);
      if (!t.translation) {
        states.set(t.authority, t.absent !== undefined ? { kind: 'absent', why: t.absent } : { kind: 'pending', waitingFor: t.problem ?? `the OutboundPolicy of ${t.authority}` });
        continue;
      }
      for (const w of t.translation.watch) paths.add(w.path);
      const built = this.#target(t.authority, t.translation, views);
      if (built === undefined) {
        const waiting = t.translation.watch.find((w) => (views.get(w.path)?.status ?? 'pending') === 'pending');
        states.set(t.authority, { kind: 'pending', waitingFor: `the endpoints of ${waiting?.path ?? t.authority} (Destination.Get)` });
        continue;
      }
      // A complete target whose new policy waits for a backend: the previous complete one serves meanwhile.
      for (const w of built.translation.watch) paths.add(w.path);
      for (const [name, svc] of built.services) if (!services.has(name)) services.set(name, svc);
      states.set(t.authority, { kind: 'found' });
    }
    for (const a of [...this.#built.keys()]) if (!live.has(a)) this.#built.delete(a);
    return { services, states, paths };
  }

  /** The target's services from `translation` when complete, else its last complete ones (undefined: none yet). */
  #target(authority: string, translation: OutboundTranslation, views: ReadonlyMap<string, DestinationView>): Built | undefined {
    const want = translation.watch.map((w) => views.get(w.path));
    const complete = want.every((v) => v !== undefined && v.status !== 'pending');
    const last = this.#built.get(authority);
    if (!complete) {
      if (!last) return undefined;
      // The last complete tree, with its endpoints as they are now.
      return this.#reuse(authority, last, last.translation, last.translation.watch.map((w) => views.get(w.path) ?? pendingLike(w.path)));
    }
    return this.#reuse(authority, last, translation, want as DestinationView[]);
  }

  #reuse(authority: string, last: Built | undefined, translation: OutboundTranslation, views: readonly DestinationView[]): Built {
    if (last && last.translation === translation && last.views.length === views.length && last.views.every((v, i) => v === views[i])) return last;
    const endpoints = new Map<string, readonly ServiceEndpoint[]>();
    translation.watch.forEach((w, i) => endpoints.set(w.service, snapshotEndpoints(views[i]!) ?? []));
    const services = new Map<string, ServiceSnapshot>();
    const withEndpoints = (spec: ServiceSpec): ServiceSpec => {
      const e = endpoints.get(spec.name);
      const prev = last?.services.get(spec.name);
      const next = e === undefined ? spec : { ...spec, endpoints: e };
      return prev && sameService(prev, next) ? prev : next;
    };
    services.set(translation.service.name, withEndpoints(translation.service));
    for (const b of translation.backends) services.set(b.spec.name, withEndpoints(b.spec));
    const built = { translation, views, services };
    this.#built.set(authority, built);
    return built;
  }
}

function pendingLike(path: string): DestinationView {
  return { path, status: 'empty', endpoints: [], h2: new Set(), refused: [] };
}

/** Same settings and routes objects (one translation) and the same endpoints array. */
function sameService(a: ServiceSpec, b: ServiceSpec): boolean {
  return a.settings === b.settings && a.routes === b.routes && a.endpoints === b.endpoints && a.split === b.split && a.hostnames === b.hostnames && a.identity === b.identity;
}
