import { mkdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDuration } from '../duration.js';
import { createDevCa } from '../identity/dev-ca.js';
import { type Io, UsageError, parse } from './args.js';

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca_key.pem';

export const caInitUsage = 'usage: sidecarless ca init --trust-domain TD --out DIR [--ttl 8760h] [--force]';

/** `sidecarless ca init`: writes ca.pem and ca_key.pem (mode 0600). */
export async function caInit(args: string[], io: Io): Promise<number> {
  const v = parse(args, { 'trust-domain': { type: 'string' }, out: { type: 'string' }, ttl: { type: 'string' }, force: { type: 'boolean' } }, ['trust-domain', 'out']);
  let ttl: number | undefined;
  try {
    ttl = v.ttl ? parseDuration(v.ttl) : undefined;
  } catch (e) {
    throw new UsageError(`--ttl: ${(e as Error).message}`);
  }
  const ca = await createDevCa({ trustDomain: v['trust-domain']!, ...(ttl !== undefined && { caTtlMs: ttl }) }).catch((e: Error) => {
    throw new UsageError(`--trust-domain: ${e.message}`);
  });
  const out = v.out!;
  await mkdir(out, { recursive: true });
  if (!v.force) {
    for (const f of [CA_CERT_FILE, CA_KEY_FILE]) {
      if (await access(join(out, f)).then(() => true, () => false)) {
        throw new UsageError(`${join(out, f)} already exists; pass --force to replace the CA (every SVID it issued stops verifying)`);
      }
    }
  }
  const { certPem, keyPem } = await ca.exportPem();
  await writeFile(join(out, CA_CERT_FILE), certPem, { mode: 0o644 });
  await writeFile(join(out, CA_KEY_FILE), keyPem, { mode: 0o600 });
  io.stdout(`created CA for spiffe://${ca.trustDomain} in ${out}: ${CA_CERT_FILE} (trust bundle), ${CA_KEY_FILE} (mode 0600, keep it secret)`);
  return 0;
}
