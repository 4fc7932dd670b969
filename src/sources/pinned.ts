import { type Clock } from '../clock.js';
import { IdentityUnavailableError } from '../errors.js';
import { type BundleSet, type DnsDomainAnchors, withDnsBundles } from '../identity/bundle.js';
import { type ExpectedIdentity } from '../identity/workload-id.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { type X509Source, type X509Svid, CoreBackedSource, SourceCore } from './source.js';
import { buildSvid } from './svid-set.js';

export interface PinnedSourceOptions {
  /** The SPIFFE ID every SVID from the source must have. */
  expect: ExpectedIdentity;
  clock: Clock;
  onError?: (err: Error) => void;
  onLifecycle?: (event: SvidLifecycleEvent) => void;
  /**
   * Trust anchors of DNS-like identity domains (Linkerd's), added to the upstream's bundles under
   * their `dns:` keys: what lets a DNS-SAN SVID verify, and peers of those domains be verified.
   * Checked at construction (a bad PEM throws here).
   */
  dnsDomains?: readonly DnsDomainAnchors[];
}

/**
 * A source the user gave createMesh, held to the mesh's rules: every SVID it serves is verified
 * again from its PEM (key matches the leaf; chain, SVID rules and key strength against its own
 * bundles) and must be for the workload's SPIFFE ID. A refused rotation keeps the previous SVID,
 * with the error in status() and told to onError. Changes are picked up from onUpdate and, for
 * sources that do not announce them, at use time (one reference comparison).
 *
 * close() stops watching; the user's source stays open (it is theirs to close).
 */
export class PinnedSource extends CoreBackedSource {
  readonly #upstream: X509Source;
  readonly #opts: PinnedSourceOptions;
  readonly #unsubscribe: () => void;
  #seen: X509Svid | undefined;
  #seenBundles: BundleSet | undefined;

  constructor(upstream: X509Source, opts: PinnedSourceOptions) {
    const kind = safeKind(upstream);
    super(
      new SourceCore(kind, opts.clock, `identity source (${kind})`, {
        expect: opts.expect,
        ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
      }),
    );
    this.#upstream = upstream;
    this.#opts = opts;
    if (opts.dnsDomains?.length) withDnsBundles(new Map(), opts.dnsDomains); // a bad anchor set fails now
    this.#unsubscribe = upstream.onUpdate(() => this.#sync());
  }

  /** The source this one pins. */
  get upstream(): X509Source {
    return this.#upstream;
  }

  /** On the upstream's update event: take its SVID, if it has one. */
  #sync(): void {
    try {
      this.#take(this.#upstream.getX509Svid());
    } catch {
      // Nothing to take now (the upstream has no valid SVID, or its bundles cannot be read):
      // getX509Svid reports the upstream's reason at use time.
    }
  }

  /** Takes the upstream's SVID when it changed: verified and for the expected ID, or refused (the previous one stays). */
  #take(svid: X509Svid): void {
    const upstreamBundles = this.#upstream.getBundles();
    if (this.core.closed || (svid === this.#seen && upstreamBundles === this.#seenBundles)) return;
    this.#seen = svid;
    this.#seenBundles = upstreamBundles;
    try {
      const domains = this.#opts.dnsDomains;
      const bundles = domains?.length ? withDnsBundles(upstreamBundles, domains) : upstreamBundles;
      this.core.accept(buildSvid(svid.certChainPem, svid.keyPem, bundles, this.core.clock.now()), bundles);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.core.fail(err);
      try {
        this.#opts.onError?.(err);
      } catch {
        // Called at use time (a handshake, a request): a logger's failure must not become theirs.
      }
    }
  }

  override getX509Svid(): X509Svid {
    // Fail closed: when the user's source refuses (closed, expired), so does this one.
    this.#take(this.#upstream.getX509Svid());
    return this.core.getX509Svid();
  }

  /** The upstream's refresh, when it has one, then its SVID taken. */
  async refreshIfDue(): Promise<void> {
    await this.#upstream.refreshIfDue?.();
    this.#sync();
  }

  override async ready(timeoutMs?: number): Promise<void> {
    await this.#upstream.ready(timeoutMs);
    this.#take(this.#upstream.getX509Svid());
    if (this.core.current) return;
    // The upstream has an SVID and it was refused: say why now instead of waiting.
    const why = this.core.lastError;
    if (why instanceof IdentityUnavailableError) throw why;
    throw new IdentityUnavailableError(`the X.509-SVID from the identity source was refused: ${why?.message ?? 'the source has none'}`, { cause: why });
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    this.core.close();
  }
}

function safeKind(source: X509Source): string {
  try {
    return source.status().kind || 'source';
  } catch {
    return 'source';
  }
}
