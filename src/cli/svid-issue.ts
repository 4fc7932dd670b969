import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { CaError, FileError } from '../errors.js';
import { type ParsedCertificate, parseCertificate } from '../identity/certificate.js';
import { DEFAULT_SVID_TTL_MS, DEV_CA_BACKDATE_MS, DevCa } from '../identity/dev-ca.js';
import { keyMatchesCertificate } from '../identity/keys.js';
import { pemToCertDers } from '../identity/pem.js';
import { type SpiffeId, parseWorkloadId } from '../identity/spiffe-id.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../sources/dir.js';
import { UsageError, defineCommand } from './args.js';
import { CA_CERT_FILE, CA_KEY_FILE, positiveTtl } from './ca-init.js';
import { ensureDir, readText, refuseExisting, requireDir, writeFilesAtomically } from './files.js';
import { fittingDuration, humanDuration, isoTime } from './human.js';

/** A loaded CA and its certificate, checked: the key is the certificate's, and it is valid now. */
export interface LoadedCa {
  readonly ca: DevCa;
  readonly cert: ParsedCertificate;
}

/** Parses ca.pem and checks ca_key.pem belongs to it. Throws CaError saying which file is wrong. */
function checkCaFiles(dir: string, certPem: string, keyPem: string, now: number): ParsedCertificate {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  let cert: ParsedCertificate;
  try {
    const ders = pemToCertDers(certPem);
    if (ders.length === 0) throw new Error('it holds no CERTIFICATE block');
    cert = parseCertificate(ders[0]!);
  } catch (e) {
    throw new CaError(`${certFile} is not a CA certificate: ${(e as Error).message} (write it with "sidecarless ca init")`, { cause: e });
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) throw new CaError(`${keyFile} holds no PRIVATE KEY block`);
  try {
    createPrivateKey(keyPem);
  } catch (e) {
    throw new CaError(`${keyFile} cannot be read as a private key: ${(e as Error).message}`, { cause: e });
  }
  if (!keyMatchesCertificate(keyPem, cert.der)) {
    throw new CaError(`${keyFile} is not the private key of ${certFile} (a key from another CA?): keep the two files that "sidecarless ca init" wrote together`);
  }
  if (now > cert.notAfter) throw new CaError(`the CA in ${dir} expired at ${isoTime(cert.notAfter)}: create a new one with "sidecarless ca init --force --out ${dir}"`);
  if (now < cert.notBefore) throw new CaError(`the CA in ${dir} is not valid before ${isoTime(cert.notBefore)} (is this machine's clock right?)`);
  return cert;
}

/** Loads the CA written by `sidecarless ca init`, refusing files that cannot sign SVIDs that verify. */
export async function loadCa(dir: string, now = Date.now()): Promise<LoadedCa> {
  const create = `create a CA first with "sidecarless ca init --trust-domain TD --out ${dir}"`;
  await requireDir(dir, create);
  const certPem = await readText(join(dir, CA_CERT_FILE), create);
  const keyPem = await readText(join(dir, CA_KEY_FILE), `${join(dir, CA_CERT_FILE)} needs the ${CA_KEY_FILE} written with it`);
  const cert = checkCaFiles(dir, certPem, keyPem, now);
  try {
    return { ca: await DevCa.fromPem(certPem, keyPem), cert };
  } catch (e) {
    throw new CaError(`the CA in ${dir} cannot be used: ${(e as Error).message}`, { cause: e });
  }
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** `--dns` values: host names (a leading `*.` allowed), lower-cased; IP addresses are refused. */
export function dnsNames(list: readonly string[]): string[] {
  return list.map((raw) => {
    const name = raw.toLowerCase();
    if (/^[0-9.]+$/.test(name) || name.includes(':')) throw new UsageError(`--dns "${raw}" is an IP address: --dns takes host names`);
    if (name.length > 253 || !DNS_NAME.test(name)) throw new UsageError(`--dns "${raw}" is not a DNS name (letters, digits, "-" and dots; "*." only at the start)`);
    return name;
  });
}

function spiffeIdOf(text: string): SpiffeId {
  try {
    return parseWorkloadId(text);
  } catch (e) {
    throw new UsageError(`--spiffe-id: ${(e as Error).message}`);
  }
}

/** Refuses a TTL that would outlive the CA (the SVID's chain would stop verifying before the SVID does). */
function checkTtlFitsCa(ttlMs: number, given: string | undefined, notAfter: number, caNotAfter: number, now: number): void {
  if (notAfter <= caNotAfter) return;
  const left = caNotAfter - now;
  const fits = fittingDuration(left);
  throw new UsageError(
    `${given === undefined ? `the default --ttl (${humanDuration(ttlMs)})` : `--ttl ${given}`} would outlive the CA, which expires at ` +
      `${isoTime(caNotAfter)} (in ${humanDuration(left)}): ${fits ? `use --ttl ${fits} or less, or ` : ''}create a new CA with "sidecarless ca init --force"`,
  );
}

/**
 * Reads the set back: another writer renaming into the same directory at the same moment could
 * leave its key beside our certificate. Say so rather than leave a set no mesh will accept.
 */
async function checkWrittenSet(out: string, serial: string): Promise<void> {
  const [certPem, keyPem] = await Promise.all([readText(join(out, SVID_FILE)), readText(join(out, KEY_FILE))]);
  const der = pemToCertDers(certPem)[0];
  if (der && parseCertificate(der).serialNumber === serial && keyMatchesCertificate(keyPem, der)) return;
  throw new FileError(join(out, SVID_FILE), `another writer replaced files in ${out} at the same time: ${SVID_FILE} and ${KEY_FILE} there may not belong together; run "sidecarless svid issue --force" again, one at a time`);
}

/** `sidecarless svid issue`: writes svid.pem, svid_key.pem (0600), svid_bundle.pem — spiffe-helper's names — atomically. */
export const svidIssueCommand = defineCommand({
  name: 'svid issue',
  summary: 'issue an X.509-SVID from a CA: svid.pem, svid_key.pem (0600), svid_bundle.pem',
  description:
    'Issues an X.509-SVID (ECDSA P-256, one URI SAN) from a CA made by "sidecarless ca init" and writes\n' +
    "spiffe-helper's three files: svid.pem (the certificate), svid_key.pem (PKCS#8, mode 0600) and\n" +
    'svid_bundle.pem (the trust bundle). Each file is written to a temp file and renamed into place, so a\n' +
    'mesh watching the directory (identity: { dir }) picks up the new set and never a half-written file.\n' +
    "A TTL that would outlive the CA is refused (the SVID would stop verifying when the CA expires).",
  options: {
    ca: { type: 'string', required: true, value: 'DIR', help: 'the CA directory (ca.pem, ca_key.pem) written by "sidecarless ca init"' },
    'spiffe-id': { type: 'string', required: true, value: 'ID', help: "the workload's SPIFFE ID, in the CA's trust domain" },
    out: { type: 'string', required: true, value: 'DIR', help: 'directory to write the three files to (created if missing)' },
    ttl: { type: 'string', value: '1h', help: 'lifetime, more than 0 and within the CA\'s own (default 1h; X.509 rounds up to the second)' },
    dns: { type: 'string', multiple: true, value: 'NAME', help: 'add a DNS SAN, for tools such as curl that check host names' },
    force: { type: 'boolean', help: 'replace existing files in --out (a mesh watching it rotates to the new SVID)' },
  },
  examples: ['sidecarless svid issue --ca ./ca --spiffe-id spiffe://cluster.local/ns/default/sa/payments --out ./certs/payments'],
  async run(v, io) {
    const id = spiffeIdOf(v['spiffe-id']!);
    const ttlMs = v.ttl === undefined ? DEFAULT_SVID_TTL_MS : positiveTtl(v.ttl, Infinity, '');
    const dns = dnsNames(v.dns ?? []);
    const { ca, cert } = await loadCa(v.ca!);
    if (id.trustDomain !== ca.trustDomain) {
      throw new UsageError(`--spiffe-id ${id.id}: the CA in ${v.ca} signs for trust domain "${ca.trustDomain}", not "${id.trustDomain}"`);
    }
    const now = Date.now();
    // The same arithmetic as DevCa.issue, with notBefore fixed here so the check and the certificate agree.
    const notBefore = now - DEV_CA_BACKDATE_MS;
    const notAfter = Math.ceil((now + ttlMs) / 1000) * 1000;
    checkTtlFitsCa(ttlMs, v.ttl, notAfter, cert.notAfter, now);
    const out = v.out!;
    await ensureDir(out);
    const replaced = await refuseExisting(out, [SVID_FILE, KEY_FILE, BUNDLE_FILE], v.force, `a mesh watching ${out} rotates to the new SVID`);
    const svid = await ca.issue({ spiffeId: id.id, ttlMs, notBefore, dnsNames: dns });
    // Bundle, then key, then the certificate (what a reader treats as "the new SVID") last.
    await writeFilesAtomically(out, [
      { name: BUNDLE_FILE, content: svid.bundlePem, mode: 0o644 },
      { name: KEY_FILE, content: svid.keyPem, mode: 0o600 },
      { name: SVID_FILE, content: svid.certChainPem, mode: 0o644 },
    ]);
    await checkWrittenSet(out, svid.serialNumber);
    io.stdout(
      `${replaced.length ? 'replaced the SVID with' : 'issued'} ${svid.spiffeId} (serial ${svid.serialNumber}, valid until ${isoTime(svid.notAfter)}, ` +
        `${humanDuration(svid.notAfter - now)}) in ${out}: ${SVID_FILE}, ${KEY_FILE} (mode 0600), ${BUNDLE_FILE}`,
    );
    return 0;
  },
});
