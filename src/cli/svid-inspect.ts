import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SvidError } from '../errors.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../sources/dir.js';
import { defineCommand } from './args.js';
import { requireDir } from './files.js';
import { type FileRead, inspectSvid, renderReport } from './svid-report.js';

const REASONS: Record<string, readonly [string, string]> = {
  ENOENT: ['MISSING: the file does not exist', 'is missing'],
  EACCES: ['UNREADABLE: permission denied', 'cannot be read (permission denied)'],
  EPERM: ['UNREADABLE: permission denied', 'cannot be read (permission denied)'],
  EISDIR: ['UNREADABLE: it is a directory, not a file', 'is a directory, not a file'],
};

async function read(dir: string, name: string): Promise<FileRead> {
  try {
    return { name, text: await readFile(join(dir, name), 'utf8') };
  } catch (e) {
    const [problem, summary] = REASONS[(e as NodeJS.ErrnoException).code ?? ''] ?? [`UNREADABLE: ${(e as Error).message}`, 'cannot be read'];
    return { name, problem, summary: `${name} ${summary}` };
  }
}

/** `sidecarless svid inspect --dir DIR`: who, valid until, key matches, chains to the bundle. Exit 0 all good, 1 otherwise. */
export const svidInspectCommand = defineCommand({
  name: 'svid inspect',
  summary: 'check an SVID directory: who, valid until, key matches, chains to the bundle',
  description:
    'Reads svid.pem, svid_key.pem and svid_bundle.pem from a directory (spiffe-helper\'s names, what\n' +
    'identity: { dir } loads) and says who the SVID names, from when until when it is valid (and how long\n' +
    'is left), its key type, whether the private key belongs to the certificate and whether the chain\n' +
    'verifies against the bundle, with the same checks the mesh runs when it loads the directory.',
  options: {
    dir: { type: 'string', required: true, value: 'DIR', help: 'the directory holding svid.pem, svid_key.pem, svid_bundle.pem' },
  },
  exits: '0 the SVID is valid now and consistent, 1 a problem (listed), 2 usage error',
  examples: ['sidecarless svid inspect --dir ./certs/payments'],
  async run(v, io) {
    const dir = v.dir!;
    await requireDir(dir, `issue an SVID into it with "sidecarless svid issue --out ${dir}"`);
    const [cert, key, bundle] = await Promise.all([SVID_FILE, KEY_FILE, BUNDLE_FILE].map((f) => read(dir, f)));
    const report = inspectSvid({ cert: cert!, key: key!, bundle: bundle! }, Date.now());
    io.stdout(renderReport(dir, report));
    if (report.ok) return 0;
    const n = report.problems.length;
    throw new SvidError(`the SVID in ${dir} has ${n} problem${n > 1 ? 's' : ''}: ${report.problems.join('; ')}`);
  },
});
