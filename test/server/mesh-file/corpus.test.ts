// The invalid mesh-file corpus (test/fixtures/mesh-files/invalid/): each file says what it must be
// rejected with in `# expect: <file>:<line> <words>` lines (`mesh` = the file itself, otherwise a
// policy file under test/fixtures/mesh-files/). Every file is rejected whole with the stable code,
// and every expected issue names that file and line. The valid example loads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMeshFile, MeshFileError } from '../../../src/server/mesh-file/index.js';

const root = new URL('../../fixtures/mesh-files/', import.meta.url).pathname;
const invalid = join(root, 'invalid');

interface Expect {
  file: string;
  line: number;
  words: string;
}

function expectsOf(path: string): Expect[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .flatMap((l) => {
      const m = /^# expect: (\S+):(\d+) (.+)$/.exec(l);
      return m ? [{ file: m[1] === 'mesh' ? path : join(root, m[1]!), line: Number(m[2]), words: m[3]! }] : [];
    });
}

const files = readdirSync(invalid).filter((f) => f.endsWith('.yaml')).sort();

test('the corpus has the cases the issue asks for', () => {
  for (const name of ['syntax-error', 'unknown-top-level-key', 'unknown-service-key', 'duplicate-service', 'bad-port', 'bad-protocol', 'split-to-unknown-service', 'route-to-unknown-service', 'missing-policy-file', 'istio-refused', 'linkerd-refused']) {
    assert.ok(files.includes(`${name}.yaml`), name);
  }
});

for (const name of files) {
  test(`invalid/${name} is rejected whole, naming the file and line`, async () => {
    const path = join(invalid, name);
    const expects = expectsOf(path);
    assert.ok(expects.length > 0, 'the fixture says what it expects');
    const err = await loadMeshFile(path).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof MeshFileError, String(err));
    assert.equal(err.code, 'ERR_SIDECARLESS_MESH_FILE');
    assert.equal(err.file, path);
    for (const x of expects) {
      const hit = err.issues.find((i) => i.file === x.file && i.line === x.line && `${i.path}: ${i.message}`.includes(x.words));
      assert.ok(hit, `expected ${x.file}:${x.line} "${x.words}", got:\n${err.message}`);
      // The message a person reads says the same, with file:line first.
      assert.ok(err.message.includes(`${x.file}:${x.line}:`), err.message);
    }
    for (const i of err.issues) assert.ok(i.line !== undefined && i.line >= 1, `every issue has a line: ${JSON.stringify(i)}`);
  });
}

test('the valid example loads: every key, three policy formats merged', async () => {
  const m = await loadMeshFile(join(root, 'valid.yaml'));
  assert.equal(m.trustDomain, 'cluster.local');
  assert.deepEqual(m.services.map((s) => [s.key, s.port, s.protocol]), [['payments.default', 8443, 'http'], ['payments-v2.default', 8443, 'http'], ['orders.default', 8080, 'grpc']]);
  assert.equal(m.services[2]!.identity, 'spiffe://cluster.local/ns/default/sa/orders-sa');
  assert.deepEqual(m.policyFiles, ['istio-ok', 'native-a', 'native-b'].map((f) => join(root, 'policies', `${f}.yaml`)));
  assert.equal(m.policy.rules.length, 3);
});
