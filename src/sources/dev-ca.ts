import { type Clock } from '../clock.js';
import { type DevCa } from '../identity/dev-ca.js';
import { devCaIssuer } from './issuers/dev-ca.js';
import { type SvidLifecycleEvent } from './lifecycle.js';
import { RenewingSource } from './renewing.js';

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
 * The workload's SVID from an in-process dev CA: a renewing source (renewing.ts) whose issuer is the
 * dev CA signing the source's CSR. Renewed at 50 % of its lifetime ± 10 % jitter; the renewal timer
 * keeps no process alive; a process frozen past the renewal time renews on its next use.
 */
export class DevCaSource extends RenewingSource {
  constructor(opts: DevCaSourceOptions) {
    super({
      issuer: devCaIssuer(opts.ca),
      spiffeId: opts.spiffeId,
      kind: 'dev-ca',
      clock: opts.clock ?? opts.ca.clock,
      ...(opts.ttlMs !== undefined && { ttlMs: opts.ttlMs }),
      ...(opts.random && { random: opts.random }),
      ...(opts.onError && { onError: opts.onError }),
      ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
    });
  }
}

export async function createDevCaSource(opts: DevCaSourceOptions): Promise<DevCaSource> {
  const s = new DevCaSource(opts);
  await s.start();
  return s;
}
