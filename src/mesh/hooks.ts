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

export const kThaw: unique symbol = Symbol.for('sidecarless.v1.serverless.thaw') as never;
export const kJudgeFronted: unique symbol = Symbol.for('sidecarless.v1.serverless.judgeFronted') as never;

/** A request whose TLS a front end terminated, and the judge's verdict: defined beside the judge (inbound/fronted/types.ts). */
export type { FrontedRequest, FrontedVerdict } from '../inbound/fronted/types.js';
import { type FrontedRequest, type FrontedVerdict } from '../inbound/fronted/types.js';

export interface ThawHook {
  (): Promise<void>;
}

export interface JudgeFrontedHook {
  (request: FrontedRequest): Promise<FrontedVerdict>;
}
