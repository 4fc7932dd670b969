/**
 * `sidecarless control-plane`: one process that serves a mesh. It composes
 * - the mesh file (mesh-file/: loaded, validated, watched; a bad edit keeps the last good model),
 * - the CA and its state directory (ca/: root under `--state`, the server's own certificate, tokens),
 * - the registry of connected workloads (registry/),
 * - the ADS server (xds/ads-service.ts) over the resource source (resource-source.ts), on the TLS
 *   port with the CA (bearer token required, node checked against it) and the Workload API's JWT
 *   profile (ca/jwt-service.ts: JWT-SVIDs for the token's workload, the JWT bundle), and, when
 *   asked, ADS alone on a plaintext port (never the CA, never JWT-SVIDs, never registration),
 * - the admin endpoint (admin.ts: /status, /live).
 */
import * as grpc from '@grpc/grpc-js';
import { type Clock, systemClock } from '../clock.js';
import { type Logger, consoleLogger } from '../logger.js';
import { ControlPlaneListenError } from './control-plane-errors.js';
import { type CaState, openCaState } from './ca/state.js';
import { createCaService } from './ca/ca-service.js';
import { createJwtSvidService } from './ca/jwt-service.js';
import { createAdsService } from './xds/ads-service.js';
import { type MeshModel, loadMeshFile, watchMeshFile } from './mesh-file/index.js';
import { Registry } from './registry/registry.js';
import { Registrar } from './registry/registrar.js';
import { loadRegistrations, saveRegistrations } from './registry/saved.js';
import { MeshResourceSource } from './resource-source.js';
import { type TokenCheck, adsAuthenticator } from './token-auth.js';
import { loadExternalIssuer } from './ca/issuers.js';
import { ConfigError } from '../errors.js';
import { tokenAuthenticator } from './ca/ca-service.js';
import { type ListenAddress, DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, formatAddress, parseListen } from './listen-address.js';
import { type AdminServer, startStatusAdmin } from './admin.js';
import { type ControlPlaneStatus, type MeshFileState, buildStatus } from './status.js';

export interface ControlPlaneOptions {
  readonly meshFile: string;
  readonly state: string;
  readonly listen?: string;
  readonly plaintextListen?: string;
  readonly adminListen?: string;
  /** How long a disconnected workload stays an endpoint (default 10 s). */
  readonly graceMs?: number;
  /** Names the server's own certificate carries besides localhost, 127.0.0.1 and istiod.istio-system.svc. */
  readonly serverNames?: readonly string[];
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export interface RunningControlPlane {
  /** `host:port` of the TLS port (ADS + CA). */
  readonly address: string;
  readonly plaintextAddress?: string;
  readonly adminUrl: string;
  /** `<state>/root-cert.pem`: what clients pin. */
  readonly rootFile: string;
  readonly state: CaState;
  status(): ControlPlaneStatus;
  close(): Promise<void>;
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<RunningControlPlane> {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? consoleLogger;
  const listen = parseListen('--listen', o.listen ?? DEFAULT_LISTEN);
  const plaintext = o.plaintextListen !== undefined ? parseListen('--plaintext-listen', o.plaintextListen) : undefined;
  const adminAt = parseListen('--admin-listen', o.adminListen ?? DEFAULT_ADMIN_LISTEN);
  const mesh: MeshFileState = { path: o.meshFile, model: await loadMeshFile(o.meshFile), loadedAt: clock.now() };
  const state = await openCaState(o.state, { trustDomain: mesh.model.trustDomain, clock });
  const wiring = await wire(o, mesh, state, clock, logger);
  const servers: grpc.Server[] = [];
  const closers: Array<() => unknown> = [];
  try {
    const tls = await bindServer(servers, listen, await serverCredentials(state, listen, o.serverNames), (s) => {
      s.addService(wiring.ads.definition, wiring.ads.implementation);
      const ca = createCaService(grpc, { state, trustDomain: mesh.model.trustDomain, authenticate: wiring.caAuth, logger });
      s.addService(ca.definition, ca.implementation);
      s.addService(wiring.jwt.definition, wiring.jwt.implementation);
    });
    const plain = plaintext && (await bindServer(servers, plaintext, grpc.ServerCredentials.createInsecure(), (s) => s.addService(wiring.plainAds.definition, wiring.plainAds.implementation)));
    const admin: AdminServer = await startStatusAdmin(adminAt, () => status());
    closers.push(() => admin.close());
    const watcher = watchMeshFile(o.meshFile, { current: mesh.model, onModel: (m) => void wiring.apply(m), onError: (e) => wiring.reject(e), clock });
    closers.push(() => watcher.close());
    const rootFile = state.rootFile;
    const status = () => buildStatus({ mesh, state, wiring, listen: tls, plaintext: plain || undefined, admin: admin.url, clock });
    announce(logger, { tls, plain: plain || undefined, admin: admin.url, rootFile, mesh, plaintextWide: plaintext !== undefined && !plaintext.loopback, adminWide: !adminAt.loopback });
    return {
      address: tls,
      ...(plain && { plaintextAddress: plain }),
      adminUrl: admin.url,
      rootFile,
      state,
      status,
      close: async () => {
        for (const c of closers) await c();
        await wiring.close(); // ends every ADS stream: the servers can then shut down
        await Promise.all(servers.map(shutdown));
      },
    };
  } catch (e) {
    for (const c of closers) await c();
    for (const s of servers) s.forceShutdown();
    await wiring.close();
    throw e;
  }
}

type Wiring = Awaited<ReturnType<typeof wire>>;

/** The registry, registrar, resource source and both ADS services, and what a model change does. */
async function wire(o: ControlPlaneOptions, mesh: MeshFileState, state: CaState, clock: Clock, logger: Logger) {
  let push = () => {};
  let saving: Promise<void> = Promise.resolve();
  const registry = new Registry({ clock, ...(o.graceMs !== undefined && { graceMs: o.graceMs }), onChange: () => {
    push();
    saving = saving.then(() => saveRegistrations(o.state, registry.list())).catch((e: Error) => logger.warn(`could not save registrations under ${o.state}: ${e.message}`));
  } });
  const saved = await loadRegistrations(o.state);
  if (saved.warning) logger.warn(saved.warning);
  const declared = (service: string, namespace: string) => {
    const s = mesh.model.service(service, namespace);
    return s && { identities: [s.identity] };
  };
  const registrar = new Registrar({ registry, declared });
  let applying = 0;
  const source = new MeshResourceSource(mesh.model, registry);
  source.check(mesh.model);
  const events = {
    connected: (c: Parameters<Registrar['connected']>[0]) => registrar.connected(c),
    request: (c: { id: string }, r: Parameters<Registrar['request']>[1]) => registrar.request(c.id, r),
    disconnected: (c: { id: string }) => registrar.disconnected(c.id),
  };
  let check = tokenAuthenticator({ state, trustDomain: mesh.model.trustDomain, issuers: await issuersOf(mesh.model), clock });
  const tokens: TokenCheck = (md) => check(md);
  const ads = createAdsService(grpc, { source, events, authenticate: adsAuthenticator(tokens, logger), clock });
  const plainAds = createAdsService(grpc, { source, events, plaintext: true, clock });
  const jwt = createJwtSvidService(grpc, { state, authenticate: tokens, logger });
  push = () => {
    ads.changed();
    plainAds.changed();
  };
  registry.restore(saved.registrations);
  return {
    registry,
    registrar,
    source,
    ads,
    plainAds,
    jwt,
    caAuth: tokens,
    /** A new good mesh file: served if it can be (the CA's trust domain, its token issuers, the generator), else rejected whole. */
    async apply(model: MeshModel): Promise<void> {
      const seq = ++applying;
      try {
        if (model.trustDomain !== state.trustDomain) throw new ConfigError(`trustDomain ${model.trustDomain} is not the CA's (${state.trustDomain}, kept under --state): a trust domain cannot change under a running CA; restart with another --state for a new trust domain`);
        source.check(model);
        const next = tokenAuthenticator({ state, trustDomain: model.trustDomain, issuers: await issuersOf(model), clock });
        if (seq !== applying) return; // a newer version is being applied
        check = next;
      } catch (e) {
        this.reject(e as Error);
        return;
      }
      mesh.model = model;
      mesh.loadedAt = clock.now();
      delete mesh.error;
      source.setModel(model);
      logger.info(`mesh file ${mesh.path} reloaded: version ${model.version}, ${model.services.length} service(s)`);
      push();
    },
    reject(e: Error): void {
      mesh.error = { message: e.message, at: clock.now() };
      logger.error(`mesh file ${mesh.path} rejected, still serving version ${mesh.model.version}: ${e.message}`);
    },
    async close(): Promise<void> {
      ads.close();
      plainAds.close();
      jwt.close();
      registry.close();
      await saving;
    },
  };
}

async function serverCredentials(state: CaState, listen: ListenAddress, extra: readonly string[] = []): Promise<grpc.ServerCredentials> {
  const names = [...new Set(['localhost', '127.0.0.1', 'istiod.istio-system.svc', listen.host, ...extra].filter((h) => h !== '0.0.0.0' && h !== '::'))];
  const { certPem, keyPem } = await state.issueServing(names);
  return grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(certPem) }], false);
}

/** The mesh file's external token issuers, their JWK Sets read now. */
function issuersOf(model: MeshModel) {
  return Promise.all(model.tokenIssuers.map((i) => loadExternalIssuer(i, model.trustDomain)));
}

/** Graceful for in-flight CA calls, then forced: a client that keeps a call open cannot hold the process. */
function shutdown(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2_000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

async function bindServer(servers: grpc.Server[], at: ListenAddress, creds: grpc.ServerCredentials, add: (s: grpc.Server) => void): Promise<string> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  add(server);
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(formatAddress(at.host, at.port), creds, (e, p) => (e ? reject(listenError(at, e)) : resolve(p))));
  return formatAddress(at.host, port);
}

function listenError(at: ListenAddress, e: Error): Error {
  return new ControlPlaneListenError(at, e);
}

function announce(logger: Logger, a: { tls: string; plain: string | undefined; admin: string; rootFile: string; mesh: MeshFileState; plaintextWide: boolean; adminWide: boolean }): void {
  logger.info(`control plane serving ADS + CA on ${a.tls} (TLS); clients pin ${a.rootFile}`); // the CA's port also serves JWT-SVIDs (ca/jwt-service.ts); scripts read this line
  if (a.plain) logger.info(`ADS only, plaintext, on ${a.plain} (no CA, no registration)`);
  if (a.plaintextWide) logger.warn(`the plaintext ADS port ${a.plain} is reachable beyond this host: anyone who reaches it reads the mesh's configuration`);
  if (a.adminWide) logger.warn(`the admin endpoint ${a.admin} is reachable beyond this host: it is unauthenticated`);
  logger.info(`status on ${a.admin}/status; mesh file ${a.mesh.path} version ${a.mesh.model.version}, ${a.mesh.model.services.length} service(s)`);
}
