import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SidecarlessError } from '../errors.js';

/** A usage error: printed as one line plus the command's usage, exit code 2. */
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

/** parseArgs with errors a person can act on. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, required: Array<keyof T & string> = []) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const values = parsed.values as Record<string, unknown>;
  for (const r of required) {
    if (values[r] === undefined) throw new UsageError(`--${r} is required`);
  }
  return parsed.values as { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : T[K] extends { multiple: true } ? string[] : string };
}
