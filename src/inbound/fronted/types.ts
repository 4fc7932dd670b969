/**
 * What the fronted judge takes and gives: the shapes of src/mesh/hooks.ts's FrontedRequest and
 * FrontedVerdict (that file is the contract; inbound/ sits below mesh/ and cannot import it, and
 * mesh/fronted.ts checks that these stay assignable to it).
 */
import { type PeerIdentity } from '../../identity/peer-identity.js';
import { type Decision } from '../../policy/model.js';

export interface FrontedInput {
  readonly method: string;
  readonly target: string;
  readonly host: string | undefined;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly sourceIp: string;
  readonly port: number;
  readonly forwardedClientCertPem?: string;
}

export type FrontedOutcome =
  | {
      readonly allowed: true;
      readonly peer: PeerIdentity | null;
      readonly path: string;
      readonly decision: Decision;
      /** Header names (as keyed in the request) the wrapper removes before the app sees it (hooks.ts says which). */
      readonly stripHeaders: readonly string[];
    }
  | {
      readonly allowed: false;
      readonly status: 400 | 401 | 403;
      readonly message: string;
      readonly code: string;
      readonly wwwAuthenticate?: string;
    };
