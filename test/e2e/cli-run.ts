// The built CLI (dist/cli.js) as a user runs it, and the assertions every CLI test shares: the one
// error style, the exit code, nothing on stdout for an error, and never a stack trace.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, ROOT, type Run } from './process.js';

/** Tests run as root in CI: root reads any file, so permission cases run the CLI as `nobody`. */
export const ROOT_USER = process.getuid?.() === 0;
const NOBODY = 65534;

export interface CliOptions {
  /** Run as an unprivileged user (only when the tests run as root; otherwise as ourselves). */
  unprivileged?: boolean;
  timeoutMs?: number;
}

/** Runs `node dist/cli.js ...args`, never throwing on a non-zero exit. */
export function sidecarless(args: string[], o: CliOptions = {}): Promise<Run> {
  const ids = o.unprivileged && ROOT_USER ? { uid: NOBODY, gid: NOBODY } : {};
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: o.timeoutMs ?? 30_000, ...ids }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Hands a test tree to the unprivileged user (when running as root), so modes decide access. */
export async function giveToUnprivileged(dir: string): Promise<void> {
  if (!ROOT_USER) return;
  await chown(dir, NOBODY, NOBODY);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await giveToUnprivileged(p);
    else await chown(p, NOBODY, NOBODY);
  }
}

/** A stack trace line as Node prints it. */
export const STACK_LINE = /^\s{4}at /m;

export function assertNoStack(r: Run, what = ''): void {
  assert.doesNotMatch(r.stderr, STACK_LINE, `${what}: no stack trace for a user error:\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, STACK_LINE, `${what}: no stack trace on stdout`);
}

/**
 * An error as the CLI must report it: exit `code`, nothing on stdout, a first stderr line
 * `sidecarless: <message> [ERR_SIDECARLESS_...]` matching `message`, no stack trace.
 */
export function assertError(r: Run, code: number, errCode: string, message: RegExp, what = ''): string {
  const label = `${what} → exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, code, label);
  assert.equal(r.stdout, '', label);
  const first = r.stderr.split('\n')[0]!;
  assert.match(first, /^sidecarless: .+ \[ERR_SIDECARLESS_[A-Z_]+\]$/, label);
  assert.ok(first.endsWith(`[${errCode}]`), label);
  assert.match(first, message, label);
  assertNoStack(r, what);
  return first;
}

/** Names of the files in `dir` (temp files included: none may be left behind). */
export async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}
