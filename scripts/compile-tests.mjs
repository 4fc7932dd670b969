// Transpiles the TypeScript of src/, test/ and bench/ to .tmp/js/ (esbuild, file by file, no
// bundling, inline source maps) for scripts/run-tests.mjs: each test process then starts on plain
// Node instead of resolving every import through tsx's loader (≈ 0.5 s of CPU per process, a
// third of the suite's CPU over ~185 processes). Each file's `import.meta.url` stays its source's
// URL, so fixtures, scripts and child processes found from it are the tree's own; code that must
// find the module it runs as uses import.meta.resolve. The examples are transpiled too: the e2e
// tests run them on plain Node (test/e2e/process.ts tsxArgs, TEST_EXAMPLES_JS_DIR) — what the user
// runs with `npx tsx`, without the loader's cost in each of their ~20 processes; `--tsx` runs
// them through tsx as the user does.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transform } from 'esbuild';

export const root = new URL('..', import.meta.url).pathname;
export const OUT = join(root, '.tmp', 'js');

function walk(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) files.push(...walk(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(full);
  }
  return files;
}

/** Where the transpiled copy of `file` (a path relative to the root) is. */
export const compiledPath = (file) => join(OUT, file.replace(/\.ts$/, '.js'));

export async function compileTests() {
  rmSync(OUT, { recursive: true, force: true });
  const files = ['src', 'test', 'bench', 'examples'].flatMap((d) => walk(join(root, d)));
  await Promise.all(
    files.map(async (f) => {
      const r = await transform(readFileSync(f, 'utf8'), {
        loader: 'ts',
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcefile: f,
        sourcemap: 'inline',
        // Examples keep their own URL: they spawn themselves and check `argv[1]` against it.
        ...(!relative(root, f).startsWith('examples') && { define: { 'import.meta.url': JSON.stringify(pathToFileURL(f).href) } }),
      });
      const dest = compiledPath(relative(root, f));
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, r.code);
    }),
  );
  return files.length;
}
