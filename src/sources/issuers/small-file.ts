/**
 * Reads a small regular file (a token, a pinned root) without being held up by what the path
 * turns out to be: a FIFO or a device would block a plain readFile (and a close() waiting on it),
 * a huge file would fill memory. Opened non-blocking, checked to be a regular file of at most
 * `maxBytes`, then read. Errors are Node's (ENOENT, EACCES, EISDIR) or say what the file is.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export async function readSmallFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
    if (!st.isFile()) throw new Error('it is not a regular file (a pipe, socket or device)');
    if (st.size > maxBytes) throw new Error(`it is ${st.size} bytes, more than the ${maxBytes} such a file can be`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
