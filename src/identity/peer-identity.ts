/**
 * The verified identity of a peer, as the rest of the mesh sees it. It only ever comes from a TLS
 * chain that verified against the bundle of the peer's own trust domain (the connection's, or one a
 * named front end forwarded and the mesh verified) — for a DNS-like (Linkerd) identity, against the
 * trust anchors of its own identity domain — or from a JWT-SVID that verified against the JWT
 * bundle of its own trust domain; never from a header taken on its word.
 */
export interface PeerIdentity {
  /** Always: the SPIFFE ID, or the DNS-like name (`orders.default.serviceaccount.identity.linkerd.cluster.local`). */
  readonly id: string;
  /** `spiffe`: an X.509-SVID (URI SAN) or JWT-SVID; `dns`: a leaf whose one DNS SAN is its identity (Linkerd). */
  readonly kind: 'spiffe' | 'dns';
  /** The full SPIFFE ID, e.g. `spiffe://cluster.local/ns/default/sa/orders` (SPIFFE peers only). */
  readonly spiffeId?: string;
  /** The DNS-like name (DNS peers only); equal to `id`. */
  readonly dnsName?: string;
  /**
   * e.g. `cluster.local`: the SPIFFE trust domain, or for a DNS peer Linkerd's trust domain (the
   * labels after `identity.<linkerd-ns>`); absent for a DNS name without the Linkerd shape.
   */
  readonly trustDomain?: string;
  /** Present when the name has the Kubernetes shape (`/ns/<namespace>/sa/<serviceAccount>`, or Linkerd's `<sa>.<ns>.serviceaccount.identity…`). */
  readonly namespace?: string;
  readonly serviceAccount?: string;
  /**
   * How it was authenticated when not by the connection's own mTLS handshake: a JWT-SVID, or a
   * client certificate a named front end forwarded (inbound behind a front end). Absent: mTLS.
   */
  readonly authenticatedBy?: 'jwt-svid' | 'forwarded-certificate';
}
