import { type SpiffeId, parseSpiffeId, validateTrustDomain } from './spiffe-id.js';

/**
 * Decides whether a verified peer ID is acceptable, in the style of go-spiffe's tlsconfig
 * authorizers: plain functions, composed by the caller. Returns an error message, or undefined
 * when the ID is authorized.
 */
export type Authorizer = (id: SpiffeId) => string | undefined;

/** Any verified SPIFFE ID. */
export function authorizeAny(): Authorizer {
  return () => undefined;
}

/** Exactly this SPIFFE ID. */
export function authorizeId(expected: string): Authorizer {
  const want = parseSpiffeId(expected).id;
  return (id) => (id.id === want ? undefined : `expected ${want}, the peer presented ${id.id}`);
}

/** One of these SPIFFE IDs. */
export function authorizeOneOf(...expected: string[]): Authorizer {
  const want = new Set(expected.map((e) => parseSpiffeId(e).id));
  return (id) => (want.has(id.id) ? undefined : `expected one of ${[...want].join(', ')}, the peer presented ${id.id}`);
}

/** Any workload of this trust domain. */
export function authorizeMemberOf(trustDomain: string): Authorizer {
  validateTrustDomain(trustDomain);
  return (id) =>
    id.trustDomain === trustDomain ? undefined : `expected a member of trust domain ${trustDomain}, the peer presented ${id.id}`;
}
