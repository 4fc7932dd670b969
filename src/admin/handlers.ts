/** The admin endpoint's answers, from a mesh's parts (kept out of mesh.ts). */
import { type X509Source } from '../sources/source.js';
import { renderPrometheus } from '../telemetry/prometheus.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type AdminHandlers, redactConfig } from './server.js';

export interface MeshAdminParts {
  readonly service: string;
  readonly config: object;
  readonly source: X509Source;
  /** The policy in force (what /config shows), and why the mesh is not ready on policy grounds, if it is not. */
  readonly policy: () => { policy: unknown; meshPolicy?: unknown; version: number; file?: string; lastError?: string; notReady?: string };
  /** The snapshot in force (version, source, pending references, the last one refused). */
  readonly snapshot: () => unknown;
  /** An xDS control plane's stream, resources (version, ACK/NACK, last error) and discovered hosts; undefined without one. */
  readonly xds?: () => unknown;
  /** A Linkerd control plane's streams (authorities, destinations, ports). */
  readonly linkerd?: () => unknown;
  readonly traffic: TrafficStats;
  readonly handshakes: () => { authenticated: number; unauthenticated: number; rejected: number; tlsErrors: number };
  readonly stats: () => unknown;
  /** The mesh clock. */
  readonly now: () => number;
}

export function meshAdminHandlers(p: MeshAdminParts): AdminHandlers {
  return {
    ready() {
      try {
        p.source.getX509Svid(); // expiry checked now, against the mesh's clock
      } catch (e) {
        return { ok: false, reason: `identity: ${(e as Error).message}` };
      }
      const pol = p.policy();
      if (pol.notReady) return { ok: false, reason: `policy: ${pol.notReady}` };
      return { ok: true };
    },
    metrics: () => renderPrometheus({ service: p.service, traffic: p.traffic, identity: p.source.status(), handshakes: p.handshakes(), now: p.now() }),
    stats: () => p.stats(),
    config() {
      const pol = p.policy();
      return {
        config: redactConfig(p.config),
        snapshot: p.snapshot(),
        ...(p.xds && { xds: p.xds() }),
        ...(p.linkerd && { linkerd: p.linkerd() }),
        policy: { version: pol.version, ...(pol.file && { file: pol.file }), ...(pol.lastError && { lastError: pol.lastError }), document: redactConfig(pol.policy), ...(pol.meshPolicy !== undefined && { controlPlane: redactConfig(pol.meshPolicy) }) },
      };
    },
    identity() {
      const s = p.source.status();
      const bundles: Record<string, Array<{ subject: string; fingerprint256: string; notAfter: string }>> = {};
      for (const [td, b] of p.source.getBundles()) {
        bundles[td] = b.roots.map((r) => ({ subject: r.subject, fingerprint256: r.fingerprint, notAfter: new Date(r.notAfter).toISOString() }));
      }
      return {
        spiffeId: s.spiffeId ?? null,
        state: s.state,
        kind: s.kind,
        from: s.from ?? null,
        serialNumber: s.serialNumber ?? null,
        hint: s.hint ?? null,
        notBefore: s.notBefore ?? null,
        notAfter: s.notAfter ?? null,
        secondsLeft: s.secondsLeft ?? null,
        renewAt: s.renewAt ?? null,
        nextRefresh: s.nextRefresh ?? null,
        rotations: s.rotations,
        failures: s.failures ?? 0,
        ...(s.lastError && { lastError: s.lastError }),
        bundles,
      };
    },
  };
}
