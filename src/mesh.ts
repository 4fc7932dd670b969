import { type Server } from 'node:https';
import { type TlsOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from './clock.js';
import { type EndpointInput, type Logger, type MeshConfig, type MeshOptionsInput, type ServiceInput, type SplitInput, resolveConfig } from './config.js';
import { inboundSettingsOf } from './control-plane/from-options.js';
import { type RejectedSnapshot, Reconciler } from './control-plane/reconcile.js';
import { type InboundMode, type MeshSnapshot } from './control-plane/snapshot.js';
import { StaticControlPlane, asOptionPath } from './control-plane/static.js';
import * as updates from './control-plane/updates.js';
import { type PendingReference } from './control-plane/validate.js';
import { Inbound, type InboundMeshStats } from './inbound/inbound.js';
import { type RequestListener } from './inbound/servers.js';
import { DEFAULT_PENDING_TIMEOUT_MS, Outbound, type OutboundMeshStats } from './outbound/outbound.js';
import { ConfigError } from './errors.js';
import { createDevCa, type DevCa } from './identity/dev-ca.js';
import { consoleLogger } from './logger.js';
import { createDevCaSource } from './sources/dev-ca.js';
import { createDirSource } from './sources/dir.js';
import { type SourceStatus, type X509Source } from './sources/source.js';
import { pinUserSource, workloadSourceOptions } from './sources/workload.js';
import { ClientTls } from './tls/connect.js';
import { PeerVerifier } from './tls/peer.js';
import { type AdminEndpoint, type AdminServer, startAdmin } from './admin/server.js';
import { meshAdminHandlers } from './admin/handlers.js';
import { observeIdentity } from './telemetry/instruments.js';
import { deriveTelemetry, publishRotations } from './telemetry/derive.js';
import { MeshEvents } from './telemetry/events.js';
import { reportTelemetryOff } from './telemetry/otel.js';
import { type TrafficSnapshot, TrafficStats } from './telemetry/stats.js';

export const DEFAULT_START_TIMEOUT_MS = 15_000;

export interface MeshStats {
  service: string;
  spiffeId: string;
  identity: SourceStatus;
  inbound: InboundMeshStats;
  outbound: OutboundMeshStats;
  /** Golden signals per direction, peer and route (what the admin /metrics and `sidecarless stat` show). */
  traffic: TrafficSnapshot;
  /** The snapshot in force: its version and source, what it still waits for, the last one refused. */
  snapshot: SnapshotStatus;
}

export interface SnapshotStatus {
  version: string;
  source: string;
  services: number;
  pending: PendingReference[];
  lastRejected?: RejectedSnapshot;
}

export interface Mesh {
  readonly service: string;
  readonly spiffeId: string;
  readonly config: Readonly<MeshConfig>;
  /**
   * An https.Server with mTLS and the inbound gate in front of `listener` (a function or an Express
   * app) and of every listener added later ('request', 'upgrade', 'connect', 'checkContinue', ...).
   */
  createServer(listener?: RequestListener): Server;
  /** TLS options for a server a framework builds itself (pair with mesh.express() / mesh.fastify). */
  serverTlsOptions(): TlsOptions;
  /** Express middleware: put it first. */
  express(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next: (err?: unknown) => void) => void;
  /** Fastify plugin: `fastify.register(mesh.fastify)`. */
  readonly fastify: import('./inbound/fastify-types.js').MeshFastifyPlugin;
  /** WHATWG fetch through the mesh. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The undici Dispatcher: `fetch(url, { dispatcher })`, `undici.request(url, { dispatcher })`, `setGlobalDispatcher`. */
  readonly dispatcher: Dispatcher;
  /** The identity source (current SVID, bundles). */
  readonly identity: X509Source;
  /**
   * Replaces the inbound policy atomically (a Policy from loadPolicy, or a document to load). An
   * invalid one throws PolicyError naming its paths, and the previous policy stays in force.
   */
  setPolicy(policy: unknown): void;
  /** Replaces a service's endpoints atomically; removed endpoints finish their in-flight requests. */
  setEndpoints(service: string, endpoints: EndpointInput[]): void;
  /**
   * Replaces a service's traffic split atomically (`[{ service: 'payments-v2', weight: 10 }, …]`;
   * a backend may be the service itself, meaning its own endpoints), or removes it with `null`.
   * The next request follows the new weights; requests in flight finish where they are.
   */
  setSplit(service: string, split: SplitInput | null): void;
  /**
   * Adds or replaces a service at run time (the spelling of `outbound.services.<name>`), or removes
   * it with `null`: new requests stop reaching it, in-flight ones finish. A service that stays keeps
   * its connections, latency estimates and retry budget. Throws ConfigError naming bad paths.
   */
  setService(name: string, service: ServiceInput | null): void;
  /** Switches inbound STRICT ↔ PERMISSIVE for new connections (open ones keep theirs). */
  setInboundMode(mode: InboundMode): void;
  /** The MeshSnapshot the mesh runs on now, with its version and source. */
  snapshot(): MeshSnapshot;
  stats(): MeshStats;
  /** The admin endpoint, when `admin: { port }` was given. */
  readonly admin?: AdminEndpoint;
  close(): Promise<void>;
}

async function openSource(config: MeshConfig, logger: Logger, clock: Clock): Promise<{ source: X509Source; owned: boolean; startTimeout: number }> {
  const id = config.identity;
  const opened: { source?: X509Source } = {};
  const onError = (err: Error) => {
    const hasSvid = opened.source !== undefined && opened.source.status().state !== 'starting';
    logger.warn(hasSvid ? `identity update rejected, keeping the previous SVID: ${err.message}` : `no identity yet (retrying): ${err.message}`);
  };
  // Every source serves only SVIDs for config.spiffeId, and logs overdue renewals and expiry.
  const workload = workloadSourceOptions(config, logger);
  if (id && 'source' in id) {
    // The pin is the mesh's (closed with it); the user's source stays open.
    const source = (opened.source = pinUserSource(id.source as X509Source, { ...workload, clock, onError }));
    return { source, owned: true, startTimeout: id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  if (id && 'dir' in id) {
    const source = (opened.source = await createDirSource({ dir: id.dir, trustDomain: config.trustDomain, clock, onError, ...workload, ...(id.pollInterval !== undefined && { pollMs: id.pollInterval }) }));
    return { source, owned: true, startTimeout: id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  let ca: DevCa;
  if (id && 'ca' in id) ca = id.ca as DevCa;
  else {
    logger.warn(
      `no identity configured: using an in-process dev CA for ${config.spiffeId}. For development only: processes with ` +
        `different dev CAs cannot talk. Set identity.dir (or SIDECARLESS_IDENTITY_DIR) for real deployments.`,
    );
    ca = await createDevCa({ trustDomain: config.trustDomain, clock });
  }
  if (ca.trustDomain !== config.trustDomain) {
    throw new ConfigError(`invalid sidecarless options:\n  - identity.ca: the dev CA is for trust domain ${ca.trustDomain}, the mesh is in ${config.trustDomain}`, [
      { path: 'identity.ca', message: `trust domain ${ca.trustDomain} is not ${config.trustDomain}` },
    ]);
  }
  const ttl = id && 'ca' in id ? id.ttl : undefined;
  const source = await createDevCaSource({ ca, spiffeId: config.spiffeId, clock, onError, onLifecycle: workload.onLifecycle, ...(ttl !== undefined && { ttlMs: ttl }) });
  return { source, owned: true, startTimeout: (id && 'startTimeout' in id && id.startTimeout) || DEFAULT_START_TIMEOUT_MS };
}

export interface CreateMeshInternals {
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

/** The outbound side: typed settings only (the snapshot's), one mTLS client. */
function buildOutbound(config: MeshConfig, source: X509Source, tls: ClientTls, clock: Clock, traffic: TrafficStats, events: MeshEvents, logger: Logger, controlPlane: () => string): Outbound {
  return new Outbound({
    tls,
    clock,
    traffic,
    events,
    logger,
    egress: config.outbound.egress,
    pendingTimeoutMs: config.outbound.pendingTimeout ?? DEFAULT_PENDING_TIMEOUT_MS,
    checkIdentity: () => void source.getX509Svid(),
    source: controlPlane,
  });
}

/**
 * Wires an identity source into inbound (mTLS server + pipeline) and outbound (mTLS dispatcher),
 * both driven by the control plane's snapshots. Resolves once the workload has a valid SVID;
 * rejects with a ConfigError naming bad options, or an IdentityUnavailableError saying why no
 * SVID could be had (fail closed: no listener).
 */
export async function createMesh(options: MeshOptionsInput, internals: CreateMeshInternals = {}): Promise<Mesh> {
  const config = resolveConfig(options, internals.env ?? process.env);
  const clock = internals.clock ?? systemClock;
  const logger = config.logger ?? consoleLogger;
  reportTelemetryOff(logger); // once per process, when @opentelemetry/api is not installed
  // Options are checked whole (and a policy file loaded) before any identity is opened.
  const controlPlane = await StaticControlPlane.create(config, logger, clock);
  let opened: Awaited<ReturnType<typeof openSource>>;
  try {
    opened = await openSource(config, logger, clock);
  } catch (e) {
    await controlPlane.close();
    throw e;
  }
  const { source, owned, startTimeout } = opened;
  const parts: Array<{ close(): unknown }> = [controlPlane, ...(owned ? [source] : [])];
  const fail = async (e: unknown): Promise<never> => {
    for (const p of parts.reverse()) await p.close();
    throw e;
  };
  let inbound: Inbound;
  let outbound: Outbound;
  let reconciler: Reconciler;
  const verifier = new PeerVerifier(() => source.getBundles(), clock);
  const clientTls = new ClientTls(source, verifier, config.outbound.connectTimeout, clock);
  const traffic = new TrafficStats();
  // Every decision, ejection, rotation and snapshot is published once; stats, Prometheus and OTel derive from it.
  const events = new MeshEvents(config.service);
  const offTelemetry = deriveTelemetry(events, traffic);
  parts.push({ close: offTelemetry });
  try {
    await source.ready(startTimeout);
    parts.push(clientTls);
    const first = controlPlane.current();
    inbound = Inbound.create({ settings: inboundSettingsOf(config), source, verifier, traffic, logger, policy: first.inbound.policy, events, clock });
    parts.push(inbound);
    outbound = buildOutbound(config, source, clientTls, clock, traffic, events, logger, () => controlPlane.current().source);
    reconciler = new Reconciler({ setPolicy: (p) => inbound.setPolicy(p), setMode: (m, d) => inbound.setMode(m, d) }, outbound, (e) =>
      events.snapshot({ version: e.version, source: e.source, services: e.services, result: e.accepted ? 'accepted' : 'rejected', ...(e.error !== undefined && { error: e.error }) }),
    );
    reconciler.apply(first, { title: 'invalid sidecarless options', path: asOptionPath });
    parts.push(outbound);
  } catch (e) {
    return fail(e);
  }
  controlPlane.onUpdate((s, hint) => reconciler.apply(s, hint ?? {}));
  const ctx = { trustDomain: config.trustDomain, namespace: config.namespace };
  const offer = (draft: updates.SnapshotDraft, title: string) => void controlPlane.update(draft, 'api', { title });
  // After close() every mesh.set* throws MeshClosedError (the control plane refuses the update).
  const current = () => controlPlane.current();
  const mesh = meshFacade({ config, source, owned, clientTls, inbound, outbound, traffic, events, offTelemetry, controlPlane, reconciler });
  Object.assign(mesh, {
    setPolicy: (policy: unknown) => offer(updates.setPolicy(current(), policy), 'setPolicy rejected, policy unchanged'),
    setEndpoints: (name: string, list: EndpointInput[]) => offer(updates.setEndpoints(current(), name, list), `setEndpoints("${name}") rejected, endpoints unchanged`),
    setSplit: (name: string, split: SplitInput | null) => offer(updates.setSplit(current(), name, split), `setSplit("${name}") rejected, split unchanged`),
    setService: (name: string, svc: ServiceInput | null) => offer(updates.setService(current(), name, svc, ctx), `setService("${name}") rejected, services unchanged`),
    setInboundMode: (mode: InboundMode) => offer(updates.setInboundMode(current(), mode), 'setInboundMode rejected, mode unchanged'),
  });
  if (config.admin) {
    try {
      (mesh as { admin?: AdminServer }).admin = await startAdmin(config.admin, meshAdminHandlers({
        service: config.service,
        config,
        source,
        policy: () => ({ ...inbound.policyStatus(), ...policyFileStatus(controlPlane) }),
        snapshot: () => snapshotStatus(reconciler),
        traffic,
        handshakes: () => inbound.tls.stats,
        stats: () => mesh.stats(),
      }), logger);
    } catch (e) {
      await mesh.close();
      throw e;
    }
  }
  return mesh;
}

function policyFileStatus(cp: StaticControlPlane): { file?: string; lastError?: string } {
  const st = cp.status();
  return { ...(st.policyFile && { file: st.policyFile }), ...(st.lastPolicyError && { lastError: st.lastPolicyError }) };
}

function snapshotStatus(r: Reconciler): SnapshotStatus {
  const s = r.current!;
  return { version: s.version, source: s.source, services: s.services.size, pending: [...r.pending], ...(r.lastRejected && { lastRejected: r.lastRejected }) };
}

interface MeshParts {
  config: MeshConfig;
  source: X509Source;
  /** The mesh closes the source (its pin over a user's source, or one it opened). */
  owned: boolean;
  clientTls: ClientTls;
  events: MeshEvents;
  /** Unsubscribes the telemetry derived from the event bus. */
  offTelemetry: () => void;
  inbound: Inbound;
  outbound: Outbound;
  traffic: TrafficStats;
  controlPlane: StaticControlPlane;
  reconciler: Reconciler;
}

/** The Mesh object over its parts (the set* updates are added by createMesh). */
function meshFacade(p: MeshParts): Mesh {
  const { config, source, inbound, outbound, traffic, controlPlane } = p;
  const unobserveIdentity = observeIdentity({ spiffeId: config.spiffeId, service: config.service, secondsLeft: () => source.status().secondsLeft });
  const unsubscribeRotations = publishRotations(source, p.events, config.spiffeId);
  const mesh = {
    service: config.service,
    spiffeId: config.spiffeId,
    config,
    admin: undefined as AdminServer | undefined,
    identity: source,
    get dispatcher() {
      return outbound.dispatcher;
    },
    fastify: inbound.fastify,
    createServer: (listener?: RequestListener) => inbound.servers.createServer(listener),
    serverTlsOptions: () => inbound.servers.serverTlsOptions(),
    express: () => inbound.express(),
    fetch: (input: string | URL | Request, init?: RequestInit) => outbound.fetch(input, init),
    snapshot: () => p.reconciler.current!,
    stats: (): MeshStats => {
      const file = controlPlane.status();
      const inb = inbound.stats();
      return {
        service: config.service,
        spiffeId: config.spiffeId,
        identity: source.status(),
        inbound: { ...inb, authz: { ...inb.authz, ...(file.policyFile && { policyFile: file.policyFile }), ...(file.lastPolicyError && { lastPolicyError: file.lastPolicyError }) } },
        outbound: outbound.stats(),
        traffic: traffic.snapshot(),
        snapshot: snapshotStatus(p.reconciler),
      };
    },
    async close() {
      await mesh.admin?.close();
      unobserveIdentity();
      unsubscribeRotations();
      await controlPlane.close();
      await inbound.close();
      await outbound.close();
      p.clientTls.close();
      if (p.owned) await source.close();
      p.offTelemetry();
    },
  };
  return mesh as unknown as Mesh;
}
