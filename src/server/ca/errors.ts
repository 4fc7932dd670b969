/**
 * Errors of the embedded control plane's CA, each with a stable code that says what to do:
 * - ERR_SIDECARLESS_CA_STATE_INVALID: a file under --state cannot be used (not PEM, a key for
 *   another certificate, not a CA, a weak key, expired, a half-written state);
 * - ERR_SIDECARLESS_CA_STATE_INSECURE: a private key (or the directory) others can read or write;
 * - ERR_SIDECARLESS_CA_TOKEN_INVALID: a bearer token refused, `reason` says which check failed;
 * - ERR_SIDECARLESS_CA_CSR_INVALID: a CSR that is not one, does not verify, or has a weak key.
 */
import { SidecarlessError } from '../../errors.js';

export class CaStateError extends SidecarlessError {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_SIDECARLESS_CA_STATE_INVALID', message, options);
  }
}

export class CaStateInsecureError extends SidecarlessError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super('ERR_SIDECARLESS_CA_STATE_INSECURE', message);
  }
}

/** Which check refused a token. */
export type CaTokenRefusal =
  | 'malformed'
  | 'header'
  | 'algorithm'
  | 'key'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'claims';

export class CaTokenError extends SidecarlessError {
  constructor(
    readonly reason: CaTokenRefusal,
    message: string,
  ) {
    super('ERR_SIDECARLESS_CA_TOKEN_INVALID', message);
  }
}

export class CsrError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_CA_CSR_INVALID', message, options);
  }
}
