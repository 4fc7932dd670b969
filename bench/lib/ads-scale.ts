/**
 * The mesh bench/control-plane.ts serves and bench/control-plane-clients.ts watches, computed the
 * same way on both sides of the process boundary (so neither has to send the other 1,000 name lists).
 *
 * SERVICES services `svc-000` … in `default`, port 8080, 2–3 endpoints each; every fifth has a
 * 90/10-style split to the next two. Client `i` watches the SHARED first services (every change
 * touches one of them, so every change is pushed to every client) plus `k - SHARED` others from an
 * offset of its own; its Clusters (CDS/EDS) are those services' plus their split targets, as a
 * proxyless client following the RouteConfigurations would name them.
 */
import { serviceNames } from '../../src/server/xds/outbound-model.js';

export const SERVICES = 500;
export const SHARED = 10;
export const PORT = 8080;
export const DOMAIN = 'cluster.local';

export const svcName = (i: number) => `svc-${String(i).padStart(3, '0')}`;
export const namesOf = (i: number) => serviceNames(svcName(i), 'default', PORT, DOMAIN);
export const hasSplit = (i: number) => i % 5 === 0;
export const splitTargets = (i: number) => [(i + 1) % SERVICES, (i + 2) % SERVICES];

/** The services client `c` of a run watching `k` each. */
export function watched(c: number, k: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < Math.min(SHARED, k); i++) out.add(i);
  const start = SHARED + ((c * 37) % (SERVICES - SHARED));
  for (let j = 0; out.size < Math.min(k, SERVICES); j++) out.add(SHARED + ((start - SHARED + j) % (SERVICES - SHARED)));
  return [...out].sort((a, b) => a - b);
}

/** Listener names, RouteConfiguration names, Cluster (= ClusterLoadAssignment) names for client `c`. */
export function subscription(c: number, k: number): { listeners: string[]; routes: string[]; clusters: string[] } {
  const svcs = watched(c, k);
  const clusters = new Set<number>(svcs);
  for (const s of svcs) if (hasSplit(s)) for (const t of splitTargets(s)) clusters.add(t);
  return {
    listeners: svcs.map((s) => namesOf(s).listener),
    routes: svcs.map((s) => namesOf(s).cluster),
    clusters: [...clusters].sort((a, b) => a - b).map((s) => namesOf(s).cluster),
  };
}

/** Wall-clock milliseconds with sub-ms resolution, comparable between processes of one machine. */
export const epochMs = () => performance.timeOrigin + performance.now();
