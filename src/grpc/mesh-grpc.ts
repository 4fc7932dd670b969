/**
 * `mesh.grpc`: @grpc/grpc-js credentials and the interceptor of one mesh, built with the app's
 * grpc-js when createMesh was given it (`grpc` option), else sidecarless's own copy (loaded here,
 * on first use: a mesh that never touches mesh.grpc never loads grpc-js).
 */
import { type Clock } from '../clock.js';
import { type Logger } from '../logger.js';
import { type PolicyGate } from '../inbound/policy-gate.js';
import { type X509Source } from '../sources/source.js';
import { GrpcObserver } from '../telemetry/grpc.js';
import { type TrafficStats } from '../telemetry/stats.js';
import { type PeerVerifier } from '../tls/peer.js';
import { SourceCertificateProvider } from './certificate-provider.js';
import { type ChannelCredentials, channelCredentials } from './channel.js';
import { policyInterceptor, verifyInterceptor } from './interceptor.js';
import { type GrpcModule, copyMismatchWarning, otherGrpcCopy, ownGrpc, usableGrpc } from './module.js';
import { type GrpcPeerStats, GrpcPeers } from './server-peer.js';

export type ServerCredentials = InstanceType<GrpcModule['ServerCredentials']>;
export type ServerInterceptor = ReturnType<typeof verifyInterceptor>;

export interface MeshGrpcDeps {
  /** The app's grpc-js (createMesh({ grpc })); absent: sidecarless's own. */
  readonly grpc?: GrpcModule;
  readonly source: X509Source;
  readonly verifier: PeerVerifier;
  readonly clock: Clock;
  readonly gate: PolicyGate<unknown>;
  readonly traffic: TrafficStats;
  /** The mesh's own service (telemetry). */
  readonly service: string;
  readonly identityHeaders: readonly string[];
  /** The SPIFFE IDs a service may present (throws ConfigError for a bad name); read at each handshake. */
  readonly identitiesOf: (service: string) => readonly string[];
  readonly logger: Logger;
}

/** What mesh.grpc is (docs/grpc.md). */
export interface MeshGrpcApi {
  /** The grpc-js module the credentials are built with. */
  readonly module: GrpcModule;
  /** mTLS server credentials: client certificate required, SPIFFE-checked, rotated in place. */
  serverCredentials(): ServerCredentials;
  /** Channel credentials requiring `service`'s SPIFFE ID (or a `spiffe://` ID given as is). */
  channelCredentials(service: string): ChannelCredentials;
  /** The server interceptor: policy per `/package.Service/Method`, PERMISSION_DENIED on deny. */
  interceptor(): ServerInterceptor;
  stats(): GrpcPeerStats;
}

export class MeshGrpc implements MeshGrpcApi {
  readonly module: GrpcModule;
  readonly #provider: SourceCertificateProvider;
  readonly #peers: GrpcPeers;
  readonly #channels = new Map<string, ChannelCredentials>();
  #server: ServerCredentials | undefined;
  #interceptor: ServerInterceptor | undefined;

  constructor(private readonly d: MeshGrpcDeps) {
    this.module = usableGrpc(d.grpc ?? ownGrpc(), d.grpc !== undefined);
    if (!d.grpc) {
      const theirs = otherGrpcCopy(process.cwd());
      if (theirs) d.logger.warn(copyMismatchWarning(theirs));
    }
    this.#provider = new SourceCertificateProvider(d.source);
    this.#peers = new GrpcPeers(d.source, d.verifier);
  }

  serverCredentials(): ServerCredentials {
    if (this.#server) return this.#server;
    const x = this.module.experimental;
    // A client certificate is required (OpenSSL refuses a client without one); the SPIFFE check
    // per trust domain runs in the interceptor these credentials carry.
    const tls = x.createCertificateProviderServerCredentials(this.#provider, this.#provider, true);
    return (this.#server = x.createServerCredentialsWithInterceptors(tls, [verifyInterceptor(this.module, this.#peers)]));
  }

  channelCredentials(service: string): ChannelCredentials {
    const hit = this.#channels.get(service);
    if (hit) return hit;
    this.d.identitiesOf(service); // a bad name throws now, not at the first connection
    const c = channelCredentials({ grpc: this.module, provider: this.#provider, source: this.d.source, clock: this.d.clock }, service, () => this.d.identitiesOf(service));
    this.#channels.set(service, c);
    return c;
  }

  interceptor(): ServerInterceptor {
    this.#interceptor ??= policyInterceptor({
      grpc: this.module,
      peers: this.#peers,
      gate: this.d.gate,
      observer: new GrpcObserver(this.d.traffic, this.d.service),
      identityHeaders: this.d.identityHeaders,
    });
    return this.#interceptor;
  }

  stats(): GrpcPeerStats {
    return { ...this.#peers.stats };
  }

  close(): void {
    this.#provider.close();
    this.#channels.clear();
  }
}
