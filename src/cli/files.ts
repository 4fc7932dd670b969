/**
 * File I/O of the CLI: errors that name the path and say what to do (never a stack trace for
 * ENOENT, EACCES, ENOTDIR…), a refusal to replace files without --force, and atomic writes of a
 * set of files (temp file + rename in the same directory), so a mesh watching the directory never
 * reads a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { lstat, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FileError } from '../errors.js';
import { UsageError } from './args.js';

/** A FileError for an OS error on `path` while trying to `verb` it ("read", "write", "create"). */
export function fileError(e: unknown, path: string, verb: string, hint = ''): FileError {
  const code = (e as NodeJS.ErrnoException).code;
  const tail = hint ? `: ${hint}` : '';
  const reasons: Record<string, string> = {
    ENOENT: `${path} does not exist${tail}`,
    ENOTDIR: `cannot ${verb} ${path}: a part of that path is a file, not a directory`,
    EISDIR: `cannot ${verb} ${path}: it is a directory, not a file`,
    EEXIST: `cannot ${verb} ${path}: a file is in the way`,
    EACCES: `permission denied: cannot ${verb} ${path} (check the owner and mode of the file and its directory)`,
    EPERM: `permission denied: cannot ${verb} ${path} (check the owner and mode of the file and its directory)`,
    EROFS: `cannot ${verb} ${path}: the file system is read-only`,
    ENOSPC: `cannot ${verb} ${path}: no space left on the device`,
    ELOOP: `cannot ${verb} ${path}: too many levels of symbolic links`,
    ENAMETOOLONG: `cannot ${verb} ${path}: the name is too long`,
  };
  const message = (code && reasons[code]) ?? `cannot ${verb} ${path}: ${(e as Error).message}`;
  return new FileError(path, message, { cause: e });
}

/** Reads a text file; OS errors become a FileError naming the file. */
export async function readText(path: string, hint = ''): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(e, path, 'read', hint);
  }
}

/** Checks that `dir` is a directory that exists (FileError otherwise). */
export async function requireDir(dir: string, hint = ''): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch (e) {
    throw fileError(e, dir, 'read', hint);
  }
  if (!s.isDirectory()) throw new FileError(dir, `${dir} is a file, not a directory`);
}

/**
 * mkdir -p, by hand: Node's `mkdir(…, { recursive: true })` loops forever where the parent exists
 * but refuses new entries with ENOENT (/proc, some FUSE file systems).
 */
async function makeDirs(dir: string, depth = 0): Promise<void> {
  try {
    await mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return; // the caller checks it is a directory
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir || depth > 100) throw e;
    await makeDirs(parent, depth + 1);
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}

/** Creates `dir` (and its parents) when missing; FileError when it cannot, or when a file is in the way. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await makeDirs(resolve(dir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FileError(dir, `cannot create the directory ${dir}: the file system refuses it (ENOENT)`, { cause: e });
    }
    throw fileError(e, dir, 'create the directory');
  }
  await requireDir(dir);
}

/**
 * Without `force`, refuses (UsageError, exit 2) when any of `names` exists in `dir`, naming the
 * file and the flag. A dangling symbolic link counts as existing.
 */
export async function refuseExisting(dir: string, names: readonly string[], force: boolean | undefined, consequence: string): Promise<string[]> {
  const existing: string[] = [];
  for (const n of names) {
    if (await lstat(join(dir, n)).then(() => true, () => false)) existing.push(n);
  }
  if (existing.length > 0 && !force) {
    throw new UsageError(`${join(dir, existing[0]!)} already exists; pass --force to replace ${names.join(', ')} (${consequence})`);
  }
  return existing;
}

export interface FileToWrite {
  readonly name: string;
  readonly content: string;
  /** 0o600 for private keys; permission bits are set on the temp file before its content. */
  readonly mode: number;
}

/**
 * Writes every file to a temp file in `dir` (O_EXCL, so a planted symlink is never followed),
 * flushes them, then renames them into place back to back, in the order given (put the file a
 * reader treats as "the new version" last). Each file a reader opens is always complete; a reader
 * that reads several of them at once may still catch the moment between two renames and must
 * check the set is consistent (DirSource does: key matches certificate, chain verifies).
 * On failure, no temp file stays behind, and (short of the OS failing a rename) no file is replaced.
 */
export async function writeFilesAtomically(dir: string, files: readonly FileToWrite[]): Promise<void> {
  // A directory where a file belongs would make its rename fail after the others: refuse first.
  for (const f of files) {
    const final = join(dir, f.name);
    const s = await lstat(final).catch(() => undefined);
    if (s?.isDirectory()) throw new FileError(final, `cannot write ${final}: it is a directory, not a file; move it away`);
  }
  const temps: Array<{ temp: string; final: string }> = [];
  try {
    for (const f of files) {
      const temp = join(dir, `.${f.name}.${randomBytes(6).toString('hex')}.tmp`);
      const final = join(dir, f.name);
      let handle;
      try {
        handle = await open(temp, 'wx', f.mode);
      } catch (e) {
        throw fileError(e, final, 'write');
      }
      temps.push({ temp, final });
      try {
        await handle.chmod(f.mode);
        await handle.writeFile(f.content);
        await handle.sync();
      } catch (e) {
        throw fileError(e, final, 'write');
      } finally {
        await handle.close();
      }
    }
    // Synchronous, back to back: the moment a reader can see a mix of old and new is a few µs.
    for (let i = 0; i < temps.length; i++) {
      try {
        renameSync(temps[i]!.temp, temps[i]!.final);
      } catch (e) {
        throw fileError(e, temps[i]!.final, 'replace');
      }
      temps[i] = { temp: '', final: temps[i]!.final };
    }
  } finally {
    for (const t of temps) if (t.temp) await unlink(t.temp).catch(() => {});
  }
  syncDir(dir);
}

/** Flushes the directory entry (the renames) to disk; best effort (not every file system allows it). */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // e.g. not supported on this platform; the renames are still atomic
  }
}
