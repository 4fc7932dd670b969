/**
 * The protocol half of the ADS client: one SotW `StreamAggregatedResources` session as a state
 * machine, with no socket and no protobuf. The driver (the gRPC half) opens a stream, hands its
 * write function to `connect`, feeds every DiscoveryResponse to `stream.receive` and reports the
 * stream's end with `stream.lost`; everything this module writes goes through that write function,
 * in the order the protocol needs. Time comes from the injected Clock (tests: VirtualClock), jitter
 * from the injected random.
 *
 * Per type URL it keeps: the subscribed names (LDS and CDS may also be wildcard, `*`), the last
 * ACKed version, the latest nonce of the current stream, the last NACK, the resources of the last
 * ACKed responses (resource-cache.ts), a 15 s does-not-exist timer per requested name.
 *
 * The rules, from envoyproxy/envoy docs/root/api-docs/xds_protocol.rst unless noted:
 * - A response is checked whole (response-check.ts) and accepted whole — ACK: version_info and
 *   nonce of the response — or rejected whole — NACK: the PREVIOUS ACKed version, the new nonce and
 *   error_detail { code 3 INVALID_ARGUMENT, every problem }. Never half-applied: a NACK leaves the
 *   cache, the version and every resource as they were.
 * - Every request carries the full subscription of its type and the latest nonce received for its
 *   type on this stream; a new stream starts with empty nonces and the last ACKed versions, and
 *   re-sends every subscription. Only the first request of a stream carries the node.
 * - Stale nonces (research §6.1 trap 1: a server and grpc-js-xds ping-ponged 1,818 requests for
 *   400 RPCs): a request is never sent in reply to a response whose nonce is not the latest for
 *   its type. Three ways a client could do it, each closed here: (1) a response that arrives on a
 *   stream after that stream was lost or replaced (its nonce belongs to a dead stream) gets no
 *   reply and changes nothing; (2) a reply computed now but written later, after another response
 *   of the type came in — every request is built from the state at the moment it is written, and
 *   written at once, so none carries an older nonce than the latest received; (3) a listener that
 *   subscribes from inside an event: the ACK is written before any event is emitted, so the
 *   listener's request (same nonce, more names) follows it instead of overtaking it, and the
 *   server's latest view is the listener's, not the ACK's older name list.
 * - LDS and CDS responses are the whole state: a resource seen before and absent now is deleted
 *   (and a name subscribed explicitly is then reported as not existing). RDS and EDS are never
 *   deleted by absence; they go when the caller unsubscribes (their parent stopped naming them).
 * - Does-not-exist (gRFC A27, A57): a requested name that has not arrived 15 s after its request
 *   was sent on a stream whose channel is ready is reported as not existing. The timer starts when
 *   the name is requested on a ready stream (or when the stream becomes ready), stops when the
 *   resource arrives, and is cancelled when the stream is lost (the next stream starts a fresh
 *   one): an unreachable control plane makes nothing "not exist". A name that arrives later exists
 *   again.
 * - Reconnect: after a loss, wait 1 s · 2^(n−1) ± 20 % jitter, within [1 s, 30 s], n counting the
 *   losses since the last ACK; the driver's `reconnect` callback is called then. Resources are
 *   kept through the outage; events are emitted only after an ACK.
 *
 * Deliberate differences from grpc-js-xds (grpc/grpc-node packages/grpc-js-xds/src/xds-client.ts)
 * and Envoy, also listed in docs/control-planes.md ("xDS protocol"):
 * - Whole-response NACK. grpc-js-xds (gRFC A46/A88) and Envoy's LDS/CDS apply the valid resources
 *   of a response and NACK the rest, and grpc-js-xds then sends the NEW version in its NACK; we
 *   apply nothing of a response with any problem and NACK with the previous version (DESIGN.md: a
 *   snapshot is valid whole or rejected whole).
 * - error_detail.code is INVALID_ARGUMENT (3); grpc-js-xds sends UNAVAILABLE (14), Envoy INTERNAL
 *   (13). Servers look at its presence, not its code.
 * - error_detail is sent once, in the NACK; grpc-js-xds repeats it on every later request of the
 *   type until a good response (a server would log each as a new NACK); Envoy clears it once sent.
 * - A resource whose name the decoder could read before rejecting it, or a duplicate, counts as
 *   delivered (it exists, unusable); and a does-not-exist timer that expires while the type's last
 *   response was NACKed is held until the next ACK of the type, which reports it if that response
 *   does not carry it. grpc-js-xds reports it at 15 s regardless. Reason: "does not exist" sends a
 *   host to `outbound.egress`, and a NACK must not open that door (fail closed).
 * - Does-not-exist timers stop when the stream is lost; grpc-js-xds's keep running on the dead
 *   stream's state. (A57 says timers must not run while the channel is not READY.)
 * - Backoff: 1 s doubling to 30 s, ±20 %, reset by an ACK. grpc-js-xds uses grpc-js's
 *   BackoffTimeout (1 s × 1.6 to 120 s, ±20 %), counted from the stream's start and reset by any
 *   response (A57: "reset when an ADS stream attempt does finally receive a response").
 * - A response for a type this stream has not asked about (an unknown type URL, SDS, a type never
 *   subscribed) is ignored with no reply, as Envoy ("Ignoring the message for type URL … as it has
 *   no current subscribers") and grpc-js-xds do: a reply would carry an empty resource_names,
 *   which a server reads as a legacy wildcard subscription. Counted in status().ignored.
 * - Wildcard is sent as the explicit name `*`, never as the legacy empty list; an empty list is
 *   sent only to unsubscribe from every name of a type already requested on this stream.
 */
import type { Clock, Timer } from '../../clock.js';
import { consoleLogger, type Logger } from '../../logger.js';
import {
  INVALID_ARGUMENT,
  RESOURCE_TYPES,
  WILDCARD,
  type Decode,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type ResourceTypeTraits,
  type Status,
} from './discovery.js';
import { checkResponse, nackMessage, type CheckedResponse } from './response-check.js';
import { ResourceCache } from './resource-cache.js';
import type { AdsEvent, AdsStatus, AdsTypeStatus, NackStatus } from './ads-events.js';

export type { AdsChanged, AdsDoesNotExist, AdsEvent, AdsNacked, AdsStatus, AdsTypeStatus, NackStatus } from './ads-events.js';

/** gRFC A27 / xds_protocol.rst: a requested resource not received within this is taken not to exist. */
export const DOES_NOT_EXIST_TIMEOUT_MS = 15_000;

export const RECONNECT_BACKOFF = Object.freeze({ initialMs: 1_000, maxMs: 30_000, multiplier: 2, jitter: 0.2 });

/** The wait before reconnect attempt `attempt` (1 = after the first loss): exponential, ±20 %, within [1 s, 30 s]. */
export function reconnectDelay(attempt: number, random: () => number): number {
  const { initialMs, maxMs, multiplier, jitter } = RECONNECT_BACKOFF;
  const base = Math.min(maxMs, initialMs * multiplier ** Math.max(0, attempt - 1));
  return Math.min(maxMs, Math.max(initialMs, base * (1 + jitter * (2 * random() - 1))));
}


export interface AdsSessionOptions<Node> {
  /** Sent on the first request of every stream. */
  readonly node: Node;
  readonly clock: Clock;
  /** [0, 1), for the reconnect jitter. Default Math.random. */
  readonly random?: () => number;
  /**
   * Called once a lost stream's backoff has passed: open a new stream and hand it to `connect`.
   * If it throws, that counts as one more lost stream: logged, and tried again after the next wait.
   */
  readonly reconnect?: () => void;
  /** Where errors with no caller to reach go (a listener that throws from a timer's event). Default: stderr. */
  readonly logger?: Logger;
}

/** One ADS stream as the session sees it. Calls on a stream that was lost or replaced do nothing. */
export interface AdsStream<Node = unknown> {
  readonly id: number;
  /**
   * Handles one response: writes its ACK or NACK (and returns it), then emits the events. Returns
   * undefined, writing and changing nothing, for a response on a stream that is no longer the
   * current one, or of a type this stream has not asked about.
   */
  receive(response: DiscoveryResponse, decode: Decode): DiscoveryRequest<Node> | undefined;
  /** The channel is READY (grpc-js-xds: markStreamStarted): does-not-exist timers start. A response implies it. */
  ready(): void;
  /** The stream ended. Returns the wait before `reconnect` is called, or undefined if this stream was not current. */
  lost(reason?: string): number | undefined;
}

interface TypeState {
  readonly typeUrl: string;
  readonly traits: ResourceTypeTraits;
  wildcard: boolean;
  readonly names: Set<string>;
  readonly cache: ResourceCache;
  readonly timers: Map<string, Timer>;
  /** Timer expired while the type's latest response was NACKed: decided at the next ACK. */
  readonly held: Set<string>;
  /** Sent by the server, but only in rejected responses. */
  readonly rejected: Set<string>;
  readonly doesNotExist: Set<string>;
  ackedVersion: string | undefined;
  ackedAt: number | undefined;
  lastNack: NackStatus | undefined;
  nacked: boolean;
  /** Per stream: the latest nonce received for this type, and whether this stream has sent a request of it. */
  nonce: string;
  sentOnStream: boolean;
}

interface StreamState<Node> {
  readonly id: number;
  readonly write: (request: DiscoveryRequest<Node>) => void;
  ready: boolean;
  /** The node goes on the first request only. */
  sentFirst: boolean;
}

type Listener = (event: AdsEvent) => void;

const EMPTY: ReadonlySet<string> = new Set();

export class AdsSession<Node = unknown> {
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #reconnect: (() => void) | undefined;
  readonly #logger: Logger;
  readonly #types = new Map<string, TypeState>();
  readonly #listeners = new Set<Listener>();
  #stream: StreamState<Node> | undefined;
  #nextStreamId = 1;
  #failures = 0;
  #reconnectTimer: Timer | undefined;
  #retryAt: number | undefined;
  #lastError: string | undefined;
  #ignored = 0;
  #lastIgnored: string | undefined;
  #closed = false;

  constructor(options: AdsSessionOptions<Node>) {
    this.#node = options.node;
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
    this.#reconnect = options.reconnect;
    this.#logger = options.logger ?? consoleLogger;
  }

  /** Listens to every event. Returns the unsubscribe function. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Adds names to the subscription of `typeUrl` (`*`: wildcard, LDS and CDS only). Writes and
   * returns the request that says so when a stream is open and something was added.
   */
  subscribe(typeUrl: string, names: readonly string[]): DiscoveryRequest<Node> | undefined {
    const st = this.#typeState(typeUrl, names);
    let changed = false;
    for (const name of names) {
      if (name === WILDCARD) {
        changed ||= !st.wildcard;
        st.wildcard = true;
      } else if (!st.names.has(name)) {
        st.names.add(name);
        changed = true;
        this.#maybeStartTimer(st, name);
      }
    }
    return changed ? this.#send(st) : undefined;
  }

  /**
   * Removes names from the subscription of `typeUrl` (`*`: the wildcard). Their resources leave the
   * cache (those a remaining wildcard still covers stay), with no event: the caller asked for it.
   */
  unsubscribe(typeUrl: string, names: readonly string[]): DiscoveryRequest<Node> | undefined {
    this.#assertOpen();
    const st = this.#types.get(typeUrl);
    if (!st) return undefined;
    let changed = false;
    for (const name of names) {
      if (name === WILDCARD) {
        if (!st.wildcard) continue;
        st.wildcard = false;
        changed = true;
        for (const cached of st.cache.names()) if (!st.names.has(cached)) st.cache.delete(cached);
      } else if (st.names.delete(name)) {
        changed = true;
        this.#forget(st, name);
      }
    }
    return changed ? this.#send(st) : undefined;
  }

  /**
   * A new stream is open: its requests go to `write`. Re-sends every subscription with the last
   * ACKed versions and empty nonces; a previous stream still current is retired (its responses
   * are no longer answered).
   */
  connect(write: (request: DiscoveryRequest<Node>) => void): AdsStream<Node> {
    this.#assertOpen();
    this.#reconnectTimer?.cancel();
    this.#reconnectTimer = undefined;
    this.#retryAt = undefined;
    this.#retire();
    const stream: StreamState<Node> = { id: this.#nextStreamId++, write, ready: false, sentFirst: false };
    this.#stream = stream;
    for (const st of this.#types.values()) {
      st.nonce = '';
      st.sentOnStream = false;
    }
    for (const st of this.#types.values()) this.#send(st);
    const id = stream.id;
    return {
      id,
      receive: (response, decode) => this.#receive(id, response, decode),
      ready: () => this.#ready(id),
      lost: (reason) => this.#lost(id, reason),
    };
  }

  /** The names of `typeUrl` known not to exist now (a live view: read it, do not keep it). */
  doesNotExist(typeUrl: string): ReadonlySet<string> {
    return this.#types.get(typeUrl)?.doesNotExist ?? EMPTY;
  }

  /** The resources of `typeUrl` in force (the last ACKed set), by name. */
  resources(typeUrl: string): Map<string, unknown> {
    return this.#types.get(typeUrl)?.cache.values() ?? new Map();
  }

  status(): AdsStatus {
    const s = this.#stream;
    const state = this.#closed ? 'closed' : s ? (s.ready ? 'connected' : 'connecting') : this.#reconnectTimer ? 'backoff' : 'idle';
    return {
      stream: { state, failures: this.#failures, retryAt: this.#retryAt, lastError: this.#lastError },
      types: [...this.#types.values()].map(typeStatus),
      ignored: { count: this.#ignored, last: this.#lastIgnored },
    };
  }

  /** Stops every timer; the session takes no more calls (status() still answers). */
  close(): void {
    if (this.#closed) return;
    this.#retire();
    this.#reconnectTimer?.cancel();
    this.#reconnectTimer = undefined;
    this.#retryAt = undefined;
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('AdsSession: the session is closed');
  }

  #typeState(typeUrl: string, names: readonly string[]): TypeState {
    this.#assertOpen();
    const traits = RESOURCE_TYPES.get(typeUrl);
    if (!traits) throw new TypeError(`AdsSession: ${JSON.stringify(typeUrl)} is not an xDS type this client asks for (LDS, RDS, CDS, EDS)`);
    for (const name of names) {
      if (typeof name !== 'string' || name === '') throw new TypeError(`AdsSession: a ${traits.short} resource name must be a non-empty string`);
      if (name === WILDCARD && !traits.fullState) throw new TypeError(`AdsSession: ${traits.short} has no wildcard subscription (LDS and CDS only)`);
    }
    let st = this.#types.get(typeUrl);
    if (!st) {
      st = {
        typeUrl, traits, wildcard: false, names: new Set(), cache: new ResourceCache(), timers: new Map(), held: new Set(),
        rejected: new Set(), doesNotExist: new Set(), ackedVersion: undefined, ackedAt: undefined, lastNack: undefined,
        nacked: false, nonce: '', sentOnStream: false,
      };
      this.#types.set(typeUrl, st);
    }
    return st;
  }

  /**
   * Builds the type's request from its state now and writes it at once (stale-nonce case 2 in the
   * header). Nothing is written with no stream, nor for a type with no names that this stream has
   * never asked about: an empty first request would be a legacy wildcard subscription.
   */
  #send(st: TypeState, errorDetail?: Status): DiscoveryRequest<Node> | undefined {
    const stream = this.#stream;
    if (!stream) return undefined;
    if (!st.sentOnStream && !st.wildcard && st.names.size === 0) return undefined;
    const request: DiscoveryRequest<Node> = {
      versionInfo: st.ackedVersion ?? '',
      ...(stream.sentFirst ? {} : { node: this.#node }),
      resourceNames: st.wildcard ? [WILDCARD, ...st.names] : [...st.names],
      typeUrl: st.typeUrl,
      responseNonce: st.nonce,
      ...(errorDetail ? { errorDetail } : {}),
    };
    stream.sentFirst = true;
    st.sentOnStream = true;
    stream.write(request);
    return request;
  }

  #current(id: number): StreamState<Node> | undefined {
    return !this.#closed && this.#stream?.id === id ? this.#stream : undefined;
  }

  #receive(id: number, response: DiscoveryResponse, decode: Decode): DiscoveryRequest<Node> | undefined {
    // Stale-nonce case 1: a response of a lost or replaced stream is not answered.
    if (!this.#current(id)) return undefined;
    this.#ready(id);
    const st = this.#types.get(response.typeUrl);
    if (!st?.sentOnStream) {
      this.#ignored++;
      this.#lastIgnored = `a response of type ${JSON.stringify(response.typeUrl.slice(0, 200))}, which this stream has not asked for`;
      return undefined;
    }
    st.nonce = response.nonce;
    const checked = checkResponse(response, decode);
    if (!this.#current(id)) return undefined; // the decoder ended the stream: nothing to answer on
    return checked.errors.length > 0 ? this.#nack(st, response, checked) : this.#ack(st, response, checked);
  }

  #nack(st: TypeState, response: DiscoveryResponse, checked: CheckedResponse): DiscoveryRequest<Node> | undefined {
    const message = nackMessage(st.traits.short, response, checked.errors);
    st.nacked = true;
    st.lastNack = { version: response.versionInfo, nonce: response.nonce, message, at: this.#clock.now() };
    for (const name of checked.sentNames) {
      // Only names asked for explicitly have a does-not-exist state (a wildcard's come and go).
      if (!st.names.has(name) || st.cache.has(name)) continue;
      this.#stopTimer(st, name);
      st.held.delete(name);
      st.doesNotExist.delete(name);
      st.rejected.add(name);
    }
    const request = this.#send(st, { code: INVALID_ARGUMENT, message });
    this.#emit([{
      kind: 'nacked', typeUrl: st.typeUrl, type: st.traits.short, version: response.versionInfo, nonce: response.nonce,
      keptVersion: st.ackedVersion, message, errors: checked.errors,
    }]);
    return request;
  }

  #ack(st: TypeState, response: DiscoveryResponse, checked: CheckedResponse): DiscoveryRequest<Node> | undefined {
    const first = st.ackedVersion === undefined;
    const change = st.cache.apply(checked.resources, response.versionInfo, st.traits.fullState, (n) => this.#wants(st, n));
    st.ackedVersion = response.versionInfo;
    st.ackedAt = this.#clock.now();
    st.nacked = false;
    this.#failures = 0;
    for (const name of checked.resources.keys()) {
      if (!this.#wants(st, name)) continue;
      this.#stopTimer(st, name);
      st.held.delete(name);
      st.rejected.delete(name);
      st.doesNotExist.delete(name);
    }
    // Names known not to exist now: removed from the state of the world, held through a NACK, or
    // only ever sent in rejected full-state responses.
    const missing = change.removed.filter((n) => st.names.has(n));
    missing.push(...st.held);
    st.held.clear();
    if (st.traits.fullState) {
      missing.push(...st.rejected);
      st.rejected.clear();
    }
    for (const name of missing) st.doesNotExist.add(name);
    const request = this.#send(st);
    const events: AdsEvent[] = [];
    if (first || change.added.length + change.updated.length + change.removed.length > 0) {
      events.push({
        kind: 'changed', typeUrl: st.typeUrl, type: st.traits.short, version: response.versionInfo, resources: st.cache.values(),
        added: change.added, updated: change.updated, removed: change.removed,
      });
    }
    for (const name of missing) events.push({ kind: 'does-not-exist', typeUrl: st.typeUrl, type: st.traits.short, name });
    this.#emit(events);
    return request;
  }

  #wants(st: TypeState, name: string): boolean {
    return st.wildcard || st.names.has(name);
  }

  #ready(id: number): void {
    const stream = this.#current(id);
    if (!stream || stream.ready) return;
    stream.ready = true;
    for (const st of this.#types.values()) for (const name of st.names) this.#maybeStartTimer(st, name);
  }

  /** Starts the does-not-exist timer of a requested name, if the stream is ready and nothing is known of the name yet. */
  #maybeStartTimer(st: TypeState, name: string): void {
    if (!this.#stream?.ready || st.timers.has(name)) return;
    if (st.cache.has(name) || st.doesNotExist.has(name) || st.rejected.has(name) || st.held.has(name)) return;
    st.timers.set(name, this.#clock.setTimeout(() => this.#expire(st, name), DOES_NOT_EXIST_TIMEOUT_MS));
  }

  #expire(st: TypeState, name: string): void {
    st.timers.delete(name);
    if (!st.names.has(name) || st.cache.has(name)) return;
    if (st.nacked) {
      st.held.add(name);
      return;
    }
    st.doesNotExist.add(name);
    try {
      this.#emit([{ kind: 'does-not-exist', typeUrl: st.typeUrl, type: st.traits.short, name }]);
    } catch (err) {
      this.#logger.error(`xDS: a listener of the ADS session threw on "${st.traits.short} ${name} does not exist"`, { error: String(err) });
    }
  }

  #stopTimer(st: TypeState, name: string): void {
    st.timers.get(name)?.cancel();
    st.timers.delete(name);
  }

  /** The caller no longer wants `name`: its timer, its state and (unless a wildcard covers it) its resource go. */
  #forget(st: TypeState, name: string): void {
    this.#stopTimer(st, name);
    st.held.delete(name);
    st.rejected.delete(name);
    st.doesNotExist.delete(name);
    if (!st.wildcard) st.cache.delete(name);
  }

  /** The current stream stops being current: its timers stop (the next ready stream starts fresh ones). */
  #retire(): void {
    if (!this.#stream) return;
    this.#stream = undefined;
    for (const st of this.#types.values()) {
      for (const timer of st.timers.values()) timer.cancel();
      st.timers.clear();
      st.held.clear();
    }
  }

  #lost(id: number, reason: string | undefined): number | undefined {
    if (!this.#current(id)) return undefined;
    this.#retire();
    return this.#backoff(reason);
  }

  /** One more loss: waits its backoff, then asks the driver for a new stream. Returns the wait. */
  #backoff(reason: string | undefined): number {
    this.#failures++;
    this.#lastError = reason;
    const delay = reconnectDelay(this.#failures, this.#random);
    this.#retryAt = this.#clock.now() + delay;
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#retryAt = undefined;
      if (this.#closed) return;
      try {
        this.#reconnect?.();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.#logger.error('xDS: could not open a new ADS stream; trying again after the backoff', { error: message });
        if (!this.#stream && !this.#reconnectTimer && !this.#closed) this.#backoff(`could not open a stream: ${message}`);
      }
    }, delay);
    return delay;
  }

  /**
   * Calls every listener with every event. State is committed and the request written before: a
   * listener that throws breaks nothing; its error reaches the caller once all have been called.
   */
  #emit(events: readonly AdsEvent[]): void {
    const errors: unknown[] = [];
    for (const event of events) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(event);
        } catch (err) {
          errors.push(err);
        }
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'AdsSession: several event listeners threw');
  }
}

function typeStatus(st: TypeState): AdsTypeStatus {
  return {
    typeUrl: st.typeUrl,
    type: st.traits.short,
    wildcard: st.wildcard,
    names: [...st.names],
    ackedVersion: st.ackedVersion,
    ackedAt: st.ackedAt,
    lastNack: st.lastNack,
    nacked: st.nacked,
    pending: [...st.names].filter((n) => !st.cache.has(n) && !st.doesNotExist.has(n) && !st.rejected.has(n)),
    rejected: [...st.rejected],
    doesNotExist: [...st.doesNotExist],
    resources: st.cache.names().map((name) => ({ name, version: st.cache.get(name)!.version })),
  };
}
