/**
 * The streams a proxyless workload keeps open to Linkerd's controllers, over grpc-js:
 * `Destination.Get` (endpoints of an authority), `OutboundPolicies.Watch` (a target's routes and
 * backends) and `InboundServerPolicies.WatchPort` (an inbound port's policy). Loaded only when
 * `controlPlane.linkerd` is configured.
 *
 * - Mutual TLS on each controller's channel (sources/pinned-channel.ts): Linkerd's trust anchors are
 *   the only roots; the server's certificate must carry `serverName` (its one DNS SAN,
 *   `linkerd-destination.<ns>.serviceaccount.identity.<ns>.<td>`), which is also the SNI sent; the
 *   client presents the workload's current certificate. No certificate yet: no call (an error, a
 *   retry). A rotated certificate or anchor set re-dials every open stream at once.
 * - Each watch reconnects after any end (a status, a decode failure, TLS refused) with backoff,
 *   1 s doubling to 30 s, +0–20 % jitter from the injected random, reset by a message received.
 *   Nothing is delivered on a loss but `onError`: the caller keeps what it last got.
 * - `on(value, { first })`: `first` is true for the first message of each stream (Destination's
 *   first `add` after a reconnect is the whole set again: the caller starts over from it).
 * - Responses are bounded (MAX_RESPONSE_BYTES) and decoded by the generated codecs, which throw
 *   ProtoError on malformed bytes (grpc-js then ends the call: a loss, reconnected).
 */
import type { Client, ClientReadableStream, StatusObject } from '@grpc/grpc-js';
import type { Clock, Timer } from '../../clock.js';
import { LinkerdStreamError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { Destination, type Update } from '../../proto/linkerd/destination.js';
import { InboundServerPolicies, type Server } from '../../proto/linkerd/inbound.js';
import { OutboundPolicies, type OutboundPolicy } from '../../proto/linkerd/outbound.js';
import type { Grpc, MethodDef } from '../../sources/grpc.js';
import { type ClientCertificate, PinnedChannel } from '../../sources/pinned-channel.js';
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, backoffDelay } from './backoff.js';

export type DestinationUpdate = Update;
export type InboundServer = Server;
export type { OutboundPolicy };

/** What a delivery says besides the value. */
export interface Delivery {
  /** The first message of a stream (after a start or a reconnect). */
  readonly first: boolean;
}

type On<T> = (value: T, delivery: Delivery) => void;

export interface LinkerdStreams {
  watchOutbound(authority: string, on: On<OutboundPolicy>, onError?: (e: Error) => void): () => void;
  getDestination(path: string, contextToken: string, on: On<DestinationUpdate>, onError?: (e: Error) => void): () => void;
  watchPort(workload: string, port: number, on: On<InboundServer>, onError?: (e: Error) => void): () => void;
  close(): Promise<void>;
}

export interface ControllerAddress {
  /** `host:port`: linkerd-dst-headless.linkerd.svc.cluster.local:8086. */
  readonly address: string;
  /** The identity its certificate carries (and the SNI sent). */
  readonly serverName: string;
}

export interface LinkerdStreamsOptions {
  readonly grpc: Grpc;
  readonly destination: ControllerAddress;
  readonly policy: ControllerAddress;
  /** Linkerd's trust anchors, PEM, read again for every dial. */
  readonly trustAnchorsPem: () => string;
  /** The workload's current certificate and key, undefined until it has one. */
  readonly clientCertificate: () => ClientCertificate | undefined;
  readonly clock: Clock;
  /** [0, 1), for the reconnect jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  /** TrafficSpec.source_workload (linkerd2-proxy sends its workload, JSON {"ns":…,"pod":…}). */
  readonly sourceWorkload: string;
}

/** Largest response taken from a controller: a big mesh's policy fits; a hostile one cannot grow memory without bound. */
export const MAX_RESPONSE_BYTES = 16 << 20;
/** How often the workload certificate and anchors are compared with the ones the channels use. */
export const CREDENTIALS_CHECK_MS = 5_000;
const MAX_DETAILS = 300;
/**
 * grpc-js reconnects a failed connection on its own backoff (up to 120 s by default), and a call on
 * a channel in that wait fails at once: bounded to the streams' own 1–30 s so a reconnect that is
 * due finds the channel dialing. The channel is shared by the watches on it, so a loss does not
 * reset it (ads-transport.ts does, having one stream).
 */
const CHANNEL_OPTIONS = { 'grpc.initial_reconnect_backoff_ms': BACKOFF_MIN_MS, 'grpc.max_reconnect_backoff_ms': BACKOFF_MAX_MS };

type StreamName = 'destination' | 'outbound' | 'inbound';

/** One open watch: its call, its reconnect timer and attempt count. */
class Watch<Req, Res> {
  #call: ClientReadableStream<Res> | undefined;
  #timer: Timer | undefined;
  #attempt = 0;
  #stopped = false;

  constructor(
    private readonly core: Core,
    readonly stream: StreamName,
    readonly channel: PinnedChannel,
    private readonly def: MethodDef<Req, Res>,
    private readonly request: Partial<Req>,
    private readonly target: string,
    private readonly on: On<Res>,
    private readonly onError: ((e: Error) => void) | undefined,
  ) {}

  /** Opens the call now (the previous one, if any, cancelled without counting as a loss). */
  open(): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#drop();
    let client: Client;
    try {
      client = this.core.client(this.channel);
    } catch (e) {
      return this.#lost(new LinkerdStreamError(`Linkerd ${this.stream} stream for ${this.target}: ${(e as Error).message}`, this.stream, undefined, { cause: e }));
    }
    const call = client.makeServerStreamRequest(this.def.path, this.def.requestSerialize, this.def.responseDeserialize, this.request) as ClientReadableStream<Res>;
    this.#call = call;
    let first = true;
    call.on('data', (value: Res) => {
      if (this.#call !== call) return;
      this.#attempt = 0;
      const delivery = { first };
      first = false;
      try {
        this.on(value, delivery);
      } catch (e) {
        this.core.logger.error(`linkerd: a listener of the ${this.stream} stream for ${this.target} threw`, { error: String(e) });
      }
    });
    call.on('error', () => {}); // the status says it all
    call.on('status', (status: StatusObject) => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#lost(this.core.statusError(this.stream, this.target, status));
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#drop();
  }

  #drop(): void {
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
  }

  #lost(error: LinkerdStreamError): void {
    if (this.#stopped) return;
    const wait = backoffDelay(this.#attempt++, this.core.random);
    this.core.logger.warn(`${error.message}; reconnecting in ${Math.round(wait)} ms`);
    try {
      this.onError?.(error);
    } catch (e) {
      this.core.logger.error(`linkerd: an error listener of the ${this.stream} stream threw`, { error: String(e) });
    }
    this.#timer = this.core.clock.setTimeout(() => this.open(), wait);
  }
}

/** The channels, the credentials they were made with, and every open watch. */
class Core {
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly destination: PinnedChannel;
  readonly policy: PinnedChannel;
  readonly watches = new Set<Watch<unknown, unknown>>();
  /** The credentials each channel was last dialed with. */
  readonly #credentials = new Map<PinnedChannel, string>();
  #check: Timer | undefined;
  closed = false;

  constructor(private readonly o: LinkerdStreamsOptions) {
    this.clock = o.clock;
    this.random = o.random;
    this.logger = o.logger;
    this.destination = new PinnedChannel({ ...o.destination, maxReceiveBytes: MAX_RESPONSE_BYTES, channelOptions: CHANNEL_OPTIONS });
    this.policy = new PinnedChannel({ ...o.policy, maxReceiveBytes: MAX_RESPONSE_BYTES, channelOptions: CHANNEL_OPTIONS });
  }

  /** The channel's client with the credentials as they are now. Throws when there is no certificate yet. */
  client(channel: PinnedChannel): Client {
    const cert = this.o.clientCertificate();
    if (!cert) throw new Error('the workload has no Linkerd certificate yet');
    const anchors = this.o.trustAnchorsPem();
    this.#credentials.set(channel, credentialsKey(anchors, cert));
    return channel.client(this.o.grpc, anchors, cert);
  }

  add<Req, Res>(w: Watch<Req, Res>): () => void {
    if (this.closed) throw new Error('LinkerdStreams: closed');
    this.watches.add(w as Watch<unknown, unknown>);
    this.#check ??= this.clock.setInterval(() => this.#checkCredentials(), CREDENTIALS_CHECK_MS);
    w.open();
    return () => {
      w.stop();
      this.watches.delete(w as Watch<unknown, unknown>);
    };
  }

  /** A rotated certificate (or anchor set): every channel re-dials and every watch re-opens now. */
  #checkCredentials(): void {
    const cert = this.o.clientCertificate();
    let anchors: string;
    try {
      anchors = this.o.trustAnchorsPem();
    } catch {
      return; // the next dial reports it
    }
    if (!cert) return;
    const now = credentialsKey(anchors, cert);
    const stale = [...this.#credentials].filter(([, used]) => used !== now).map(([channel]) => channel);
    if (stale.length === 0) return;
    this.logger.info('linkerd: the workload certificate or trust anchors changed; re-dialing the streams that use the old ones');
    for (const channel of stale) {
      this.#credentials.delete(channel);
      channel.reset();
    }
    for (const w of this.watches) if (stale.includes(w.channel)) w.open();
  }

  statusError(stream: StreamName, target: string, status: StatusObject): LinkerdStreamError {
    const name = Object.entries(this.o.grpc.status).find(([, v]) => v === status.code)?.[0] ?? `code ${status.code}`;
    const details = status.details.length > MAX_DETAILS ? `${status.details.slice(0, MAX_DETAILS)}…` : status.details;
    const why = status.code === this.o.grpc.status.OK ? 'the server ended it (OK)' : details && details !== name ? `${name}: ${details}` : name;
    return new LinkerdStreamError(`Linkerd ${stream} stream for ${target} ended: ${why}`, stream, name);
  }

  close(): void {
    this.closed = true;
    this.#check?.cancel();
    for (const w of this.watches) w.stop();
    this.watches.clear();
    this.destination.reset();
    this.policy.reset();
  }
}

function credentialsKey(anchors: string, cert: ClientCertificate): string {
  return `${anchors}\0${cert.certChainPem}\0${cert.keyPem}`;
}

export function createLinkerdStreams(o: LinkerdStreamsOptions): LinkerdStreams {
  const core = new Core(o);
  return {
    watchOutbound(authority, on, onError) {
      const request = { sourceWorkload: o.sourceWorkload, target: { kind: 'authority' as const, authority } };
      return core.add(new Watch(core, 'outbound', core.policy, OutboundPolicies.Watch, request, authority, on, onError));
    },
    getDestination(path, contextToken, on, onError) {
      const request = { scheme: 'k8s', path, contextToken };
      return core.add(new Watch(core, 'destination', core.destination, Destination.Get, request, path, on, onError));
    },
    watchPort(workload, port, on, onError) {
      const request = { workload, port };
      return core.add(new Watch(core, 'inbound', core.policy, InboundServerPolicies.WatchPort, request, `port ${port}`, on, onError));
    },
    async close() {
      core.close();
    },
  };
}
