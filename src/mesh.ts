import { readFileSync } from 'node:fs';
import { type Server } from 'node:https';
import { type TlsOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from './clock.js';
import type { EndpointInput, MeshConfig, MeshOptionsInput, ServiceInput, SplitInput } from './config.js';
import { resolveConfig } from './config/fast.js';
import type { LinkerdConfig } from './config/linkerd.js';
import type { MeshDnsIdentity } from './sources/workload.js';
import { type Reconciler, type RejectedSnapshot } from './control-plane/reconcile.js';
import { type InboundMode, type MeshSnapshot } from './control-plane/snapshot.js';
import { type ControlPlane } from './control-plane/control-plane.js';
import { StaticControlPlane } from './control-plane/static.js';
import { ConfigError } from './errors.js';
import type { SnapshotDraft } from './control-plane/updates.js';
import { updates } from './mesh/zod.js';
import { type PendingReference } from './control-plane/validate.js';
import { type InboundMeshStats } from './inbound/inbound.js';
import { type RequestListener } from './inbound/servers.js';
import { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';

/** A node:http2 compat request listener (`mesh.createServer(listener, { http2: true })`). */
export type Http2RequestListener = (req: Http2ServerRequest, res: Http2ServerResponse) => void;
import { type OutboundMeshStats } from './outbound/outbound.js';
import { consoleLogger } from './logger.js';
import { type OpenedSource, openSource } from './mesh/identity.js';
import { kJudgeFronted, kThaw } from './mesh/hooks.js';
import { createThaw } from './mesh/thaw.js';
import { type MeshJwt, openJwtClient } from './mesh/jwt.js';
import { type ValidatedJwtSvid } from './identity/jwt-svid.js';
import { type MeshParts, buildParts } from './mesh/parts.js';
import { type MeshGrpc } from './grpc/mesh-grpc.js';
import { openMeshGrpc } from './mesh/grpc.js';
import { frontedJudge } from './mesh/fronted.js';
import { type SourceStatus, type X509Source } from './sources/source.js';
import { type AdminEndpoint, type AdminServer, startAdmin } from './admin/server.js';
import { meshAdminHandlers } from './admin/handlers.js';
import { observeIdentity } from './telemetry/instruments.js';
import { publishRotations } from './telemetry/derive.js';
import { reportTelemetryOff } from './telemetry/otel.js';
import { type TrafficSnapshot } from './telemetry/stats.js';

export { DEFAULT_START_TIMEOUT_MS } from './mesh/identity.js';

export interface MeshStats {
  service: string;
  spiffeId: string;
  /** With a DNS-like identity (controlPlane.linkerd): the name the mesh runs as (its certificate's one DNS SAN). */
  dnsName?: string;
  identity: SourceStatus;
  inbound: InboundMeshStats;
  outbound: OutboundMeshStats;
  /** Golden signals per direction, peer and route (what the admin /metrics and `sidecarless stat` show). */
  traffic: TrafficSnapshot;
  /** The snapshot in force: its version and source, what it still waits for, the last one refused. */
  snapshot: SnapshotStatus;
  /** With `controlPlane.linkerd`: its streams (authorities watched, Destination paths, served ports, last errors). */
  linkerd?: import('./control-plane/linkerd/linkerd-status.js').LinkerdStatus;
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
  /** With a DNS-like identity (controlPlane.linkerd): the name the mesh runs as; its SVIDs carry it, not `spiffeId`. */
  readonly dnsName?: string;
  readonly config: Readonly<MeshConfig>;
  /**
   * `{ http2: true }`: a node:http2 Http2SecureServer (ALPN h2 and http/1.1) with the same gate in
   * front of every stream ('request' and 'stream' listeners) and of HTTP/1.1 requests on it.
   */
  createServer(listener: Http2RequestListener | undefined, options: { http2: true }): Http2SecureServer;
  /**
   * An https.Server with mTLS and the inbound gate in front of `listener` (a function or an Express
   * app) and of every listener added later ('request', 'upgrade', 'connect', 'checkContinue', ...).
   * (Declared last: `Parameters<Mesh['createServer']>` is this one.)
   */
  createServer(listener?: RequestListener, options?: { http2?: false }): Server;
  /**
   * TLS options for a server a framework builds itself (pair with mesh.express() / mesh.fastify);
   * `{ http2: true }` for http2.createSecureServer and Fastify's `http2: true`.
   */
  serverTlsOptions(options?: { http2?: boolean }): TlsOptions;
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
  /**
   * This workload's JWT-SVID for `audience` (one, or several in one token), from the SPIFFE Workload
   * API (FetchJWTSVID), cached until half its remaining life or 30 s before it expires. For peers
   * mTLS cannot reach: send it as `Authorization: Bearer <token>`. Rejects with
   * JwtSvidUnavailableError when the mesh's identity does not come from the Workload API.
   */
  jwtSvid(audience: string | readonly string[]): Promise<string>;
  /**
   * Validates a JWT-SVID a peer presented, for `audience` (the audience this service is), against
   * the JWT bundles of the Workload API: signature by a key of the bundle of the token's own trust
   * domain, `aud`, `exp`, `sub`. Rejects with JwtSvidError (`reason` names the check), or
   * JwtSvidUnavailableError when there is no Workload API or no bundle yet.
   */
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid>;
  /**
   * @grpc/grpc-js credentials and the server interceptor of this mesh (docs/grpc.md), built with
   * the `grpc` option's module (else sidecarless's own copy), on first use: grpc-js is loaded then.
   */
  readonly grpc: import('./grpc/mesh-grpc.js').MeshGrpcApi;
  close(): Promise<void>;
}

export interface CreateMeshInternals {
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /**
   * Run as a DNS-like identity (a Linkerd workload): the SVID must be for `name`, and `domains`'
   * trust anchors join the bundles of a user-given source (`identity: { source }`). What
   * `controlPlane.linkerd` sets; tests set it directly.
   */
  dnsIdentity?: import('./sources/workload.js').MeshDnsIdentity;
}

/**
 * Wires an identity source into inbound (mTLS server + pipeline) and outbound (mTLS dispatcher),
 * both driven by the control plane's snapshots. Resolves once the workload has a valid SVID;
 * rejects with a ConfigError naming bad options, or an IdentityUnavailableError saying why no
 * SVID could be had (fail closed: no listener).
 */
export async function createMesh(options: MeshOptionsInput, internals: CreateMeshInternals = {}): Promise<Mesh> {
  const resolved = resolveConfig(options, internals.env ?? process.env);
  const dnsIdentity = internals.dnsIdentity ?? (resolved.linkerd && linkerdIdentity(resolved.linkerd, resolved.identity !== undefined));
  const config: MeshConfig = dnsIdentity ? { ...resolved, dnsIdentity } : resolved;
  const clock = internals.clock ?? systemClock;
  const logger = config.logger ?? consoleLogger;
  reportTelemetryOff(logger); // once per process, when @opentelemetry/api is not installed
  const jwt = openJwtClient(config, clock, logger, internals.env ?? process.env); // opens nothing until used
  // Options are checked whole (and a policy file loaded) before any identity is opened.
  const fromOptions = await StaticControlPlane.create(config, logger, clock);
  // With `controlPlane`, its xDS feeds the snapshot over the options' part; without, no xDS code is loaded.
  let controlPlane: ControlPlane = fromOptions;
  // The Linkerd streams present the workload's certificate, which exists once the identity is open (below).
  let certificate: () => { certChainPem: string; keyPem: string } | undefined = () => undefined;
  try {
    if (config.controlPlane) controlPlane = (await import('./control-plane/xds/open.js')).openXdsControlPlane({ config, base: fromOptions, clock, logger, env: internals.env ?? process.env });
    else if (config.linkerd) {
      const linkerd = config.linkerd;
      controlPlane = await (await import('./control-plane/linkerd/open.js')).openLinkerdControlPlane({ config: { ...config, linkerd }, base: fromOptions, certificate: () => certificate(), clock, logger });
    }
  } catch (e) {
    await fromOptions.close();
    throw e;
  }
  let identity: OpenedSource;
  try {
    identity = await openSource(config, logger, clock, internals.env ?? process.env);
  } catch (e) {
    await controlPlane.close();
    throw e;
  }
  const opened = identity.source;
  certificate = () => currentCertificate(opened);
  const parts = await buildParts({ config, identity, controlPlane, clock, logger, jwtSvid: (audience) => jwt.jwtSvid(audience) });
  const mesh = meshFacade(parts, jwt);
  if (config.admin) {
    try {
      (mesh as { admin?: AdminServer }).admin = await startAdmin(config.admin, adminHandlersOf(parts, () => mesh.stats()), logger);
    } catch (e) {
      await mesh.close();
      throw e;
    }
  }
  return mesh;
}

function adminHandlersOf(p: MeshParts, stats: () => MeshStats) {
  return meshAdminHandlers({
    service: p.config.service,
    config: p.config,
    source: p.source,
    policy: () => ({ ...p.inbound.policyStatus(), ...policyFileStatus(p.controlPlane) }),
    snapshot: () => snapshotStatus(p.reconciler),
    ...(p.controlPlane.status?.().xds && { xds: () => p.controlPlane.status?.().xds }),
    ...(p.controlPlane.status?.().linkerd && { linkerd: () => p.controlPlane.status?.().linkerd }),
    traffic: p.traffic,
    handshakes: () => p.inbound.tls.stats,
    stats,
    now: () => p.clock.now(),
  });
}

/**
 * A Linkerd workload runs as its DNS-like identity. Its anchors join the bundles of a source the
 * user gave (`identity` beside `controlPlane.linkerd`); Linkerd's identity service's source holds them already.
 */
function linkerdIdentity(l: LinkerdConfig, userSource: boolean): MeshDnsIdentity {
  const origin = 'controlPlane.linkerd (or LINKERD2_PROXY_IDENTITY_LOCAL_NAME)';
  if (!userSource) return { name: l.localName, origin };
  const anchorsPem = 'pem' in l.trustAnchors ? l.trustAnchors.pem : readAnchors(l.trustAnchors.file);
  return { name: l.localName, origin, domains: [{ domain: l.identityDomain, anchorsPem }] };
}

function readAnchors(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const message = `cannot read ${file}: ${(e as Error).message}`;
    throw new ConfigError(`invalid sidecarless options:\n  - controlPlane.linkerd.trustAnchors.file: ${message}`, [{ path: 'controlPlane.linkerd.trustAnchors.file', message }]);
  }
}

/** The source's certificate and key now, or undefined while it has none (a stream dialled then waits and retries). */
function currentCertificate(source: OpenedSource['source']): { certChainPem: string; keyPem: string } | undefined {
  try {
    const svid = source.getX509Svid();
    return { certChainPem: svid.certChainPem, keyPem: svid.keyPem };
  } catch {
    return undefined;
  }
}

function policyFileStatus(cp: ControlPlane): { file?: string; lastError?: string } {
  const st = cp.status?.() ?? {};
  return { ...(st.policyFile && { file: st.policyFile }), ...(st.lastPolicyError && { lastError: st.lastPolicyError }) };
}

function snapshotStatus(r: Reconciler): SnapshotStatus {
  const s = r.current!;
  return { version: s.version, source: s.source, services: s.services.size, pending: [...r.pending], ...(r.lastRejected && { lastRejected: r.lastRejected }) };
}

/** `mesh.set*`: each a snapshot update offered to the control plane (which refuses after close()). */
function runtimeUpdates(p: MeshParts): Pick<Mesh, 'setPolicy' | 'setEndpoints' | 'setSplit' | 'setService' | 'setInboundMode'> {
  const cp = p.controlPlane;
  const ctx = { trustDomain: p.config.trustDomain, namespace: p.config.namespace };
  const offer = (draft: SnapshotDraft, title: string) => {
    if (!p.local) throw new ConfigError(`${title}: this mesh takes its configuration from ${cp.name}, which does not take mesh.set* updates`);
    p.local.update(draft, 'api', { title });
  };
  return {
    setPolicy: (policy) => offer(updates.setPolicy(cp.current(), policy), 'setPolicy rejected, policy unchanged'),
    setEndpoints: (name, list) => offer(updates.setEndpoints(cp.current(), name, list), `setEndpoints("${name}") rejected, endpoints unchanged`),
    setSplit: (name, split) => offer(updates.setSplit(cp.current(), name, split), `setSplit("${name}") rejected, split unchanged`),
    setService: (name, svc) => offer(updates.setService(cp.current(), name, svc, ctx), `setService("${name}") rejected, services unchanged`),
    setInboundMode: (mode) => offer(updates.setInboundMode(cp.current(), mode), 'setInboundMode rejected, mode unchanged'),
  };
}

/** The Mesh object over its parts. */
function meshFacade(p: MeshParts, jwt: MeshJwt): Mesh {
  const { config, source, inbound, outbound, traffic, controlPlane } = p;
  // The identity the mesh runs as: its DNS-like name under Linkerd, else its SPIFFE ID (metrics and rotation events name it).
  const dnsName = config.dnsIdentity?.name;
  const own = dnsName ?? config.spiffeId;
  const unobserveIdentity = observeIdentity({ spiffeId: own, service: config.service, secondsLeft: () => source.status().secondsLeft });
  const unsubscribeRotations = publishRotations(source, p.events, own);
  let grpc: MeshGrpc | undefined;
  const mesh = {
    service: config.service,
    spiffeId: config.spiffeId,
    ...(dnsName !== undefined && { dnsName }),
    config,
    admin: undefined as AdminServer | undefined,
    identity: source,
    get dispatcher() {
      return outbound.dispatcher;
    },
    fastify: inbound.fastify,
    get grpc() {
      return (grpc ??= openMeshGrpc(p, config.grpc));
    },
    createServer: ((listener?: RequestListener, options?: { http2?: boolean }) => inbound.servers.createServer(listener, options ?? {})) as Mesh['createServer'],
    serverTlsOptions: (options?: { http2?: boolean }) => inbound.servers.serverTlsOptions(options),
    express: () => inbound.express(),
    fetch: (input: string | URL | Request, init?: RequestInit) => outbound.fetch(input, init),
    ...runtimeUpdates(p),
    jwtSvid: (audience: string | readonly string[]) => jwt.jwtSvid(audience),
    validateJwtSvid: (token: string, audience: string) => jwt.validateJwtSvid(token, audience),
    snapshot: () => p.reconciler.current!,
    [kThaw]: createThaw(p),
    [kJudgeFronted]: frontedJudge(p, jwt),
    stats: (): MeshStats => {
      const file = controlPlane.status?.() ?? {};
      const inb = inbound.stats();
      return {
        service: config.service,
        spiffeId: config.spiffeId,
        ...(dnsName !== undefined && { dnsName }),
        identity: source.status(),
        inbound: { ...inb, authz: { ...inb.authz, ...(file.policyFile && { policyFile: file.policyFile }), ...(file.lastPolicyError && { lastPolicyError: file.lastPolicyError }) } },
        outbound: outbound.stats(),
        traffic: traffic.snapshot(),
        snapshot: snapshotStatus(p.reconciler),
        ...(file.linkerd && { linkerd: file.linkerd }),
      };
    },
    async close() {
      await mesh.admin?.close();
      unobserveIdentity();
      unsubscribeRotations();
      await jwt.close();
      await controlPlane.close();
      await inbound.close();
      await outbound.close();
      p.clientTls.close();
      grpc?.close();
      if (p.owned) await source.close();
      p.offTelemetry();
    },
  };
  return mesh;
}
