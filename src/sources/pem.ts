/**
 * An SVID the platform hands the process as PEM text: environment variables, a secrets manager's
 * value, a parameter store — where a function has no agent and no volume to watch. The same three
 * parts as an identity directory (spiffe-helper's names): the SVID chain (leaf first), its PKCS#8
 * key, the trust bundle. Verified like every source (key matches the leaf; chain, SPIFFE rules and
 * key strength against the bundle) before the mesh starts; a set that fails is refused whole, with
 * the part it came from named.
 *
 * It cannot rotate: the platform replaces the value and starts a new instance. Its lifecycle is
 * every source's (SourceCore): past the renewal point a warning, at expiry the SVID is no longer
 * served and the mesh fails closed.
 */
import { type Clock } from '../clock.js';
import { IdentityUnavailableError } from '../errors.js';
import { bundlesFromPem } from '../identity/bundle.js';
import { type ExpectedIdentity } from '../identity/workload-id.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { CoreBackedSource, SourceCore } from './source.js';
import { buildSvid } from './svid-set.js';

export interface PemSvid {
  /** The SVID chain, leaf first (svid.pem). */
  readonly svid: string;
  /** Its private key, PKCS#8 (svid_key.pem). */
  readonly key: string;
  /** The trust bundle: the roots of the trust domain (svid_bundle.pem). */
  readonly bundle: string;
}

export interface PemSourceOptions {
  readonly pem: PemSvid;
  /** Where the PEM came from, for messages (`identity.pem`, `SIDECARLESS_SVID_PEM…`). */
  readonly origin: string;
  /** The trust domain that roots without a SPIFFE URI SAN belong to: the mesh's. */
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly expect?: ExpectedIdentity;
  readonly onLifecycle?: (event: SvidLifecycleEvent) => void;
}

export class PemSource extends CoreBackedSource {
  constructor(opts: PemSourceOptions) {
    super(
      new SourceCore('pem', opts.clock, `SVID from ${opts.origin}`, {
        ...(opts.expect && { expect: opts.expect }),
        ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
      }),
    );
    const { svid, key, bundle } = opts.pem;
    let bundles;
    try {
      bundles = bundlesFromPem(bundle, opts.trustDomain);
    } catch (e) {
      throw refused(opts.origin, `its bundle: ${(e as Error).message}`, e);
    }
    let built;
    try {
      built = buildSvid(svid, key, bundles, opts.clock.now());
    } catch (e) {
      throw refused(opts.origin, (e as Error).message, e);
    }
    this.core.accept(built, bundles); // throws IdentityUnavailableError for an SVID of another SPIFFE ID
  }

  async close(): Promise<void> {
    this.core.close();
  }
}

function refused(origin: string, why: string, cause: unknown): IdentityUnavailableError {
  return new IdentityUnavailableError(`the SVID from ${origin} cannot be used: ${why}. Hand the process svid.pem, svid_key.pem and svid_bundle.pem as \`sidecarless svid issue\` writes them (or as SPIRE's spiffe-helper does)`, { cause });
}
