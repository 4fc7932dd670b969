/**
 * The checks a Certify answer of Linkerd's identity service passes before it is used (pure, `now`
 * injected): what linkerd2-proxy's identity client takes on trust is verified here.
 *
 * - The leaf is one DER certificate whose public key is the CSR's (ours), an ECDSA key, not a CA,
 *   with digitalSignature; its SAN is exactly one DNS name, the identity asked for, and no URI,
 *   IP address or e-mail. An answer for another name is refused: "a Certify response for another
 *   identity" (a token of another service account, or a confused or hostile identity service).
 * - At most MAX_INTERMEDIATES intermediates, each a DER CA certificate; the chain verifies from the
 *   leaf through them to one of the trust anchors, every certificate on the path valid at `now`.
 * - `valid_until` is present, in the future, and the leaf's notAfter (Linkerd's server sets it so;
 *   within a second, the resolution of an X.509 time).
 *
 * Refusals are SvidError (ERR_SIDECARLESS_SVID_INVALID) naming the identity service and what to do.
 */
import { createPublicKey } from 'node:crypto';
import { SvidError } from '../../errors.js';
import { KeyUsage, type ParsedCertificate, isIssuedBy, parseCertificate } from '../../identity/certificate.js';
import { derToPem } from '../../identity/pem.js';
import { dnsBundleKey, parseDnsIdentity } from '../../identity/dns-id.js';
import { MAX_INTERMEDIATES, verifySvidChain } from '../../identity/svid.js';
import { type CertifyResponse } from '../../proto/linkerd/identity.js';

export interface CheckedCertify {
  /** Leaf then intermediates, PEM. */
  readonly certChainPem: string;
  readonly leaf: ParsedCertificate;
  /** valid_until, ms since epoch. */
  readonly validUntil: number;
}

export interface CertifyExpectation {
  /** The DNS-like name asked for. */
  readonly identity: string;
  /** Our SubjectPublicKeyInfo (DER), the CSR's. */
  readonly spki: Uint8Array;
  /** The trust anchors. */
  readonly anchors: readonly ParsedCertificate[];
  /** For messages: `Linkerd identity service at …`. */
  readonly description: string;
  readonly now: number;
}

export function checkCertifyResponse(answer: CertifyResponse, want: CertifyExpectation): CheckedCertify {
  const refuse = (why: string) => new SvidError(`the ${want.description} answered a certificate that is refused: ${why}`);
  if (answer.intermediateCertificates.length > MAX_INTERMEDIATES) {
    throw refuse(`${answer.intermediateCertificates.length} intermediate certificates, more than ${MAX_INTERMEDIATES}`);
  }
  const leaf = parseDer(answer.leafCertificate, 'leaf_certificate', refuse);
  const intermediates = answer.intermediateCertificates.map((der, i) => parseDer(der, `intermediate_certificates[${i}]`, refuse));
  checkLeafName(leaf, want);
  checkLeafKey(leaf, want.spki, refuse);
  verifyToAnchors(leaf, intermediates, want.anchors, want.now, refuse);
  asPeersVerify(leaf, intermediates, want, refuse);
  const validUntil = validUntilOf(answer, leaf, want.now, refuse);
  const certChainPem = [leaf, ...intermediates].map((c) => derToPem(c.der)).join('');
  return { certChainPem, leaf, validUntil };
}

function parseDer(der: Uint8Array, field: string, refuse: (why: string) => Error): ParsedCertificate {
  if (der.length === 0) throw refuse(`${field} is empty`);
  try {
    return parseCertificate(der);
  } catch (e) {
    throw refuse(`${field} is not a DER certificate (${(e as Error).message})`);
  }
}

/** Exactly one DNS SAN, the identity asked for; no URI, IP or e-mail SAN. */
function checkLeafName(leaf: ParsedCertificate, want: CertifyExpectation): void {
  const names = leaf.dnsNames;
  const others = leaf.uris.length > 0 || /(?:^|, )(?:IP Address|email):/.test(leaf.node.subjectAltName ?? '');
  if (names.length === 1 && names[0] === want.identity && !others) return;
  const got = [...names, ...leaf.uris].join(', ') || 'no name';
  throw new SvidError(
    `the ${want.description} sent a Certify response for another identity: the leaf names ${got}, not only ${want.identity} as asked. ` +
      'Refused (the token file may hold another service account\'s token: mount the token of this workload\'s service account, or fix its namespace/serviceAccount)',
  );
}

function checkLeafKey(leaf: ParsedCertificate, spki: Uint8Array, refuse: (why: string) => Error): void {
  const key = leaf.node.publicKey;
  if (key.asymmetricKeyType !== 'ec') throw refuse(`the leaf's key is ${key.asymmetricKeyType ?? 'unknown'}, not ECDSA (Linkerd issues for the CSR's ECDSA key)`);
  const ours = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  if (!key.equals(ours)) throw refuse('the leaf\'s public key is not the one of our CSR (it would be unusable with our private key)');
  if (leaf.isCa) throw refuse('the leaf is a CA certificate');
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & KeyUsage.digitalSignature) === 0) throw refuse('the leaf lacks the digitalSignature key usage');
}

function validAt(cert: ParsedCertificate, role: string, now: number, refuse: (why: string) => Error): void {
  if (now < cert.notBefore) throw refuse(`the ${role} is not valid yet (notBefore ${new Date(cert.notBefore).toISOString()})`);
  if (now > cert.notAfter) throw refuse(`the ${role} has expired (notAfter ${new Date(cert.notAfter).toISOString()})`);
}

/** The leaf, through the intermediates (any order), to one trust anchor; each on the path valid now. */
function verifyToAnchors(
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  anchors: readonly ParsedCertificate[],
  now: number,
  refuse: (why: string) => Error,
): void {
  validAt(leaf, 'leaf', now, refuse);
  const used = new Set<ParsedCertificate>();
  let current = leaf;
  for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
    const anchor = anchors.find((a) => isIssuedBy(current, a));
    if (anchor) return validAt(anchor, 'trust anchor', now, refuse);
    const next = intermediates.find((c) => !used.has(c) && isIssuedBy(current, c));
    if (!next) break;
    if (!next.isCa) throw refuse(`the intermediate "${next.subject}" is not a CA`);
    if (next.pathLength !== undefined && next.pathLength < depth) throw refuse(`the intermediate "${next.subject}"'s pathLenConstraint is exceeded`);
    validAt(next, `intermediate "${next.subject}"`, now, refuse);
    used.add(next);
    current = next;
  }
  throw refuse('its chain does not lead to the Linkerd trust anchors (another mesh\'s issuer, or anchors out of date: check LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS / controlPlane.linkerd.trustAnchors)');
}

/**
 * The chain as every peer of the mesh will verify it (verifySvidChain: leaf rules with key usage
 * present and no keyCertSign/cRLSign, intermediates with keyCertSign, key strength, path length):
 * a chain our peers would refuse is refused now, while the current certificate is still good,
 * rather than installed and every handshake failing.
 */
function asPeersVerify(leaf: ParsedCertificate, intermediates: readonly ParsedCertificate[], want: CertifyExpectation, refuse: (why: string) => Error): void {
  const name = want.identity;
  const domain = parseDnsIdentity(name).identityDomain ?? name.slice(name.indexOf('.') + 1);
  let key: string;
  try {
    key = dnsBundleKey(domain);
  } catch (e) {
    throw refuse(`the identity ${name} lies in no identity domain (${(e as Error).message})`);
  }
  try {
    verifySvidChain([leaf, ...intermediates], new Map([[key, { trustDomain: key, roots: want.anchors }]]), want.now);
  } catch (e) {
    throw refuse(`its chain would not verify at the mesh's peers: ${(e as Error).message}`);
  }
}

function validUntilOf(answer: CertifyResponse, leaf: ParsedCertificate, now: number, refuse: (why: string) => Error): number {
  const ts = answer.validUntil;
  if (!ts) throw refuse('valid_until is missing');
  const validUntil = ts.seconds * 1000 + Math.floor(ts.nanos / 1e6);
  if (!Number.isFinite(validUntil) || ts.nanos < 0 || ts.nanos > 999_999_999) throw refuse('valid_until is not a valid timestamp');
  if (validUntil <= now) throw refuse(`valid_until ${new Date(validUntil).toISOString()} is already past`);
  if (Math.abs(validUntil - leaf.notAfter) >= 1000) {
    throw refuse(`valid_until ${new Date(validUntil).toISOString()} is not the leaf's notAfter ${new Date(leaf.notAfter).toISOString()}`);
  }
  return validUntil;
}
