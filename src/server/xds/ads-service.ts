/**
 * The gRPC half of the embedded control plane's ADS server: a grpc-js handler for
 * `/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources` (SotW) that
 * drives one AdsSession (ads-session.ts, the protocol) per stream. The caller adds
 * `definition`/`implementation` to its grpc-js Server (TLS or plaintext port; one service per
 * port, `plaintext` telling which), calls `changed()` whenever what it serves may have changed, and
 * reads `clients()` for status.
 *
 * Per stream:
 * - Requests are decoded here (the definition hands the raw bytes over, so a request that is not a
 *   DiscoveryRequest, or is bigger than MAX_REQUEST_BYTES, ends only its own stream, with
 *   INVALID_ARGUMENT or RESOURCE_EXHAUSTED; nothing a peer sends can throw out of this module).
 * - The first request must carry a Node with an id, else INVALID_ARGUMENT. Then `authenticate`
 *   (if given) runs once, before any response: a throw (or rejection) carrying a gRPC status
 *   `code` ends the stream with it; any other throw ends it UNAUTHENTICATED. Requests arriving
 *   meanwhile wait (at most MAX_PENDING_REQUESTS, else RESOURCE_EXHAUSTED).
 * - The stream is a client of `clients()` from authentication until it ends (either side); the
 *   events connected / request / disconnected say so. A throwing event handler is ignored.
 * `changed()` is coalesced: the first call arms one timer of `coalesceMs` (default 10 ms), and when
 * it fires every client's subscribed types are recomputed (CDS, EDS, LDS, RDS) and pushed only
 * where the bytes differ; calls within the window share that one recomputation. The sessions of
 * one event-loop turn share one DigestCache (ads-session.ts): a resource 1,000 clients subscribe
 * to is hashed once, not 1,000 times. Responses are serialized by ads-encode.ts.
 */
import type * as GrpcJs from '@grpc/grpc-js';
import { type Clock, type Timer, systemClock } from '../../clock.js';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';
import {
  AggregatedDiscoveryService,
  type DiscoveryRequest,
  type DiscoveryResponse,
  decodeDiscoveryRequest,
} from '../../proto/envoy/service/discovery/v3/discovery.js';
import { serializeDiscoveryResponse } from './ads-encode.js';
import {
  type AdsClient,
  type AdsClientStatus,
  type AdsEvents,
  type AdsFailure,
  AdsSession,
  type DigestCache,
  firstRequestProblem,
  GRPC_STATUS,
  MAX_REQUEST_BYTES,
  type ResourceSource,
} from './ads-session.js';

export {
  type AdsClient,
  type AdsClientStatus,
  type AdsEvents,
  type AdsRequestEvent,
  type AdsTypeStatus,
  MAX_NAME_LENGTH,
  MAX_NAMES_PER_REQUEST,
  MAX_REQUEST_BYTES,
  type ResourceSource,
} from './ads-session.js';

export const DEFAULT_COALESCE_MS = 10;
/** Clients refreshed per event-loop turn during a push. */
export const PUSH_BATCH = 100;
/** Requests held while authenticate() runs (together at most MAX_REQUEST_BYTES); more ends the stream. */
export const MAX_PENDING_REQUESTS = 64;
/**
 * Responses queued on a stream whose client does not read them (HTTP/2 flow control holds them
 * here): at this many the stream is ended RESOURCE_EXHAUSTED and nothing more is queued. SotW
 * needs only the latest response of each type, so a healthy client is never this far behind;
 * without the bound a client that stops reading while pushes continue grows our memory at will.
 */
export const MAX_QUEUED_RESPONSES = 32;

export interface AdsServiceOptions {
  source: ResourceSource;
  events?: AdsEvents;
  /** Called once per stream before any response: throw (or return) a gRPC status ({ code, details }) to refuse, else return the caller's identity. */
  authenticate?(metadata: GrpcJs.Metadata, node: Node | undefined): Promise<string | undefined | AdsRefusal> | string | undefined | AdsRefusal;
  /** Whether this service is added to the plaintext port (reported per client). */
  plaintext?: boolean;
  clock?: Clock;
  /** Pushes after changed() are coalesced for this long (default DEFAULT_COALESCE_MS). */
  coalesceMs?: number;
}

/** A refusal authenticate() may throw or return: the stream ends with this gRPC status. */
export interface AdsRefusal {
  readonly code: number;
  readonly details?: string;
}

export interface AdsService {
  /** For server.addService(definition, implementation). */
  readonly definition: GrpcJs.ServiceDefinition;
  readonly implementation: GrpcJs.UntypedServiceImplementation;
  /** Something may have changed: recompute for every client, every subscribed type, push where the bytes differ (coalesced). */
  changed(): void;
  /** Every connected (authenticated) stream, in connection order. */
  clients(): AdsClientStatus[];
  /** Ends every stream (OK) and stops pushing; later streams are refused UNAVAILABLE. */
  close(): void;
}

type Call = GrpcJs.ServerDuplexStream<Buffer, DiscoveryResponse>;

const raw = (b: Buffer): Buffer => b;
const definitionOf = (): GrpcJs.ServiceDefinition => {
  const m = AggregatedDiscoveryService.StreamAggregatedResources;
  return {
    StreamAggregatedResources: { ...m, requestDeserialize: raw, responseSerialize: serializeDiscoveryResponse },
  } as unknown as GrpcJs.ServiceDefinition;
};

/** A refusal thrown by authenticate(), as the stream's status (fail closed: UNAUTHENTICATED unless it names a code). */
function refusalOf(e: unknown): AdsFailure {
  const { code, details, message } = (e ?? {}) as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof code === 'number' && Number.isInteger(code) && code > 0 && code <= 16) {
    return { code, details: typeof details === 'string' ? details : typeof message === 'string' ? message : 'refused' };
  }
  return { code: GRPC_STATUS.UNAUTHENTICATED, details: 'authentication failed' };
}

function safely(fn: (() => void) | undefined): void {
  try {
    fn?.();
  } catch {
    // an event handler's problem is not the stream's
  }
}

class Stream {
  #phase: 'first' | 'auth' | 'open' | 'ended' = 'first';
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  session: AdsSession | undefined;

  constructor(
    private readonly call: Call,
    private readonly o: AdsServiceOptions,
    readonly id: string,
    private readonly clock: Clock,
    private readonly registry: Map<string, Stream>,
    private readonly digests: () => DigestCache,
  ) {
    call.on('data', (b: Buffer) => this.#data(b));
    call.on('end', () => this.end());
    call.on('error', () => this.#gone());
    call.on('cancelled', () => this.#gone());
    call.on('close', () => this.#gone());
  }

  #data(b: Buffer): void {
    if (this.#phase === 'ended') return;
    if (this.#phase === 'auth') {
      this.#pendingBytes += b.length;
      if (this.#pending.length >= MAX_PENDING_REQUESTS || this.#pendingBytes > MAX_REQUEST_BYTES) return this.fail({ code: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `more than ${MAX_PENDING_REQUESTS} requests or ${MAX_REQUEST_BYTES} bytes before authentication finished` });
      this.#pending.push(b);
      return;
    }
    const req = this.#decode(b);
    if (req === undefined) return;
    if (this.#phase === 'first') return this.#start(req);
    this.#handle(req);
  }

  #decode(b: Buffer): DiscoveryRequest | undefined {
    if (b.length > MAX_REQUEST_BYTES) {
      this.fail({ code: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `a DiscoveryRequest of ${b.length} bytes; at most ${MAX_REQUEST_BYTES} are taken` });
      return undefined;
    }
    try {
      return decodeDiscoveryRequest(b);
    } catch (e) {
      this.fail({ code: GRPC_STATUS.INVALID_ARGUMENT, details: `not a DiscoveryRequest: ${(e as Error).message}`.slice(0, 500) });
      return undefined;
    }
  }

  #start(first: DiscoveryRequest): void {
    const problem = firstRequestProblem(first);
    if (problem) return this.fail(problem);
    this.#phase = 'auth';
    const open = (identity: string | undefined | AdsRefusal) => {
      if (this.#phase === 'ended') return;
      if (identity !== undefined && typeof identity !== 'string') return this.fail(refusalOf(identity));
      const client: AdsClient = { id: this.id, node: first.node, identity, plaintext: this.o.plaintext === true };
      this.session = new AdsSession(client, this.o.source, this.clock);
      this.#phase = 'open';
      this.registry.set(this.id, this);
      safely(() => this.o.events?.connected?.(client));
      this.#handle(first);
      for (const b of this.#pending.splice(0)) {
        if (this.#phase !== 'open') return;
        const req = this.#decode(b);
        if (req) this.#handle(req);
      }
    };
    const auth = this.o.authenticate;
    if (auth === undefined) return open(undefined);
    new Promise<string | undefined | AdsRefusal>((resolve) => resolve(auth(this.call.metadata, first.node))).then(open, (e: unknown) => this.fail(refusalOf(e)));
  }

  #handle(req: DiscoveryRequest): void {
    const session = this.session!;
    const r = session.receive(req, this.digests());
    if (r.fail) return this.fail(r.fail);
    this.write(r.responses);
    const event = r.event;
    if (event) safely(() => this.o.events?.request?.(session.client, event));
  }

  write(responses: readonly DiscoveryResponse[]): void {
    for (const r of responses) {
      if (this.#phase !== 'open' || this.call.cancelled) return;
      if (this.call.writableLength >= MAX_QUEUED_RESPONSES) return this.fail({ code: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `${this.call.writableLength} responses are waiting for the client to read them: read the stream (or reconnect)` });
      this.call.write(r);
    }
  }

  fail(f: AdsFailure): void {
    if (this.#phase === 'ended') return;
    this.#gone();
    this.call.emit('error', { code: f.code, details: f.details });
  }

  /** Ends the stream with OK. */
  end(): void {
    if (this.#phase === 'ended') return;
    this.#gone();
    if (!this.call.cancelled) this.call.end();
  }

  #gone(): void {
    if (this.#phase === 'ended') return;
    const wasOpen = this.#phase === 'open';
    this.#phase = 'ended';
    this.#pending.length = 0;
    this.registry.delete(this.id);
    if (wasOpen) safely(() => this.o.events?.disconnected?.(this.session!.client));
  }
}

export function createAdsService(grpc: typeof GrpcJs, o: AdsServiceOptions): AdsService {
  const clock = o.clock ?? systemClock;
  const coalesceMs = o.coalesceMs ?? DEFAULT_COALESCE_MS;
  const streams = new Map<string, Stream>();
  let next = 0;
  let timer: Timer | undefined;
  let closed = false;
  // One digest per resource per event-loop turn, however many clients subscribe to it.
  let turn: DigestCache | undefined;
  const digests = (): DigestCache => {
    if (turn === undefined) {
      turn = new Map();
      setImmediate(() => (turn = undefined));
    }
    return turn;
  };
  // A push goes out PUSH_BATCH clients per event-loop turn: the sockets drain between batches, so the
  // responses of 1,000 clients are not all held at once (the control plane's memory high-water mark),
  // and streams, ACKs and CA calls are served meanwhile. One digest cache for the whole push: a
  // source never changes bytes it has returned (new content is a new array).
  const flush = () => {
    timer = undefined;
    const cache: DigestCache = new Map();
    const pending = [...streams.values()];
    const batch = () => {
      for (const s of pending.splice(0, PUSH_BATCH)) if (!closed && streams.has(s.id)) s.write(s.session!.refresh(cache));
      if (pending.length > 0 && !closed) setImmediate(batch);
    };
    batch();
  };
  return {
    definition: definitionOf(),
    implementation: {
      StreamAggregatedResources: (call: Call) => {
        if (closed) return call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the control plane is shutting down' });
        new Stream(call, o, `${o.plaintext ? 'p' : 't'}${++next}`, clock, streams, digests);
      },
    },
    changed: () => {
      if (closed || timer !== undefined) return;
      timer = clock.setTimeout(flush, coalesceMs);
    },
    clients: () => [...streams.values()].map((s) => s.session!.status()),
    close: () => {
      closed = true;
      timer?.cancel();
      timer = undefined;
      for (const s of [...streams.values()]) s.end();
    },
  };
}
