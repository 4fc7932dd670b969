/**
 * The mesh's X509Source as a grpc-js CertificateProvider (the interface grpc-js-xds feeds its
 * certificate-provider credentials with): the SVID and key as the identity, every trust root as
 * the CA (OpenSSL's first pass; the SPIFFE check per trust domain follows, server-peer.ts and
 * channel.ts). Listeners are told the current material when they subscribe and again on every
 * rotation, so a grpc-js server swaps its secure context (setSecureContext) without restarting and
 * a channel uses the new SVID for its next connection. The source is watched only while someone
 * listens.
 */
import { allRoots } from '../identity/bundle.js';
import { derToPem } from '../identity/pem.js';
import { type X509Source } from '../sources/source.js';

export interface CaUpdate {
  caCertificate: Buffer;
}
export interface IdentityUpdate {
  certificate: Buffer;
  privateKey: Buffer;
}
type CaListener = (u: CaUpdate | null) => void;
type IdentityListener = (u: IdentityUpdate | null) => void;

/** grpc-js's experimental CertificateProvider, structurally. */
export class SourceCertificateProvider {
  readonly #ca = new Set<CaListener>();
  readonly #identity = new Set<IdentityListener>();
  #off: (() => void) | undefined;
  #last: { ca: CaUpdate; identity: IdentityUpdate } | undefined;

  constructor(private readonly source: X509Source) {}

  /** The material now; the last good one when the source cannot give any (the use-time check refuses then). */
  #material(): { ca: CaUpdate; identity: IdentityUpdate } | undefined {
    try {
      const svid = this.source.getX509Svid();
      const roots = allRoots(this.source.getBundles()).map((r) => derToPem(r.der));
      this.#last = {
        ca: { caCertificate: Buffer.from(roots.join('')) },
        identity: { certificate: Buffer.from(svid.certChainPem), privateKey: Buffer.from(svid.keyPem) },
      };
    } catch {
      // an expired SVID: keep the last material; calls are refused per call (server-peer.ts)
    }
    return this.#last;
  }

  #watch(): void {
    if (this.#off || this.#ca.size + this.#identity.size === 0) return;
    this.#off = this.source.onUpdate(() => this.#publish());
  }

  #unwatch(): void {
    if (this.#ca.size + this.#identity.size > 0) return;
    this.#off?.();
    this.#off = undefined;
  }

  #publish(): void {
    const m = this.#material();
    if (!m) return;
    for (const l of this.#ca) l(m.ca);
    for (const l of this.#identity) l(m.identity);
  }

  /**
   * The first update is told on the next microtask: grpc-js's server credentials subscribe to the
   * provider before they register the server's watcher, which would miss a synchronous update.
   */
  #soon(fn: () => unknown): void {
    queueMicrotask(() => void fn());
  }

  addCaCertificateListener(l: CaListener): void {
    this.#ca.add(l);
    this.#watch();
    this.#soon(() => this.#ca.has(l) && this.#material() && l(this.#last!.ca));
  }

  removeCaCertificateListener(l: CaListener): void {
    this.#ca.delete(l);
    this.#unwatch();
  }

  addIdentityCertificateListener(l: IdentityListener): void {
    this.#identity.add(l);
    this.#watch();
    this.#soon(() => this.#identity.has(l) && this.#material() && l(this.#last!.identity));
  }

  removeIdentityCertificateListener(l: IdentityListener): void {
    this.#identity.delete(l);
    this.#unwatch();
  }

  /** Stops watching the source (mesh.close()). */
  close(): void {
    this.#ca.clear();
    this.#identity.clear();
    this.#off?.();
    this.#off = undefined;
  }
}
