// Temp directories hold private keys in tests: test/helpers/tmp.ts removes them when their test
// ends and, whatever happened, when the process exits (a failed assertion, an uncaught error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run } from './process.js';
import { makeTempDir, tempDirFor } from '../helpers/tmp.js';

const HELPER = join(ROOT, 'test', 'helpers', 'tmp.ts');

/** Runs a script that makes a temp dir with a key in it, prints the path, then ends as `ending` says. */
async function childThat(ending: string): Promise<{ dir: string; code: number | null }> {
  const script = `
    import { writeFileSync } from 'node:fs';
    import { join } from 'node:path';
    import { makeTempDir } from ${JSON.stringify(HELPER)};
    const { dir } = makeTempDir('sidecarless-helper-');
    writeFileSync(join(dir, 'ca_key.pem'), '-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n', { mode: 0o600 });
    console.log(dir);
    ${ending}
  `;
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeoutMs: 30_000 });
  const dir = r.stdout.trim().split('\n')[0]!;
  assert.ok(dir.includes('sidecarless-helper-'), r.stdout + r.stderr);
  return { dir, code: r.code };
}

test('a temp dir goes at process exit: normal end, process.exit(1), an uncaught error', async () => {
  const results = await Promise.all([
    childThat(''),
    childThat('process.exit(1);'),
    childThat("throw new Error('a test failed');"),
  ]);
  assert.deepEqual(results.map((r) => r.code), [0, 1, 1]);
  for (const r of results) assert.equal(existsSync(r.dir), false, `${r.dir} was left behind`);
});

test('tempDirFor removes the directory when its test ends; remove() is idempotent', async (t) => {
  let dir = '';
  await t.test('inner', (inner) => {
    dir = tempDirFor(inner);
    assert.ok(existsSync(dir));
  });
  assert.equal(existsSync(dir), false);
  const d = makeTempDir();
  await d.remove();
  await d.remove();
  assert.equal(existsSync(d.dir), false);
});
