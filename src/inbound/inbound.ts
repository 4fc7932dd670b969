/**
 * The inbound side of one mesh, wired: server TLS (rotation, per-connection admit), the pipeline,
 * the servers it protects, the policy gate and its watched file, telemetry of decisions. createMesh
 * builds one and delegates to it.
 */
import { type IncomingMessage } from 'node:http';
import { type Logger, type MeshConfig } from '../config.js';
import { type Policy } from '../policy/index.js';
import { type Decision } from '../policy/index.js';
import { type X509Source } from '../sources/source.js';
import { InboundObserver } from '../telemetry/inbound.js';
import { recordAuthz } from '../telemetry/instruments.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type PeerVerifier } from '../tls/peer.js';
import { type HandshakeStats, ServerTls } from '../tls/server-context.js';
import { type AuditRecord, type AuthzStats, PolicyGate } from './policy-gate.js';
import { expressMiddleware } from './express.js';
import { fastifyPlugin } from './fastify.js';
import { DEFAULT_FIRST_REQUEST_TIMEOUT_MS } from './first-request.js';
import { InboundPipeline, type InboundStats } from './pipeline.js';
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
  /** The first policy in force. */
  policy: Policy;
}

const stderrAudit = (record: AuditRecord) => process.stderr.write(JSON.stringify(record) + '\n');

export class Inbound {
  readonly tls: ServerTls;
  readonly pipeline: InboundPipeline;
  readonly servers: InboundServers;
  readonly gate: PolicyGate;
  readonly fastify: ReturnType<typeof fastifyPlugin>;

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
    const onDecision = (dec: Decision, req: IncomingMessage) => {
      traffic.authz(dec.result, dec.rule, dec.action);
      for (const a of dec.audit) traffic.authz(dec.result, a, 'audit');
      recordAuthz(dec.result, dec.rule, dec.action, dec.audit);
      observer.decided(req, dec.allowed, dec.rule);
    };
    this.gate = new PolicyGate(
      { defaultPolicy: config.inbound.defaultPolicy, trustDomain: config.trustDomain, namespace: config.namespace, labels: config.labels, audit: config.inbound.audit ?? stderrAudit, onDecision },
      d.policy,
    );
    this.pipeline.setAuthorize((req, peer, routing, recheck) => this.gate.judge(req, peer, routing, recheck));
    this.fastify = fastifyPlugin(this.pipeline, this.servers, (why) => logger.error(`sidecarless: ${why}`));
  }

  /** Builds the inbound side with its first policy (the snapshot's: compiled here, so it may throw PolicyError). */
  static create(d: InboundDeps): Inbound {
    return new Inbound(d);
  }

  /** Compiles and swaps the policy; throws PolicyError and keeps the previous one when invalid. */
  setPolicy(policy: Policy): void {
    this.gate.set(policy);
  }

  express() {
    return expressMiddleware(this.pipeline);
  }

  /** The policy in force, for the admin endpoint's /config. */
  policyStatus() {
    return { policy: this.gate.policy, version: this.gate.version };
  }

  stats(): InboundMeshStats {
    return {
      mode: this.d.config.inbound.mode,
      handshakes: { ...this.tls.stats },
      requests: { ...this.pipeline.stats },
      authz: {
        ...structuredClone(this.gate.stats),
        defaultPolicy: this.d.config.inbound.defaultPolicy,
        policyVersion: this.gate.version,
      },
    };
  }

  /** Closes the servers the mesh created (framework-built ones are the app's to close). */
  async close(): Promise<void> {
    await this.servers.close();
    this.tls.close();
  }
}
