// Crafting certificates for adversarial tests: hostile leaves signed by a real dev CA, PEM sets
// written as spiffe-helper writes them, and a tiny hand-driven X509Source.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../src/clock.js';
import { bundlesFromPem, type BundleSet, type X509Bundle } from '../../src/identity/bundle.js';
import { type ParsedCertificate, parseCertificate } from '../../src/identity/certificate.js';
import { type DevCa, type IssuedSvid } from '../../src/identity/dev-ca.js';
import { generateKeyPair, privateKeyToPem } from '../../src/identity/keys.js';
import { makeTempDir } from './tmp.js';
import { x509 } from './x509.js';
import { buildSvid } from '../../src/sources/svid-set.js';
import { type X509Svid, CoreBackedSource, SourceCore } from '../../src/sources/source.js';

export const TD = 'cluster.local';
export const idOf = (sa: string, ns = 'default', td = TD) => `spiffe://${td}/ns/${ns}/sa/${sa}`;

export interface CraftOptions {
  /** URI SAN values (default: one, `spiffe://cluster.local/ns/default/sa/client`). */
  uris?: string[];
  dnsNames?: string[];
  /** Replace the SAN extension entirely (e.g. a hand-built one); `null` omits it. */
  san?: x509.Extension | null;
  /** basicConstraints cA (default false); `null` omits the extension. */
  isCa?: boolean | null;
  /** Key usage flags (default digitalSignature); `null` omits the extension. */
  keyUsage?: number | null;
  /** EKU (default serverAuth + clientAuth); `null` omits it. */
  extKeyUsage?: string[] | null;
  notBefore?: number;
  notAfter?: number;
  subject?: string;
}

export interface Crafted {
  /** Leaf then the CA's intermediates. */
  readonly certChainPem: string;
  readonly leafPem: string;
  readonly keyPem: string;
  readonly der: Buffer;
  readonly parsed: ParsedCertificate;
  /** Leaf then intermediates, parsed. */
  readonly chain: ParsedCertificate[];
  readonly serialNumber: string;
}

/** Signs an arbitrary leaf with `ca` (through its intermediates). */
export async function craftLeaf(ca: DevCa, o: CraftOptions = {}): Promise<Crafted> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const extensions: x509.Extension[] = [];
  if (o.isCa !== null) extensions.push(new x509.BasicConstraintsExtension(o.isCa ?? false, undefined, true));
  if (o.keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(o.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true));
  if (o.extKeyUsage !== null) {
    extensions.push(new x509.ExtendedKeyUsageExtension(o.extKeyUsage ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]));
  }
  if (o.san !== null) {
    if (o.san) extensions.push(o.san);
    else {
      const names: x509.JsonGeneralNames = (o.uris ?? [idOf('client')]).map((value) => ({ type: 'url' as const, value }));
      for (const d of o.dnsNames ?? []) names.push({ type: 'dns', value: d });
      if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    }
  }
  const cert = await ca.sign({
    publicKey: keys.publicKey,
    notBefore: o.notBefore ?? now - 60_000,
    notAfter: o.notAfter ?? now + 3_600_000,
    extensions,
    ...(o.subject !== undefined && { subject: o.subject }),
  });
  const leafPem = cert.toString('pem') + '\n';
  const certChainPem = leafPem + ca.intermediatesPem;
  const der = Buffer.from(cert.rawData);
  const parsed = parseCertificate(der);
  const chain = [parsed, ...intermediatesOf(ca)];
  return { certChainPem, leafPem, keyPem: await privateKeyToPem(keys.privateKey), der, parsed, chain, serialNumber: parsed.serialNumber };
}

export function intermediatesOf(ca: DevCa): ParsedCertificate[] {
  return pemDers(ca.intermediatesPem).map((d) => parseCertificate(d));
}

export function pemDers(pem: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

/**
 * A SubjectAlternativeName extension holding exactly the given URI values, DER-encoded by hand so
 * that bytes a library might refuse or normalize (NUL, commas, spaces) go on the wire as they are.
 */
export function rawUriSan(values: string[]): x509.Extension {
  const tlv = (tag: number, body: Buffer): Buffer => {
    const len = body.length;
    const head =
      len < 0x80 ? Buffer.from([tag, len])
      : len < 0x100 ? Buffer.from([tag, 0x81, len])
      : Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
    return Buffer.concat([head, body]);
  };
  const names = Buffer.concat(values.map((v) => tlv(0x86, Buffer.from(v, 'latin1')))); // [6] IA5String
  const seq = tlv(0x30, names);
  return new x509.Extension('2.5.29.17', false, new Uint8Array(seq));
}

/** The PEM files of an SVID, as spiffe-helper names them. */
export interface SvidFiles {
  certChainPem: string;
  keyPem: string;
  bundlePem: string;
}

export async function writeSvidDir(dir: string, files: SvidFiles): Promise<void> {
  // The key and bundle first, the certificate last, as a careful writer would; each file whole.
  await writeFile(join(dir, 'svid_key.pem'), files.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'svid_bundle.pem'), files.bundlePem);
  await writeFile(join(dir, 'svid.pem'), files.certChainPem);
}

/** A temp directory; `remove()` it in an `after` hook (it goes at process exit in any case: test/helpers/tmp.ts). */
export async function tempDir(prefix = 'sidecarless-test-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  return makeTempDir(prefix);
}

export function filesOf(svid: IssuedSvid, extraBundlePem = ''): SvidFiles {
  return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, bundlePem: svid.bundlePem + extraBundlePem };
}

/**
 * The smallest X509Source: the test sets the SVID and bundles by hand. Expiry is checked at use
 * time by SourceCore, against `clock`.
 */
export class ManualSource extends CoreBackedSource {
  constructor(readonly clock: Clock = systemClock) {
    super(new SourceCore('manual', clock, 'test source'));
  }
  /** Verifies and installs a set (throws like a real source would reject it). */
  set(files: SvidFiles, defaultTrustDomain = TD): X509Svid {
    const bundles = bundlesFromPem(files.bundlePem, defaultTrustDomain);
    const svid = buildSvid(files.certChainPem, files.keyPem, bundles, this.clock.now());
    this.core.accept(svid, bundles);
    return svid;
  }
  fail(err: Error): void {
    this.core.fail(err);
  }
  async close(): Promise<void> {
    this.core.close();
  }
}

/** Walks `cause` chains and AggregateErrors looking for an error with `code`. */
export function findCode(err: unknown, code: string, depth = 0): (Error & { code?: string }) | undefined {
  if (!err || typeof err !== 'object' || depth > 10) return undefined;
  const e = err as Error & { code?: string; cause?: unknown; errors?: unknown[] };
  if (e.code === code) return e;
  for (const inner of e.errors ?? []) {
    const hit = findCode(inner, code, depth + 1);
    if (hit) return hit;
  }
  return findCode(e.cause, code, depth + 1);
}

/** Every message along a cause chain, joined (for asserting on "says why"). */
export function messages(err: unknown, depth = 0): string {
  if (!err || typeof err !== 'object' || depth > 10) return '';
  const e = err as Error & { cause?: unknown; errors?: unknown[] };
  return [e.message, ...(e.errors ?? []).map((x) => messages(x, depth + 1)), messages(e.cause, depth + 1)].filter(Boolean).join(' | ');
}
