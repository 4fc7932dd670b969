/**
 * What an ADS session reports: its events (resources changed, a resource does not exist, a
 * response NACKed) and its status, for `/config` and `sidecarless stat`. Types only.
 */
import type { ResourceTypeTraits } from './discovery.js';

/** What the session tells its listeners. Every event follows the request that answered its response. */
export type AdsEvent = AdsChanged | AdsDoesNotExist | AdsNacked;

/** The resources of one type changed (or were ACKed for the first time): the full set after this ACK. */
export interface AdsChanged {
  readonly kind: 'changed';
  readonly typeUrl: string;
  readonly type: ResourceTypeTraits['short'];
  readonly version: string;
  readonly resources: ReadonlyMap<string, unknown>;
  readonly added: readonly string[];
  readonly updated: readonly string[];
  readonly removed: readonly string[];
}

/** A requested resource does not exist (15 s without it, or removed from an LDS/CDS state of the world). */
export interface AdsDoesNotExist {
  readonly kind: 'does-not-exist';
  readonly typeUrl: string;
  readonly type: ResourceTypeTraits['short'];
  readonly name: string;
}

/** A response was rejected whole; the resources of the last ACKed version stay in force. */
export interface AdsNacked {
  readonly kind: 'nacked';
  readonly typeUrl: string;
  readonly type: ResourceTypeTraits['short'];
  /** The rejected response's version and nonce. */
  readonly version: string;
  readonly nonce: string;
  /** The version still in force (undefined: none was ever ACKed). */
  readonly keptVersion: string | undefined;
  /** error_detail.message as sent. */
  readonly message: string;
  readonly errors: readonly string[];
}

export interface NackStatus {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: number;
}

export interface AdsTypeStatus {
  readonly typeUrl: string;
  readonly type: ResourceTypeTraits['short'];
  readonly wildcard: boolean;
  /** The names subscribed explicitly. */
  readonly names: readonly string[];
  /** The version of the last ACKed response; undefined: nothing ACKed yet. May be '' (a server may send an empty version). */
  readonly ackedVersion: string | undefined;
  readonly ackedAt: number | undefined;
  /** The last NACK, kept after later ACKs so the last error stays visible. */
  readonly lastNack: NackStatus | undefined;
  /** True while the type's latest response was NACKed (no ACK since). */
  readonly nacked: boolean;
  /** Requested names not received yet (none ACKed, none rejected, not known to be missing). */
  readonly pending: readonly string[];
  /** Names the server sent only in rejected responses. */
  readonly rejected: readonly string[];
  readonly doesNotExist: readonly string[];
  /** The resources in force, with the version each was ACKed at. */
  readonly resources: ReadonlyArray<{ readonly name: string; readonly version: string }>;
}

export interface AdsStatus {
  readonly stream: {
    /** connected: a stream is open and ready; connecting: open, not ready yet; backoff: waiting to reconnect; idle: no stream. */
    readonly state: 'connected' | 'connecting' | 'backoff' | 'idle' | 'closed';
    /** Streams lost since the last ACK. */
    readonly failures: number;
    readonly retryAt: number | undefined;
    readonly lastError: string | undefined;
  };
  readonly types: readonly AdsTypeStatus[];
  /** Responses ignored without a reply (a type not asked about on that stream). */
  readonly ignored: { readonly count: number; readonly last: string | undefined };
}
