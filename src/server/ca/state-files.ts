/**
 * File handling of the --state directory: created 0700; private keys 0600 and refused when group
 * or others may read them (as ssh refuses such a key: fixing the mode silently would hide that the
 * key may already have been copied); the directory refused when group or others may write it (they
 * could swap the files). New files are written to a temporary name and linked into place, which
 * never replaces a file that exists: a second process starting on the same directory at the same
 * moment cannot overwrite the first one's key.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileError } from '../../errors.js';
import { CaStateInsecureError } from './errors.js';

/** Creates `dir` (mode 0700) when missing; checks that an existing one is a directory others cannot write. */
export async function ensureStateDir(dir: string): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw osError(e, dir, 'read the state directory');
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700); // whatever the umask
      s = await stat(dir);
    } catch (e2) {
      throw osError(e2, dir, 'create the state directory');
    }
  }
  if (!s.isDirectory()) throw new FileError(dir, `the state directory ${dir} is a file, not a directory: give --state a directory`);
  if ((s.mode & 0o022) !== 0) {
    throw new CaStateInsecureError(dir, `the state directory ${dir} is writable by group or others (mode ${octal(s.mode)}): they could replace the CA's files. Run: chmod 700 ${dir}`);
  }
}

/** True when `dir/name` exists (any kind of entry). */
export async function exists(dir: string, name: string): Promise<boolean> {
  try {
    await stat(join(dir, name));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw osError(e, join(dir, name), 'read');
  }
}

/** Reads a private key file, refusing one that group or others may read or write. */
export async function readKeyFile(path: string): Promise<string> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    throw osError(e, path, 'read');
  }
  if ((s.mode & 0o077) !== 0) {
    throw new CaStateInsecureError(path, `the private key ${path} is accessible by group or others (mode ${octal(s.mode)}): it may have been read. Run: chmod 600 ${path} (a Kubernetes secret volume: defaultMode: 0400)`);
  }
  return readText(path);
}

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw osError(e, path, 'read');
  }
}

/** Writes a new file with `mode`; refuses (EEXIST → false) when the name exists, never replacing it. */
export async function createFile(path: string, content: string, mode: number): Promise<boolean> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, content, { mode, flag: 'wx' });
    await chmod(tmp, mode); // whatever the umask
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw osError(e, path, 'write');
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

function osError(e: unknown, path: string, verb: string): FileError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied (check the owner and mode)' : code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
  return new FileError(path, `cannot ${verb} ${path}: ${why}`, { cause: e });
}
