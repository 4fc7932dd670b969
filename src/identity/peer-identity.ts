/**
 * The verified identity of a peer, as the rest of the mesh sees it. It only ever comes from a TLS
 * chain that verified against the bundle of the peer's own trust domain, never from a header.
 */
export interface PeerIdentity {
  /** The full SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/orders`. */
  readonly spiffeId: string;
  /** e.g. `cluster.local`. */
  readonly trustDomain: string;
  /** Present when the path has the Kubernetes shape `/ns/<namespace>/sa/<serviceAccount>`. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
}
