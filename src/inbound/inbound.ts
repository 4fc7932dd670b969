/**
 * The inbound side of one mesh, wired: server TLS (rotation, per-connection admit), the pipeline,
 * the servers it protects, the policy gate and its watched file, telemetry of decisions. createMesh
 * builds one and delegates to it.
 */
import { type IncomingMessage } from 'node:http';
import { type MeshConfig } from '../config.js';
import { type Logger } from '../logger.js';
import { type X509Source } from '../sources/source.js';
import { InboundObserver } from '../telemetry/inbound.js';
import { AuthzCounters, deriveTelemetry } from '../telemetry/derive.js';
import { MeshEvents } from '../telemetry/events.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type PeerVerifier } from '../tls/peer.js';
import { type HandshakeStats, ServerTls } from '../tls/server-context.js';
import { type AuditRecord, type AuthzStats, PolicyGate } from './policy-gate.js';
import { expressMiddleware } from './express.js';
import { fastifyPlugin } from './fastify.js';
import { DEFAULT_FIRST_REQUEST_TIMEOUT_MS } from './first-request.js';
import { InboundPipeline, type InboundStats } from './pipeline.js';
import { PolicyFile, isPolicyPath } from './policy-file.js';
import { InboundServers } from './servers.js';

export interface InboundMeshStats {
  mode: string;
  handshakes: HandshakeStats;
  requests: InboundStats;
  authz: AuthzStats & { defaultPolicy: string; policyVersion: number; policyFile?: string; lastPolicyError?: string };
}

export interface InboundDeps {
  config: MeshConfig;
  source: X509Source;
  verifier: PeerVerifier;
  traffic: TrafficStats;
  logger: Logger;
  /**
   * The mesh's event bus, whose creator derives the telemetry from it (deriveTelemetry). Without
   * one (until createMesh passes its own), Inbound makes a bus and derives from it itself.
   */
  events?: MeshEvents;
}

const stderrAudit = (record: AuditRecord) => process.stderr.write(JSON.stringify(record) + '\n');

export class Inbound {
  readonly tls: ServerTls;
  readonly pipeline: InboundPipeline;
  readonly servers: InboundServers;
  readonly gate: PolicyGate;
  readonly fastify: ReturnType<typeof fastifyPlugin>;
  readonly events: MeshEvents;
  readonly #authz: AuthzCounters;
  readonly #unsubscribe: Array<() => void> = [];
  #policyFile: PolicyFile | undefined;
  #lastPolicyError: string | undefined;

  private constructor(private readonly d: InboundDeps) {
    const { config, logger, traffic } = d;
    this.tls = new ServerTls(d.source, d.verifier, config.inbound.mode, () => {});
    const observer = new InboundObserver(traffic, config.service);
    this.pipeline = new InboundPipeline(this.tls, config.inbound.identityHeaders, observer, {
      unknownServer: (server) => this.servers.unknownServer(server),
      notTls: () => this.servers.plaintext(),
    });
    this.servers = new InboundServers(this.tls, this.pipeline, {
      firstRequestTimeoutMs: config.inbound.firstRequestTimeout ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS,
      logger,
    });
    const events = (this.events = d.events ?? new MeshEvents(config.service));
    if (!d.events) this.#unsubscribe.push(deriveTelemetry(events, traffic));
    this.#authz = new AuthzCounters(events);
    this.#unsubscribe.push(this.#authz.close, events.on('authz', (dec, _s, req) => observer.decided(req as IncomingMessage, dec.allowed, dec.rule)));
    const policy = config.inbound.policy;
    this.gate = new PolicyGate(
      { defaultPolicy: config.inbound.defaultPolicy, trustDomain: config.trustDomain, namespace: config.namespace, labels: config.labels, audit: config.inbound.audit ?? stderrAudit, events },
      isPolicyPath(policy) ? undefined : policy,
    );
    this.pipeline.setAuthorize((req, peer, routing, recheck) => this.gate.judge(req, peer, routing, recheck));
    this.fastify = fastifyPlugin(this.pipeline, this.servers, (why) => logger.error(`sidecarless: ${why}`));
  }

  /** Builds the inbound side; a policy file must load (else it rejects, leaving nothing open). */
  static async create(d: InboundDeps): Promise<Inbound> {
    const inbound = new Inbound(d);
    const policy = d.config.inbound.policy;
    if (isPolicyPath(policy)) {
      try {
        await inbound.#watchPolicy(policy);
      } catch (e) {
        inbound.tls.close();
        throw e;
      }
    }
    return inbound;
  }

  async #watchPolicy(path: string): Promise<void> {
    const logger = this.d.logger;
    this.#policyFile = new PolicyFile(path, {
      apply: (text) => this.gate.set(text),
      onApplied: () => {
        this.#lastPolicyError = undefined;
        logger.info(`policy reloaded from ${path}`);
      },
      onError: (err) => {
        this.#lastPolicyError = err.message;
        logger.error(err.message);
      },
    });
    await this.#policyFile.start();
  }

  setPolicy(policy: unknown): void {
    this.gate.set(policy);
    this.#lastPolicyError = undefined;
  }

  express() {
    return expressMiddleware(this.pipeline);
  }

  /** The policy in force, for the admin endpoint's /config. */
  policyStatus() {
    const file = this.#policyFile?.path;
    const lastError = this.#lastPolicyError;
    return { policy: this.gate.policy, version: this.gate.version, ...(file && { file }), ...(lastError && { lastError }) };
  }

  stats(): InboundMeshStats {
    const file = this.#policyFile?.path;
    const lastPolicyError = this.#lastPolicyError;
    return {
      mode: this.d.config.inbound.mode,
      handshakes: { ...this.tls.stats },
      requests: { ...this.pipeline.stats },
      authz: {
        ...structuredClone(this.#authz.stats),
        defaultPolicy: this.d.config.inbound.defaultPolicy,
        policyVersion: this.gate.version,
        ...(file && { policyFile: file }),
        ...(lastPolicyError && { lastPolicyError }),
      },
    };
  }

  /** Closes the servers the mesh created (framework-built ones are the app's to close). */
  async close(): Promise<void> {
    await this.servers.close();
    this.#policyFile?.close();
    this.tls.close();
    for (const off of this.#unsubscribe.splice(0)) off();
  }
}
