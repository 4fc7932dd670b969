import { type DnsIdentity, parseDnsIdentity } from './dns-id.js';
import { type PeerIdentity } from './peer-identity.js';
import { type SpiffeId, SPIFFE_SCHEME, kubernetesParts, parseSpiffeId, parseWorkloadId } from './spiffe-id.js';

/**
 * A verified workload's name: a SPIFFE ID (an X.509-SVID's URI SAN) or a DNS-like identity (a
 * Linkerd leaf's one DNS SAN). Both have `id`, the string messages, policies and metrics use; a
 * SPIFFE ID always starts with `spiffe://`, a DNS-like name never can (`:` is not in its grammar),
 * so the two kinds never compare equal.
 */
export type IdentityName = SpiffeId | DnsIdentity;

export function isDnsIdentity(name: IdentityName): name is DnsIdentity {
  return (name as DnsIdentity).kind === 'dns';
}

/**
 * Whether `input` is read as a SPIFFE ID: it starts with `spiffe://`, or it cannot be a DNS name
 * at all (not a string; empty, a single label, or holding `/` or `:`), so the SPIFFE parser's
 * reason is the one shown.
 */
function readsAsSpiffe(input: string): boolean {
  return typeof input !== 'string' || input.startsWith(SPIFFE_SCHEME) || !input.includes('.') || input.includes('/') || input.includes(':');
}

/** `spiffe://…` → a SPIFFE ID; a DNS name → a DNS-like identity. Throws SpiffeIdError / DnsIdentityError. */
export function parseIdentityName(input: string): IdentityName {
  return readsAsSpiffe(input) ? parseSpiffeId(input) : parseDnsIdentity(input);
}

/** As parseIdentityName, a SPIFFE ID must name a workload (a path). */
export function parseWorkloadName(input: string): IdentityName {
  return readsAsSpiffe(input) ? parseWorkloadId(input) : parseDnsIdentity(input);
}

/** 'spiffe' or 'dns'. */
export function kindOf(name: IdentityName): 'spiffe' | 'dns' {
  return isDnsIdentity(name) ? 'dns' : 'spiffe';
}

/** The public PeerIdentity of a verified name (frozen). */
export function peerIdentityOf(name: IdentityName): PeerIdentity {
  if (isDnsIdentity(name)) {
    return Object.freeze({
      id: name.id,
      kind: 'dns',
      dnsName: name.name,
      ...(name.trustDomain !== undefined && { trustDomain: name.trustDomain }),
      ...(name.namespace !== undefined && { namespace: name.namespace }),
      ...(name.serviceAccount !== undefined && { serviceAccount: name.serviceAccount }),
    });
  }
  return Object.freeze({ id: name.id, kind: 'spiffe', spiffeId: name.id, trustDomain: name.trustDomain, ...kubernetesParts(name) });
}
