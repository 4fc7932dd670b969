/**
 * The resources of one type that an ADS session holds: the last ACKed value of each, with the
 * version it was ACKed at. It changes only when a response is accepted whole, or when the caller
 * stops wanting a name; a NACK, a lost stream or an outage leave it as it is (the last good
 * configuration stays in force). Pure.
 */
import type { CheckedResource } from './response-check.js';

export interface CacheEntry {
  readonly value: unknown;
  readonly bytes: Uint8Array;
  /** The version_info of the accepted response that last carried it. */
  readonly version: string;
}

/** What an accepted response did to the cache. A resource re-sent with the same bytes is in none of them. */
export interface CacheChange {
  readonly added: readonly string[];
  readonly updated: readonly string[];
  readonly removed: readonly string[];
}

export class ResourceCache {
  readonly #entries = new Map<string, CacheEntry>();

  get size(): number {
    return this.#entries.size;
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  get(name: string): CacheEntry | undefined {
    return this.#entries.get(name);
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The values by name: a new map, which later changes to the cache do not touch. */
  values(): Map<string, unknown> {
    const out = new Map<string, unknown>();
    for (const [name, entry] of this.#entries) out.set(name, entry.value);
    return out;
  }

  /** Forgets a name (the caller unsubscribed from it). */
  delete(name: string): boolean {
    return this.#entries.delete(name);
  }

  /**
   * Applies an accepted response. Resources the client did not ask for (`wanted` false) are
   * ignored, as xds_protocol.rst says a client does ("The client will silently ignore any supplied
   * resources that were not explicitly requested"). With `fullState` (LDS, CDS) the response is the
   * whole set: a cached resource it does not carry is removed. Without (RDS, EDS) it updates the
   * resources it carries and removes nothing.
   */
  apply(
    resources: ReadonlyMap<string, CheckedResource>,
    version: string,
    fullState: boolean,
    wanted: (name: string) => boolean,
  ): CacheChange {
    const added: string[] = [];
    const updated: string[] = [];
    const removed: string[] = [];
    if (fullState) {
      for (const name of [...this.#entries.keys()]) {
        if (!resources.has(name) || !wanted(name)) {
          this.#entries.delete(name);
          removed.push(name);
        }
      }
    }
    for (const [name, resource] of resources) {
      if (!wanted(name)) continue;
      const before = this.#entries.get(name);
      const same = before !== undefined && sameBytes(before.bytes, resource.bytes);
      if (!before) added.push(name);
      else if (!same) updated.push(name);
      // The same bytes keep the same value object: whoever builds on it can compare by reference.
      this.#entries.set(name, { value: same ? before.value : resource.value, bytes: resource.bytes, version });
    }
    return { added, updated, removed };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
