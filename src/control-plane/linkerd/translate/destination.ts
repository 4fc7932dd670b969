/**
 * The endpoints of one Destination.Get stream (`host:port`), as a state machine over its updates.
 * Pure: no I/O, no clock (updates are applied in arrival order; nothing here expires).
 *
 * States: `pending` (nothing received yet; Linkerd: "clients may use stale results until the first
 * message"), `absent` (no_endpoints{exists: false}: the service is unknown), `empty` (no endpoints:
 * no_endpoints{exists: true}, or the last one removed), `ready` (endpoints known). Updates may be
 * redundant or reordered (destination.proto): an `add` of a known address replaces it, a `remove`
 * of an unknown address does nothing, `no_endpoints` clears everything.
 *
 * An update is applied whole or not at all: a malformed one (an address or identity that is not
 * one, no member set, the set growing past `maxEndpoints`) is refused with its reasons and the state
 * stays as it was. Endpoints the mesh will not talk to (not meshed, gateway or opaque-transport
 * endpoints: endpoint.ts) are kept aside in `refused` with their reason, never dialled.
 */
import type { ServiceEndpoint } from '../../../outbound/settings.js';
import type { TcpAddress } from '../../../proto/linkerd/net.js';
import type { Update } from '../../../proto/linkerd/destination.js';
import { addressOf, endpointOf, type LinkerdEndpoint } from './endpoint.js';
import { Findings, type Translation } from './findings.js';

export type DestinationStatus = 'pending' | 'absent' | 'empty' | 'ready';

export interface DestinationView {
  readonly path: string;
  readonly status: DestinationStatus;
  /** The endpoints to dial, ordered by address (stable across redundant updates). */
  readonly endpoints: readonly LinkerdEndpoint[];
  /** Addresses whose protocol hint is h2. */
  readonly h2: ReadonlySet<string>;
  /** Endpoints the control plane announced that the mesh will not talk to, with why. */
  readonly refused: readonly { readonly address: string; readonly reason: string }[];
}

/** Default bound on the endpoints (and refused ones) one destination may hold. */
export const DEFAULT_MAX_ENDPOINTS = 10_000;

interface Entry {
  readonly endpoint?: LinkerdEndpoint;
  readonly h2?: boolean;
  readonly refused?: string;
}

export class DestinationState {
  #status: DestinationStatus = 'pending';
  #entries = new Map<string, Entry>();
  #view: DestinationView;

  constructor(
    readonly path: string,
    private readonly maxEndpoints: number = DEFAULT_MAX_ENDPOINTS,
  ) {
    this.#view = this.#build();
  }

  /** The current state (the same object until an update changes it). */
  view(): DestinationView {
    return this.#view;
  }

  /** Applies one update; refused whole (state unchanged) when it is malformed. */
  apply(u: Update): Translation<DestinationView> {
    const f = new Findings(`Destination ${JSON.stringify(this.path)}`);
    const next = this.#next(u, f);
    if (!next) return f.result(this.#view);
    if (next.entries.size > this.maxEndpoints) {
      f.refuse('add.addrs', `would hold ${next.entries.size} endpoints: at most ${this.maxEndpoints}`);
      return f.result(this.#view);
    }
    this.#entries = next.entries;
    this.#status = next.status;
    this.#view = this.#build();
    return f.result(this.#view);
  }

  #next(u: Update, f: Findings): { entries: Map<string, Entry>; status: DestinationStatus } | undefined {
    const o = u.update;
    if (!o) {
      f.refuse('update', 'names none of add, remove, no_endpoints');
      return undefined;
    }
    if (o.kind === 'noEndpoints') return { entries: new Map(), status: o.noEndpoints.exists ? 'empty' : 'absent' };
    const entries = new Map(this.#entries);
    if (o.kind === 'add') {
      if (o.add.addrs.length > this.maxEndpoints) {
        f.refuse('add.addrs', `${o.add.addrs.length} endpoints in one update: at most ${this.maxEndpoints}`);
        return undefined;
      }
      o.add.addrs.forEach((w, i) => {
        const r = endpointOf(w, o.add.metricLabels);
        if (r.kind === 'bad') f.refuse(`add.addrs[${i}]`, r.message);
        else if (r.kind === 'refused') entries.set(r.address, { refused: r.reason });
        else entries.set(r.address, { endpoint: r.endpoint, h2: r.h2 });
      });
    } else {
      o.remove.addrs.forEach((a: TcpAddress, i) => {
        const r = addressOf(a);
        if ('message' in r) f.refuse(`remove.addrs[${i}]`, r.message);
        else entries.delete(r.address);
      });
    }
    if (f.failed) return undefined;
    return { entries, status: entries.size > 0 ? 'ready' : 'empty' };
  }

  #build(): DestinationView {
    const endpoints: LinkerdEndpoint[] = [];
    const refused: { address: string; reason: string }[] = [];
    const h2 = new Set<string>();
    for (const address of [...this.#entries.keys()].sort()) {
      const e = this.#entries.get(address)!;
      if (e.endpoint) {
        endpoints.push(e.endpoint);
        if (e.h2) h2.add(address);
      } else refused.push({ address, reason: e.refused! });
    }
    return Object.freeze({ path: this.path, status: this.#status, endpoints: Object.freeze(endpoints), h2, refused: Object.freeze(refused) });
  }
}

/**
 * What a service's `endpoints` field holds for a view: undefined while pending (the snapshot
 * waits for it), else the endpoints ([] when absent or empty: requests fail with no endpoints).
 */
export function snapshotEndpoints(v: DestinationView): readonly ServiceEndpoint[] | undefined {
  return v.status === 'pending' ? undefined : v.endpoints;
}
