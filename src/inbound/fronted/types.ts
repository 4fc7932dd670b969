/**
 * What the fronted judge takes and gives: the request whose TLS a platform front end terminated,
 * and the verdict. src/mesh/hooks.ts (the contract with the serverless wrappers) re-exports them.
 */
import { type PeerIdentity } from '../../identity/peer-identity.js';
import { type Decision } from '../../policy/model.js';

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


/** The judge's own names for them. */
export type FrontedInput = FrontedRequest;
export type FrontedOutcome = FrontedVerdict;
