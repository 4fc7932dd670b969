#!/usr/bin/env node
// Runs every test/**/*.test.ts through node's built-in test runner with tsx as the loader.
// Node 20's `--test` takes no globs, so the files are listed here. Extra arguments filter by path:
//   node scripts/run-tests.mjs identity tls
//
// The tests run with a temp directory of their own (TMPDIR): it is removed afterwards, and a private
// key left in it (a test that wrote CA or SVID keys and did not clean up) fails the run.
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

/** Files under `dir` holding a PEM private key (tsx's transform cache excepted). */
function privateKeysUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = lstatSync(full, { throwIfNoEntry: false }); // links (a consumer's node_modules) are not followed
    if (!st) continue;
    if (st.isDirectory()) {
      if (dir !== runTmp || !name.startsWith('tsx-')) out.push(...privateKeysUnder(full));
    } else if (st.isFile() && st.size < 1 << 20 && /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(readFileSync(full, 'latin1'))) {
      out.push(full);
    }
  }
  return out;
}

const runTmp = mkdtempSync(join(tmpdir(), 'sidecarless-run-'));
// Traversable (not listable) by others: the CLI's permission tests run it as an unprivileged user
// inside directories of their own (each test directory is still 0700 unless a test opens it).
chmodSync(runTmp, 0o711);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: runTmp } },
);
// Ctrl-C reaches the test processes too (one process group); a SIGTERM is passed on. Either way
// the tests end first, then the temp directory is checked and removed here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code) => {
  const leaks = privateKeysUnder(runTmp);
  rmSync(runTmp, { recursive: true, force: true });
  if (leaks.length > 0) {
    console.error(
      `\nTests left ${leaks.length} private key file(s) in the temp directory (removed now):\n` +
        leaks.map((f) => `  ${relative(runTmp, f)}`).join('\n') +
        '\nCreate temp directories with test/helpers/tmp.ts (makeTempDir / tempDirFor), which removes them, pass or fail.',
    );
    process.exit(1);
  }
  process.exit(code ?? 1);
});
