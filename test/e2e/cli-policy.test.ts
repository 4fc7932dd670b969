// `sidecarless policy check` as a user runs it: ALLOW exit 0, DENY exit 1, and every other outcome
// (a policy that cannot be read or loaded, a usage error) exit 2, in the one error style.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './process.js';
import { assertError, assertNoStack, giveToUnprivileged, sidecarless } from './cli-run.js';

const POLICY = `rules:
  - name: orders-may-charge
    action: allow
    from: { identities: ["spiffe://cluster.local/ns/default/sa/orders"] }
    to: { methods: ["POST"], paths: ["/charge"] }
`;
const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

test('policy check: ALLOW 0, DENY 1 on stdout; unreadable, missing, a directory, invalid YAML: exit 2 with the reason', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'payments.yaml');
  await writeFile(file, POLICY);
  const check = (policy: string, from = ORDERS, o: { unprivileged?: boolean } = {}) =>
    sidecarless(['policy', 'check', '--policy', policy, '--from', from, '--method', 'POST', '--path', '/charge'], o);

  const allow = await check(file);
  assert.deepEqual([allow.code, allow.stdout, allow.stderr], [0, 'ALLOW orders-may-charge\n', '']);
  const deny = await check(file, 'unauthenticated');
  assert.deepEqual([deny.code, deny.stdout, deny.stderr], [1, 'DENY no-allow-match\n', '']);

  assertError(await check(join(dir, 'missing.yaml')), 2, 'ERR_SIDECARLESS_FILE', /missing\.yaml does not exist/, 'missing');
  await mkdir(join(dir, 'adir.yaml'));
  assertError(await check(join(dir, 'adir.yaml')), 2, 'ERR_SIDECARLESS_FILE', /cannot read \S+adir\.yaml: it is a directory, not a file/, 'EISDIR');
  assertError(await check(join(file, 'x')), 2, 'ERR_SIDECARLESS_FILE', /a part of that path is a file/, 'ENOTDIR');
  await writeFile(join(dir, 'bad.yaml'), 'rules:\n  - action: allow\n    frm: {}\n');
  const bad = await check(join(dir, 'bad.yaml'));
  assertError(bad, 2, 'ERR_SIDECARLESS_POLICY_INVALID', /^sidecarless: \S+bad\.yaml:3:5 rules\[0\]\.frm: unknown field/, 'invalid');
  await writeFile(join(dir, 'tabs.yaml'), 'rules: [\n\t- x: {');
  assertError(await check(join(dir, 'tabs.yaml')), 2, 'ERR_SIDECARLESS_POLICY_INVALID', /\S+tabs\.yaml:\d+:\d+ not valid YAML/, 'not YAML');

  const locked = join(dir, 'locked.yaml');
  await writeFile(locked, POLICY);
  await giveToUnprivileged(dir);
  await chmod(locked, 0o000);
  assertError(await check(locked, ORDERS, { unprivileged: true }), 2, 'ERR_SIDECARLESS_FILE', /permission denied: cannot read \S+locked\.yaml/, 'EACCES');

  const malformed = await sidecarless(['policy', 'check', '--policy', file, '--from', ORDERS, '--method', 'POST', '--path', '/a%2Fb']);
  assert.equal(malformed.code, 1);
  assert.match(malformed.stdout, /^DENY \(malformed target: /);
  assertNoStack(malformed);
});
