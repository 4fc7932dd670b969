/**
 * The SPIFFE Workload API as an X509Source (what a SPIRE agent serves): one FetchX509SVID stream,
 * each message the whole state (SPIFFE_Workload_API.md §4.3), verified as every source's SVID is
 * (buildSvid: key matches the leaf, chain verifies against the bundle of its own trust domain).
 *
 * - A bad message is refused whole: the last good SVID and bundles stay, state `stale`, the reason
 *   in status().lastError; the stream goes on (as go-spiffe: a parse failure is reported, not fatal).
 * - InvalidArgument (the server refused the request, e.g. no security header) and Unimplemented stop
 *   the source for good (the spec's "do not retry"), saying why in status() and ready().
 * - Any other end (Unavailable, PermissionDenied, a transport failure, a stream the server ended)
 *   reconnects after 1 s, 2 s, 4 s … capped at 30 s, each up to 20 % earlier (jitter), reset by a
 *   message that is taken. go-spiffe's backoff is linear (1 s, 2 s, 3 s … 30 s, no jitter) and reset
 *   by any message; ours is exponential so that a fleet whose agent restarts does not hammer it in
 *   step, and a refused message does not reset it: a server that answers with nothing usable and
 *   drops the stream is failing, and would otherwise be redialled every second forever.
 * - The last good SVID is served until it expires (SourceCore's use-time check), then refused.
 */
import { type Clock, type Timer, systemClock } from '../clock.js';
import { IdentityUnavailableError, SvidError } from '../errors.js';
import { type IdentityName } from '../identity/name.js';
import { type ExpectedIdentity, identityMismatch } from '../identity/workload-id.js';
import { decodeX509SVIDResponse } from '../proto/workload.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { CoreBackedSource, SourceCore } from './source.js';
import { type WorkloadApiAddress, parseWorkloadApiAddress } from './workload-api-address.js';
import { type StreamEnd, type X509Stream, describeEnd, openX509Stream } from './workload-api-client.js';
import { describeOffered, x509ContextFrom } from './workload-api-svids.js';

export interface WorkloadApiSourceOptions {
  /** `unix:///run/spire/sockets/agent.sock` or `tcp://127.0.0.1:8081`, or an address already parsed. */
  readonly address: string | WorkloadApiAddress;
  /** Take the SVID with this hint instead of the first. */
  readonly hint?: string;
  readonly clock?: Clock;
  /** For the backoff's jitter; ∈ [0, 1). */
  readonly random?: () => number;
  /** Told about every refused message and every stream failure (the same message once in a row). */
  readonly onError?: (err: Error) => void;
  /** Refuse an SVID for any other SPIFFE ID (createMesh passes the workload's). */
  readonly expect?: ExpectedIdentity;
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
}

/** gRPC codes after which the spec says not to retry. */
const INVALID_ARGUMENT = 3;
const UNIMPLEMENTED = 12;
const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;

/**
 * The wait before reconnect attempt `attempt` (0 after a message): 1 s doubling to 30 s, minus up to
 * 20 % jitter (`random` ∈ [0, 1)), so it never exceeds the cap.
 */
export function workloadApiBackoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(attempt, 16));
  return Math.round(base * (1 - 0.2 * random()));
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class WorkloadApiSource extends CoreBackedSource {
  readonly address: WorkloadApiAddress;
  readonly #opts: WorkloadApiSourceOptions;
  readonly #random: () => number;
  #stream: X509Stream | undefined;
  #retry: Timer | undefined;
  #attempt = 0;
  #calls = 0;
  /** Set when the source stops for good (InvalidArgument, Unimplemented, grpc-js missing): ready() rejects with it. */
  #stopped: Error | undefined;
  /** The first SVID was refused for its SPIFFE ID: ready() rejects with it at once, as every source's. */
  #startRefusal: Error | undefined;
  #waiters = new Set<Waiter>();
  #reported: string | undefined;

  constructor(opts: WorkloadApiSourceOptions) {
    const address = typeof opts.address === 'string' ? parseWorkloadApiAddress(opts.address) : opts.address;
    super(
      new SourceCore('workload-api', opts.clock ?? systemClock, `SPIFFE Workload API at ${address.uri}`, {
        ...(opts.expect && { expect: opts.expect }),
        ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
      }),
    );
    this.address = address;
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
  }

  /** Opens the stream; ready() waits for its first message. */
  start(): void {
    if (this.#calls === 0) void this.#connect();
  }

  /** How many FetchX509SVID calls this source has made (for tests and diagnostics). */
  get calls(): number {
    return this.#calls;
  }

  async #connect(): Promise<void> {
    this.#retry = undefined;
    if (this.core.closed || this.#stopped) return;
    const call = ++this.#calls;
    let stream: X509Stream;
    try {
      stream = await openX509Stream(this.address, {
        onMessage: (bytes) => this.#onMessage(bytes),
        onEnd: (end) => this.#onEnd(call, end),
      });
    } catch (e) {
      return this.#stop(e as Error); // grpc-js cannot be loaded: retrying will not help
    }
    if (this.core.closed) stream.cancel();
    else this.#stream = stream;
  }

  #onMessage(bytes: Buffer): void {
    if (this.core.closed) return;
    try {
      const ctx = x509ContextFrom(decode(bytes), { hint: this.#opts.hint, now: this.core.clock.now() });
      this.#checkIdentity(ctx.svid.spiffeId, bytes);
      this.core.accept(ctx.svid, ctx.bundles);
      this.#attempt = 0; // the server is there and serving: the next failure starts the backoff over
      this.#reported = undefined;
      this.#settle();
    } catch (e) {
      const cause = e as Error;
      const err = cause instanceof IdentityUnavailableError ? cause : new SvidError(
        `the ${this.#describe()} sent an X509SVIDResponse that was refused` +
          (this.core.current ? ' (the previous SVID stays in use)' : '') + `: ${cause.message}`,
        { cause },
      );
      if (cause instanceof IdentityUnavailableError && !this.core.current) this.#startRefusal = err;
      this.#failed(err);
      if (this.#startRefusal) this.#settle();
    }
  }

  /** An SVID for another SPIFFE ID than the workload's: refused, telling a SPIRE user what to set. */
  #checkIdentity(id: IdentityName, bytes: Buffer): void {
    const expect = this.#opts.expect;
    const why = expect && identityMismatch(expect, id, `the ${this.#describe()}`);
    if (!why) return;
    const offered = describeOffered(decode(bytes).svids);
    throw new IdentityUnavailableError(
      `${why} A SPIRE agent hands out the SVIDs of the registration entries that match this process (offered: ${offered}): ` +
        `set spiffeId to the ID of the entry to use${this.#opts.hint === undefined ? ' (and identity.workloadApi.hint to pick it among several)' : ''}, ` +
        'or register an entry for this workload\'s SPIFFE ID.',
    );
  }

  #onEnd(call: number, end: StreamEnd): void {
    if (this.core.closed || call !== this.#calls) return;
    this.#stream = undefined;
    const what = describeEnd(this.address, end);
    if (end.code === INVALID_ARGUMENT || end.code === UNIMPLEMENTED) {
      const why = end.code === INVALID_ARGUMENT
        ? 'the server refused the request (a Workload API answers InvalidArgument to a call without the workload.spiffe.io header, which sidecarless always sends: is this a SPIFFE Workload API endpoint?)'
        : 'the server does not implement FetchX509SVID (is this a SPIFFE Workload API endpoint?)';
      return this.#stop(new IdentityUnavailableError(`${what}; ${why}. Not retrying (the SPIFFE Workload Endpoint spec says not to): fix the endpoint and restart.`));
    }
    const delay = workloadApiBackoff(this.#attempt++, this.#random);
    const kept = this.core.current ? '; the last good SVID stays in use until it expires' : '';
    this.#failed(new IdentityUnavailableError(`${what}${kept}; reconnecting in ${(delay / 1000).toFixed(1)} s`));
    this.#retry = this.core.clock.setTimeout(() => this.#connect(), delay);
  }

  #stop(err: Error): void {
    this.#stopped = err;
    this.#failed(err);
    this.#settle();
  }

  #failed(err: Error): void {
    this.core.fail(err);
    // A backoff message names its delay; the same failure again is reported once.
    const key = err.message.replace(/reconnecting in [\d.]+ s$/, '');
    if (key !== this.#reported) {
      try {
        this.#opts.onError?.(err);
      } catch {
        // Called from grpc-js's stream events: a throwing listener must not become an uncaught exception.
      }
    }
    this.#reported = key;
  }

  #describe(): string {
    return `SPIFFE Workload API at ${this.address.uri}`;
  }

  /** Answers the ready() waiters: resolved with an SVID, else rejected when the source cannot get one. */
  #settle(): void {
    const refusal = this.core.current ? undefined : (this.#startRefusal ?? this.#stopped);
    if (!this.core.current && !refusal) return;
    for (const w of this.#waiters) (refusal ? w.reject(refusal) : w.resolve());
    this.#waiters.clear();
  }

  override ready(timeoutMs = 15_000): Promise<void> {
    if (this.core.current) return Promise.resolve();
    const refusal = this.#startRefusal ?? this.#stopped;
    if (refusal) return Promise.reject(refusal);
    if (this.core.closed) return Promise.reject(new IdentityUnavailableError(`the ${this.#describe()} identity source is closed`));
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => () => {
        timer.cancel();
        this.#waiters.delete(waiter);
        fn();
      };
      const waiter: Waiter = { resolve: done(resolve), reject: (err) => done(() => reject(err))() };
      // Kept alive: a caller awaits this answer (as SourceCore's ready()).
      const timer = this.core.clock.setTimeout(
        done(() => {
          const last = this.core.lastError;
          reject(new IdentityUnavailableError(
            `no X.509-SVID from the ${this.#describe()} after ${timeoutMs} ms` + (last ? `: ${last.message}` : ' (the stream is open, no message came)') +
              '. The mesh refuses traffic until it has one.',
            { cause: last },
          ));
        }),
        timeoutMs,
        { keepAlive: true },
      );
      this.#waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    this.core.close();
    this.#retry?.cancel();
    this.#retry = undefined;
    this.#stream?.cancel();
    this.#stream = undefined;
    const closed = new IdentityUnavailableError(`the ${this.#describe()} identity source is closed`);
    for (const w of this.#waiters) w.reject(closed);
    this.#waiters.clear();
  }
}

function decode(bytes: Buffer) {
  try {
    return decodeX509SVIDResponse(bytes);
  } catch (e) {
    throw new SvidError(`the bytes are not an X509SVIDResponse: ${(e as Error).message}`, { cause: e });
  }
}

/** Creates a Workload API source and opens its stream (ready() waits for the first message). */
export function createWorkloadApiSource(opts: WorkloadApiSourceOptions): WorkloadApiSource {
  const s = new WorkloadApiSource(opts);
  s.start();
  return s;
}
