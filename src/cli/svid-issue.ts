import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDuration } from '../duration.js';
import { DevCa } from '../identity/dev-ca.js';
import { parseWorkloadId } from '../identity/spiffe-id.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../sources/dir.js';
import { type Io, UsageError, parse } from './args.js';
import { CA_CERT_FILE, CA_KEY_FILE } from './ca-init.js';

export const svidIssueUsage = 'usage: sidecarless svid issue --ca DIR --spiffe-id ID --out DIR [--ttl 1h] [--dns NAME]...';

/** Loads the CA written by `sidecarless ca init`. */
export async function loadCa(dir: string): Promise<DevCa> {
  const read = (f: string) =>
    readFile(join(dir, f), 'utf8').catch(() => {
      throw new UsageError(`cannot read ${join(dir, f)}: create a CA first with "sidecarless ca init --trust-domain TD --out ${dir}"`);
    });
  const [certPem, keyPem] = await Promise.all([read(CA_CERT_FILE), read(CA_KEY_FILE)]);
  return DevCa.fromPem(certPem, keyPem);
}

/** `sidecarless svid issue`: writes svid.pem, svid_key.pem (0600), svid_bundle.pem — spiffe-helper's names. */
export async function svidIssue(args: string[], io: Io): Promise<number> {
  const v = parse(
    args,
    { ca: { type: 'string' }, 'spiffe-id': { type: 'string' }, out: { type: 'string' }, ttl: { type: 'string' }, dns: { type: 'string', multiple: true } },
    ['ca', 'spiffe-id', 'out'],
  );
  try {
    parseWorkloadId(v['spiffe-id']!);
  } catch (e) {
    throw new UsageError(`--spiffe-id: ${(e as Error).message}`);
  }
  let ttlMs: number | undefined;
  try {
    ttlMs = v.ttl ? parseDuration(v.ttl) : undefined;
  } catch (e) {
    throw new UsageError(`--ttl: ${(e as Error).message}`);
  }
  const ca = await loadCa(v.ca!);
  const svid = await ca.issue({ spiffeId: v['spiffe-id']!, ...(ttlMs !== undefined && { ttlMs }), dnsNames: (v.dns as string[] | undefined) ?? [] }).catch((e: Error) => {
    throw new UsageError(`--spiffe-id: ${e.message}`);
  });
  const out = v.out!;
  await mkdir(out, { recursive: true });
  await writeFile(join(out, SVID_FILE), svid.certChainPem, { mode: 0o644 });
  await writeFile(join(out, KEY_FILE), svid.keyPem, { mode: 0o600 });
  await chmod(join(out, KEY_FILE), 0o600);
  await writeFile(join(out, BUNDLE_FILE), svid.bundlePem, { mode: 0o644 });
  io.stdout(
    `issued ${svid.spiffeId} (serial ${svid.serialNumber}, valid until ${new Date(svid.notAfter).toISOString()}) in ${out}: ` +
      `${SVID_FILE}, ${KEY_FILE} (mode 0600), ${BUNDLE_FILE}`,
  );
  return 0;
}
