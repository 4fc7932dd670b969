#!/usr/bin/env node
// Runs every test/**/*.test.ts through node's built-in test runner, transpiled first to .tmp/js/
// (scripts/compile-tests.mjs: esbuild, file by file; plain Node in every test process, source
// maps on), or with tsx as the loader (--tsx). Node 20's `--test` takes no globs, so the files are
// listed here. Extra arguments filter by path:
//   node scripts/run-tests.mjs identity tls
// --typecheck: `tsc --noEmit` runs alongside the tests at the lowest CPU priority (it takes the
// cycles the tests leave idle, so it does not slow them); its output is printed after the tests and
// a type error fails the run. --record-times: each file's wall time is merged into .tmp/test-times.json
// (a measurement only: the files still run in alphabetical order; longest-first put the heaviest
// process-spawning files side by side and timing-sensitive tests lost under load).
//
// The tests run with a temp directory of their own (TMPDIR): it is removed afterwards, and a private
// key left in it (a test that wrote CA or SVID keys and did not clean up) fails the run.
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { OUT as OUT_JS, compileTests, compiledPath } from './compile-tests.mjs';

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
const args = process.argv.slice(2);
const typecheck = args.includes('--typecheck');
const recordTimes = args.includes('--record-times');
const viaTsx = args.includes('--tsx');
const filters = args.filter((a) => a !== '--typecheck' && a !== '--record-times' && a !== '--tsx');
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

const tsc = typecheck ? startTypecheck() : undefined;

/** `tsc --noEmit` at nice 19, its output kept for the end. */
function startTypecheck() {
  const p = spawn(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    setPriority(p.pid, 19);
  } catch {
    // not allowed here: it still runs, at normal priority
  }
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const done = new Promise((resolve) => {
    p.on('error', (e) => resolve({ code: 1, out: `${out}${e.message}\n` }));
    p.on('close', (code, signal) => resolve({ code: code ?? 1, out: signal ? `${out}tsc ended by ${signal}\n` : out }));
  });
  return { proc: p, done };
}

const reporters = recordTimes
  ? ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts', 'test-times-reporter.mjs')}`, '--test-reporter-destination=stderr']
  : ['--test-reporter=spec'];
// The test files run transpiled (compile-tests.mjs: plain Node, no loader in every process), or
// through tsx with --tsx.
const entry = viaTsx ? ['--import', 'tsx', '--test'] : ['--enable-source-maps', '--test'];
if (!viaTsx) await compileTests();
const child = spawn(
  process.execPath,
  [...entry, ...reporters, '--test-concurrency=2', '--test-timeout=120000', ...(viaTsx ? files : files.map(compiledPath))],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: runTmp, ...(!viaTsx && { TEST_EXAMPLES_JS_DIR: OUT_JS }), ...(recordTimes && { TEST_TIMES_FILE: join(root, '.tmp', 'test-times.json') }) } },
);
// Ctrl-C reaches the test processes too (one process group); a SIGTERM is passed on. Either way
// the tests end first, then the temp directory is checked and removed here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {
  child.kill('SIGTERM');
  tsc?.proc.kill('SIGTERM');
});
child.on('exit', async (code) => {
  const typeErrors = await typecheckResult();
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
  process.exit(typeErrors ? 1 : (code ?? 1));
});

/** Waits for the typecheck (when one runs), prints what it said; true when it failed. */
async function typecheckResult() {
  if (!tsc) return false;
  const { code, out } = await tsc.done;
  if (out) process.stdout.write(out);
  if (code !== 0) console.error(`\ntypecheck (tsc --noEmit) failed, exit ${code}: fix the type errors above`);
  return code !== 0;
}
