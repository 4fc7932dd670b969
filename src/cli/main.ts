import { SidecarlessError } from '../errors.js';
import { type Io, UsageError, processIo } from './args.js';
import { caInit, caInitUsage } from './ca-init.js';
import { demo } from './demo.js';
import { svidIssue, svidIssueUsage } from './svid-issue.js';

const USAGE = `sidecarless: the service mesh as a library

usage:
  sidecarless ca init --trust-domain TD --out DIR            create a CA (ca.pem, ca_key.pem)
  sidecarless svid issue --ca DIR --spiffe-id ID --out DIR [--ttl 1h]
                                                             issue svid.pem, svid_key.pem, svid_bundle.pem
  sidecarless policy check --policy FILE --from ID|unauthenticated --method M --path P [--host H]
                                                             ALLOW/DENY and the deciding rule (exit 0 / 1)
  sidecarless stat --admin URL [--watch] [--interval 2s]    requests/s, success rate, p50/p95/p99, retries and
                                                             denials per peer and route, from an admin endpoint
  sidecarless demo                                           a small mesh, live

more: README.md and docs/ in the package`;

type Command = { run: (args: string[], io: Io) => Promise<number>; usage: string };

async function policyCommand(): Promise<Command> {
  const m = await import('./policy-check.js');
  return {
    run: (args, io) => m.policyCheck(args, { ...io, readFile: (p: string) => import('node:fs/promises').then((fs) => fs.readFile(p, 'utf8')) }),
    usage: 'usage: sidecarless policy check --policy FILE --from ID|unauthenticated --method M --path P [--host H]',
  };
}

async function resolve(argv: string[]): Promise<{ cmd: Command; rest: string[] } | undefined> {
  const [a, b, ...rest] = argv;
  if (a === 'ca' && b === 'init') return { cmd: { run: caInit, usage: caInitUsage }, rest };
  if (a === 'svid' && b === 'issue') return { cmd: { run: svidIssue, usage: svidIssueUsage }, rest };
  if (a === 'policy' && b === 'check') return { cmd: await policyCommand(), rest };
  if (a === 'stat') {
    const m = await import('./stat.js');
    return { cmd: { run: m.stat, usage: m.statUsage }, rest: argv.slice(1) };
  }
  if (a === 'demo') return { cmd: { run: demo, usage: 'usage: sidecarless demo' }, rest: argv.slice(1) };
  return undefined;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  const found = await resolve(argv);
  if (!found) {
    io.stderr(`sidecarless: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await found.cmd.run(found.rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`sidecarless: ${e.message}\n${found.cmd.usage}`);
      return 2;
    }
    if (e instanceof SidecarlessError) {
      io.stderr(`sidecarless: ${e.message} [${e.code}]`);
      return 1;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`sidecarless: unexpected error: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
