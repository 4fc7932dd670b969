/**
 * The --state directory of `sidecarless control-plane`: its CA and its token signing key.
 *
 * Layouts, detected in this order:
 * - Istio's plugged-in CA (the `cacerts` secret): ca-cert.pem + ca-key.pem sign (an intermediate, or
 *   the root itself), cert-chain.pem is ca-cert.pem's chain (optional when ca-cert.pem is issued by
 *   the root directly), root-cert.pem is the root clients pin.
 * - Our own root: root-cert.pem (what clients pin; DESIGN fixes this path) and root-key.pem.
 * - Neither (first start): a new ECDSA P-256 root is made, root-key.pem (0600) written first, then
 *   root-cert.pem; a half-written pair is refused on the next start, never overwritten.
 * token-key.pem (0600, ECDSA P-256) signs the bearer tokens of `control-plane token`; it is made on
 * first start in either layout and is separate from the CA key (rotating one leaves the other).
 * Every file is checked (see signer.ts loadAuthority, chain order, key modes in state-files.ts)
 * and refused with a stable code that says what to do.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../clock.js';
import { type ParsedCertificate, isIssuedBy, parseCertificate } from '../../identity/certificate.js';
import { pemToCertDers, derToPem } from '../../identity/pem.js';
import { SPIFFE_SCHEME, parseWorkloadId, validateTrustDomain } from '../../identity/spiffe-id.js';
import { MAX_INTERMEDIATES } from '../../identity/svid.js';
import { type DevCaJwt, devCaJwt } from '../../identity/dev-ca-jwt.js';
import { verifiedCsrKey } from './csr.js';
import { CaStateError } from './errors.js';
import { type Authority, LEAF_BACKDATE_MS, createRoot, loadAuthority, signLeaf } from './signer.js';
import { createFile, ensureStateDir, exists, readKeyFile, readText } from './state-files.js';
import { type TokenKey, tokenKeyOf } from './token-key.js';

export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';
export const TOKEN_KEY_FILE = 'token-key.pem';
export const ISTIO_CA_CERT_FILE = 'ca-cert.pem';
export const ISTIO_CA_KEY_FILE = 'ca-key.pem';
export const ISTIO_CERT_CHAIN_FILE = 'cert-chain.pem';

/** How many issued certificates `issued()` remembers (the newest). */
export const MAX_ISSUED_RECORDS = 1000;
/** Lifetime of the control plane's own serving certificate (capped at the signer's own expiry). */
export const SERVING_CERT_TTL_MS = 365 * 86_400_000;
/** Names a serving certificate carries by default: loopback, and istiod's name (what Istio clients dial). */
export const DEFAULT_SERVING_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1', 'istiod.istio-system.svc'];

export type CaLayout = 'created' | 'root' | 'istio-cacerts';

export interface IssuedRecord {
  /** Hex, as `openssl x509 -serial` prints it (lower case). */
  readonly serial: string;
  readonly spiffeId: string;
  readonly notAfter: number;
  /** When it was issued (ms since the epoch). */
  readonly at: number;
}

export interface CaState {
  readonly dir: string;
  readonly trustDomain: string;
  readonly layout: CaLayout;
  /** The clock certificates and tokens are dated by. */
  readonly clock: Clock;
  /** <dir>/root-cert.pem: what clients pin. */
  readonly rootFile: string;
  /** The root, PEM (ends with "\n"). */
  readonly rootPem: string;
  /** The certificate that signs leaves (the root, or Istio's ca-cert.pem). */
  readonly signer: ParsedCertificate;
  /** The key tokens are signed with (token-key.pem). */
  readonly tokenKey: TokenKey;
  /** The control plane's own TLS certificate (leaf + intermediates) and key, by the same CA, for DNS names / IP addresses `names`. */
  issueServing(names?: readonly string[]): Promise<{ certPem: string; keyPem: string; notAfter: number }>;
  /** Signs a CSR's key for `spiffeId`: cert_chain elements, leaf first, root last, each one PEM ending "\n". */
  sign(csrPem: string, spiffeId: string, ttlMs: number): Promise<string[]>;
  /** The newest issued workload certificates (at most maxIssuedRecords, default 1,000), oldest first. */
  issued(): readonly IssuedRecord[];
  /**
   * The JWT-SVID signer: an ES256 key derived from the signing CA's key exactly as a dev CA derives
   * its own (identity/dev-ca-jwt.ts: HKDF, never the CA key itself), and its JWK Set.
   */
  jwt(): Promise<DevCaJwt>;
}

export interface CaStateOptions {
  /** Default cluster.local. */
  readonly trustDomain: string;
  readonly clock?: Clock;
  /** How many issued certificates issued() keeps; default MAX_ISSUED_RECORDS. */
  readonly maxIssuedRecords?: number;
}

export async function openCaState(dir: string, o: CaStateOptions = { trustDomain: 'cluster.local' }): Promise<CaState> {
  const trustDomain = validateTrustDomain(o.trustDomain);
  const clock = o.clock ?? systemClock;
  await ensureStateDir(dir);
  const loaded = (await exists(dir, ISTIO_CA_CERT_FILE)) ? await loadIstioCacerts(dir, clock.now()) : await loadOrCreateRoot(dir, trustDomain, clock.now());
  checkTrustDomain(loaded.root, trustDomain, join(dir, ROOT_CERT_FILE));
  const tokenKey = await loadOrCreateTokenKey(dir);
  return new State(dir, trustDomain, clock, loaded, tokenKey, o.maxIssuedRecords ?? MAX_ISSUED_RECORDS);
}

interface Loaded {
  layout: CaLayout;
  root: ParsedCertificate;
  signer: Authority;
  /** Certificates between the signer and the root, signer first (empty when the root signs). */
  intermediates: ParsedCertificate[];
  /** The signer's private key (PEM): only ever the input of the JWT key derivation. */
  keyPem: string;
}

function oneCert(text: string, file: string): ParsedCertificate {
  let ders;
  try {
    ders = pemToCertDers(text);
  } catch (e) {
    throw new CaStateError(file, `${file} is not PEM: ${(e as Error).message}`);
  }
  if (ders.length !== 1) throw new CaStateError(file, `${file} must hold exactly one certificate, it holds ${ders.length}`);
  try {
    return parseCertificate(ders[0]!);
  } catch (e) {
    throw new CaStateError(file, `${file} is not a well-formed X.509 certificate: ${(e as Error).message}`);
  }
}

async function loadOrCreateRoot(dir: string, trustDomain: string, now: number): Promise<Loaded> {
  const certFile = join(dir, ROOT_CERT_FILE);
  const keyFile = join(dir, ROOT_KEY_FILE);
  const [hasCert, hasKey] = [await exists(dir, ROOT_CERT_FILE), await exists(dir, ROOT_KEY_FILE)];
  let layout: CaLayout = 'root';
  if (!hasCert && !hasKey) {
    const { certPem, keyPem } = await createRoot(trustDomain, now);
    // Key first: a start interrupted between the two leaves a key without a certificate, refused below.
    if ((await createFile(keyFile, keyPem, 0o600)) && (await createFile(certFile, certPem, 0o644))) layout = 'created';
  } else if (hasCert !== hasKey) {
    const [present, missing] = hasCert ? [certFile, keyFile] : [keyFile, certFile];
    throw new CaStateError(missing, `${present} is there but ${missing} is not: the state is incomplete (a first start interrupted, or a file lost). Restore ${missing}, or move ${dir} aside to start a new CA (every workload must then pin the new root)`);
  }
  const root = oneCert(await readText(certFile), certFile);
  const keyPem = await readKeyFile(keyFile);
  const signer = await loadAuthority(root.der, keyPem, now, { cert: certFile, key: keyFile });
  if (!isIssuedBy(root, root)) throw new CaStateError(certFile, `${certFile} is not a self-signed root: give the root in root-cert.pem, or use Istio's layout (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) for an intermediate`);
  return { layout, root, signer, intermediates: [], keyPem };
}

async function loadIstioCacerts(dir: string, now: number): Promise<Loaded> {
  const f = (n: string) => join(dir, n);
  for (const n of [ISTIO_CA_KEY_FILE, ROOT_CERT_FILE]) {
    if (!(await exists(dir, n))) throw new CaStateError(f(n), `${f(ISTIO_CA_CERT_FILE)} is there but ${f(n)} is not: Istio's plugged-in CA layout needs ca-cert.pem, ca-key.pem, root-cert.pem (and cert-chain.pem)`);
  }
  if (await exists(dir, ROOT_KEY_FILE)) throw new CaStateError(f(ROOT_KEY_FILE), `${dir} holds both Istio's ca-cert.pem and our root-key.pem: which CA signs is ambiguous. Keep one layout`);
  const caCert = oneCert(await readText(f(ISTIO_CA_CERT_FILE)), f(ISTIO_CA_CERT_FILE));
  const root = oneCert(await readText(f(ROOT_CERT_FILE)), f(ROOT_CERT_FILE));
  const keyPem = await readKeyFile(f(ISTIO_CA_KEY_FILE));
  const signer = await loadAuthority(caCert.der, keyPem, now, { cert: f(ISTIO_CA_CERT_FILE), key: f(ISTIO_CA_KEY_FILE) });
  if (!root.isCa || !isIssuedBy(root, root)) throw new CaStateError(f(ROOT_CERT_FILE), `${f(ROOT_CERT_FILE)} is not a self-signed CA certificate: it must be the root of ca-cert.pem's chain`);
  if (now >= root.notAfter) throw new CaStateError(f(ROOT_CERT_FILE), `the root ${f(ROOT_CERT_FILE)} expired at ${new Date(root.notAfter).toISOString()}`);
  const chain = (await exists(dir, ISTIO_CERT_CHAIN_FILE)) ? await chainCerts(f(ISTIO_CERT_CHAIN_FILE)) : [caCert];
  const intermediates = chain.filter((c) => c.fingerprint !== root.fingerprint);
  if (intermediates.length > 0 && intermediates[0]!.fingerprint !== caCert.fingerprint) {
    throw new CaStateError(f(ISTIO_CERT_CHAIN_FILE), `${f(ISTIO_CERT_CHAIN_FILE)} must start with ca-cert.pem (Istio: cat ca-cert.pem [intermediates] root-cert.pem > cert-chain.pem)`);
  }
  if (intermediates.length > MAX_INTERMEDIATES) throw new CaStateError(f(ISTIO_CERT_CHAIN_FILE), `${f(ISTIO_CERT_CHAIN_FILE)} holds ${intermediates.length} intermediates, more than the ${MAX_INTERMEDIATES} a workload accepts`);
  const path = [...intermediates, root];
  for (let i = 0; i + 1 < path.length; i++) {
    if (!path[i + 1]!.isCa || !isIssuedBy(path[i]!, path[i + 1]!)) {
      throw new CaStateError(f(ISTIO_CERT_CHAIN_FILE), `the chain ca-cert.pem → root-cert.pem is broken: certificate ${i + 1} of it (${path[i]!.subject}) is not issued by the next (${path[i + 1]!.subject}). cert-chain.pem must run from ca-cert.pem up to root-cert.pem`);
    }
  }
  return { layout: 'istio-cacerts', root, signer, intermediates, keyPem };
}

async function chainCerts(file: string): Promise<ParsedCertificate[]> {
  const text = await readText(file);
  let ders;
  try {
    ders = pemToCertDers(text);
  } catch (e) {
    throw new CaStateError(file, `${file} is not PEM: ${(e as Error).message}`);
  }
  if (ders.length === 0) throw new CaStateError(file, `${file} holds no certificate`);
  return ders.map((d, i) => {
    try {
      return parseCertificate(d);
    } catch (e) {
      throw new CaStateError(file, `certificate ${i + 1} of ${file} is not well-formed: ${(e as Error).message}`);
    }
  });
}

/** A root made for one trust domain (URI SAN spiffe://td) is not used for another. */
function checkTrustDomain(root: ParsedCertificate, trustDomain: string, file: string): void {
  const tds = root.uris.filter((u) => u.startsWith(SPIFFE_SCHEME)).map((u) => u.slice(SPIFFE_SCHEME.length));
  if (tds.length > 0 && !tds.includes(trustDomain)) {
    throw new CaStateError(file, `${file} is the root of trust domain ${tds.join(', ')}, not ${trustDomain}: set trustDomain: ${tds[0]} in the mesh file, or give another --state directory`);
  }
}

async function loadOrCreateTokenKey(dir: string): Promise<TokenKey> {
  if (!(await exists(dir, TOKEN_KEY_FILE))) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await createFile(join(dir, TOKEN_KEY_FILE), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  return loadTokenKey(dir);
}

/**
 * The token signing key of an existing state directory (what `control-plane token` needs; it never
 * creates a CA). CaStateError when the control plane has not been started on `dir` yet.
 */
export async function loadTokenKey(dir: string): Promise<TokenKey> {
  const file = join(dir, TOKEN_KEY_FILE);
  if (!(await exists(dir, TOKEN_KEY_FILE))) {
    throw new CaStateError(file, `${file} does not exist: ${dir} is not the state directory of a control plane yet. Start "sidecarless control-plane --state ${dir}" once (it creates the CA and the token key), or give the --state it runs with`);
  }
  const pem = await readKeyFile(file);
  let key;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new CaStateError(file, `${file} is not a PEM private key (${(e as Error).message}): remove it to make a new one (every token issued so far stops working)`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CaStateError(file, `${file} must be an ECDSA P-256 key (tokens are ES256): remove it to make a new one (every token issued so far stops working)`);
  }
  return tokenKeyOf(key, createPublicKey(key));
}

class State implements CaState {
  readonly rootFile: string;
  readonly rootPem: string;
  readonly signer: ParsedCertificate;
  readonly layout: CaLayout;
  readonly #records: IssuedRecord[] = [];
  readonly #above: string[];

  constructor(
    readonly dir: string,
    readonly trustDomain: string,
    readonly clock: Clock,
    private readonly loaded: Loaded,
    readonly tokenKey: TokenKey,
    private readonly maxRecords: number,
  ) {
    this.rootFile = join(dir, ROOT_CERT_FILE);
    this.rootPem = derToPem(loaded.root.der);
    this.signer = loaded.signer.cert;
    this.layout = loaded.layout;
    this.#above = loaded.intermediates.map((c) => derToPem(c.der));
  }

  async issueServing(names: readonly string[] = DEFAULT_SERVING_NAMES): Promise<{ certPem: string; keyPem: string; notAfter: number }> {
    if (names.length === 0) throw new CaStateError(this.rootFile, 'a serving certificate needs at least one DNS name or IP address');
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey));
    const now = this.clock.now();
    const notAfter = Math.min(now + SERVING_CERT_TTL_MS, this.loaded.signer.cert.notAfter);
    const der = await signLeaf(this.loaded.signer, { spki, names, notBefore: now - LEAF_BACKDATE_MS, notAfter });
    const keyPem = derToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    return { certPem: derToPem(der) + this.#above.join(''), keyPem, notAfter: parseCertificate(der).notAfter };
  }

  async sign(csrPem: string, spiffeId: string, ttlMs: number): Promise<string[]> {
    const id = parseWorkloadId(spiffeId);
    if (id.trustDomain !== this.trustDomain) throw new CaStateError(this.rootFile, `this CA signs for trust domain ${this.trustDomain}, not for ${id.id}`);
    if (!(ttlMs >= 1000) || !Number.isFinite(ttlMs)) throw new RangeError(`ttlMs must be at least 1000, got ${ttlMs}`);
    const spki = await verifiedCsrKey(csrPem);
    const now = this.clock.now();
    // X.509 times are whole seconds: round the end up; a leaf never outlives the certificate that signs it.
    const notAfter = Math.min(Math.ceil((now + ttlMs) / 1000) * 1000, this.loaded.signer.cert.notAfter);
    const der = await signLeaf(this.loaded.signer, { spki, uris: [id.id], notBefore: now - LEAF_BACKDATE_MS, notAfter });
    const leaf = parseCertificate(der);
    this.#records.push({ serial: leaf.serialNumber.toLowerCase(), spiffeId: id.id, notAfter: leaf.notAfter, at: now });
    if (this.#records.length > this.maxRecords) this.#records.splice(0, this.#records.length - this.maxRecords);
    return [derToPem(der), ...this.#above, this.rootPem];
  }

  issued(): readonly IssuedRecord[] {
    return [...this.#records];
  }

  /** Derived once; the CA key's PEM text is then dropped (the signer keeps only its non-extractable CryptoKey). */
  jwt(): Promise<DevCaJwt> {
    if (!this.#jwt) {
      const derived = devCaJwt({ trustDomain: this.trustDomain, exportPem: async () => ({ keyPem: this.loaded.keyPem }) });
      this.#jwt = derived;
      derived.then(
        () => (this.loaded.keyPem = ''),
        () => (this.#jwt = undefined),
      );
    }
    return this.#jwt;
  }

  #jwt: Promise<DevCaJwt> | undefined;
}
