import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SvidError } from '../errors.js';
import { BUNDLE_FILE, KEY_FILE, SVID_FILE } from '../sources/dir.js';
import { parseDuration } from '../duration.js';
import { UsageError, defineCommand } from './args.js';
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

/**
 * `sidecarless svid inspect --dir DIR | --workload-api URI`: who, valid until, key matches, chains
 * to the bundle. Exit 0 all good, 1 otherwise, 2 usage.
 */
export const svidInspectCommand = defineCommand({
  name: 'svid inspect',
  summary: 'check an SVID directory or a Workload API: who, valid until, key matches, chains to the bundle',
  description:
    'Reads svid.pem, svid_key.pem and svid_bundle.pem from a directory (spiffe-helper\'s names, what\n' +
    'identity: { dir } loads) and says who the SVID names, from when until when it is valid (and how long\n' +
    'is left), its key type, whether the private key belongs to the certificate and whether the chain\n' +
    'verifies against the bundle, with the same checks the mesh runs when it loads the directory.\n\n' +
    'With --workload-api, asks a SPIFFE Workload API (a SPIRE agent; what identity: { workloadApi } uses)\n' +
    'for its first X509SVIDResponse and reports every SVID in it the same way, with its hint, then the\n' +
    'federated bundles.',
  options: {
    dir: { type: 'string', value: 'DIR', help: 'the directory holding svid.pem, svid_key.pem, svid_bundle.pem' },
    'workload-api': { type: 'string', value: 'URI', help: 'a Workload API address: unix:///path/to/agent.sock or tcp://IP:port (SPIFFE_ENDPOINT_SOCKET\'s form)' },
    timeout: { type: 'string', value: '10s', help: 'with --workload-api: how long to wait for the first message (default 10s)' },
  },
  exits: '0 the SVID is valid now and consistent, 1 a problem (listed) or no answer, 2 usage error',
  examples: ['sidecarless svid inspect --dir ./certs/payments', 'sidecarless svid inspect --workload-api unix:///run/spire/sockets/agent.sock'],
  async run(v, io) {
    const api = v['workload-api'];
    if ((v.dir === undefined) === (api === undefined)) throw new UsageError('give exactly one of --dir DIR and --workload-api URI');
    if (api !== undefined) {
      let timeoutMs = 10_000;
      if (v.timeout !== undefined) {
        try {
          timeoutMs = parseDuration(v.timeout);
        } catch (e) {
          throw new UsageError(`--timeout: ${(e as Error).message}`);
        }
      }
      const { inspectWorkloadApi } = await import('./svid-inspect-workload.js');
      return inspectWorkloadApi(api, timeoutMs, io);
    }
    if (v.timeout !== undefined) throw new UsageError('--timeout applies to --workload-api only');
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
