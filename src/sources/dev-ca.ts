import { type Clock, type Timer } from '../clock.js';
import { bundlesFromPem } from '../identity/bundle.js';
import { type DevCa } from '../identity/dev-ca.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { buildSvid } from './svid-set.js';
import { type X509Svid, CoreBackedSource, SourceCore, retryDelay, rotationTime } from './source.js';

export interface DevCaSourceOptions {
  ca: DevCa;
  spiffeId: string;
  /** SVID lifetime (default: the CA's, 1 h). */
  ttlMs?: number;
  clock?: Clock;
  random?: () => number;
  onError?: (err: Error) => void;
  /** Told when the SVID passes its renewal point or expires with no renewal, and when a renewal follows. */
  onLifecycle?: (event: SvidLifecycleEvent) => void;
}

/**
 * Issues the workload's SVID from an in-process dev CA and renews it at 50 % of its lifetime
 * ± 10 % jitter. The renewal timer (the clock's, unref()ed) keeps no process alive; a process
 * that was frozen past the renewal time (a serverless function) renews on its next use instead.
 */
export class DevCaSource extends CoreBackedSource {
  readonly #opts: DevCaSourceOptions;
  #timer: Timer | undefined;
  #rotateAt = Infinity;
  #issuing: Promise<void> | undefined;
  #attempt = 0;

  constructor(opts: DevCaSourceOptions) {
    super(new SourceCore('dev-ca', opts.clock ?? opts.ca.clock, `dev CA of ${opts.ca.trustDomain}`, opts.onLifecycle && { onLifecycle: opts.onLifecycle }));
    this.#opts = opts;
  }

  async start(): Promise<void> {
    await this.rotate();
  }

  /** Issues a new SVID now. Concurrent calls share one issuance. */
  rotate(): Promise<void> {
    this.#issuing ??= this.#issue().finally(() => {
      this.#issuing = undefined;
    });
    return this.#issuing;
  }

  async #issue(): Promise<void> {
    if (this.core.closed) return;
    const { ca } = this.#opts;
    try {
      const issued = await ca.issue({ spiffeId: this.#opts.spiffeId, ...(this.#opts.ttlMs !== undefined && { ttlMs: this.#opts.ttlMs }) });
      const bundles = bundlesFromPem(issued.bundlePem, ca.trustDomain);
      const svid = buildSvid(issued.certChainPem, issued.keyPem, bundles, this.core.clock.now());
      this.#attempt = 0;
      this.core.accept(svid, bundles);
      this.#schedule(rotationTime(Math.max(svid.notBefore, this.core.clock.now()), svid.notAfter, this.#opts.random));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.core.fail(err);
      this.#opts.onError?.(err);
      this.#schedule(this.core.clock.now() + retryDelay(this.#attempt++, this.#opts.random));
    }
  }

  #schedule(at: number): void {
    if (this.core.closed) return;
    this.#rotateAt = at;
    this.#timer?.cancel();
    this.#timer = this.core.clock.setTimeout(() => this.rotate(), Math.ceil(at - this.core.clock.now()));
  }

  override getX509Svid(): X509Svid {
    // Use-time check: a frozen process misses its timers.
    if (this.core.clock.now() >= this.#rotateAt && !this.#issuing) void this.rotate();
    return this.core.getX509Svid();
  }
  /** When the next renewal is due (ms since epoch). */
  get rotateAt(): number {
    return this.#rotateAt;
  }
  async close(): Promise<void> {
    this.core.close();
    this.#timer?.cancel();
    await this.#issuing;
  }
}

export async function createDevCaSource(opts: DevCaSourceOptions): Promise<DevCaSource> {
  const s = new DevCaSource(opts);
  await s.start();
  return s;
}
