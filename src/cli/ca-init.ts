import { join } from 'node:path';
import { parseDuration } from '../duration.js';
import { createDevCa } from '../identity/dev-ca.js';
import { UsageError, defineCommand } from './args.js';
import { isoTime } from './human.js';
import { ensureDir, refuseExisting, writeFilesAtomically } from './files.js';

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca_key.pem';

/** Longest CA lifetime accepted (X.509 dates end in 9999; a dev CA has no business living longer). */
const MAX_CA_TTL_MS = 100 * 365 * 86_400_000;

/** Parses a `--ttl` that must be more than zero and at most `maxMs`. */
export function positiveTtl(text: string, maxMs: number, maxText: string): number {
  if (text.trim().startsWith('-')) throw new UsageError(`--ttl must be more than 0, got "${text}"`);
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    throw new UsageError(`--ttl: ${(e as Error).message}`);
  }
  if (ms <= 0) throw new UsageError(`--ttl must be more than 0, got "${text}"`);
  if (ms > maxMs) throw new UsageError(`--ttl ${text} is too long: at most ${maxText}`);
  return ms;
}

/** `sidecarless ca init`: writes ca.pem and ca_key.pem (mode 0600), atomically. */
export const caInitCommand = defineCommand({
  name: 'ca init',
  summary: 'create a CA for a trust domain: ca.pem (the trust bundle) and ca_key.pem (mode 0600)',
  description:
    'Creates a certificate authority for one trust domain, for development and tests: ca.pem (its\n' +
    'certificate, the trust bundle every workload gets) and ca_key.pem (its private key, mode 0600).\n' +
    'Issue SVIDs from it with "sidecarless svid issue --ca DIR".',
  options: {
    'trust-domain': { type: 'string', required: true, value: 'TD', help: 'the trust domain, e.g. cluster.local (lower case)' },
    out: { type: 'string', required: true, value: 'DIR', help: 'directory to write ca.pem and ca_key.pem to (created if missing)' },
    ttl: { type: 'string', value: '8760h', help: 'lifetime of the CA (default 8760h, one year)' },
    force: { type: 'boolean', help: 'replace an existing ca.pem / ca_key.pem (every SVID the old CA issued stops verifying)' },
  },
  examples: ['sidecarless ca init --trust-domain cluster.local --out ./ca'],
  async run(v, io) {
    const ttl = v.ttl === undefined ? undefined : positiveTtl(v.ttl, MAX_CA_TTL_MS, '36500d');
    const ca = await createDevCa({ trustDomain: v['trust-domain']!, ...(ttl !== undefined && { caTtlMs: ttl }) }).catch((e: Error) => {
      throw new UsageError(`--trust-domain: ${e.message}`);
    });
    const out = v.out!;
    await ensureDir(out);
    const replaced = await refuseExisting(out, [CA_CERT_FILE, CA_KEY_FILE], v.force, 'every SVID the old CA issued stops verifying');
    const { certPem, keyPem } = await ca.exportPem();
    await writeFilesAtomically(out, [
      { name: CA_KEY_FILE, content: keyPem, mode: 0o600 },
      { name: CA_CERT_FILE, content: certPem, mode: 0o644 },
    ]);
    io.stdout(
      `${replaced.length ? 'replaced the CA' : 'created a CA'} for spiffe://${ca.trustDomain} in ${join(out)} ` +
        `(valid until ${isoTime(ca.root.notAfter)}): ${CA_CERT_FILE} (trust bundle), ${CA_KEY_FILE} (mode 0600, keep it secret)`,
    );
    return 0;
  },
});
