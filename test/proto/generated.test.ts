// The codecs in src/proto are what scripts/gen-proto.mjs makes of the .proto files next to them:
// an edit to either alone fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('src/proto/*.ts are generated from the .proto files as they are now', () => {
  const script = fileURLToPath(new URL('../../scripts/gen-proto.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
