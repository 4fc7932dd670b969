/**
 * Rapid-reset protection (CVE-2023-44487), per HTTP/2 session, after Envoy's premature-reset rule:
 * a stream the client resets before the server answered it, within `minLifetimeMs` of opening it,
 * is premature. Once a session has opened at least `minStreams` streams, when more than half of
 * them were reset prematurely, the session is closed with GOAWAY ENHANCE_YOUR_CALM. Node 20's
 * nghttp2 has a mitigation of its own (a burst of ~1,000 resets, then GOAWAY INTERNAL_ERROR); this
 * one acts ten times earlier and says why. Pure: the caller supplies the times.
 */

export interface ResetGuardOptions {
  /** Streams a session may open before the ratio is looked at (default 100). */
  readonly minStreams: number;
  /** A reset this soon after the stream opened is premature (ms, default 1000). */
  readonly minLifetimeMs: number;
}

export const DEFAULT_RESET_GUARD: ResetGuardOptions = Object.freeze({ minStreams: 100, minLifetimeMs: 1000 });

export class ResetGuard {
  #streams = 0;
  #premature = 0;
  /** Set by the session's owner once it acted on a `true` from closed(). */
  tripped = false;

  constructor(private readonly options: ResetGuardOptions = DEFAULT_RESET_GUARD) {}

  /** A stream opened. */
  opened(): void {
    this.#streams++;
  }

  /**
   * A stream closed; `resetByPeer`: the client reset it before the response ended. Returns true
   * when the session must be closed (the rule above).
   */
  closed(resetByPeer: boolean, lifetimeMs: number): boolean {
    if (resetByPeer && lifetimeMs < this.options.minLifetimeMs) this.#premature++;
    return this.#streams >= this.options.minStreams && this.#premature * 2 > this.#streams;
  }

  get counts(): { streams: number; premature: number } {
    return { streams: this.#streams, premature: this.#premature };
  }
}
