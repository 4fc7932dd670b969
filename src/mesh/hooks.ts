/**
 * Internal hooks a mesh carries for the serverless wrappers (`sidecarless/serverless`): keyed by
 * versioned `Symbol.for` names so a wrapper from another copy of the package (its ESM or CJS
 * build) finds them on a mesh it did not build. Not part of the public API: the wrappers are.
 *
 * - `kThaw`: called at the start of every invocation with nothing to wait for when the process
 *   was not frozen. It compares wall-clock time with what the mesh holds: an SVID past its renewal
 *   point is renewed first (an expired one blocks, bounded, then rejects IdentityUnavailableError),
 *   pooled connections idle longer than the gap are dropped before reuse, a control plane's state
 *   older than its freshness bound is refreshed before routing.
 * - `kJudgeFronted`: authorizes a request whose TLS a platform front end terminated (a Lambda HTTP
 *   event, a functions-framework request): identity from a JWT-SVID (`inbound.jwtSvid`) or from a
 *   client certificate a named front end forwarded (verified as a chain, never taken on its word),
 *   else unauthenticated; then the same policy as every other request (identity + method + path +
 *   host). Never throws for a peer's input: a refusal is a verdict.
 */
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type Decision } from '../policy/model.js';

export const kThaw: unique symbol = Symbol.for('sidecarless.v1.serverless.thaw') as never;
export const kJudgeFronted: unique symbol = Symbol.for('sidecarless.v1.serverless.judgeFronted') as never;

export interface FrontedRequest {
  readonly method: string;
  /** The request-target as received: origin-form path with its query. */
  readonly target: string;
  /** The Host the client sent (or the event's domain name). */
  readonly host: string | undefined;
  /** Header values by lower-case name. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The client's address as the platform reports it ('' when it does not). */
  readonly sourceIp: string;
  /** The port the front end received the request on (443 unless the platform says otherwise). */
  readonly port: number;
  /**
   * The client certificate chain (PEM) a front end forwarded from its own TLS handshake, read by
   * the wrapper from where that front end puts it (API Gateway's requestContext, a header it sets),
   * only when `inbound.frontEnd` names that front end.
   */
  readonly forwardedClientCertPem?: string;
}

export type FrontedVerdict =
  | {
      readonly allowed: true;
      /** Who the request is from: from a verified JWT-SVID or forwarded chain, or null (unauthenticated, admitted by policy). */
      readonly peer: PeerIdentity | null;
      /** The normalized path the policy judged (hand this to the app, not the raw target). */
      readonly path: string;
      readonly decision: Decision;
      /**
       * Header names, as keyed in `request.headers`, the wrapper removes before the app sees the
       * request: identity claims no named front end vouches for (x-forwarded-client-cert,
       * l5d-client-id, x-amzn-mtls-clientcert*, inbound.identityHeaders…) and, once a JWT-SVID
       * was admitted, its Authorization field. Empty when there is nothing to remove.
       */
      readonly stripHeaders: readonly string[];
    }
  | {
      readonly allowed: false;
      /** 400 malformed request, 401 missing/invalid credentials, 403 denied by policy. */
      readonly status: 400 | 401 | 403;
      /** For the response body: says what was refused, never echoes a token. */
      readonly message: string;
      /** A stable ERR_SIDECARLESS_* code. */
      readonly code: string;
      /** For a 401: the WWW-Authenticate value (RFC 6750 Bearer). */
      readonly wwwAuthenticate?: string;
    };

export interface ThawHook {
  (): Promise<void>;
}

export interface JudgeFrontedHook {
  (request: FrontedRequest): Promise<FrontedVerdict>;
}
