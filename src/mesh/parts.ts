/**
 * The parts of one mesh, each built with every collaborator it needs (go-spiffe's
 * `MTLSServerConfig(svid, bundle, authorizer)` style): the event bus and the telemetry derived from
 * it, client TLS, the inbound side, the outbound side, and the reconciler that applies the control
 * plane's snapshots to both. `buildParts` either returns all of them, the first snapshot applied,
 * or closes what it opened and rethrows.
 */
import { type Clock } from '../clock.js';
import { type Logger, type MeshConfig } from '../config.js';
import { inboundSettingsOf } from '../control-plane/from-options.js';
import { Reconciler } from '../control-plane/reconcile.js';
import { type PendingReference } from '../control-plane/validate.js';
import { type ControlPlane, type LocalUpdates } from '../control-plane/control-plane.js';
import { asOptionPath } from '../control-plane/static.js';
import { Inbound } from '../inbound/inbound.js';
import { DEFAULT_PENDING_TIMEOUT_MS, Outbound } from '../outbound/outbound.js';
import { type X509Source } from '../sources/source.js';
import { deriveTelemetry } from '../telemetry/derive.js';
import { MeshEvents } from '../telemetry/events.js';
import { TrafficStats } from '../telemetry/stats.js';
import { IstioStats, istioWorkload } from '../telemetry/istio.js';
import type { LinkerdStats } from '../telemetry/linkerd.js';
import { ClientTls } from '../tls/connect.js';
import { PeerVerifier } from '../tls/peer.js';
import { type OpenedSource } from './identity.js';

export interface MeshParts {
  readonly config: MeshConfig;
  readonly source: X509Source;
  readonly owned: boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly controlPlane: ControlPlane;
  /** Where mesh.set* go: the control plane itself when it takes local updates (the static one). */
  readonly local: LocalUpdates | undefined;
  readonly events: MeshEvents;
  readonly traffic: TrafficStats;
  readonly clientTls: ClientTls;
  readonly inbound: Inbound;
  readonly outbound: Outbound;
  readonly reconciler: Reconciler;
  /** Unsubscribes the telemetry derived from the event bus. */
  readonly offTelemetry: () => void;
}

export interface PartsInput {
  readonly config: MeshConfig;
  readonly identity: OpenedSource;
  readonly controlPlane: ControlPlane & Partial<LocalUpdates>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The mesh's JWT-SVID issuer, for services with `jwtSvid`. */
  readonly jwtSvid?: (audience: readonly string[]) => Promise<string>;
}

export function buildOutbound(p: {
  config: MeshConfig;
  source: X509Source;
  tls: ClientTls;
  clock: Clock;
  traffic: TrafficStats;
  events: MeshEvents;
  logger: Logger;
  controlPlane: ControlPlane;
  jwtSvid?: (audience: readonly string[]) => Promise<string>;
}): Outbound {
  return new Outbound({
    tls: p.tls,
    clock: p.clock,
    traffic: p.traffic,
    events: p.events,
    logger: p.logger,
    egress: p.config.outbound.egress,
    pendingTimeoutMs: p.config.outbound.pendingTimeout ?? DEFAULT_PENDING_TIMEOUT_MS,
    checkIdentity: () => void p.source.getX509Svid(),
    source: () => p.controlPlane.current().source,
    ...(p.controlPlane.discover && { discover: p.controlPlane.discover.bind(p.controlPlane) }),
    ...(p.jwtSvid && { jwtSvid: p.jwtSvid }),
  });
}

/** The reconciler over both sides; every snapshot offered is published once on the bus. */
export function buildReconciler(inbound: Inbound, outbound: Outbound, events: MeshEvents): Reconciler {
  return new Reconciler({ setPolicy: (policy, meshPolicy) => inbound.setPolicy(policy, meshPolicy), setMode: (mode, dp) => inbound.setMode(mode, dp) }, outbound, (e) =>
    events.snapshot({ version: e.version, source: e.source, services: e.services, result: e.accepted ? 'accepted' : 'rejected', ...(e.error !== undefined && { error: e.error }) }),
  );
}

/**
 * Waits for the SVID, builds both sides and applies the first snapshot; from then on every update
 * of the control plane goes through the reconciler. On failure everything opened is closed
 * (the control plane and the source included) and the error rethrown: nothing listens.
 */
/**
 * The Linkerd dialect's stats (loaded only when it is on). The pod is the one
 * `controlPlane.linkerd.workload.pod` names, when the config has it.
 */
async function linkerdStats(config: MeshConfig): Promise<LinkerdStats> {
  const { LinkerdStats: Stats, linkerdWorkloadLabels } = await import('../telemetry/linkerd.js');
  const cp = config.controlPlane as { linkerd?: { workload?: { pod?: unknown } } } | undefined;
  const pod = cp?.linkerd?.workload?.pod;
  return new Stats(linkerdWorkloadLabels({ namespace: config.namespace, labels: config.labels, ...(typeof pod === 'string' && { pod }) }));
}

export async function buildParts(i: PartsInput): Promise<MeshParts> {
  const { config, controlPlane, clock, logger } = i;
  const { source, owned, startTimeout } = i.identity;
  const opened: Array<{ close(): unknown }> = [controlPlane, ...(owned ? [source] : [])];
  const events = new MeshEvents(config.service);
  const istio = config.telemetry.dialect === 'istio' ? new IstioStats(istioWorkload({ ...config, cluster: config.telemetry.cluster })) : null;
  const traffic = new TrafficStats(istio, config.telemetry.dialect === 'linkerd' ? await linkerdStats(config) : null);
  // Every decision, ejection, rotation and snapshot is published once; stats, Prometheus and OTel derive from it.
  const offTelemetry = deriveTelemetry(events, traffic);
  opened.push({ close: offTelemetry });
  try {
    await source.ready(startTimeout);
    await controlPlane.ready(startTimeout);
    const verifier = new PeerVerifier(() => source.getBundles(), clock);
    const clientTls = new ClientTls(source, verifier, config.outbound.connectTimeout, clock);
    opened.push(clientTls);
    const first = controlPlane.current();
    const onPort = controlPlane.servePort?.bind(controlPlane);
    const inbound = Inbound.create({ settings: inboundSettingsOf(config), source, verifier, traffic, logger, policy: first.inbound.policy, events, clock, ...(onPort && { onPort }) });
    opened.push(inbound);
    const outbound = buildOutbound({ config, source, tls: clientTls, clock, traffic, events, logger, controlPlane, ...(i.jwtSvid && { jwtSvid: i.jwtSvid }) });
    opened.push(outbound);
    const reconciler = buildReconciler(inbound, outbound, events);
    reconciler.apply(first, { title: 'invalid sidecarless options', path: asOptionPath });
    controlPlane.onUpdate((s, hint) => {
      const before = reconciler.pending;
      reconciler.apply(s, hint ?? {});
      warnNewlyPending(before, reconciler.pending, logger);
    });
    const local = typeof controlPlane.update === 'function' ? (controlPlane as LocalUpdates) : undefined;
    return { config, source, owned, clock, logger, controlPlane, local, events, traffic, clientTls, inbound, outbound, reconciler, offTelemetry };
  } catch (e) {
    for (const p of opened.reverse()) await p.close();
    throw e;
  }
}

/**
 * One warning per reference that became pending with an update (a split naming a service not
 * delivered, or one just removed): requests that pick it wait, then fail, and the log says why.
 */
export function warnNewlyPending(before: readonly PendingReference[], after: readonly PendingReference[], logger: Logger): void {
  if (after.length === 0) return;
  const key = (p: PendingReference) => `${p.path} ${p.missing}`;
  const known = new Set(before.map(key));
  for (const p of after) {
    if (known.has(key(p))) continue;
    const what = p.kind === 'endpoints' ? `the endpoints of "${p.service}" are` : `"${p.missing}", named by ${p.path}, is`;
    logger.warn(`${what} not delivered yet: requests that need it wait up to outbound.pendingTimeout, then fail with ERR_SIDECARLESS_CONFIG_PENDING`);
  }
}
