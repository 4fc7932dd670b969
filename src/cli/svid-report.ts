/**
 * What `sidecarless svid inspect` says about an SVID directory: who, valid from/until, key type,
 * whether the key matches the certificate and whether the chain verifies against the bundle.
 * Pure (files in, report out, `now` given); the checks are the project's own (identity/), the
 * same a mesh runs when it loads the directory, reported one by one instead of stopping at the first.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { type BundleSet, bundlesFromPem } from '../identity/bundle.js';
import { type ParsedCertificate, parseCertificate } from '../identity/certificate.js';
import { keyMatchesCertificate } from '../identity/keys.js';
import { pemToCertDers } from '../identity/pem.js';
import { type SpiffeId } from '../identity/spiffe-id.js';
import { validateLeaf, verifySvidChain } from '../identity/svid.js';
import { humanDuration, isoTime } from './human.js';

/**
 * One file as read: its text, or why it could not be read: `problem` for the report line
 * ("MISSING: the file does not exist"), `summary` for the list of problems ("svid.pem is missing").
 */
export type FileRead = { readonly name: string } & ({ readonly text: string } | { readonly problem: string; readonly summary: string });

export interface ReportLine {
  readonly label: string;
  readonly value: string;
  /** Set when this line is a problem: a short phrase for the summary. */
  readonly problem?: string;
}

export interface SvidReport {
  readonly ok: boolean;
  readonly lines: readonly ReportLine[];
  readonly problems: readonly string[];
}

class Report {
  readonly lines: ReportLine[] = [];
  add(label: string, value: string, problem?: string): void {
    this.lines.push(problem === undefined ? { label, value } : { label, value, problem });
  }
  done(): SvidReport {
    const problems = this.lines.flatMap((l) => (l.problem === undefined ? [] : [l.problem]));
    return { ok: problems.length === 0, lines: this.lines, problems };
  }
}

/** The chain in svid.pem, parsed, or why not. */
function readChain(f: FileRead, r: Report): ParsedCertificate[] | undefined {
  if (!('text' in f)) {
    r.add('certificate', `${f.name}: ${f.problem}`, f.summary);
    return undefined;
  }
  try {
    const ders = pemToCertDers(f.text);
    if (ders.length === 0) {
      r.add('certificate', `INVALID: ${f.name} holds no CERTIFICATE block`, `${f.name} holds no certificate`);
      return undefined;
    }
    return ders.map(parseCertificate);
  } catch (e) {
    r.add('certificate', `INVALID: ${f.name} cannot be parsed: ${(e as Error).message}`, `${f.name} cannot be parsed`);
    return undefined;
  }
}

function keyTypeOf(k: KeyObject): string {
  const d = k.asymmetricKeyDetails ?? {};
  const curves: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
  switch (k.asymmetricKeyType) {
    case 'ec':
      return `ECDSA ${curves[d.namedCurve ?? ''] ?? d.namedCurve ?? ''}`.trim();
    case 'rsa':
      return `RSA ${d.modulusLength ?? ''}`.trim();
    case 'ed25519':
      return 'Ed25519';
    default:
      return String(k.asymmetricKeyType);
  }
}

function validity(leaf: ParsedCertificate, now: number, r: Report): void {
  r.add('valid from', isoTime(leaf.notBefore));
  if (now < leaf.notBefore) {
    r.add('valid until', `${isoTime(leaf.notAfter)}  NOT YET VALID: starts in ${humanDuration(leaf.notBefore - now)}`, `not valid until ${isoTime(leaf.notBefore)}`);
  } else if (now > leaf.notAfter) {
    r.add('valid until', `${isoTime(leaf.notAfter)}  EXPIRED ${humanDuration(now - leaf.notAfter)} ago`, `expired ${humanDuration(now - leaf.notAfter)} ago`);
  } else {
    r.add('valid until', `${isoTime(leaf.notAfter)}  (${humanDuration(leaf.notAfter - now)} left)`);
  }
}

function keyCheck(f: FileRead, leaf: ParsedCertificate | undefined, r: Report): void {
  if (!('text' in f)) return r.add('key', `${f.name}: ${f.problem}`, f.summary);
  const pem = f.text;
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return r.add('key', `INVALID: ${f.name} holds no PRIVATE KEY block`, `${f.name} holds no private key`);
  try {
    createPrivateKey(pem);
  } catch (e) {
    return r.add('key', `INVALID: ${f.name} cannot be read as a private key: ${(e as Error).message}`, `${f.name} cannot be read`);
  }
  if (!leaf) return r.add('key', `${f.name} holds a private key (not compared: no certificate)`);
  if (keyMatchesCertificate(pem, leaf.der)) return r.add('key', `${f.name} matches the certificate`);
  r.add('key', `DOES NOT MATCH: ${f.name} is the key of another certificate`, 'the key does not match the certificate');
}

/** How the bundle text becomes bundles: a file's roots are grouped by their URI SAN; the Workload API names the trust domain. */
export type BundleReader = (pem: string, trustDomain: string) => BundleSet;

function readBundles(f: FileRead, trustDomain: string, r: Report, read: BundleReader): BundleSet | undefined {
  if (!('text' in f)) {
    r.add('bundle', `${f.name}: ${f.problem}`, f.summary);
    return undefined;
  }
  const pem = f.text;
  try {
    return read(pem, trustDomain);
  } catch (e) {
    r.add('bundle', `INVALID: ${f.name}: ${(e as Error).message}`, `${f.name} cannot be used`);
    return undefined;
  }
}

function chainCheck(chain: ParsedCertificate[], id: SpiffeId, bundles: BundleSet, bundleName: string, now: number, r: Report): void {
  const leaf = chain[0]!;
  // Time is reported on its own line: judge the path at a moment the leaf is valid, so an expired
  // leaf does not hide whether it chains (an expired intermediate or root is still reported, at that moment).
  const at = Math.min(Math.max(now, leaf.notBefore), leaf.notAfter);
  const intermediates = chain.length - 1;
  try {
    const v = verifySvidChain(chain, bundles, at);
    const via = intermediates === 0 ? 'no intermediates' : `${intermediates} intermediate${intermediates > 1 ? 's' : ''}`;
    r.add('chain', `verifies against ${bundleName} (trust domain ${id.trustDomain}, ${via})`);
    if (v.notAfter < leaf.notAfter) {
      r.add('chain until', `${isoTime(v.notAfter)}: a CA in the chain expires before the leaf`, v.notAfter < now ? 'a CA in the chain expired' : undefined);
    }
  } catch (e) {
    r.add('chain', `DOES NOT VERIFY against ${bundleName}: ${(e as Error).message}`, `the chain does not verify against ${bundleName}`);
  }
}

/** Inspects svid.pem, svid_key.pem and svid_bundle.pem as read from a directory, at time `now`. */
export function inspectSvid(
  files: { cert: FileRead; key: FileRead; bundle: FileRead },
  now: number,
  /** readBundle: how the bundle text is read; extra: lines shown after the SPIFFE ID (the Workload API's hint). */
  o: { readBundle?: BundleReader; extra?: readonly ReportLine[] } = {},
): SvidReport {
  const r = new Report();
  const chain = readChain(files.cert, r);
  const leaf = chain?.[0];
  let id: SpiffeId | undefined;
  if (leaf) {
    try {
      id = validateLeaf(leaf);
      r.add('spiffe id', id.id);
    } catch (e) {
      r.add('spiffe id', `NOT AN X.509-SVID: ${(e as Error).message}`, 'the certificate is not an X.509-SVID');
    }
  }
  for (const l of o.extra ?? []) r.add(l.label, l.value, l.problem);
  if (leaf) {
    validity(leaf, now, r);
    r.add('key type', keyTypeOf(leaf.node.publicKey));
  }
  keyCheck(files.key, leaf, r);
  const bundles = readBundles(files.bundle, id?.trustDomain ?? 'unknown', r, o.readBundle ?? bundlesFromPem);
  if (chain && id && bundles) chainCheck(chain, id, bundles, files.bundle.name, now, r);
  else if (bundles) r.add('chain', `not checked (${leaf ? 'the certificate is not an X.509-SVID' : 'no certificate'})`);
  if (leaf?.dnsNames.length) r.add('dns names', leaf.dnsNames.join(', '));
  if (leaf) r.add('serial', leaf.serialNumber);
  return r.done();
}

/** The report as text, one aligned line per check, then OK or the problems. */
export function renderReport(dir: string, report: SvidReport, title = `SVID in ${dir}`): string {
  const width = Math.max(...report.lines.map((l) => l.label.length));
  const out = [title, ...report.lines.map((l) => `  ${l.label.padEnd(width)}  ${l.value}`)];
  out.push(report.ok ? 'OK: valid now, key matches, chain verifies' : `PROBLEMS: ${report.problems.join('; ')}`);
  return out.join('\n');
}
