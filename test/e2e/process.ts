// Helpers for e2e tests: real processes, real binaries, bounded in time.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tempDirFor } from '../helpers/tmp.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (with a timeout), never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export function cli(args: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  return run(process.execPath, [CLI, ...args], { env: env ?? {} });
}

/**
 * Runs a TypeScript file (an example): its transpiled copy on plain Node when the suite runs
 * transpiled (scripts/run-tests.mjs sets TEST_EXAMPLES_JS_DIR to where the copies are; `sidecarless`
 * still resolves to dist/), else the source through tsx, as a user runs it.
 */
export function tsxArgs(file: string): string[] {
  const js = process.env.TEST_EXAMPLES_JS_DIR;
  if (js && file.startsWith('examples/')) return ['--enable-source-maps', join(js, file.replace(/\.ts$/, '.js'))];
  return ['--import', 'tsx', join(ROOT, file)];
}

export interface Service {
  proc: ChildProcess;
  /** The first stdout line that matched. */
  match: RegExpMatchArray;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts a long-running process and waits for a stdout line matching `ready`. */
export function startService(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Service> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d) => (out += d));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`timed out waiting for ${ready}; output:\n${out}`));
    }, timeoutMs);
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      out += line + '\n';
      const m = ready.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, match: m, output: () => out, stop });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before ${ready}; output:\n${out}`));
    });
  });
}

/** A temp directory removed when `t` ends, pass or fail (test/helpers/tmp.ts). */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  return tempDirFor(t);
}
