import { type PeerIdentity } from '../identity/peer-identity.js';

/**
 * How telemetry names a peer: its `id` (the SPIFFE ID or the DNS-like name) when PeerIdentity has
 * one (branch dns-identity adds it), else its SPIFFE ID.
 */
export function peerName(peer: PeerIdentity): string {
  return (peer as PeerIdentity & { readonly id?: string }).id ?? peer.spiffeId;
}
