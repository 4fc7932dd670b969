/**
 * The protocol half of the embedded control plane's ADS server: one SotW
 * `StreamAggregatedResources` stream as a state machine, with no socket and no protobuf bytes.
 * The driver (ads-service.ts) decodes each DiscoveryRequest, feeds it to `receive`, and writes
 * the DiscoveryResponses it returns, in order; `refresh` recomputes every subscribed type (after
 * `changed()`, coalesced by the driver) and returns the pushes. Time comes from the injected Clock.
 * The inverse of control-plane/xds/ads-state.ts (the client's session).
 *
 * The rules (envoyproxy/envoy docs/root/api-docs/xds_protocol.rst; research §2.2, §6.1):
 * - Each type URL is its own logical stream: its own subscription, version and latest nonce.
 *   Nonces are unique per stream (a counter shared by the types); they do not survive the stream.
 * - A request with no nonce, or the first of its type on this stream (whatever nonce it carries:
 *   a client that reconnects to another replica, as istiod allows), is a subscription: answered.
 * - A request whose nonce is the latest sent for its type is an ACK, or a NACK when it carries
 *   error_detail (detected by its presence, never by comparing versions). It is answered only
 *   when its names differ from the subscription the latest response answered (SotW: every request
 *   carries the whole subscription). A NACK is recorded; the same bytes are never resent in reply
 *   (that would loop): the next change of the type's resources for this client pushes again.
 * - A request whose nonce is not the latest sent for its type is STALE: not answered, and its
 *   names are NOT taken as the subscription (as istiod's shouldRespond and go-control-plane do).
 *   The client sends its whole subscription again with the ACK of the newer response, so nothing
 *   is lost; taking the names from the stale request would make that ACK look unchanged and leave
 *   the new names unanswered. Answering it is the ping-pong of research §6.1 trap 1. Counted.
 * - Wildcard, LDS and CDS only: the name `*`, or the legacy empty list on a type that never named
 *   anything. Once named, an explicit empty list is "unsubscribed from all": no response and no
 *   pushes for that type until it names something again. On RDS/EDS `*` is an ordinary name.
 * - A response carries every subscribed resource that exists (all of them for the wildcard),
 *   sorted by name; on LDS/CDS an absent resource is deleted (removal by absence), on RDS/EDS a
 *   name that does not exist is simply left out. The version is a hash of exactly what the
 *   response carries (names and bytes), so it changes only when this client's bytes change, the
 *   same everywhere for the same bytes, and a client reconnecting with the same state sees the
 *   same version.
 * - `refresh` pushes a type only where the computed version differs from the last one sent for it
 *   (ACKed or not): unchanged clients get nothing. Order: CDS, EDS, LDS, RDS (make-before-break).
 * - Unknown type URLs (and an empty type_url) are ignored: no response, no state (istiod has no
 *   generator for them and sends nothing). Answering them would need state per type a hostile
 *   client could grow at will.
 * - Bounds: at most MAX_NAMES_PER_REQUEST names per request, each at most MAX_NAME_LENGTH
 *   characters, at most MAX_SUBSCRIBED_NAME_BYTES of names held by the stream (all types);
 *   beyond them the stream is ended (`fail`), as the driver ends it for a request of more than
 *   MAX_REQUEST_BYTES or bytes that are not a DiscoveryRequest.
 * Pure: the only outside call is the ResourceSource (and the events), whose throws are caught.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';
import type { DiscoveryRequest, DiscoveryResponse } from '../../proto/envoy/service/discovery/v3/discovery.js';
import { TYPE_URLS } from './outbound-resources.js';

/** One ADS stream, as the server knows its client. */
export interface AdsClient {
  /** Unique per stream. */
  readonly id: string;
  /** The decoded Node of the first request (only the first is guaranteed to carry it). */
  readonly node: Node | undefined;
  /** What authenticate() returned (a SPIFFE ID); undefined on the plaintext port. */
  readonly identity: string | undefined;
  readonly plaintext: boolean;
}

export interface ResourceSource {
  /**
   * Serialized resources (the resource's own bytes, not Any) of typeUrl for this client: the named ones that exist (`names` sorted, unique), or all for '*' (wildcard, LDS/CDS only).
   * It may return more than the names asked for (a map it shares between clients, not copied per call): the session takes only those names.
   * Bytes once returned are never changed (new content, new array): the server keeps their digests for the rest of the event-loop turn,
   * and a session takes the same arrays as the same content (a push skips a client whose arrays are those it was sent).
   */
  resolve(client: AdsClient, typeUrl: string, names: readonly string[] | '*'): ReadonlyMap<string, Uint8Array>;
}

export type AdsRequestKind = 'subscribe' | 'ack' | 'nack';

export interface AdsRequestEvent {
  readonly typeUrl: string;
  /** The subscription it carries ('*' for the wildcard). */
  readonly names: readonly string[] | '*';
  readonly kind: AdsRequestKind;
  /** version_info as the client sent it (for a NACK: the last version it accepted). */
  readonly version: string;
  readonly nonce: string;
  /** error_detail.message of a NACK. */
  readonly error?: string;
}

export interface AdsEvents {
  connected?(c: AdsClient): void;
  request?(c: AdsClient, r: AdsRequestEvent): void;
  disconnected?(c: AdsClient): void;
}

export interface AdsTypeStatus {
  readonly typeUrl: string;
  /** Subscribed names, sorted, or '*'; [] = unsubscribed. */
  readonly names: readonly string[] | '*';
  /** The latest response sent on this type. */
  readonly sent?: { readonly version: string; readonly nonce: string; readonly resources: number; readonly at: number };
  /** The version of the last response the client ACKed. */
  readonly acked?: { readonly version: string; readonly nonce: string; readonly at: number };
  /** The last NACK: the version it rejected (ours), the nonce, the client's error_detail. */
  readonly lastNack?: { readonly version: string; readonly nonce: string; readonly error: string; readonly at: number };
  /** Requests carrying a nonce that was not the latest (not answered). */
  readonly staleIgnored: number;
  /** The last time the ResourceSource threw for this type (nothing was sent then). */
  readonly lastSourceError?: { readonly message: string; readonly at: number };
}

export interface AdsClientStatus {
  readonly id: string;
  readonly nodeId: string;
  readonly cluster: string;
  readonly identity: string | undefined;
  readonly plaintext: boolean;
  readonly connectedAt: number;
  readonly types: readonly AdsTypeStatus[];
}

/** A reason to end the stream: a gRPC status code and details. */
export interface AdsFailure {
  readonly code: number;
  readonly details: string;
}

export interface ReceiveResult {
  /** Responses to write now, in order. */
  readonly responses: DiscoveryResponse[];
  /** What the request was (undefined: ignored — stale nonce or unknown type URL). */
  readonly event?: AdsRequestEvent;
  /** Set when the stream must end with this status (nothing else is returned then). */
  readonly fail?: AdsFailure;
}

export const MAX_NAMES_PER_REQUEST = 10_000;
export const MAX_NAME_LENGTH = 1_024;
/** A DiscoveryRequest bigger than this ends the stream (10,000 names of 100 bytes fit 4 times over). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/**
 * Subscribed names one stream holds, all types together (UTF-8 bytes of the latest subscription of
 * each): beyond, the stream is ended RESOURCE_EXHAUSTED. Without it one stream keeps four full
 * requests (16 MiB) of names a plaintext client never has to authenticate for; 2 MiB is 10,000
 * names of 200 bytes.
 */
export const MAX_SUBSCRIBED_NAME_BYTES = 2 * 1024 * 1024;

/** gRPC status codes the session uses (numbers, so this module needs no grpc-js). */
export const GRPC_STATUS = { INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16 } as const;

/** make-before-break: CDS, EDS, LDS, RDS. */
export const PUSH_ORDER: readonly string[] = [TYPE_URLS.cluster, TYPE_URLS.endpoints, TYPE_URLS.listener, TYPE_URLS.routes];
const KNOWN: ReadonlySet<string> = new Set(PUSH_ORDER);
const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URLS.listener, TYPE_URLS.cluster]);

interface TypeState {
  readonly typeUrl: string;
  /** Explicit names (sorted, unique), apart from the wildcard. */
  names: string[];
  wildcard: boolean;
  /** Whether the type ever named a resource (then an empty list unsubscribes, not wildcard). */
  named: boolean;
  /** The subscription (key) the latest response answered. */
  answered: string | undefined;
  lastNonce: string;
  sent?: { version: string; nonce: string; resources: number; at: number };
  acked?: { version: string; nonce: string; at: number };
  lastNack?: { version: string; nonce: string; error: string; at: number };
  staleIgnored: number;
  lastSourceError?: { message: string; at: number };
  /** UTF-8 bytes of the names of the latest subscription (MAX_SUBSCRIBED_NAME_BYTES). */
  nameBytes: number;
  /** The subscription as one string (keyOf), made when it changes. */
  key: string;
  /**
   * What the latest response carried, in order (the source's own byte arrays): a push compares
   * these by identity before hashing anything, so a client whose resources did not change costs
   * a few lookups, not a sort, a hash and a response (bytes once returned never change).
   */
  last?: Content;
}

const keyOf = (s: TypeState) => (s.wildcard ? '*\n' : '') + s.names.join('\n');
const sameNames = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((n, i) => n === b[i]);
const subscribed = (s: TypeState) => s.wildcard || s.names.length > 0;

/** The first request's problem, if it has one: the stream must start with a Node that has an id. */
export function firstRequestProblem(req: DiscoveryRequest): AdsFailure | undefined {
  if (req.node === undefined) return { code: GRPC_STATUS.INVALID_ARGUMENT, details: 'the first DiscoveryRequest of a stream must carry node (the bootstrap node: id, metadata)' };
  if (req.node.id === '') return { code: GRPC_STATUS.INVALID_ARGUMENT, details: 'the first DiscoveryRequest of a stream must carry node.id' };
  return undefined;
}

/**
 * Digests of (name, bytes) already computed, by the bytes object: the sessions of one event-loop
 * turn share one (ads-service.ts: a push to every client, the subscriptions that arrived
 * together), so a resource many clients subscribe to is hashed once, not once per client. It lives
 * for that turn only; within it a source must not change bytes it returned (new content, new array).
 */
export type DigestCache = Map<Uint8Array, { readonly name: string; readonly digest: Buffer }>;

function entryDigest(name: string, bytes: Uint8Array): Buffer {
  const n = Buffer.from(name);
  const len = Buffer.alloc(8);
  len.writeUInt32BE(n.length, 0);
  len.writeUInt32BE(bytes.length, 4);
  return createHash('sha256').update(len).update(n).update(bytes).digest();
}

/** A deterministic version for exactly these resources (names and bytes): a hash of each one's digest, in order. */
export function versionOf(resources: ReadonlyArray<readonly [string, Uint8Array]>, cache?: DigestCache): string {
  return versionOfContent({ names: resources.map(([n]) => n), bytes: resources.map(([, b]) => b) }, cache);
}

/** What one response carries, as two parallel arrays in name order. */
interface Content {
  readonly names: readonly string[];
  readonly bytes: readonly Uint8Array[];
}

function versionOfContent(c: Content, cache?: DigestCache): string {
  const all = Buffer.allocUnsafe(32 * c.names.length);
  c.names.forEach((name, i) => {
    const bytes = c.bytes[i]!;
    let d = cache?.get(bytes);
    if (d === undefined || d.name !== name) {
      d = { name, digest: entryDigest(name, bytes) };
      cache?.set(bytes, d);
    }
    all.set(d.digest, 32 * i);
  });
  return createHash('sha256').update(all).digest('hex').slice(0, 16);
}

/** The subscribed resources `found` holds, in name order (only what was asked for: a source that returns more is not trusted to). */
function contentOf(s: { readonly wildcard: boolean; readonly names: readonly string[] }, found: ReadonlyMap<string, Uint8Array>): Content {
  const names = s.wildcard ? [...found.keys()].filter((n) => found.get(n) instanceof Uint8Array).sort() : s.names.filter((n) => found.get(n) instanceof Uint8Array);
  return { names, bytes: names.map((n) => found.get(n)!) };
}

const clip = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n)}…` : s);

export class AdsSession {
  readonly #types = new Map<string, TypeState>();
  #nonces = 0;
  readonly connectedAt: number;

  constructor(
    readonly client: AdsClient,
    private readonly source: ResourceSource,
    private readonly clock: Clock,
  ) {
    this.connectedAt = clock.now();
  }

  /** One decoded request: what to write, what it was, or why the stream must end; `cache` as for refresh. */
  receive(req: DiscoveryRequest, cache?: DigestCache): ReceiveResult {
    if (req.resourceNames.length > MAX_NAMES_PER_REQUEST) {
      return { responses: [], fail: { code: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `a DiscoveryRequest names ${req.resourceNames.length} resources; at most ${MAX_NAMES_PER_REQUEST} are taken` } };
    }
    const long = req.resourceNames.find((n) => n.length > MAX_NAME_LENGTH);
    if (long !== undefined) return { responses: [], fail: { code: GRPC_STATUS.INVALID_ARGUMENT, details: `resource name ${JSON.stringify(clip(long))} is longer than ${MAX_NAME_LENGTH} characters` } };
    if (!KNOWN.has(req.typeUrl)) return { responses: [] };
    const prior = this.#types.get(req.typeUrl);
    if (prior && req.responseNonce !== '' && req.responseNonce !== prior.lastNonce) {
      prior.staleIgnored++;
      return { responses: [] };
    }
    const nameBytes = req.resourceNames.reduce((n, name) => n + Buffer.byteLength(name), 0);
    const held = [...this.#types.values()].reduce((n, t) => (t.typeUrl === req.typeUrl ? n : n + t.nameBytes), 0);
    if (held + nameBytes > MAX_SUBSCRIBED_NAME_BYTES) {
      return { responses: [], fail: { code: GRPC_STATUS.RESOURCE_EXHAUSTED, details: `this stream would subscribe to ${held + nameBytes} bytes of resource names; at most ${MAX_SUBSCRIBED_NAME_BYTES} are held per stream` } };
    }
    const s = prior ?? this.#newType(req.typeUrl);
    s.nameBytes = nameBytes;
    const initial = prior === undefined || req.responseNonce === '';
    const kind: AdsRequestKind = initial ? 'subscribe' : req.errorDetail !== undefined ? 'nack' : 'ack';
    if (kind === 'ack') s.acked = { version: s.sent?.version ?? req.versionInfo, nonce: req.responseNonce, at: this.clock.now() };
    const error = req.errorDetail && clip(req.errorDetail.message || `code ${req.errorDetail.code}`, 2_000);
    if (kind === 'nack') s.lastNack = { version: s.sent?.version ?? '', nonce: req.responseNonce, error: error!, at: this.clock.now() };
    this.#subscribe(s, req.resourceNames);
    const event: AdsRequestEvent = { typeUrl: req.typeUrl, names: s.wildcard ? '*' : [...s.names], kind, version: req.versionInfo, nonce: req.responseNonce, ...(kind === 'nack' && { error }) };
    const answer = subscribed(s) && (initial || s.key !== s.answered);
    const r = answer ? this.#respond(s, undefined, cache) : undefined;
    return { responses: r ? [r] : [], event };
  }

  /** Recomputes every subscribed type (CDS, EDS, LDS, RDS) and returns a response for each whose bytes changed; `cache` is shared by the sessions of one event-loop turn. */
  refresh(cache?: DigestCache): DiscoveryResponse[] {
    const out: DiscoveryResponse[] = [];
    for (const typeUrl of PUSH_ORDER) {
      const s = this.#types.get(typeUrl);
      if (!s || !subscribed(s)) continue;
      const r = this.#respond(s, s.sent?.version ?? '', cache);
      if (r) out.push(r);
    }
    return out;
  }

  status(): AdsClientStatus {
    const types = PUSH_ORDER.flatMap((t) => {
      const s = this.#types.get(t);
      if (!s) return [];
      const { typeUrl, sent, acked, lastNack, staleIgnored, lastSourceError } = s;
      return [{ typeUrl, names: s.wildcard ? ('*' as const) : [...s.names], staleIgnored, ...(sent && { sent: { ...sent } }), ...(acked && { acked: { ...acked } }), ...(lastNack && { lastNack: { ...lastNack } }), ...(lastSourceError && { lastSourceError: { ...lastSourceError } }) }];
    });
    const node = this.client.node;
    return { id: this.client.id, nodeId: node?.id ?? '', cluster: node?.cluster ?? '', identity: this.client.identity, plaintext: this.client.plaintext, connectedAt: this.connectedAt, types };
  }

  #newType(typeUrl: string): TypeState {
    const s: TypeState = { typeUrl, names: [], wildcard: false, named: false, answered: undefined, lastNonce: '', staleIgnored: 0, nameBytes: 0, key: '' };
    this.#types.set(typeUrl, s);
    return s;
  }

  #subscribe(s: TypeState, names: readonly string[]): void {
    const explicit = [...new Set(names.filter((n) => n !== '*' || !WILDCARD_TYPES.has(s.typeUrl)))].sort();
    const star = WILDCARD_TYPES.has(s.typeUrl) && names.includes('*');
    const wildcard = star || (WILDCARD_TYPES.has(s.typeUrl) && names.length === 0 && !s.named);
    if (names.length > 0) s.named = true;
    // An ACK repeats the subscription: keep what is held (the request's strings die young).
    if (wildcard === s.wildcard && sameNames(explicit, s.names) && s.key !== '') return;
    s.wildcard = wildcard;
    s.names = explicit;
    s.key = keyOf(s);
    s.last = undefined;
  }

  /** Whether `found` holds, for this subscription, exactly what the latest response carried (same byte arrays). */
  #unchanged(s: TypeState, found: ReadonlyMap<string, Uint8Array>): boolean {
    const last = s.last;
    if (last === undefined) return false;
    let count = 0;
    if (s.wildcard) {
      for (const bytes of found.values()) if (bytes instanceof Uint8Array) count++;
    } else {
      for (const name of s.names) if (found.get(name) instanceof Uint8Array) count++;
    }
    if (count !== last.names.length) return false;
    return last.names.every((name, i) => found.get(name) === last.bytes[i]);
  }

  /** The response for the type's current subscription; with `unless`, undefined when its version is that. */
  #respond(s: TypeState, unless?: string, cache?: DigestCache): DiscoveryResponse | undefined {
    let found: ReadonlyMap<string, Uint8Array>;
    try {
      found = this.source.resolve(this.client, s.typeUrl, s.wildcard ? '*' : s.names);
    } catch (e) {
      s.lastSourceError = { message: clip(e instanceof Error ? e.message : String(e), 2_000), at: this.clock.now() };
      return undefined;
    }
    if (unless !== undefined && unless === s.sent?.version && this.#unchanged(s, found)) return undefined;
    const chosen = contentOf(s, found);
    const version = versionOfContent(chosen, cache);
    s.last = chosen;
    if (unless !== undefined && version === unless) return undefined;
    const nonce = String(++this.#nonces);
    s.lastNonce = nonce;
    s.answered = s.key;
    s.sent = { version, nonce, resources: chosen.names.length, at: this.clock.now() };
    return { versionInfo: version, resources: chosen.bytes.map((value) => ({ typeUrl: s.typeUrl, value })), canary: false, typeUrl: s.typeUrl, nonce };
  }
}
