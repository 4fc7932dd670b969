/**
 * The gRPC half of the ADS client: drives an AdsSession (ads-state.ts, the protocol) over one
 * `StreamAggregatedResources` bidi stream of grpc-js at a time.
 *
 * - The channel is the control plane's pinned channel (sources/pinned-channel.ts, shared with the
 *   Istio CA issuer): TLS whose only trust anchor is `controlPlane.root`, never plaintext; the root
 *   file and the bearer token are read again for every stream, and the token (with `ClusterID`) goes
 *   as the stream's metadata, which grpc-js sends only once the server's certificate verified.
 * - Every request the session writes goes on the stream as it is written (the first carries the
 *   Node); every DiscoveryResponse goes to `stream.receive` with the injected decoder. Until the
 *   stream exists (root and token are read first), the session's requests wait in order; none can
 *   be stale, since no response arrives before the stream does.
 * - The channel reaching READY is `stream.ready()` (does-not-exist timers start then, gRFC A57).
 * - The stream's end, whatever its status (the server ended it, TLS failed, the root or token
 *   could not be read), is `stream.lost(reason)`: the session waits its backoff on its clock and
 *   calls back here to open the next stream, which re-sends the subscriptions with the last ACKed
 *   versions. A lost stream's channel is closed (the next stream dials again, with the root as it
 *   is then).
 * - `close()` ends everything: the session's timers, the stream, the channel and its sockets.
 */
import type { ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import { consoleLogger, type Logger } from '../../logger.js';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';
import {
  AggregatedDiscoveryService,
  type DiscoveryRequest as WireRequest,
  type DiscoveryResponse as WireResponse,
} from '../../proto/envoy/service/discovery/v3/discovery.js';
import { type Grpc, loadGrpc } from '../../sources/grpc.js';
import { type TokenSpec } from '../../sources/issuers/bearer-token.js';
import { PinnedChannel, callMetadata, readRoot } from '../../sources/pinned-channel.js';
import { AdsSession, type AdsStream } from './ads-state.js';
import type { Decode, DiscoveryRequest } from './discovery.js';

export interface AdsTransportOptions {
  /** `host:port` of the control plane: istiod.istio-system.svc:15012. */
  readonly address: string;
  /** PEM file of the root its certificate chains to: the only trust anchor. */
  readonly root: string;
  /** The bearer token, or the file to read it from for every stream. */
  readonly token: TokenSpec;
  /** Where a `{ env }` token is read from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Sent as `ClusterID` metadata. */
  readonly clusterId?: string;
  /** The name the server's certificate must carry; default the address's host. */
  readonly serverName?: string;
  /** The node (node.ts buildNode): sent on the first request of every stream. */
  readonly node: Node;
  /** Decodes and validates one resource (the NACK carries what it throws). */
  readonly decode: Decode;
  readonly clock: Clock;
  /** [0, 1), for the reconnect jitter. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /**
   * The server answered UNIMPLEMENTED: it has no ADS (a CA-only control plane). The transport stops
   * for good (no reconnect) and says so here.
   */
  readonly onUnimplemented?: (reason: string) => void;
}

/** Largest DiscoveryResponse taken (grpc-js's default, 4 MiB, is exceeded by a large mesh's CDS or EDS). */
export const MAX_RESPONSE_BYTES = 64 << 20;
/** How long one wait for the channel's next state lasts before it is renewed (grpc-js needs a finite deadline). */
const READY_WATCH_MS = 60_000;

/** How much of a status's details (the server's text) goes into the log and the status. */
const MAX_DETAILS = 500;

type Call = ClientDuplexStream<Partial<WireRequest>, WireResponse>;

export class AdsTransport {
  /** The protocol: subscribe, listen, status. */
  readonly session: AdsSession<Node>;
  readonly #opts: AdsTransportOptions;
  readonly #channel: PinnedChannel;
  readonly #logger: Logger;
  #call: Call | undefined;
  #started = false;
  #closed = false;
  /** Waiting for the next response (nextResponse). */
  readonly #responseWaiters = new Set<() => void>();

  constructor(opts: AdsTransportOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? consoleLogger;
    this.#channel = new PinnedChannel({ address: opts.address, serverName: opts.serverName, maxReceiveBytes: MAX_RESPONSE_BYTES });
    this.session = new AdsSession<Node>({
      node: opts.node,
      clock: opts.clock,
      random: opts.random,
      logger: this.#logger,
      reconnect: () => this.#open(),
    });
  }

  /** Opens the first stream (once: calling it again does nothing). Later streams are opened by the session after a loss and its backoff. */
  start(): void {
    if (this.#closed) throw new Error('AdsTransport: the transport is closed');
    if (this.#started) return;
    this.#started = true;
    this.#open();
  }

  /**
   * A new stream now, as after a loss but without its backoff (a thaw after a long freeze): the
   * session re-sends every subscription with its ACKed versions; resources stay in force meanwhile.
   * The old call is cancelled (its status is no longer this transport's: no loss is counted).
   */
  restart(): void {
    if (this.#closed || !this.#started) return;
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
    this.#channel.reset();
    this.#open();
  }

  /** Resolves true at the next DiscoveryResponse received, false after `ms` (the session's clock) without one. */
  nextResponse(ms: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (answered: boolean) => {
        this.#responseWaiters.delete(hit);
        timer.cancel();
        resolve(answered);
      };
      const hit = () => done(true);
      // Kept alive: an invocation awaits it.
      const timer = this.#opts.clock.setTimeout(() => done(false), ms, { keepAlive: true });
      this.#responseWaiters.add(hit);
    });
  }

  /** Ends the session, the stream and the channel: no timer, call or socket is left. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of [...this.#responseWaiters]) w();
    this.session.close();
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
    this.#channel.reset();
  }

  /** A new stream: the session is connected at once (its requests queue), the call made once root and token are read. */
  #open(): void {
    const queue: Array<DiscoveryRequest<Node>> = [];
    let call: Call | undefined;
    const stream = this.session.connect((request) => {
      if (call) call.write(request as Partial<WireRequest>);
      else queue.push(request);
    });
    void this.#dial(stream).then(
      (made) => {
        if (!made) return;
        call = made;
        for (const request of queue.splice(0)) made.write(request as Partial<WireRequest>);
      },
      (e: unknown) => this.#lost(stream, undefined, `could not open the ADS stream to ${this.#opts.address}: ${(e as Error).message}`),
    );
  }

  async #dial(stream: AdsStream<Node>): Promise<Call | undefined> {
    const grpc = await loadGrpc();
    const rootPem = await readRoot(this.#opts.root);
    const md = await callMetadata(grpc, this.#opts.token, this.#opts.clusterId, this.#opts.env);
    if (this.#closed) return undefined;
    const client = this.#channel.client(grpc, rootPem);
    const def = AggregatedDiscoveryService.StreamAggregatedResources;
    const call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, md, {}) as Call;
    this.#call = call;
    call.on('data', (response: WireResponse) => {
      try {
        stream.receive(response, this.#opts.decode);
      } catch (e) {
        this.#logger.error('xDS: a listener of the ADS session threw on a response', { type: response.typeUrl, error: String(e) });
      }
      if (this.#call === call) for (const w of [...this.#responseWaiters]) w();
    });
    call.on('error', () => {}); // the status below says it all; an 'error' without a listener would throw
    call.on('status', (status: StatusObject) => {
      if (status.code === grpc.status.UNIMPLEMENTED && this.#call === call) return this.#unimplemented(statusText(grpc, status));
      this.#lost(stream, call, statusText(grpc, status));
    });
    this.#watchReady(grpc, client.getChannel(), stream, call);
    return call;
  }

  /** Tells the session once the channel is READY, for as long as `call` is the current stream. */
  #watchReady(grpc: Grpc, channel: ReturnType<Grpc['Client']['prototype']['getChannel']>, stream: AdsStream<Node>, call: Call): void {
    const check = (): void => {
      if (this.#call !== call) return;
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return stream.ready();
      if (state === grpc.connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Date.now() + READY_WATCH_MS, check);
    };
    check();
  }

  /** The control plane serves no ADS: authenticated (its TLS verified against the pinned root), so final. */
  #unimplemented(reason: string): void {
    this.#logger.warn(`xDS: the control plane at ${this.#opts.address} does not serve ADS (${reason}): no services, routes or inbound policy come from it; identity from its CA is unaffected. Restart the mesh once it serves xDS.`);
    this.close();
    this.#opts.onUnimplemented?.(reason);
  }

  #lost(stream: AdsStream<Node>, call: Call | undefined, reason: string): void {
    if (call !== undefined && this.#call !== call) return;
    this.#call = undefined;
    if (this.#closed) return;
    this.#channel.reset();
    const wait = stream.lost(reason);
    if (wait !== undefined) this.#logger.warn(`xDS: the ADS stream to ${this.#opts.address} ended: ${reason}; reconnecting in ${Math.round(wait)} ms`);
  }
}

function statusText(grpc: Grpc, status: StatusObject): string {
  const name = Object.entries(grpc.status).find(([, v]) => v === status.code)?.[0] ?? `code ${status.code}`;
  if (status.code === grpc.status.OK) return 'the server ended it (OK)';
  // The details are the server's words: kept short in the log and the status.
  const details = status.details.length > MAX_DETAILS ? `${status.details.slice(0, MAX_DETAILS)}…` : status.details;
  return details && details !== name ? `${name}: ${details}` : name;
}
