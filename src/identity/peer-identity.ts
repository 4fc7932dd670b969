/**
 * The verified identity of a peer, as the rest of the mesh sees it. It only ever comes from a TLS
 * chain that verified against the bundle of the peer's own trust domain (the connection's, or one a
 * named front end forwarded and the mesh verified), or from a JWT-SVID that verified against the
 * JWT bundle of its own trust domain; never from a header taken on its word.
 */
export interface PeerIdentity {
  /** The full SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/orders`. */
  readonly spiffeId: string;
  /** e.g. `cluster.local`. */
  readonly trustDomain: string;
  /** Present when the path has the Kubernetes shape `/ns/<namespace>/sa/<serviceAccount>`. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /**
   * How it was authenticated when not by the connection's own mTLS handshake: a JWT-SVID, or a
   * client certificate a named front end forwarded (inbound behind a front end). Absent: mTLS.
   */
  readonly authenticatedBy?: 'jwt-svid' | 'forwarded-certificate';
}
