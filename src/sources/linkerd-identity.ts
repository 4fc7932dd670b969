import { type Clock, systemClock } from '../clock.js';
import { dnsBundleKey, parseDnsIdentity } from '../identity/dns-id.js';
import { ConfigError } from '../errors.js';
import { type ClosableLinkerdIssuer, type LinkerdIdentityIssuerOptions, linkerdIdentityIssuer } from './issuers/linkerd-identity.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { linkerdRefreshAt } from './linkerd-refresh.js';
import { RenewingSource } from './renewing.js';

export interface LinkerdIdentitySourceOptions extends Omit<LinkerdIdentityIssuerOptions, 'bundleKey' | 'now'> {
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly onError?: (err: Error) => void;
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
}

/**
 * The workload's certificate from Linkerd's identity service: a renewing source (renewing.ts, kind
 * 'linkerd-identity') whose issuer is Certify over TLS pinned to the trust anchors
 * (issuers/linkerd-identity.ts). The CSR names the DNS-like identity only (one DNS SAN, P-256 key);
 * the bundle set holds the anchors under `dnsBundleKey(identityDomain)` and nothing else. Renewed
 * as linkerd2-proxy does: at 70 % of the time left until valid_until, clamped to [10 s, 24 h];
 * failures keep the last good certificate and retry with backoff. close() closes the channel.
 */
export class LinkerdIdentitySource extends RenewingSource {
  readonly #issuer: ClosableLinkerdIssuer;

  constructor(opts: LinkerdIdentitySourceOptions) {
    const clock = opts.clock ?? systemClock;
    const issuer = linkerdIdentityIssuer({ ...opts, bundleKey: bundleKeyOf(opts.identity), now: () => clock.now() });
    super({
      issuer,
      spiffeId: opts.identity, // the name the verified leaf must carry (a DNS-like identity here)
      csrName: { dns: opts.identity },
      kind: 'linkerd-identity',
      clock,
      renewAt: linkerdRefreshAt,
      ...(opts.random && { random: opts.random }),
      ...(opts.onError && { onError: opts.onError }),
      ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
    });
    this.#issuer = issuer;
  }

  override async close(): Promise<void> {
    const closing = super.close(); // marks the source closed at once: a cancelled call is not an error to report
    this.#issuer.close();
    await closing;
  }
}

/** `dns:identity.<linkerd-ns>.<trust-domain>` for a Linkerd-shaped identity; ConfigError otherwise. */
function bundleKeyOf(identity: string): string {
  let domain: string | undefined;
  try {
    domain = parseDnsIdentity(identity).identityDomain;
  } catch (e) {
    throw new ConfigError(`the Linkerd identity "${identity}" is not a DNS-like identity: ${(e as Error).message}`, [{ path: 'identity', message: (e as Error).message }]);
  }
  if (domain === undefined) {
    const message = 'must be <serviceAccount>.<namespace>.serviceaccount.identity.<linkerd-namespace>.<trust-domain>';
    throw new ConfigError(`the Linkerd identity "${identity}" ${message}`, [{ path: 'identity', message }]);
  }
  return dnsBundleKey(domain);
}

/** Opens the source and waits for its first answer (a certificate, or a failure recorded as lastError). */
export async function createLinkerdIdentitySource(opts: LinkerdIdentitySourceOptions): Promise<LinkerdIdentitySource> {
  const s = new LinkerdIdentitySource(opts);
  await s.start();
  return s;
}
