/**
 * `sidecarless <command>`: finds the command, parses its options with the one parser (args.ts),
 * runs it, and reports every error the same way:
 *
 *   stderr: sidecarless: <message> [CODE]
 *   exit:   0 done, 1 failed, 2 usage error (the command line must change, or it asked for nothing)
 *
 * `--help`/`-h` anywhere prints help on stdout and exits 0. A command given nothing to do
 * (`sidecarless`, `sidecarless ca`) prints the same help on stderr and exits 2: nothing was done.
 * Only a genuine bug prints a stack trace.
 */
import { type PolicyIssue, formatIssue } from '../policy/issues.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SidecarlessError } from '../errors.js';
import { type Command, type Io, UsageError, closest, helpText, parse, usageLine, wantsHelp } from './args.js';
import { TREE, allCommands, commandList } from './commands.js';
import { fileError } from './files.js';

/** The version in the package's package.json (dist/cli.js and src/cli/run.ts both find it). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sidecarless' && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

async function topHelp(): Promise<string> {
  return [
    'sidecarless: the service mesh as a library',
    '',
    'usage: sidecarless <command> [options]',
    '',
    'commands:',
    ...commandList(await allCommands()),
    '',
    'options:',
    '  -h, --help  help, also after any command: sidecarless svid issue --help',
    '  --version   print the version',
    '',
    'exit status: 0 done, 1 failed, 2 usage error (also: a command given nothing to do)',
    'more: README.md and docs/ in the package',
  ].join('\n');
}

async function groupHelp(name: string, group: Readonly<Record<string, () => Promise<Command>>>): Promise<string> {
  const commands = await Promise.all(Object.values(group).map((load) => load()));
  return [`usage: sidecarless ${name} <command> [options]`, '', 'commands:', ...commandList(commands), '', `help on one: sidecarless ${name} <command> --help`].join('\n');
}

/** One line per problem, in the one error style. */
export function formatError(e: SidecarlessError): string {
  const issues = (e as { issues?: ReadonlyArray<PolicyIssue> }).issues ?? [];
  const head = e.message.split('\n')[0]!.replace(/:$/, '');
  // An issue that knows its file and line says `file:line:col path: message` (formatIssue).
  if (issues.length > 0) return issues.map((i) => `sidecarless: ${i.file !== undefined && i.line !== undefined ? '' : `${head}: `}${formatIssue(i)} [${e.code}]`).join('\n');
  const [first, ...rest] = e.message.split('\n');
  return [`sidecarless: ${first} [${e.code}]`, ...rest].join('\n');
}

/** Operating-system errors (a path that vanished, a permission) are the user's world, not bugs. */
function asSidecarlessError(e: unknown): SidecarlessError | undefined {
  if (e instanceof SidecarlessError) return e;
  const sys = e as NodeJS.ErrnoException;
  if (e instanceof Error && typeof sys.code === 'string' && typeof sys.syscall === 'string') return fileError(e, sys.path ?? '(unknown path)', sys.syscall);
  return undefined;
}

async function runCommand(cmd: Command, args: string[], io: Io): Promise<number> {
  if (wantsHelp(args)) {
    io.stdout(helpText(cmd));
    return 0;
  }
  try {
    return await cmd.run(parse(args, cmd.options), io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`${formatError(e)}\n${usageLine(cmd)}\nmore: sidecarless ${cmd.name} --help`);
      return 2;
    }
    const known = asSidecarlessError(e);
    if (!known) throw e;
    io.stderr(formatError(known));
    return cmd.failureExit ?? 1;
  }
}

function usage(io: Io, message: string, help: string): number {
  io.stderr(`${formatError(new UsageError(message))}\n\n${help}`);
  return 2;
}

const HELP: ReadonlySet<string> = new Set(['--help', '-h', 'help']);

/** Runs `sidecarless` with `argv` (without node and the script). Resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [first, second, ...rest] = argv;
  if (first === undefined) return usage(io, 'no command given', await topHelp());
  if (first === '--version') {
    io.stdout(packageVersion());
    return 0;
  }
  if (HELP.has(first)) {
    if (first === 'help' && second !== undefined) return main([second, ...rest, '--help'], io);
    io.stdout(await topHelp());
    return 0;
  }
  const entry = Object.hasOwn(TREE, first) ? TREE[first] : undefined;
  if (!entry) {
    const near = first.startsWith('-') ? undefined : closest(first, Object.keys(TREE));
    const what = first.startsWith('-') ? `unknown option ${first} before a command` : `unknown command "${first}"${near ? ` (did you mean "${near}"?)` : ''}`;
    return usage(io, what, ['commands:', ...commandList(await allCommands()), '', 'more: sidecarless --help'].join('\n'));
  }
  if ('load' in entry) return runCommand(await entry.load(), argv.slice(1), io);
  const names = Object.keys(entry.group);
  if (entry.main && (second === undefined || second.startsWith('-'))) {
    const cmd = await entry.main();
    if (second !== undefined && wantsHelp([second, ...rest])) {
      io.stdout(`${helpText(cmd)}\n\n${await groupHelp(first, entry.group)}`);
      return 0;
    }
    return runCommand(cmd, argv.slice(1), io);
  }
  if (second === undefined || second.startsWith('-')) {
    if (second !== undefined && wantsHelp([second, ...rest])) {
      io.stdout(await groupHelp(first, entry.group));
      return 0;
    }
    return usage(io, `"${first}" needs a command: ${names.map((n) => `${first} ${n}`).join(', ')}`, await groupHelp(first, entry.group));
  }
  const load = Object.hasOwn(entry.group, second) ? entry.group[second] : undefined;
  if (!load) {
    const near = closest(second, names);
    return usage(io, `unknown command "${first} ${second}"${near ? ` (did you mean "${first} ${near}"?)` : ''}`, await groupHelp(first, entry.group));
  }
  return runCommand(await load(), rest, io);
}
