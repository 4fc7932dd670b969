import { type Clock, type Timer } from '../clock.js';
import { IdentityUnavailableError } from '../errors.js';
import { type BundleSet, type X509Bundle } from '../identity/bundle.js';
import { type ParsedCertificate } from '../identity/certificate.js';
import { type IdentityName } from '../identity/name.js';
import { type ExpectedIdentity, checkExpected, identityMismatch } from '../identity/workload-id.js';
import { type SvidLifecycleEvent, renewalPoint } from './lifecycle.js';

/** The workload's own X.509-SVID, verified, with its key. */
export interface X509Svid {
  /** Who the SVID names: its SPIFFE ID, or a DNS-like identity for a Linkerd leaf (the field keeps its name; `.id` is the string either way). */
  readonly spiffeId: IdentityName;
  /** Leaf first, then intermediates. */
  readonly chain: readonly ParsedCertificate[];
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly notBefore: number;
  /** The earliest expiry on the path to the root: after it the SVID is useless. */
  readonly notAfter: number;
  /** The Workload API's hint for this SVID, when the server sent one (SPIFFE_Workload_API.md §8). */
  readonly hint?: string;
}

export type SourceState = 'starting' | 'ready' | 'stale' | 'expired' | 'closed';

/** What `mesh.stats().identity` shows. */
export interface SourceStatus {
  readonly kind: string;
  /** Where the SVID comes from, in words: `identity directory /run/svid`, `SPIFFE Workload API at unix:///…`, `Istio CA at istiod…:15012`. */
  readonly from?: string;
  /** starting: no SVID yet; ready: valid SVID; stale: valid SVID but the last refresh failed; expired: fail closed. */
  readonly state: SourceState;
  readonly spiffeId?: string;
  readonly serialNumber?: string;
  /** The Workload API hint of the SVID in use, when it has one. */
  readonly hint?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  /** The renewal point (75 % of the lifetime): past it with no renewal, the mesh logs a warning. */
  readonly renewAt?: string;
  readonly secondsLeft?: number;
  readonly rotations: number;
  /** Refreshes that failed since the source started (each kept the last good SVID). */
  readonly failures?: number;
  /** When the source next asks for a new SVID, for sources that ask (a CA); a pushing source (the Workload API) has none. */
  readonly nextRefresh?: string;
  readonly lastUpdate?: string;
  readonly lastError?: string;
  readonly trustDomains: readonly string[];
}

/**
 * Where the workload's identity comes from (go-spiffe's X509Source): the current SVID, the bundle
 * of any trust domain, an update event, and close. Implementations: dir (watched PEM files),
 * dev CA (issued in process), later the SPIFFE Workload API, Istio CA and Linkerd identity.
 */
export interface X509Source {
  /** The current SVID. Throws IdentityUnavailableError (with the reason) when none is valid now: expiry is checked here, at use time. */
  getX509Svid(): X509Svid;
  /** Bundles by trust domain (own and federated). */
  getBundles(): BundleSet;
  getBundle(trustDomain: string): X509Bundle | undefined;
  /** Called after each accepted change (new SVID or bundles). Returns an unsubscribe function. */
  onUpdate(listener: () => void): () => void;
  /** Resolves once an SVID is available; rejects with IdentityUnavailableError after `timeoutMs`, saying why. */
  ready(timeoutMs?: number): Promise<void>;
  status(): SourceStatus;
  close(): Promise<void>;
  /**
   * Renews now if the SVID is due (past its planned refresh, or with no valid SVID): what a thawed
   * serverless function calls before its first connection (its timers did not run while frozen).
   * Resolves when that attempt ended, whatever its outcome (getX509Svid says the result). Optional:
   * a source that is pushed its SVIDs (the Workload API) has nothing to ask for.
   */
  refreshIfDue?(): Promise<void>;
}

/**
 * A timer that fires this much later than it was due means the process was frozen (SIGSTOP, a
 * serverless platform between invocations) or starved: its lifecycle report waits THAW_GRACE_MS for
 * the refresh the thaw triggers, instead of logging an expiry a renewal is about to cure.
 */
export const LATE_TIMER_MS = 100;
export const THAW_GRACE_MS = 2_000;

export interface SourceCoreOptions {
  /**
   * Refuse an SVID for any other SPIFFE ID: before the first SVID, ready() rejects at once with
   * IdentityUnavailableError naming both IDs; later, the rotation is rejected and the previous SVID
   * stays in use.
   */
  readonly expect?: ExpectedIdentity;
  /** Told when the SVID passes its renewal point or expires with no renewal, and when a renewal follows (each once per SVID). */
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
}

type Phase = 'fresh' | 'renewal-overdue' | 'expired';

/**
 * The state every source keeps: the accepted SVID and bundles, listeners, the last error, and the
 * use-time expiry check. Sources own the fetching; this owns the rules for what is served, and
 * watches the served SVID's age (renewal point, expiry) by an unref()ed timer of its clock and at use time.
 */
export class SourceCore {
  #svid: X509Svid | undefined;
  #bundles: BundleSet = new Map();
  #listeners = new Set<() => void>();
  #waiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  #lastError: Error | undefined;
  #lastUpdate: number | undefined;
  #rotations = 0;
  #failures = 0;
  #nextRefresh: number | undefined;
  #closed = false;
  /** Set when the first SVID was refused for its ID: ready() rejects with it instead of waiting. */
  #startRefusal: Error | undefined;
  #phase: Phase = 'fresh';
  #renewAt = Infinity;
  /** When the served SVID next changes phase (renewal point, expiry): checked at use time. */
  #nextCheck = Infinity;
  #timer: Timer | undefined;
  /** After a late timer (a thaw): lifecycle reports wait until then for the renewal the thaw asks for. */
  #quietUntil = -Infinity;

  constructor(
    readonly kind: string,
    readonly clock: Clock,
    private readonly describe: string,
    private readonly options: SourceCoreOptions = {},
  ) {
    if (options.expect) checkExpected(options.expect); // a bad expectation fails here, not on the first SVID
    if (typeof clock.setTimeout !== 'function' || typeof clock.setInterval !== 'function') {
      // A clock with now() only (enough for a DevCa) cannot run a source's renewal and expiry timers.
      throw new TypeError(`the clock given to the ${describe} source has no setTimeout()/setInterval(): pass a full Clock (systemClock, or a VirtualClock in tests)`);
    }
  }

  get current(): X509Svid | undefined {
    return this.#svid;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Accepts a new, already verified SVID and bundle set, and tells listeners. Throws
   * IdentityUnavailableError (and keeps what it had) when the SVID is for another SPIFFE ID than
   * the one expected.
   */
  accept(svid: X509Svid, bundles: BundleSet): void {
    if (this.#closed) return;
    const why = this.options.expect && identityMismatch(this.options.expect, svid.spiffeId, `the ${this.describe}`);
    if (why) {
      const err = new IdentityUnavailableError(why);
      this.#lastError = err;
      if (!this.#svid) {
        this.#startRefusal = err;
        for (const w of this.#waiters) w.reject(err);
        this.#waiters.clear();
      }
      throw err;
    }
    const previous = this.#svid;
    const changed = !previous || previous.chain[0]!.fingerprint !== svid.chain[0]!.fingerprint || previous.notAfter !== svid.notAfter;
    const renewedAfter = previous && changed && this.#phase !== 'fresh' ? this.#phase : undefined;
    // A rotation is a new SVID: a push source resends the whole state for a bundle change (or for nothing), and that is no rotation.
    if (previous && changed) this.#rotations++;
    // The same SVID and the same roots again (a Workload API resending its state): nothing to tell,
    // and nothing for the TLS layer to rebuild; it still counts as a successful refresh.
    const same = !changed && previous!.hint === svid.hint && sameBundles(this.#bundles, bundles);
    this.#lastError = undefined;
    this.#startRefusal = undefined;
    this.#lastUpdate = this.clock.now();
    if (same) return;
    this.#svid = svid;
    this.#bundles = bundles;
    if (changed) this.#track(svid);
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        // A listener's failure must not stop the others from learning about the rotation.
      }
    }
    if (renewedAfter) this.#emit({ kind: 'renewed', svid: facts(svid), previous: renewedAfter, source: this.#sourceFacts() });
  }

  /** A new SVID starts fresh: watch for its renewal point, then its expiry. */
  #track(svid: X509Svid): void {
    this.#phase = 'fresh';
    this.#quietUntil = -Infinity;
    this.#renewAt = renewalPoint(svid.notBefore, svid.notAfter);
    this.#nextCheck = this.#renewAt;
    this.#arm();
  }

  #arm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#closed || this.#nextCheck === Infinity) return;
    // Whole milliseconds, rounded up: the timer never wakes before the point (renewal points are fractional).
    const due = Math.max(this.#nextCheck, this.clock.now());
    this.#timer = this.clock.setTimeout(() => this.#fired(due), Math.ceil(this.#nextCheck - this.clock.now()));
  }

  /** The phase timer fired; late by more than LATE_TIMER_MS (a thaw), the report waits out THAW_GRACE_MS first. */
  #fired(due: number): void {
    const now = this.clock.now();
    if (now - due > LATE_TIMER_MS) this.#quietUntil = now + THAW_GRACE_MS;
    this.#tick(now);
  }

  /** Moves the served SVID to the phase `now` puts it in, telling the owner once per phase. */
  #tick(now: number): void {
    const svid = this.#svid;
    if (!svid || this.#closed) return;
    if (now < this.#quietUntil) {
      // Thawed: the source's own late timers (and the thaw hook) are renewing; re-check after the grace.
      this.#timer?.cancel();
      this.#timer = this.clock.setTimeout(() => this.#tick(this.clock.now()), Math.ceil(this.#quietUntil - now));
      return;
    }
    if (this.#phase === 'fresh' && now >= this.#renewAt && now <= svid.notAfter) {
      this.#phase = 'renewal-overdue';
      this.#nextCheck = svid.notAfter + 1;
      this.#emit({ kind: 'renewal-overdue', svid: facts(svid), renewAt: this.#renewAt, now, source: this.#sourceFacts() });
    }
    if (this.#phase !== 'expired' && now > svid.notAfter) {
      this.#phase = 'expired';
      this.#nextCheck = Infinity;
      this.#emit({ kind: 'expired', svid: facts(svid), source: this.#sourceFacts() });
    }
    this.#arm(); // an early wake-up (a clock moved back) re-arms for the same point
  }

  #emit(event: SvidLifecycleEvent): void {
    try {
      this.options.onLifecycle?.(event);
    } catch {
      // A logger's failure must not change what is served.
    }
  }

  #sourceFacts(): SvidLifecycleEvent['source'] {
    return { kind: this.kind, describe: this.describe, ...(this.#lastError && { lastError: this.#lastError.message }) };
  }

  /** Records a failed refresh: the last good SVID stays in use. */
  fail(err: Error): void {
    this.#lastError = err;
    this.#failures++;
  }

  /** Records when the source will next ask for an SVID (shown by status()); undefined: it does not ask. */
  plannedRefresh(at: number | undefined): void {
    this.#nextRefresh = at;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  getX509Svid(): X509Svid {
    const svid = this.#svid;
    if (this.#closed) throw new IdentityUnavailableError(`the ${this.describe} identity source is closed`);
    const now = this.clock.now();
    if (now >= this.#nextCheck) this.#tick(now); // a frozen process missed its timer
    if (!svid) {
      throw new IdentityUnavailableError(
        `no X.509-SVID yet from the ${this.describe}` + (this.#lastError ? `: ${this.#lastError.message}` : ''),
        { cause: this.#lastError },
      );
    }
    if (now > svid.notAfter) {
      throw new IdentityUnavailableError(
        `the X.509-SVID for ${svid.spiffeId.id} expired at ${new Date(svid.notAfter).toISOString()} and no renewal ` +
          `arrived from the ${this.describe}` + (this.#lastError ? ` (last error: ${this.#lastError.message})` : '') +
          '. Refusing to serve or call with it.',
      );
    }
    return svid;
  }

  getBundles(): BundleSet {
    return this.#bundles;
  }

  onUpdate(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  ready(timeoutMs = 15_000): Promise<void> {
    if (this.#svid) return Promise.resolve();
    if (this.#startRefusal) return Promise.reject(this.#startRefusal);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          timer.cancel();
          resolve();
        },
        reject: (err: Error) => {
          timer.cancel();
          reject(err);
        },
      };
      const expire = () => {
        this.#waiters.delete(waiter);
        reject(
          new IdentityUnavailableError(
            `no X.509-SVID from the ${this.describe} after ${timeoutMs} ms` +
              (this.#lastError ? `: ${this.#lastError.message}` : '') +
              '. The mesh refuses traffic until it has one.',
            { cause: this.#lastError },
          ),
        );
      };
      // Kept alive: a caller is awaiting this answer, and must get it even when nothing else keeps the process alive.
      const timer = this.clock.setTimeout(expire, timeoutMs, { keepAlive: true });
      this.#waiters.add(waiter);
    });
  }

  status(): SourceStatus {
    const svid = this.#svid;
    const now = this.clock.now();
    if (now >= this.#nextCheck) this.#tick(now);
    const state: SourceState = this.#closed
      ? 'closed'
      : !svid
        ? 'starting'
        : now > svid.notAfter
          ? 'expired'
          : this.#lastError
            ? 'stale'
            : 'ready';
    return {
      kind: this.kind,
      from: this.describe,
      state,
      rotations: this.#rotations,
      failures: this.#failures,
      ...(this.#nextRefresh !== undefined && Number.isFinite(this.#nextRefresh) && !this.#closed && { nextRefresh: new Date(this.#nextRefresh).toISOString() }),
      trustDomains: [...this.#bundles.keys()],
      ...(svid && {
        spiffeId: svid.spiffeId.id,
        serialNumber: svid.chain[0]!.serialNumber,
        ...(svid.hint !== undefined && { hint: svid.hint }),
        notBefore: new Date(svid.notBefore).toISOString(),
        notAfter: new Date(svid.notAfter).toISOString(),
        renewAt: new Date(this.#renewAt).toISOString(),
        secondsLeft: Math.max(0, Math.floor((svid.notAfter - now) / 1000)),
      }),
      ...(this.#lastUpdate !== undefined && { lastUpdate: new Date(this.#lastUpdate).toISOString() }),
      ...(this.#lastError && { lastError: this.#lastError.message }),
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}

/** The same trust domains with the same roots (by fingerprint, in order). */
function sameBundles(a: BundleSet, b: BundleSet): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [td, x] of a) {
    const y = b.get(td);
    if (!y || y.roots.length !== x.roots.length || y.roots.some((r, i) => r.fingerprint !== x.roots[i]!.fingerprint)) return false;
  }
  return true;
}

function facts(svid: X509Svid): { spiffeId: string; serialNumber: string; notAfter: number } {
  return { spiffeId: svid.spiffeId.id, serialNumber: svid.chain[0]!.serialNumber, notAfter: svid.notAfter };
}

/**
 * When to renew: at 50 % of the lifetime ± 10 % jitter (SPIRE and Istio renew at half-life), so
 * a fleet issued at once does not renew at once. `random` ∈ [0, 1).
 */
export function rotationTime(notBefore: number, notAfter: number, random: () => number = Math.random): number {
  const lifetime = notAfter - notBefore;
  const fraction = 0.5 + (random() * 2 - 1) * 0.1;
  return notBefore + lifetime * fraction;
}

/** Jittered exponential backoff for source retries: 500 ms, 1 s, 2 s … capped at 30 s, ± 50 %. */
export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16));
  return base * (0.5 + random());
}

/**
 * The X509Source surface, served from a SourceCore. Sources extend it and add only how they fetch
 * (and their own close); the rules for what is served stay in one place.
 */
export abstract class CoreBackedSource implements X509Source {
  protected readonly core: SourceCore;

  constructor(core: SourceCore) {
    this.core = core;
  }

  getX509Svid(): X509Svid {
    return this.core.getX509Svid();
  }
  getBundles(): BundleSet {
    return this.core.getBundles();
  }
  getBundle(trustDomain: string): X509Bundle | undefined {
    return this.core.getBundles().get(trustDomain);
  }
  onUpdate(listener: () => void): () => void {
    return this.core.onUpdate(listener);
  }
  ready(timeoutMs?: number): Promise<void> {
    return this.core.ready(timeoutMs);
  }
  status(): SourceStatus {
    return this.core.status();
  }
  abstract close(): Promise<void>;
}
