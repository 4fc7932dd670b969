// inbound.policy as a file, on a real filesystem: an unreadable file has its own code; an invalid
// one (at start or on a watched reload) names file:line:col; a one-line YAML document given where a
// path goes points to loadPolicy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCa, createMesh, type DevCa, loadPolicy } from '../../src/index.js';
import { PolicyFile } from '../../src/inbound/policy-file.js';
import { tempDir } from '../helpers/certs.js';

const quiet = { info() {}, warn() {}, error() {} };
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
});
let ca: DevCa | undefined;
async function meshWith(policy: unknown) {
  ca ??= await createDevCa();
  return createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy } });
}
async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.remove);
  return t.dir;
}

test('a missing policy file: ERR_SIDECARLESS_POLICY_FILE naming the resolved path and what was given', async () => {
  const d = await dir();
  const file = join(d, 'nope.yaml');
  await assert.rejects(meshWith(file), (e: Error & { code?: string; file?: string; cause?: { code?: string } }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_FILE');
    assert.equal(e.file, file);
    assert.equal(e.cause?.code, 'ENOENT');
    assert.match(e.message, new RegExp(`cannot read the policy file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} .*: it does not exist`));
    return true;
  });
  await mkdir(join(d, 'adir'));
  await assert.rejects(meshWith(join(d, 'adir')), { code: 'ERR_SIDECARLESS_POLICY_FILE', message: /it is a directory/ });
});

test('a one-line YAML document where a path goes points to loadPolicy', async () => {
  for (const oneLine of ['rules: []', 'rules:', 'apiVersion: security.istio.io/v1', '- name: x', '  rules: [] ']) {
    await assert.rejects(meshWith(oneLine), (e: Error & { code?: string; issues?: Array<{ path: string }> }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID', oneLine);
      assert.equal(e.issues?.[0]?.path, 'inbound.policy');
      assert.match(e.message, /inbound\.policy looks like a policy document, not a file path .*: pass loadPolicy\(text\) or a multi-line string/);
      assert.doesNotMatch(e.message, /cannot read/);
      return true;
    }, oneLine);
  }
  // What the message suggests works; a flow document on one line is a document already.
  for (const ok of [loadPolicy('rules: []'), 'rules: []\n', '{rules: []}', '{"rules": []}']) {
    const m = await meshWith(ok);
    await m.close();
  }
});

test('an invalid file at start: file:line:col for each issue', async () => {
  const d = await dir();
  const file = join(d, 'payments.yaml');
  await writeFile(file, 'rules:\n  - name: a\n    action: alow\n    form: []\n');
  await assert.rejects(meshWith(file), (e: Error & { code?: string; issues?: Array<{ file?: string; line?: number }> }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
    const lines = e.message.split('\n');
    assert.equal(lines[0], `invalid policy in ${file}:`);
    assert.equal(lines[1], `  ${file}:3:13 rules[0].action: must be one of "allow", "deny", "audit", got the string "alow" (did you mean "allow"?)`);
    assert.equal(lines[2], `  ${file}:4:5 rules[0].form: unknown field (did you mean "from"?)`);
    assert.equal(lines.length, 3, 'one line per mistake');
    assert.deepEqual(e.issues?.map((i) => [i.file, i.line]), [[file, 3], [file, 4]]);
    return true;
  });
  await writeFile(file, 'rules: [\n');
  await assert.rejects(meshWith(file), { message: new RegExp(`^invalid policy in .*payments\\.yaml:\\n  .*payments\\.yaml:2:1 not valid YAML/JSON: `) });
});

test('a watched reload that is rejected names file:line:col and keeps the previous policy', async () => {
  const d = await dir();
  const file = join(d, 'p.yaml');
  await writeFile(file, 'rules: []\n');
  const errors: Error[] = [];
  let applied = 0;
  const pf = new PolicyFile(file, { apply: (t) => {
      loadPolicy(t);
      applied++;
    }, onError: (e) => void errors.push(e), pollMs: 60_000 });
  await pf.start();
  try {
    assert.equal(applied, 1);
    await writeFile(file, 'rules:\n  - action: deny\n    to: [{ methods: GET }]\n');
    await pf.reload();
    assert.equal(applied, 1, 'not applied');
    const e = errors.at(-1) as Error & { code?: string };
    assert.equal(e.code, 'ERR_SIDECARLESS_POLICY_INVALID');
    assert.equal(e.message, `policy file ${file} rejected, keeping the previous policy:\n  ${file}:3:21 rules[0].to[0].methods: must be a list, got the string "GET" (write a list: ["GET"])`);
    await writeFile(file, '');
    await pf.reload();
    assert.equal((errors.at(-1) as Error & { code?: string }).code, 'ERR_SIDECARLESS_POLICY_INVALID', 'an empty file is refused with a code');
    await mkdir(join(d, 'moved'));
    await rename(file, join(d, 'moved', 'p.yaml'));
    await pf.reload();
    const gone = errors.at(-1) as Error & { code?: string };
    assert.equal(gone.code, 'ERR_SIDECARLESS_POLICY_FILE');
    assert.match(gone.message, /does not exist.*keeping the previous policy/);
  } finally {
    pf.close();
  }
});
