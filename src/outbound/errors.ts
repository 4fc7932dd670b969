import { SidecarlessError } from '../errors.js';

/**
 * A mesh request ran out of time: `kind: 'request'` when `timeout.request` (the whole request)
 * elapsed, `'per-try'` when the last try hit `timeout.perTry` and no retry was left.
 */
export class OutboundTimeoutError extends SidecarlessError {
  constructor(
    readonly service: string,
    readonly kind: 'request' | 'per-try',
    readonly timeoutMs: number,
  ) {
    super(
      'ERR_SIDECARLESS_TIMEOUT',
      kind === 'request'
        ? `request to mesh service "${service}" timed out after ${timeoutMs} ms (timeout.request); raise it, or find why the service is slow.`
        : `a try to mesh service "${service}" timed out after ${timeoutMs} ms (timeout.perTry) and no retry was possible.`,
    );
  }
}
