import { type IdentityName, isDnsIdentity, parseIdentityName } from './name.js';
import { validateTrustDomain } from './spiffe-id.js';

/**
 * Decides whether a verified peer name is acceptable, in the style of go-spiffe's tlsconfig
 * authorizers: plain functions, composed by the caller. Returns an error message, or undefined
 * when the name is authorized. The name is a SPIFFE ID or a DNS-like (Linkerd) identity; an
 * expected name of one kind never accepts a peer of the other (their strings cannot be equal).
 */
export type Authorizer = (id: IdentityName) => string | undefined;

/** Any verified peer (SPIFFE or DNS-like). */
export function authorizeAny(): Authorizer {
  return () => undefined;
}

/** Exactly this SPIFFE ID (`spiffe://…`) or DNS-like identity (`orders.default.serviceaccount.identity.linkerd.cluster.local`). */
export function authorizeId(expected: string): Authorizer {
  const want = parseIdentityName(expected).id;
  return (id) => (id.id === want ? undefined : `expected ${want}, the peer presented ${id.id}`);
}

/** One of these SPIFFE IDs or DNS-like identities. */
export function authorizeOneOf(...expected: string[]): Authorizer {
  const want = new Set(expected.map((e) => parseIdentityName(e).id));
  return (id) => (want.has(id.id) ? undefined : `expected one of ${[...want].join(', ')}, the peer presented ${id.id}`);
}

/** Any SPIFFE workload of this trust domain (DNS-like peers are not members of a SPIFFE trust domain). */
export function authorizeMemberOf(trustDomain: string): Authorizer {
  validateTrustDomain(trustDomain);
  return (id) =>
    !isDnsIdentity(id) && id.trustDomain === trustDomain ? undefined : `expected a member of trust domain ${trustDomain}, the peer presented ${id.id}`;
}
