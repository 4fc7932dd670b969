/**
 * The one argument parser of the `sidecarless` command, and the help text made from the same
 * declaration. Every sub-command declares its options once (`defineCommand`); `--help`/`-h`,
 * unknown options, missing values and required options behave the same everywhere.
 */
import { SidecarlessError } from '../errors.js';

/** A usage error: the command line must change. Printed with the command's usage line; exit 2. */
export class UsageError extends SidecarlessError {
  constructor(message: string) {
    super('ERR_SIDECARLESS_USAGE', message);
  }
}

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export const processIo: Io = {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
};

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** May be given more than once (values collected in order). */
  readonly multiple?: boolean;
  readonly required?: boolean;
  /** Placeholder in the usage line, e.g. DIR, ID, 1h. */
  readonly value?: string;
  readonly help: string;
  /** Internal options (demo roles): parsed, never shown. */
  readonly hidden?: boolean;
}

export type Options = Readonly<Record<string, OptionSpec>>;

/** What `parse` returns: strings, booleans and string lists, as declared. */
export type Values<O extends Options> = {
  [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string;
};

export interface Command<O extends Options = Options> {
  /** 'svid issue' */
  readonly name: string;
  /** One line, for the list of commands. */
  readonly summary: string;
  /** Paragraphs for --help. */
  readonly description?: string;
  readonly options: O;
  /** What the exit codes mean for this command (default: 0 done, 1 failed, 2 usage error). */
  readonly exits?: string;
  /**
   * Exit code for a failure that is not a usage error (default 1). `policy check` uses 2, so a
   * script never mistakes a policy that cannot be loaded for a DENY (1), as grep does.
   */
  readonly failureExit?: number;
  readonly examples?: readonly string[];
  run(values: Values<O>, io: Io): Promise<number>;
}

/** Declares a command; the identity function, there for type inference of `values`. */
export function defineCommand<O extends Options>(c: Command<O>): Command<O> {
  return c;
}

export const HELP_FLAGS: ReadonlySet<string> = new Set(['--help', '-h']);

/** True when the arguments ask for help (anywhere: `svid issue --ca x --help` too). */
export function wantsHelp(args: readonly string[]): boolean {
  return args.some((a) => HELP_FLAGS.has(a));
}

/** The usage line, generated from the declaration: required options first, then [optional]. */
export function usageLine(c: Command): string {
  const parts = [`usage: sidecarless ${c.name}`];
  const visible = Object.entries(c.options).filter(([, o]) => !o.hidden);
  const one = ([name, o]: [string, OptionSpec]) => `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  for (const e of visible.filter(([, o]) => o.required)) parts.push(one(e) + (e[1].multiple ? '...' : ''));
  for (const e of visible.filter(([, o]) => !o.required)) parts.push(`[${one(e)}]${e[1].multiple ? '...' : ''}`);
  return parts.join(' ');
}

/** The full --help text of a command. */
export function helpText(c: Command): string {
  const rows: Array<readonly [string, string]> = Object.entries(c.options)
    .filter(([, o]) => !o.hidden)
    .map(([name, o]) => [`--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`, (o.required ? '(required) ' : '') + o.help]);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  const out = [usageLine(c), '', c.description ?? c.summary, '', 'options:', ...rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`)];
  if (c.examples?.length) out.push('', 'examples:', ...c.examples.map((e) => `  ${e}`));
  out.push('', `exit status: ${c.exits ?? '0 done, 1 failed, 2 usage error'}`);
  return out.join('\n');
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate: one edit away for short words, two for longer ones; else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = (word.length <= 4 ? 1 : 2) + 1;
  for (const c of candidates) {
    const dist = distance(word, c);
    if (dist < bestD) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}

function unknownOption(name: string, options: Options): UsageError {
  const known = Object.keys(options).filter((k) => !options[k]!.hidden);
  const near = closest(name, known);
  return new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
}

/**
 * Parses `--name value`, `--name=value` and boolean `--flag`. A value may start with one dash
 * (`--ttl -1s` reaches the duration check, which says why it is wrong); a following `--option`
 * is never taken as a value. Throws UsageError naming the option.
 */
export function parse<O extends Options>(args: readonly string[], options: O): Values<O> {
  const values: Record<string, string | boolean | string[]> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--') || a === '--') {
      if (a.startsWith('-') && a.length > 1 && a !== '--') throw new UsageError(`unknown option ${a} (options are spelled --name)`);
      const prev = args[i - 1];
      const hint = prev?.startsWith('--') && options[prev.slice(2)]?.type === 'boolean' ? ` (${prev} takes no value)` : '';
      throw new UsageError(`unexpected argument "${a}"${hint}`);
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const spec = options[name];
    if (!spec) throw unknownOption(name, options);
    let value: string | true;
    if (spec.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      value = true;
    } else {
      const v = eq >= 0 ? a.slice(eq + 1) : args[i + 1];
      if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new UsageError(`--${name} needs a value (--${name} ${spec.value ?? 'VALUE'})`);
      if (eq < 0) i++;
      if (v.trim() === '') throw new UsageError(`--${name} needs a value, got an empty string`);
      value = v;
    }
    if (spec.multiple) {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(value as string);
      values[name] = list;
    } else {
      if (values[name] !== undefined) throw new UsageError(`--${name} is given twice`);
      values[name] = value;
    }
  }
  const missing = Object.entries(options)
    .filter(([name, o]) => o.required && values[name] === undefined)
    .map(([name]) => `--${name}`);
  if (missing.length === 1) throw new UsageError(`${missing[0]} is required`);
  if (missing.length > 1) throw new UsageError(`${missing.slice(0, -1).join(', ')} and ${missing.at(-1)} are required`);
  return values as Values<O>;
}
