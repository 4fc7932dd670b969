// docs/errors.md lists every ERR_SIDECARLESS_* code that src/ can produce, and nothing else: the
// table stays complete as codes are added (the failure names the file that uses a missing code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const CODE = /ERR_SIDECARLESS_[A-Z0-9]+(?:_[A-Z0-9]+)*/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return sources(full);
    return /\.(ts|mts|cts|js|mjs)$/.test(name) ? [full] : [];
  });
}

/** code → the files of src/ that mention it. */
function codesInSrc(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of sources(join(root, 'src'))) {
    for (const [code] of readFileSync(file, 'utf8').matchAll(CODE)) {
      const files = out.get(code) ?? [];
      const rel = relative(root, file);
      if (!files.includes(rel)) files.push(rel);
      out.set(code, files);
    }
  }
  return out;
}

/** code → the cells of its row in docs/errors.md's table. */
function tableRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readFileSync(join(root, 'docs/errors.md'), 'utf8').split('\n')) {
    const m = /^\|\s*`(ERR_SIDECARLESS_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `${m[1]} has two rows in docs/errors.md`);
    rows.set(m[1]!, m[2]!.split('|').map((c) => c.trim()));
  }
  return rows;
}

test('every ERR_SIDECARLESS_* code in src/ has a row in docs/errors.md', () => {
  const inSrc = codesInSrc();
  const rows = tableRows();
  assert.ok(inSrc.size >= 15, `found only ${inSrc.size} codes in src/: is the pattern right?`);
  const missing = [...inSrc].filter(([code]) => !rows.has(code)).map(([code, files]) => `${code} (used in ${files.join(', ')})`);
  assert.deepEqual(missing, [], 'add a row for each to the table in docs/errors.md: code | error class | what it means | what to do');
});

test('docs/errors.md lists no code that src/ no longer has, and every row says what to do', () => {
  const inSrc = codesInSrc();
  const rows = tableRows();
  assert.deepEqual([...rows.keys()].filter((c) => !inSrc.has(c)), [], 'rows for codes nothing produces');
  for (const [code, cells] of rows) {
    assert.equal(cells.length, 3, `${code}: error class | what it means | what to do`);
    for (const c of cells) assert.ok(c.length > 0, `${code}: an empty cell`);
  }
});

test('the README and getting started link to the error table', () => {
  for (const [file, link] of [['README.md', '](docs/errors.md)'], ['docs/getting-started.md', '](errors.md)']] as const) {
    assert.ok(readFileSync(join(root, file), 'utf8').includes(link), `${file} links to errors.md`);
  }
});
