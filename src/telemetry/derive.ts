/**
 * The counters every surface shows, derived from a mesh's event bus (events.ts) and nowhere else:
 * `mesh.stats().inbound.authz` (AuthzCounters), `mesh.stats().traffic` and the admin `/metrics`
 * (TrafficStats), and the OpenTelemetry instruments. One event is one increment in each.
 */
import { type X509Source } from '../sources/source.js';
import { type MeshEvents } from './events.js';
import { recordAuthz, recordEjection, recordRotation, recordSnapshot } from './instruments.js';
import { type TrafficStats } from './stats.js';

/** `mesh.stats().inbound.authz`'s counts. */
export interface AuthzStats {
  allowed: number;
  denied: number;
  /** Refused before policy: malformed target or Host (400). */
  malformed: number;
  /** By deciding rule: `{ rule: { allow, deny } }`; audit rules under `audit`. */
  byRule: Record<string, { allow: number; deny: number; audit: number }>;
}

/** Counts a mesh's decisions for `mesh.stats().inbound.authz`. */
export class AuthzCounters {
  readonly stats: AuthzStats = { allowed: 0, denied: 0, malformed: 0, byRule: {} };
  /** Unsubscribes from the bus. */
  readonly close: () => void;

  constructor(events: MeshEvents) {
    const s = this.stats;
    const offAuthz = events.on('authz', (d) => {
      if (d.allowed) s.allowed++;
      else s.denied++;
      const r = (s.byRule[d.rule] ??= { allow: 0, deny: 0, audit: 0 });
      if (d.allowed) r.allow++;
      else r.deny++;
      for (const a of d.audit) (s.byRule[a] ??= { allow: 0, deny: 0, audit: 0 }).audit++;
    });
    const offMalformed = events.on('malformed', () => void s.malformed++);
    this.close = () => {
      offAuthz();
      offMalformed();
    };
  }
}

/**
 * Derives the golden-signal counters (`traffic`: mesh.stats().traffic and /metrics) and the
 * OpenTelemetry instruments from `events`. Subscribe once per bus: whoever creates the bus does.
 * Returns the function that unsubscribes.
 */
export function deriveTelemetry(events: MeshEvents, traffic: TrafficStats): () => void {
  const service = events.mesh;
  const offs = [
    events.on('authz', (d) => {
      traffic.authz(d.result, d.rule, d.action);
      for (const a of d.audit) traffic.authz(d.result, a, 'audit');
      recordAuthz(d.result, d.rule, d.action, d.audit);
    }),
    events.on('ejection', (e) => {
      traffic.ejection(e.service, e.endpoint);
      recordEjection(e.service, e.endpoint);
    }),
    events.on('rotation', (e) => recordRotation(e.spiffeId, service)),
    events.on('snapshot', (e) => {
      traffic.snapshotApplied(e.source, e.result);
      recordSnapshot(e.source, e.result);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/**
 * Publishes every rotation of `source` (which serves `spiffeId`) on `events`: one event per
 * rotation the source counts, however many happened between two updates. Returns the function that
 * unsubscribes.
 */
export function publishRotations(source: X509Source, events: MeshEvents, spiffeId: string): () => void {
  let rotations = source.status().rotations;
  return source.onUpdate(() => {
    const now = source.status().rotations;
    while (rotations < now) events.rotation({ spiffeId, rotations: ++rotations });
  });
}
