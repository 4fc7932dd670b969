// Temporary directories for tests. Tests write CA and SVID private keys into them, so every one is
// removed when its owner ends, pass or fail: by `t.after` (or the caller's `remove`), and in any case
// when the test process exits. scripts/run-tests.mjs runs the suite with a temp directory of its own
// and fails the run if a private key is left in it.
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

export interface TempDir {
  readonly dir: string;
  /** Removes the directory now (idempotent). */
  remove(): Promise<void>;
}

/** A new directory under os.tmpdir(), removed by `remove()` or, at the latest, when the process exits. */
export function makeTempDir(prefix = 'sidecarless-test-'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  live.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', removeAll);
  }
  return {
    dir,
    remove: async () => {
      live.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A temp directory removed when the test (or suite) `t` ends, whatever its outcome. */
export function tempDirFor(t: { after(fn: () => Promise<void>): void }, prefix?: string): string {
  const d = makeTempDir(prefix);
  t.after(d.remove);
  return d.dir;
}
