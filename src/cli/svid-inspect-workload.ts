/**
 * `sidecarless svid inspect --workload-api URI`: asks a SPIFFE Workload API (a SPIRE agent) for its
 * first X509SVIDResponse and reports each SVID in it as `--dir` reports a directory (who, hint,
 * valid until, key matches, chains to its bundle), then the federated bundles and which SVID a mesh
 * would take. The checks are the mesh's (svid-report.ts; the bundle of an SVID is its trust domain's,
 * as the source reads it).
 */
import { IdentityUnavailableError, SvidError } from '../errors.js';
import { type BundleSet, bundleFromDer, createBundle, splitDerCertificates } from '../identity/bundle.js';
import { parseCertificate } from '../identity/certificate.js';
import { derToPem, pemToCertDers } from '../identity/pem.js';
import { parseSpiffeId } from '../identity/spiffe-id.js';
import { type X509SVID, type X509SVIDResponse, decodeX509SVIDResponse } from '../proto/workload.js';
import { type WorkloadApiAddress, parseWorkloadApiAddress } from '../sources/workload-api-address.js';
import { fetchFirstX509 } from '../sources/workload-api-client.js';
import { quoted } from '../sources/workload-api-svids.js';
import { type Io, UsageError } from './args.js';
import { type FileRead, type ReportLine, type SvidReport, inspectSvid, renderReport } from './svid-report.js';

/** DER certificates as PEM text for the report, or why they cannot be read. */
function certsRead(name: string, der: Uint8Array): FileRead {
  if (der.length === 0) return { name, problem: 'MISSING: the field is empty', summary: `${name} is empty` };
  try {
    return { name, text: splitDerCertificates(der).map((d) => derToPem(d)).join('') };
  } catch (e) {
    return { name, problem: `INVALID: ${(e as Error).message}`, summary: `${name} cannot be parsed` };
  }
}

function keyRead(name: string, der: Uint8Array): FileRead {
  if (der.length === 0) return { name, problem: 'MISSING: the field is empty', summary: `${name} is empty` };
  return { name, text: derToPem(der, 'PRIVATE KEY') };
}

/** The Workload API names the trust domain of an SVID's bundle: every root belongs to it. */
function namedBundle(pem: string, trustDomain: string): BundleSet {
  return new Map([[trustDomain, createBundle(trustDomain, pemToCertDers(pem).map((d) => parseCertificate(d)))]]);
}

function reportSvid(s: X509SVID, i: number, now: number): SvidReport {
  const at = `svids[${i}]`;
  const extra: ReportLine[] = [{ label: 'hint', value: s.hint === '' ? '(none)' : quoted(s.hint, 1024) }];
  const cert = certsRead(`${at}.x509_svid`, s.x509Svid);
  const report = inspectSvid({ cert, key: keyRead(`${at}.x509_svid_key`, s.x509SvidKey), bundle: certsRead(`${at}.bundle`, s.bundle) }, now, {
    readBundle: namedBundle,
    extra,
  });
  const leafId = report.lines.find((l) => l.label === 'spiffe id' && l.problem === undefined)?.value;
  if (s.spiffeId !== '' && leafId !== undefined && s.spiffeId !== leafId) {
    const line = { label: 'spiffe_id', value: `MISMATCH: the message says ${s.spiffeId}, the certificate ${leafId}`, problem: `${at}.spiffe_id does not match its certificate` };
    return { ok: false, lines: [...report.lines, line], problems: [...report.problems, line.problem] };
  }
  return report;
}

/** One line per federated bundle: its trust domain and roots, or why the source would refuse the message. */
function federatedLines(msg: X509SVIDResponse): ReportLine[] {
  const lines: ReportLine[] = [];
  for (const [key, der] of msg.federatedBundles) {
    try {
      const id = parseSpiffeId(key);
      if (id.path !== '') throw new Error('the key must be a trust domain ID (spiffe://<trust-domain>)');
      const n = bundleFromDer(id.trustDomain, der).roots.length;
      lines.push({ label: id.trustDomain, value: `${n} root${n > 1 ? 's' : ''}` });
    } catch (e) {
      lines.push({ label: quoted(key), value: `INVALID: ${(e as Error).message}`, problem: `federated bundle ${quoted(key)} cannot be used` });
    }
  }
  return lines;
}

async function firstMessage(address: WorkloadApiAddress, timeoutMs: number): Promise<X509SVIDResponse> {
  let bytes: Buffer;
  try {
    bytes = await fetchFirstX509(address, timeoutMs);
  } catch (e) {
    throw new IdentityUnavailableError(`${(e as Error).message}. Is the SPIRE agent running, and is this process allowed to attest on its socket?`, { cause: e });
  }
  try {
    return decodeX509SVIDResponse(bytes);
  } catch (e) {
    throw new SvidError(`the Workload API at ${address.uri} sent bytes that are not an X509SVIDResponse: ${(e as Error).message}`, { cause: e });
  }
}

/** Runs the inspection; resolves 0 when every SVID and bundle is good, throws SvidError listing the problems otherwise. */
export async function inspectWorkloadApi(uri: string, timeoutMs: number, io: Io): Promise<number> {
  let address: WorkloadApiAddress;
  try {
    address = parseWorkloadApiAddress(uri);
  } catch (e) {
    throw new UsageError(`--workload-api: ${(e as Error).message}`);
  }
  const msg = await firstMessage(address, timeoutMs);
  if (msg.svids.length === 0) throw new SvidError(`the Workload API at ${address.uri} sent a message with no SVID`);
  const now = Date.now();
  const problems: string[] = [];
  msg.svids.forEach((s, i) => {
    const report = reportSvid(s, i, now);
    problems.push(...report.problems.map((p) => `svids[${i}]: ${p}`));
    io.stdout(renderReport(address.uri, report, `SVID ${i} of ${msg.svids.length} from ${address.uri}${i === 0 ? ' (the default: a mesh takes it unless identity.workloadApi.hint names another)' : ''}`));
  });
  const fed = federatedLines(msg);
  const width = Math.max(0, ...fed.map((l) => l.label.length));
  io.stdout(['federated bundles' + (fed.length === 0 ? ': none' : ''), ...fed.map((l) => `  ${l.label.padEnd(width)}  ${l.value}`)].join('\n'));
  problems.push(...fed.flatMap((l) => (l.problem ? [l.problem] : [])));
  if (problems.length === 0) return 0;
  const n = problems.length;
  throw new SvidError(`the Workload API at ${address.uri} sent ${n} problem${n > 1 ? 's' : ''}: ${problems.join('; ')}`);
}
