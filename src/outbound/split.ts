/**
 * Traffic split: which backend service takes a request, by weight (Linkerd HTTPRoute `backendRefs`
 * weights, SMI TrafficSplit). Smooth weighted round robin (nginx): over any run of W = Σ weights
 * requests each backend gets exactly its share, interleaved (90/10 gives one request in ten to the
 * canary, not ten in a row). O(backends) per pick; splits have a handful. Pure, no randomness.
 */

export interface SplitBackend {
  readonly service: string;
  readonly weight: number;
}

export interface SplitStats {
  service: string;
  weight: number;
  /** Requests sent to this backend since the split was created (kept across weight changes). */
  requests: number;
}

export class Split {
  #backends: SplitBackend[] = [];
  #current: number[] = [];
  #total = 0;
  readonly #counts = new Map<string, number>();

  constructor(backends: readonly SplitBackend[]) {
    this.set(backends);
  }

  /** Replaces the weights. Takes effect for the next pick; requests in flight are not touched. */
  set(backends: readonly SplitBackend[]): void {
    this.#backends = backends.map((b) => ({ service: b.service, weight: b.weight }));
    this.#current = backends.map(() => 0);
    this.#total = backends.reduce((a, b) => a + b.weight, 0);
  }

  get backends(): readonly SplitBackend[] {
    return this.#backends;
  }

  /** The backend for the next request; undefined when every weight is 0. */
  pick(): string | undefined {
    if (this.#total <= 0) return undefined;
    let best = -1;
    const cur = this.#current;
    for (let i = 0; i < cur.length; i++) {
      const w = this.#backends[i]!.weight;
      if (w <= 0) continue;
      cur[i]! += w;
      if (best < 0 || cur[i]! > cur[best]!) best = i;
    }
    cur[best]! -= this.#total;
    const name = this.#backends[best]!.service;
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
    return name;
  }

  stats(): SplitStats[] {
    return this.#backends.map((b) => ({ service: b.service, weight: b.weight, requests: this.#counts.get(b.service) ?? 0 }));
  }
}
