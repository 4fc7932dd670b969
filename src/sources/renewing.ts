/**
 * A source whose SVID is issued by a CA on request and renewed before it expires: the shape of
 * istio-agent against istiod's CA, of Linkerd's identity client, and of the dev CA. Per renewal it
 * makes a fresh P-256 key and a CSR naming the workload's SPIFFE ID, asks the issuer, and accepts
 * the answer only as a verified set (chain to the bundle, key matching the leaf, the expected
 * SPIFFE ID: SourceCore's rules). Renewal at 50 % of the lifetime ± 10 % jitter (DESIGN.md); a
 * failure keeps the last good SVID and retries with backoff; the timers are the clock's (unref()ed,
 * no process kept alive), and a process frozen past the renewal point (a serverless function)
 * renews at its next use instead.
 *
 * Two limits on what an issuer's answer can do: its bundle may hold roots of the issuer's own trust
 * domain only (a CA of cluster.local cannot make this workload trust peers of another trust domain:
 * such an answer is refused), and a renewal comes MIN_RENEWAL_INTERVAL_MS after the last at the
 * earliest (an SVID with no life left, a CA whose clock lags, never make a loop of CSRs).
 */
import { type Clock, type Timer } from '../clock.js';
import { type BundleSet, bundlesFromPem } from '../identity/bundle.js';
import { type CsrName } from '../identity/csr.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../identity/keys.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { buildSvid } from './svid-set.js';
import { type X509Svid, CoreBackedSource, SourceCore, retryDelay, rotationTime } from './source.js';

/** What a CA answers to a CSR. */
export interface IssuedChain {
  /** The leaf, then intermediates (a root at the end is tolerated). */
  readonly certChainPem: string;
  /** The trust roots of the CA's trust domain. */
  readonly bundlePem: string;
  /**
   * When the CA says the certificate ends (Linkerd's valid_until), ms since epoch; the renewal
   * policy is given it. Default: the verified chain's notAfter.
   */
  readonly validUntil?: number;
  /**
   * The bundles, built by the issuer (Linkerd's anchors under their `dns:` key); default
   * bundlesFromPem(bundlePem, trustDomain). Keys other than the issuer's trustDomain are refused.
   */
  readonly bundles?: BundleSet;
}

/** A CA that signs CSRs: the dev CA, the Istio CA (issue 11), Linkerd's identity service. */
export interface Issuer {
  /** For status and messages: `dev CA of cluster.local`, `istiod.istio-system.svc:15012`. */
  readonly description: string;
  /** The trust domain its bundle is for. */
  readonly trustDomain: string;
  /** Signs `csrPem` for `spiffeId`; rejects (with a message that says why) when it will not. */
  issue(request: { csrPem: string; spiffeId: string; ttlMs?: number }): Promise<IssuedChain>;
}

/** The earliest a renewal follows a successful one: at most two issuances a second, whatever the CA answers. */
export const MIN_RENEWAL_INTERVAL_MS = 500;

export interface RenewingSourceOptions {
  readonly issuer: Issuer;
  readonly spiffeId: string;
  /** Requested SVID lifetime (the issuer may shorten it). */
  readonly ttlMs?: number;
  /** For status: 'dev-ca', 'istio-ca', … */
  readonly kind: string;
  readonly clock: Clock;
  readonly random?: () => number;
  readonly onError?: (err: Error) => void;
  /** Told when the SVID passes its renewal point or expires with no renewal, and when a renewal follows. */
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
  /** What the CSR names; default `spiffeId` (its URI SAN). `{ dns }`: a DNS SAN only (Linkerd). */
  readonly csrName?: CsrName;
  /**
   * When to renew an SVID valid from `notBefore` until `notAfter` (the issuer's validUntil when it
   * gives one), decided at `now`. Default 50 % of the lifetime ± 10 % (rotationTime); Linkerd's is
   * linkerdRefreshAt. Never sooner than MIN_RENEWAL_INTERVAL_MS after `now`.
   */
  readonly renewAt?: (svid: { readonly notBefore: number; readonly notAfter: number }, now: number) => number;
}

export class RenewingSource extends CoreBackedSource {
  readonly #opts: RenewingSourceOptions;
  #timer: Timer | undefined;
  #rotateAt = Infinity;
  #issuing: Promise<void> | undefined;
  #attempt = 0;

  constructor(opts: RenewingSourceOptions) {
    super(new SourceCore(opts.kind, opts.clock, opts.issuer.description, opts.onLifecycle && { onLifecycle: opts.onLifecycle }));
    this.#opts = opts;
  }

  async start(): Promise<void> {
    await this.rotate();
  }

  /** Renews now. Concurrent calls share one issuance. */
  rotate(): Promise<void> {
    this.#issuing ??= this.#renew().finally(() => {
      this.#issuing = undefined;
    });
    return this.#issuing;
  }

  async #renew(): Promise<void> {
    if (this.core.closed) return;
    const { issuer, spiffeId } = this.#opts;
    try {
      const keys = await generateKeyPair();
      const csrPem = await createCsr(keys, this.#opts.csrName ?? spiffeId);
      const issued = await issuer.issue({ csrPem, spiffeId, ...(this.#opts.ttlMs !== undefined && { ttlMs: this.#opts.ttlMs }) });
      if (this.core.closed) return;
      const bundles = issued.bundles ?? bundlesFromPem(issued.bundlePem, issuer.trustDomain);
      const foreign = [...bundles.keys()].filter((td) => td !== issuer.trustDomain);
      if (foreign.length > 0) {
        throw new Error(
          `the ${issuer.description} answered a bundle with roots of trust domain ${foreign.join(', ')}: a CA of ${issuer.trustDomain} vouches for ${issuer.trustDomain} only. ` +
            'Refused (a root names its trust domain in a spiffe:// URI SAN; remove such roots from the CA\'s chain or the pinned root file)',
        );
      }
      const svid = buildSvid(issued.certChainPem, await privateKeyToPem(keys.privateKey), bundles, this.core.clock.now());
      if (svid.spiffeId.id !== spiffeId) throw new Error(`${issuer.description} issued an SVID for ${svid.spiffeId.id}, not for ${spiffeId} as asked: refused`);
      this.core.accept(svid, bundles);
      this.#attempt = 0;
      this.#schedule(this.#renewalTime(svid, issued.validUntil));
    } catch (e) {
      if (this.core.closed) return; // an issuance cut short by close() is not a failure to report
      const err = e instanceof Error ? e : new Error(String(e));
      this.core.fail(err);
      this.#schedule(this.core.clock.now() + retryDelay(this.#attempt++, this.#opts.random));
      try {
        this.#opts.onError?.(err);
      } catch {
        // A logger's failure must not stop the retry (nor reject a renewal nobody awaits: the process would exit).
      }
    }
  }

  #renewalTime(svid: X509Svid, validUntil: number | undefined): number {
    const now = this.core.clock.now();
    const at = this.#opts.renewAt
      ? this.#opts.renewAt({ notBefore: svid.notBefore, notAfter: validUntil ?? svid.notAfter }, now)
      : rotationTime(Math.max(svid.notBefore, now), svid.notAfter, this.#opts.random);
    return Math.max(at, now + MIN_RENEWAL_INTERVAL_MS);
  }

  #schedule(at: number): void {
    if (this.core.closed) return;
    this.#rotateAt = at;
    this.core.plannedRefresh(at);
    this.#timer?.cancel();
    this.#timer = this.core.clock.setTimeout(() => this.rotate(), Math.ceil(at - this.core.clock.now()));
  }

  override getX509Svid(): X509Svid {
    // Use-time check: a frozen process misses its timers.
    if (this.core.clock.now() >= this.#rotateAt && !this.#issuing) void this.rotate();
    return this.core.getX509Svid();
  }

  /** Renews now when the renewal (or retry) is due: a thawed process's timer has not run yet. */
  async refreshIfDue(): Promise<void> {
    if (this.core.clock.now() >= this.#rotateAt || this.#issuing) await this.rotate();
  }

  /** When the next renewal (or retry) is due (ms since epoch). */
  get rotateAt(): number {
    return this.#rotateAt;
  }

  async close(): Promise<void> {
    this.core.close();
    this.#timer?.cancel();
    await this.#issuing;
  }
}
