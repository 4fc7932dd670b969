// A node:test reporter that prints nothing: it collects each test file's wall time (the runner's
// `test:complete` for the file itself) and, when the run ends, merges them into the JSON file named
// by TEST_TIMES_FILE (scripts/run-tests.mjs --record-times: .tmp/test-times.json, git-ignored).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

export default async function* timesReporter(source) {
  const times = {};
  for await (const event of source) {
    const d = event.data;
    if (event.type === 'test:complete' && d.nesting === 0 && d.file !== undefined && d.name === d.file) {
      times[relative(root, d.file)] = Math.round(d.details.duration_ms);
    }
  }
  const out = process.env.TEST_TIMES_FILE;
  if (!out) return;
  const old = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
  const merged = { ...old, ...times };
  const sorted = Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k]]));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(sorted, null, 2) + '\n');
}
