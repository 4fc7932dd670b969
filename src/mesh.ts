import { type Server } from 'node:https';
import { type TlsOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from './clock.js';
import { type EndpointInput, type Logger, type MeshConfig, type MeshOptionsInput, type SplitInput, endpointSchema, formatIssues, resolveConfig, splitSchema } from './config.js';
import { ConfigError } from './errors.js';
import { createDevCa, type DevCa } from './identity/dev-ca.js';
import { expressMiddleware } from './inbound/express.js';
import { fastifyPlugin } from './inbound/fastify.js';
import { type AuditRecord, type AuthzStats, PolicyGate } from './inbound/authorize.js';
import { InboundPipeline, type InboundStats } from './inbound/pipeline.js';
import { PolicyFile, isPolicyPath } from './inbound/policy-file.js';
import { DEFAULT_FIRST_REQUEST_TIMEOUT_MS } from './inbound/first-request.js';
import { InboundServers, type RequestListener } from './inbound/servers.js';
import { consoleLogger } from './logger.js';
import { type MeshDispatcher, createMeshDispatcher } from './outbound/dispatcher.js';
import { loadUndici } from './outbound/undici.js';
import { OutboundService, type OutboundServiceStats } from './outbound/service.js';
import { createDevCaSource } from './sources/dev-ca.js';
import { createDirSource } from './sources/dir.js';
import { type SourceStatus, type X509Source } from './sources/source.js';
import { pinUserSource, workloadSourceOptions } from './sources/workload.js';
import { ClientTls } from './tls/connect.js';
import { PeerVerifier } from './tls/peer.js';
import { type HandshakeStats, ServerTls } from './tls/server-context.js';
import { z } from 'zod';
import { type AdminEndpoint, type AdminServer, startAdmin } from './admin/server.js';
import { meshAdminHandlers } from './admin/handlers.js';
import { InboundObserver } from './telemetry/inbound.js';
import { observeIdentity, recordAuthz, recordEjection, recordRotation } from './telemetry/instruments.js';
import { reportTelemetryOff } from './telemetry/otel.js';
import { type TrafficSnapshot, TrafficStats } from './telemetry/stats.js';

export const DEFAULT_START_TIMEOUT_MS = 15_000;

export interface MeshStats {
  service: string;
  spiffeId: string;
  identity: SourceStatus;
  inbound: {
    mode: string;
    handshakes: HandshakeStats;
    requests: InboundStats;
    authz: AuthzStats & { defaultPolicy: string; policyVersion: number; policyFile?: string; lastPolicyError?: string };
  };
  outbound: {
    egress: string;
    /** Per service: balancer, EWMA/pending/state per endpoint, requests, retries, budget, ejections, split shares. */
    services: Record<string, OutboundServiceStats>;
  };
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
  const serverTls = new ServerTls(source, verifier, config.inbound.mode, () => {});
  const clientTls = new ClientTls(source, verifier, config.outbound.connectTimeout, clock);
  const traffic = new TrafficStats();
  const observer = new InboundObserver(traffic, config.service);
  // Late-bound: the servers and the pipeline know each other (a request can reveal a server to adopt).
  let inboundServers: InboundServers | undefined;
  const pipeline = new InboundPipeline(serverTls, config.inbound.identityHeaders, observer, {
    unknownServer: (server) => inboundServers?.unknownServer(server),
    notTls: () => inboundServers?.plaintext(),
  });
  const servers = (inboundServers = new InboundServers(serverTls, pipeline, {
    firstRequestTimeoutMs: config.inbound.firstRequestTimeout ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS,
    logger,
  }));
  const audit = config.inbound.audit ?? ((record: AuditRecord) => process.stderr.write(JSON.stringify(record) + '\n'));
  const gateOptions = { defaultPolicy: config.inbound.defaultPolicy, trustDomain: config.trustDomain, namespace: config.namespace, labels: config.labels, audit,
    onDecision: (d: import('./policy/index.js').Decision, req: import('node:http').IncomingMessage) => {
      traffic.authz(d.result, d.rule, d.action);
      for (const a of d.audit) traffic.authz(d.result, a, 'audit');
      recordAuthz(d.result, d.rule, d.action, d.audit);
      observer.decided(req, d.allowed, d.rule);
    },
  };
  const policyInput = config.inbound.policy;
  const gate = new PolicyGate(gateOptions, isPolicyPath(policyInput) ? undefined : policyInput);
  let lastPolicyError: string | undefined;
  let policyFile: PolicyFile | undefined;
  if (isPolicyPath(policyInput)) {
    policyFile = new PolicyFile(policyInput, {
      apply: (text) => gate.set(text),
      onApplied: () => {
        lastPolicyError = undefined;
        logger.info(`policy reloaded from ${policyInput}`);
      },
      onError: (err) => {
        lastPolicyError = err.message;
        logger.error(err.message);
      },
    });
    try {
      await policyFile.start();
    } catch (e) {
      serverTls.close();
      clientTls.close();
      if (owned) await source.close();
      throw e;
    }
  }
  pipeline.setAuthorize((req, peer, routing, recheck) => gate.judge(req, peer, routing, recheck));

  const services = new Map<string, OutboundService>();
  for (const [name, svc] of Object.entries(config.outbound.services)) {
    const ns = svc.namespace ?? config.namespace;
    const identity = svc.identity ?? `spiffe://${config.trustDomain}/ns/${ns}/sa/${name}`;
    const onStateChange = (service: string, ch: { key: string; from: string; to: string; penaltyMs?: number }) => {
      if (ch.to === 'ejected') {
        const endpoint = ch.key.split(' ', 1)[0]!;
        traffic.ejection(service, endpoint);
        recordEjection(service, endpoint);
      }
      if (ch.to === 'ejected') logger.warn(`outbound: ${service} endpoint ${ch.key} ejected for ${Math.round(ch.penaltyMs ?? 0)} ms after consecutive failures`);
      else if (ch.to === 'ready') logger.info(`outbound: ${service} endpoint ${ch.key} readmitted`);
    };
    services.set(name, new OutboundService({ name, namespace: ns, identity, tls: clientTls, config: svc, clock, onStateChange, traffic }));
  }
  // Created on first use: a process that only serves never loads undici. One first asked for
  // after close() is born closed, as the eager one was.
  let dispatcher: MeshDispatcher | undefined;
  let closed = false;
  const getDispatcher = (): MeshDispatcher => {
    if (dispatcher) return dispatcher;
    dispatcher = createMeshDispatcher(services, config.outbound.egress, () => void source.getX509Svid());
    if (closed) dispatcher.close().catch(() => {});
    return dispatcher;
  };
  const fastify = fastifyPlugin(pipeline, servers, (why) => logger.error(`sidecarless: ${why}`));
  let admin: AdminServer | undefined;
  const unobserveIdentity = observeIdentity({ spiffeId: config.spiffeId, service: config.service, secondsLeft: () => source.status().secondsLeft });
  let rotations = source.status().rotations;
  const unsubscribeRotations = source.onUpdate(() => {
    const now = source.status().rotations;
    for (; rotations < now; rotations++) recordRotation(config.spiffeId, config.service);
  });

  const mesh: Mesh = {
    service: config.service,
    spiffeId: config.spiffeId,
    config,
    get admin() {
      return admin;
    },
    identity: source,
    get dispatcher() {
      return getDispatcher();
    },
    fastify,
    createServer: (listener) => servers.createServer(listener),
    serverTlsOptions: () => servers.serverTlsOptions(),
    express: () => expressMiddleware(pipeline),
    fetch: (input, init) => loadUndici().fetch(input as never, { ...(init as object), dispatcher: getDispatcher() }) as unknown as Promise<Response>,
    setPolicy(policy) {
      gate.set(policy);
      lastPolicyError = undefined;
    },
    setEndpoints(name, endpoints) {
      const svc = services.get(name);
      if (!svc) {
        throw new ConfigError(`setEndpoints: "${name}" is not a mesh service; known: ${[...services.keys()].join(', ') || '(none)'}`, [
          { path: 'service', message: 'unknown service' },
        ]);
      }
      const schema = z.array(endpointSchema);
      const parsed = schema.safeParse(endpoints);
      if (!parsed.success) {
        const issues = formatIssues(parsed.error.issues, endpoints, schema).map((i) => ({ ...i, path: `endpoints.${i.path}` }));
        throw new ConfigError(`setEndpoints("${name}") rejected, endpoints unchanged:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
      }
      svc.setEndpoints(parsed.data);
    },
    setSplit(name, split) {
      const svc = services.get(name);
      if (!svc) {
        throw new ConfigError(`setSplit: "${name}" is not a mesh service; known: ${[...services.keys()].join(', ') || '(none)'}`, [
          { path: 'service', message: 'unknown service' },
        ]);
      }
      const reject = (issues: Array<{ path: string; message: string }>) =>
        new ConfigError(`setSplit("${name}") rejected, split unchanged:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, issues);
      if (split === null) {
        svc.setSplit(null);
        return;
      }
      const parsed = splitSchema.safeParse(split);
      if (!parsed.success) throw reject(formatIssues(parsed.error.issues, split, splitSchema).map((i) => ({ ...i, path: `split.${i.path}` })));
      const issues: Array<{ path: string; message: string }> = [];
      parsed.data.forEach((b, i) => {
        if (b.service === name) return;
        const backend = services.get(b.service);
        if (!backend) issues.push({ path: `split.${i}.service`, message: `"${b.service}" is not a mesh service; add it to outbound.services` });
        else if (backend.hasSplit) issues.push({ path: `split.${i}.service`, message: `"${b.service}" has a split itself: a backend must be a service with endpoints` });
      });
      for (const [n, s] of services) {
        if (n !== name && s.backendNames().includes(name)) issues.push({ path: 'split', message: `"${name}" is a backend of "${n}"'s split, and a backend cannot split` });
      }
      if (issues.length > 0) throw reject(issues);
      svc.setSplit(parsed.data);
    },
    stats() {
      const out: MeshStats['outbound']['services'] = {};
      for (const [name, svc] of services) {
        out[name] = svc.stats();
      }
      return {
        service: config.service,
        spiffeId: config.spiffeId,
        identity: source.status(),
        inbound: {
          mode: config.inbound.mode,
          handshakes: { ...serverTls.stats },
          requests: { ...pipeline.stats },
          authz: {
            ...structuredClone(gate.stats),
            defaultPolicy: config.inbound.defaultPolicy,
            policyVersion: gate.version,
            ...(policyFile && { policyFile: policyFile.path }),
            ...(lastPolicyError && { lastPolicyError }),
          },
        },
        outbound: { egress: config.outbound.egress, services: out },
        traffic: traffic.snapshot(),
      };
    },
    async close() {
      await admin?.close();
      unobserveIdentity();
      unsubscribeRotations();
      await servers.close();
      // The dispatcher closes the services' pools; without one, they are closed here.
      closed = true;
      if (dispatcher) await dispatcher.close();
      else await Promise.all([...services.values()].map((s) => s.close()));
      policyFile?.close();
      serverTls.close();
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
        policy: () => ({ policy: gate.policy, version: gate.version, ...(policyFile && { file: policyFile.path }), ...(lastPolicyError && { lastError: lastPolicyError }) }),
        traffic,
        handshakes: () => serverTls.stats,
        stats: () => mesh.stats(),
      }), logger);
    } catch (e) {
      await mesh.close();
      throw e;
    }
  }
  return mesh;
}
