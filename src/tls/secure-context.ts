/**
 * The key, certificate and trust material of one side of mutual TLS, built from the workload's
 * SVID and the trust bundles: the same for the server (server-context.ts), the client (connect.ts),
 * and anything else that speaks mTLS for the mesh (HTTP/2, gRPC credentials). Pure: no socket.
 */
import { type SecureContextOptions } from 'node:tls';
import { type BundleSet, allRoots } from '../identity/bundle.js';
import { derToPem } from '../identity/pem.js';

/** TLS 1.2 is the floor (as Istio's default); 1.3 is preferred by OpenSSL. */
export const MIN_TLS_VERSION = 'TLSv1.2';

/** The protocols an HTTP/1.1 server offers. */
export const HTTP1_ALPN: readonly string[] = Object.freeze(['http/1.1']);

/** The protocols an HTTP/2 server offers (h2 preferred; HTTP/1.1 on the same port). */
export const HTTP2_ALPN: readonly string[] = Object.freeze(['h2', 'http/1.1']);

/** What secureContextOptions needs of an SVID (an X509Svid, an IssuedSvid). */
export interface SvidMaterial {
  readonly certChainPem: string;
  readonly keyPem: string;
}

export interface SecureContextParams {
  /** ALPN protocols to offer, most preferred first. */
  readonly alpn: readonly string[];
}

/** Options for `tls.createSecureContext`, `setSecureContext` and `tls.connect`/`createServer`. */
export interface MeshSecureContextOptions extends SecureContextOptions {
  cert: string;
  key: string;
  ca: string[];
  minVersion: 'TLSv1.2';
  ALPNProtocols: string[];
}

/**
 * Our SVID (leaf then intermediates) and key, every trust root of every bundle (OpenSSL's first
 * pass accepts a chain to any known root; the per-trust-domain check, verifyPeerChain, follows),
 * the TLS floor and the ALPN protocols. `alpn` must name at least one protocol: a mesh connection
 * always says which protocol it speaks.
 */
export function secureContextOptions(svid: SvidMaterial, bundles: BundleSet, params: SecureContextParams): MeshSecureContextOptions {
  const alpn = [...params.alpn];
  if (alpn.length === 0 || alpn.some((p) => typeof p !== 'string' || p.length === 0 || p.length > 255)) {
    throw new TypeError(`secureContextOptions: alpn must list 1 or more protocol names of 1 to 255 characters (e.g. ['http/1.1']), got ${JSON.stringify(params.alpn)}`);
  }
  return {
    cert: svid.certChainPem,
    key: svid.keyPem,
    ca: allRoots(bundles).map((r) => derToPem(r.der)),
    minVersion: MIN_TLS_VERSION,
    ALPNProtocols: alpn,
  };
}
