import { type Server } from 'node:https';
import { type TlsOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from './clock.js';
import { type EndpointInput, type Logger, type MeshConfig, type MeshOptionsInput, type SplitInput, resolveConfig } from './config.js';
import { Inbound, type InboundMeshStats } from './inbound/inbound.js';
import { type RequestListener } from './inbound/servers.js';
import { Outbound, type OutboundMeshStats } from './outbound/outbound.js';
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
import { observeIdentity, recordRotation } from './telemetry/instruments.js';
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

/** Counts every rotation of `source` as the rotations metric. Returns the unsubscribe function. */
function countRotations(source: X509Source, config: MeshConfig): () => void {
  let rotations = source.status().rotations;
  return source.onUpdate(() => {
    const now = source.status().rotations;
    for (; rotations < now; rotations++) recordRotation(config.spiffeId, config.service);
  });
}

export interface CreateMeshInternals {
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

/**
 * Wires an identity source into inbound (mTLS server + pipeline) and outbound (mTLS dispatcher).
 * Resolves once the workload has a valid SVID; rejects with a ConfigError naming bad options, or
 * an IdentityUnavailableError saying why no SVID could be had (fail closed: no listener).
 */
export async function createMesh(options: MeshOptionsInput, internals: CreateMeshInternals = {}): Promise<Mesh> {
  const config = resolveConfig(options, internals.env ?? process.env);
  const clock = internals.clock ?? systemClock;
  const logger = config.logger ?? consoleLogger;
  reportTelemetryOff(logger); // once per process, when @opentelemetry/api is not installed
  const { source, owned, startTimeout } = await openSource(config, logger, clock);
  try {
    await source.ready(startTimeout);
  } catch (e) {
    if (owned) await source.close();
    throw e;
  }

  const verifier = new PeerVerifier(() => source.getBundles(), clock);
  const clientTls = new ClientTls(source, verifier, config.outbound.connectTimeout, clock);
  const traffic = new TrafficStats();
  let inbound: Inbound;
  try {
    inbound = await Inbound.create({ config, source, verifier, traffic, logger });
  } catch (e) {
    clientTls.close();
    if (owned) await source.close();
    throw e;
  }
  const outbound = new Outbound({ config, tls: clientTls, clock, traffic, logger, checkIdentity: () => void source.getX509Svid() });
  let admin: AdminServer | undefined;
  const unobserveIdentity = observeIdentity({ spiffeId: config.spiffeId, service: config.service, secondsLeft: () => source.status().secondsLeft });
  const unsubscribeRotations = countRotations(source, config);

  const mesh: Mesh = {
    service: config.service,
    spiffeId: config.spiffeId,
    config,
    get admin() {
      return admin;
    },
    identity: source,
    get dispatcher() {
      return outbound.dispatcher;
    },
    fastify: inbound.fastify,
    createServer: (listener) => inbound.servers.createServer(listener),
    serverTlsOptions: () => inbound.servers.serverTlsOptions(),
    express: () => inbound.express(),
    fetch: (input, init) => outbound.fetch(input, init),
    setPolicy: (policy) => inbound.setPolicy(policy),
    setEndpoints: (name, endpoints) => outbound.setEndpoints(name, endpoints),
    setSplit: (name, split) => outbound.setSplit(name, split),
    stats: () => ({
      service: config.service,
      spiffeId: config.spiffeId,
      identity: source.status(),
      inbound: inbound.stats(),
      outbound: outbound.stats(),
      traffic: traffic.snapshot(),
    }),
    async close() {
      await admin?.close();
      unobserveIdentity();
      unsubscribeRotations();
      await inbound.close();
      await outbound.close();
      clientTls.close();
      if (owned) await source.close();
    },
  };
  if (config.admin) {
    try {
      admin = await startAdmin(config.admin, meshAdminHandlers({
        service: config.service,
        config,
        source,
        policy: () => inbound.policyStatus(),
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
