/**
 * The inbound side of one mesh, wired: server TLS (rotation, per-connection admit), the pipeline,
 * the servers it protects, the policy gate and its watched file, telemetry of decisions. createMesh
 * builds one and delegates to it.
 */
import { type IncomingMessage } from 'node:http';
import { type Clock } from '../clock.js';
import { type Logger } from '../logger.js';
import { ConfigError } from '../errors.js';
import { type DefaultPolicy, type Policy } from '../policy/index.js';
import { type X509Source } from '../sources/source.js';
import { InboundObserver } from '../telemetry/inbound.js';
import { AuthzCounters } from '../telemetry/derive.js';
import { type MeshEvents } from '../telemetry/events.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type PeerVerifier } from '../tls/peer.js';
import { type HandshakeStats, type InboundMode, ServerTls } from '../tls/server-context.js';
import { type AuditRecord, type AuthzStats, PolicyGate } from './policy-gate.js';
import { expressMiddleware } from './express.js';
import { fastifyPlugin } from './fastify.js';
import { judgeHttp1 } from './http1/judge.js';
import { judgeHttp2 } from './http2/judge.js';
import { InboundPipeline, type InboundStats } from './pipeline.js';
import { InboundServers } from './servers.js';

export interface InboundMeshStats {
  /** The mode new connections are admitted under (it can change live: setMode). */
  mode: InboundMode;
  handshakes: HandshakeStats;
  requests: InboundStats;
  authz: AuthzStats & { defaultPolicy: string; policyVersion: number; policyFile?: string; lastPolicyError?: string };
}

/** What the inbound side runs with, typed and complete (control-plane/from-options.ts makes it from the options). */
export interface InboundSettings {
  /** The mesh's own service (telemetry). */
  readonly service: string;
  readonly trustDomain: string;
  readonly namespace: string;
  /** The workload's labels (policy selectors match them). */
  readonly labels: Readonly<Record<string, string>>;
  readonly mode: InboundMode;
  readonly defaultPolicy: DefaultPolicy;
  /** No default policy was chosen: it follows the mode, also when the mode changes live. */
  readonly defaultPolicyFollowsMode: boolean;
  /** Request headers that claim an identity; removed before the app sees a request. */
  readonly identityHeaders: readonly string[];
  /** 0: no limit. */
  readonly firstRequestTimeoutMs: number;
  /** Where audit records go; default a JSON line on stderr. */
  readonly audit?: (record: AuditRecord) => void;
}

export interface InboundDeps {
  settings: InboundSettings;
  source: X509Source;
  verifier: PeerVerifier;
  traffic: TrafficStats;
  logger: Logger;
  /** The first policy in force. */
  policy: Policy;
  /** The mesh's clock (the first-request timers run on it); default systemClock. */
  clock?: Clock;
  /** The mesh's event bus: decisions are published there once; its creator derives telemetry from it. */
  events: MeshEvents;
  /**
   * Told the port of every protected server once it listens, and the port every request arrived on
   * before it is judged (a server handed its connections by a front never listens itself).
   */
  onPort?: (port: number) => void;
}

const stderrAudit = (record: AuditRecord) => process.stderr.write(JSON.stringify(record) + '\n');

/** The default policy of a mode when none was given: strict → all-authenticated, permissive → all-unauthenticated. */
export function modeDefaultPolicy(mode: InboundMode): DefaultPolicy {
  return mode === 'permissive' ? 'all-unauthenticated' : 'all-authenticated';
}

export class Inbound {
  readonly tls: ServerTls;
  readonly pipeline: InboundPipeline;
  readonly servers: InboundServers;
  readonly gate: PolicyGate<IncomingMessage>;
  readonly fastify: ReturnType<typeof fastifyPlugin>;
  /** No defaultPolicy was given: it follows the mode (resolveConfig's rule), also across setMode. */
  readonly #defaultFollowsMode: boolean;
  readonly #authz: AuthzCounters;
  readonly #unsubscribe: Array<() => void> = [];

  private constructor(private readonly d: InboundDeps) {
    const { settings: c, logger, traffic } = d;
    this.#defaultFollowsMode = c.defaultPolicyFollowsMode;
    const observer = new InboundObserver(traffic, c.service);
    const events = d.events;
    this.#authz = new AuthzCounters(events);
    this.#unsubscribe.push(this.#authz.close, events.on('authz', (dec, _s, req) => observer.decided(req as IncomingMessage, dec.allowed, dec.rule)));
    // The gate first: an invalid policy throws before anything subscribes to the source.
    const gate = new PolicyGate<IncomingMessage>(
      { defaultPolicy: c.defaultPolicy, trustDomain: c.trustDomain, namespace: c.namespace, labels: c.labels, audit: c.audit ?? stderrAudit, events },
      d.policy,
    );
    this.gate = gate;
    this.tls = new ServerTls(d.source, d.verifier, c.mode, () => {});
    this.pipeline = new InboundPipeline({
      tls: this.tls,
      authorize: (req, peer, routing, recheck) => {
        // The port the request is judged under (judge.ts) is made known first: an xDS control plane
        // then holds it pending (deny) until its inbound Listener is decided, whoever accepted the connection.
        const port = req.socket.localPort;
        if (d.onPort && port) d.onPort(port);
        return judgeHttp1(gate, req, peer, routing, recheck);
      },
      authorizeHttp2: (req, peer, routing, recheck) => {
        const port = req.socket?.localPort;
        if (d.onPort && port) d.onPort(port);
        return judgeHttp2(gate as PolicyGate<object>, req, peer, routing, recheck);
      },
      identityHeaders: c.identityHeaders,
      observer,
      hooks: {
        unknownServer: (server) => this.servers.unknownServer(server),
        notTls: () => this.servers.plaintext(),
      },
    });
    this.servers = new InboundServers(this.tls, this.pipeline, {
      firstRequestTimeoutMs: c.firstRequestTimeoutMs,
      ...(d.clock && { clock: d.clock }),
      ...(d.onPort && { onPort: d.onPort }),
      logger,
    });
    this.fastify = fastifyPlugin(this.pipeline, this.servers, (why) => logger.error(`sidecarless: ${why}`));
  }

  /** Builds the inbound side with its first policy (the snapshot's: compiled here, so it may throw PolicyError). */
  static create(d: InboundDeps): Inbound {
    return new Inbound(d);
  }

  /**
   * Compiles and swaps the policy, with the control plane's beside it when given (both must allow);
   * throws PolicyError and keeps the previous state when either is invalid.
   */
  setPolicy(policy: Policy, meshPolicy?: Policy): void {
    this.gate.set(policy, meshPolicy);
  }

  /**
   * Switches STRICT ↔ PERMISSIVE for NEW connections on every server the mesh built or adopted
   * (and any it adopts later). Connections already open keep the peer they were admitted with
   * (an unauthenticated one stays unauthenticated, judged by the policy in force on each request).
   * When no defaultPolicy was given, the default policy follows: strict → all-authenticated,
   * permissive → all-unauthenticated. Both change together, before the next request is judged.
   */
  setMode(mode: InboundMode, defaultPolicy?: DefaultPolicy): void {
    if (mode !== 'strict' && mode !== 'permissive') {
      throw new ConfigError(`inbound.setMode: the mode must be 'strict' or 'permissive', got ${JSON.stringify(mode) ?? String(mode)}; the mode in force (${this.tls.mode}) is kept`, [
        { path: 'inbound.mode', message: `must be 'strict' or 'permissive'` },
      ]);
    }
    if (defaultPolicy !== undefined) this.gate.setDefaultPolicy(defaultPolicy);
    else if (this.#defaultFollowsMode) this.gate.setDefaultPolicy(modeDefaultPolicy(mode));
    this.tls.setMode(mode);
  }

  /** The mode new connections are admitted under. */
  get mode(): InboundMode {
    return this.tls.mode;
  }

  express() {
    return expressMiddleware(this.pipeline);
  }

  /** The policy in force, for the admin endpoint's /config. */
  policyStatus() {
    return {
      policy: this.gate.policy,
      ...(this.gate.meshPolicy !== undefined && { meshPolicy: this.gate.meshPolicy }),
      version: this.gate.version,
      mode: this.tls.mode,
      defaultPolicy: this.gate.defaultPolicy,
    };
  }

  stats(): InboundMeshStats {
    return {
      mode: this.tls.mode,
      handshakes: { ...this.tls.stats },
      requests: { ...this.pipeline.stats },
      authz: {
        ...structuredClone(this.#authz.stats),
        defaultPolicy: this.gate.defaultPolicy,
        policyVersion: this.gate.version,
      },
    };
  }

  /** Closes the servers the mesh created (framework-built ones are the app's to close). */
  async close(): Promise<void> {
    await this.servers.close();
    this.tls.close();
    for (const off of this.#unsubscribe.splice(0)) off();
  }
}
