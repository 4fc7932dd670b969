import { type Clock, systemClock } from '../clock.js';
import { type IstioCaIssuerOptions, type ClosableIssuer, istioCaIssuer, validitySeconds } from './issuers/istio-ca.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { RenewingSource } from './renewing.js';

/** Istio's default workload certificate lifetime (istio-agent SECRET_TTL). */
export const DEFAULT_ISTIO_CA_TTL_MS = 24 * 3_600_000;

export interface IstioCaSourceOptions extends IstioCaIssuerOptions {
  /** The SPIFFE ID the token must be for: an SVID for any other is refused. */
  readonly spiffeId: string;
  /** Requested lifetime (validity_duration); default 24 h. */
  readonly ttlMs?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onError?: (err: Error) => void;
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
}

/**
 * The workload's SVID from istiod's CA (or any server of IstioCertificateService): a renewing source
 * (renewing.ts, kind 'istio-ca') whose issuer is the CA over pinned TLS (issuers/istio-ca.ts).
 * Renewed at 50 % of the lifetime ± 10 %; failures keep the last good SVID and retry with backoff;
 * a process frozen past the renewal point renews at its next use. close() closes the gRPC channel.
 */
export class IstioCaSource extends RenewingSource {
  readonly #issuer: ClosableIssuer;

  constructor(opts: IstioCaSourceOptions) {
    if (opts.ttlMs !== undefined) validitySeconds(opts.ttlMs); // a bad lifetime fails here, not at every renewal
    const issuer = istioCaIssuer(opts);
    super({
      issuer,
      spiffeId: opts.spiffeId,
      kind: 'istio-ca',
      clock: opts.clock ?? systemClock,
      ttlMs: opts.ttlMs ?? DEFAULT_ISTIO_CA_TTL_MS,
      ...(opts.random && { random: opts.random }),
      ...(opts.onError && { onError: opts.onError }),
      ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
    });
    this.#issuer = issuer;
  }

  override async close(): Promise<void> {
    const closing = super.close(); // marks the source closed at once: a cancelled call is not an error to report
    this.#issuer.close(); // closes the channel and cancels a call in flight
    await closing;
  }
}

/** Opens the source and waits for its first answer (an SVID, or a failure recorded as lastError). */
export async function createIstioCaSource(opts: IstioCaSourceOptions): Promise<IstioCaSource> {
  const s = new IstioCaSource(opts);
  await s.start();
  return s;
}
