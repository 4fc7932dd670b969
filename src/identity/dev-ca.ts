import { createHash, randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '../clock.js';
import { type ParsedCertificate, parseCertificate } from './certificate.js';
import { readTlv } from './der.js';
import { devCaJwt } from './dev-ca-jwt.js';
import { type KeyType, generateKeyPair, importPrivateKeyPem, privateKeyToPem, signingAlgorithm } from './keys.js';
import { derToPem, pemToCertDers } from './pem.js';
import { SPIFFE_SCHEME, parseWorkloadId, validateTrustDomain } from './spiffe-id.js';
import type * as x509 from '@peculiar/x509';
import { loadX509 } from './x509.js';

/** Clock skew allowance: leaves are valid from a little before the moment they are issued (as SPIRE does). */
export const DEV_CA_BACKDATE_MS = 10_000;
export const DEFAULT_SVID_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_CA_TTL_MS = 365 * 24 * 60 * 60 * 1000;

export interface DevCaOptions {
  /** Default 'cluster.local'. */
  trustDomain?: string;
  keyType?: KeyType;
  /** Lifetime of the root (default 1 year). */
  caTtlMs?: number;
  /** Default lifetime of issued SVIDs (default 1 h). */
  svidTtlMs?: number;
  /** Issue leaves through this many intermediate CAs (default 0). */
  intermediates?: number;
  clock?: Clock;
}

export interface IssueOptions {
  spiffeId: string;
  ttlMs?: number;
  /** Defaults to now − 10 s. */
  notBefore?: number;
  /** Extra DNS SANs (the URI SAN stays the only SPIFFE identity). */
  dnsNames?: string[];
}

/** An issued X.509-SVID with its private key, in the PEM forms spiffe-helper writes. */
export interface IssuedSvid {
  readonly spiffeId: string;
  /** svid.pem: the leaf, then intermediates. */
  readonly certChainPem: string;
  /** svid_key.pem: PKCS#8. */
  readonly keyPem: string;
  /** svid_bundle.pem: the trust roots. */
  readonly bundlePem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serialNumber: string;
}

interface Authority {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

/**
 * A certificate authority for development and tests, run in process. Issues X.509-SVIDs with one
 * URI SAN, cA=false, critical key usage digitalSignature, EKU serverAuth + clientAuth.
 * Processes with different dev CAs cannot talk to each other: share one with `sidecarless ca init`.
 */
export class DevCa {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly svidTtlMs: number;
  readonly clock: Clock;
  /** The root, PEM: the trust bundle of this trust domain. */
  readonly bundlePem: string;
  readonly root: ParsedCertificate;
  readonly #root: Authority;
  readonly #chain: Authority[];

  private constructor(root: Authority, chain: Authority[], opts: Required<Pick<DevCaOptions, 'trustDomain' | 'keyType' | 'svidTtlMs' | 'clock'>>) {
    this.trustDomain = opts.trustDomain;
    this.keyType = opts.keyType;
    this.svidTtlMs = opts.svidTtlMs;
    this.clock = opts.clock;
    this.#root = root;
    this.#chain = chain;
    this.bundlePem = root.cert.toString('pem') + '\n';
    this.root = parseCertificate(new Uint8Array(root.cert.rawData));
  }

  static async create(options: DevCaOptions = {}): Promise<DevCa> {
    const opts = resolve(options);
    const now = opts.clock.now();
    const root = await createAuthority(opts, undefined, now, options.caTtlMs ?? DEFAULT_CA_TTL_MS);
    const chain: Authority[] = [];
    let parent = root;
    for (let i = 0; i < (options.intermediates ?? 0); i++) {
      parent = await createAuthority(opts, parent, now, options.caTtlMs ?? DEFAULT_CA_TTL_MS);
      chain.unshift(parent);
    }
    return new DevCa(root, chain, opts);
  }

  /** Loads a CA written by `sidecarless ca init` (ca.pem, ca_key.pem). */
  static async fromPem(certPem: string, keyPem: string, options: Omit<DevCaOptions, 'trustDomain' | 'intermediates'> = {}): Promise<DevCa> {
    const ders = pemToCertDers(certPem);
    if (ders.length === 0) throw new Error('ca.pem holds no certificate');
    const x509 = loadX509();
    const cert = new x509.X509Certificate(new Uint8Array(ders[0]!));
    const parsed = parseCertificate(ders[0]!);
    const tdUri = parsed.uris.find((u) => u.startsWith(SPIFFE_SCHEME));
    if (!parsed.isCa || !tdUri) throw new Error('ca.pem is not a sidecarless CA certificate (needs cA=true and a spiffe:// trust-domain URI SAN)');
    const trustDomain = validateTrustDomain(tdUri.slice(SPIFFE_SCHEME.length));
    const privateKey = await importPrivateKeyPem(keyPem, options.keyType);
    const publicKey = await cert.publicKey.export();
    const opts = resolve({ ...options, trustDomain });
    return new DevCa({ cert, keys: { privateKey, publicKey } }, [], opts);
  }

  /** ca.pem and ca_key.pem, for `sidecarless ca init`. */
  async exportPem(): Promise<{ certPem: string; keyPem: string }> {
    return { certPem: this.bundlePem, keyPem: await privateKeyToPem(this.#root.keys.privateKey) };
  }

  /**
   * The JWT bundle of this CA's JWT-SVIDs (a JWK Set, JSON text): one ES256 key derived from the
   * root key (dev-ca-jwt.ts), the same in every process that loads this CA. A mesh with
   * `identity: { ca }` validates with it already; write it to a file for `inbound.jwtSvid.bundle`.
   */
  async jwtBundle(): Promise<string> {
    return (await devCaJwt(this)).jwks;
  }

  /** Issues an X.509-SVID for a SPIFFE ID of this CA's trust domain. */
  async issue(options: IssueOptions): Promise<IssuedSvid> {
    const id = this.#ownId(options.spiffeId);
    const keys = await generateKeyPair(this.keyType);
    const leaf = await this.#leaf(keys.publicKey, id, options);
    return {
      spiffeId: id,
      certChainPem: this.#chainPem(leaf),
      keyPem: await privateKeyToPem(keys.privateKey),
      bundlePem: this.bundlePem,
      notBefore: leaf.notBefore.getTime(),
      notAfter: leaf.notAfter.getTime(),
      serialNumber: leaf.serialNumber,
    };
  }

  /**
   * Signs a PKCS#10 CSR (PEM) as an X.509-SVID for `spiffeId`, as a control plane's CA does: the
   * CSR's signature must verify (its sender holds the key) and its only SAN must be that SPIFFE ID,
   * of this CA's trust domain. Returns the chain (leaf first) and the bundle, no key.
   */
  async signCsr(csrPem: string, options: IssueOptions): Promise<{ certChainPem: string; bundlePem: string; notAfter: number }> {
    const id = this.#ownId(options.spiffeId);
    const x509 = loadX509();
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (e) {
      throw new Error(`the CSR is not a PKCS#10 certificate request: ${(e as Error).message}`);
    }
    if (!(await csr.verify())) throw new Error('the CSR signature does not verify: its sender does not hold the key it names');
    const san = csr.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null;
    const names = san?.names.items ?? [];
    if (names.length !== 1 || names[0]!.type !== 'url' || names[0]!.value !== id) {
      throw new Error(`the CSR must name exactly ${id} as its URI SAN; it names ${names.map((n) => `${n.type}:${n.value}`).join(', ') || 'nothing'}`);
    }
    const leaf = await this.#leaf(new Uint8Array(csr.publicKey.rawData), id, options);
    return { certChainPem: this.#chainPem(leaf), bundlePem: this.bundlePem, notAfter: leaf.notAfter.getTime() };
  }

  #ownId(spiffeId: string): string {
    const id = parseWorkloadId(spiffeId);
    if (id.trustDomain !== this.trustDomain) throw new Error(`this CA signs for trust domain "${this.trustDomain}", not for ${id.id}`);
    return id.id;
  }

  #chainPem(leaf: x509.X509Certificate): string {
    return leaf.toString('pem') + '\n' + this.#chain.map((a) => a.cert.toString('pem') + '\n').join('');
  }

  async #leaf(publicKey: CryptoKey | Uint8Array<ArrayBuffer>, id: string, options: IssueOptions): Promise<x509.X509Certificate> {
    const x509 = loadX509();
    const notBefore = options.notBefore ?? this.clock.now() - DEV_CA_BACKDATE_MS;
    // X.509 times have whole seconds: round the end up, so a short TTL never loses most of a second.
    const notAfter = Math.ceil((notBefore + DEV_CA_BACKDATE_MS + (options.ttlMs ?? this.svidTtlMs)) / 1000) * 1000;
    const names: x509.JsonGeneralNames = [{ type: 'url', value: id }];
    for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: dns });
    return this.sign({
      publicKey,
      notBefore,
      notAfter,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names, false),
        publicKey instanceof Uint8Array ? new x509.SubjectKeyIdentifierExtension(subjectKeyId(publicKey)) : await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
  }

  /**
   * @internal not in the public types (it speaks @peculiar/x509's).
   * Signs arbitrary certificate parameters with the issuing key. For tests and tools that need
   * certificates `issue` refuses to make (wrong SANs, CA flags): never use it to mint identities.
   */
  async sign(params: { publicKey: CryptoKey | Uint8Array<ArrayBuffer>; notBefore: number; notAfter: number; extensions: x509.Extension[]; subject?: string }): Promise<x509.X509Certificate> {
    const issuer = this.#chain[0] ?? this.#root;
    const x509 = loadX509();
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: params.subject ?? 'O=SPIFFE',
      issuer: issuer.cert.subjectName,
      notBefore: new Date(params.notBefore),
      notAfter: new Date(params.notAfter),
      publicKey: params.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: signingAlgorithm(this.keyType),
      extensions: [...params.extensions, await authorityKeyId(issuer)],
    });
  }

  /** PEM of the intermediates leaves are issued through (empty when none). */
  get intermediatesPem(): string {
    return this.#chain.map((a) => a.cert.toString('pem') + '\n').join('');
  }
}

/**
 * RFC 5280's key identifier (method 1: SHA-1 of the subjectPublicKey bits) of a DER
 * SubjectPublicKeyInfo, computed here without a WebCrypto round trip.
 */
function subjectKeyId(spki: Uint8Array): string {
  const outer = readTlv(spki, 0, spki.length);
  const algorithm = readTlv(spki, outer.contentStart, outer.end);
  const bits = readTlv(spki, algorithm.end, outer.end);
  return createHash('sha1').update(spki.subarray(bits.contentStart + 1, bits.end)).digest('hex');
}

/** The issuer's key identifier extension, computed once per authority (a SHA-1 of its key). */
const AKI = new WeakMap<Authority, Promise<x509.Extension>>();
function authorityKeyId(a: Authority): Promise<x509.Extension> {
  let ext = AKI.get(a);
  if (!ext) AKI.set(a, (ext = loadX509().AuthorityKeyIdentifierExtension.create(a.keys.publicKey)));
  return ext;
}

/** `createDevCa()` — the public entry: an in-process CA for development and tests. */
export function createDevCa(options: DevCaOptions = {}): Promise<DevCa> {
  return DevCa.create(options);
}

function resolve(o: DevCaOptions): Required<Pick<DevCaOptions, 'trustDomain' | 'keyType' | 'svidTtlMs' | 'clock'>> {
  return {
    trustDomain: validateTrustDomain(o.trustDomain ?? 'cluster.local'),
    keyType: o.keyType ?? 'ec-p256',
    svidTtlMs: o.svidTtlMs ?? DEFAULT_SVID_TTL_MS,
    clock: o.clock ?? systemClock,
  };
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! % 0x7f) + 1; // positive, and no leading zero byte (which DER would drop)
  return b.toString('hex');
}

let authorityCounter = 0;
async function createAuthority(
  opts: ReturnType<typeof resolve>,
  parent: Authority | undefined,
  now: number,
  ttlMs: number,
): Promise<Authority> {
  const x509 = loadX509();
  const keys = await generateKeyPair(opts.keyType);
  const name = parent
    ? `O=sidecarless dev CA, OU=intermediate ${++authorityCounter}, CN=${opts.trustDomain}`
    : `O=sidecarless dev CA, CN=${opts.trustDomain}`;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${SPIFFE_SCHEME}${opts.trustDomain}` }]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  const notBefore = new Date(now - 60_000);
  const notAfter = new Date(now + ttlMs);
  const cert = parent
    ? await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: name,
        issuer: parent.cert.subject,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: parent.keys.privateKey,
        signingAlgorithm: signingAlgorithm(opts.keyType),
        extensions: [...extensions, await x509.AuthorityKeyIdentifierExtension.create(parent.keys.publicKey)],
      })
    : await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: randomSerial(),
        name,
        notBefore,
        notAfter,
        keys,
        signingAlgorithm: signingAlgorithm(opts.keyType),
        extensions,
      });
  return { cert, keys };
}
