// `sidecarless ca init` and `svid issue` as a user runs them (the built dist/cli.js), checked with
// the real openssl binary; --force, the CA checks and the TTL rules, with hostile inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tempDir } from './process.js';
import { assertError, assertNoStack, filesIn, giveToUnprivileged, modeOf, sidecarless } from './cli-run.js';

const SVID_FILES = ['svid.pem', 'svid_bundle.pem', 'svid_key.pem'];

async function ca(dir: string, td = 'example.org', extra: string[] = []): Promise<string> {
  const r = await sidecarless(['ca', 'init', '--trust-domain', td, '--out', dir, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

test('ca init + svid issue write files openssl reads, keys 0600, one URI SAN', async (t) => {
  const dir = await tempDir(t);
  const caDir = join(dir, 'ca');
  const init = await sidecarless(['ca', 'init', '--trust-domain', 'example.org', '--out', caDir]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(init.stderr, '');
  assert.match(init.stdout, /^created a CA for spiffe:\/\/example\.org in .* \(valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)/);
  assert.equal(await modeOf(join(caDir, 'ca_key.pem')), 0o600);
  assert.deepEqual(await filesIn(caDir), ['ca.pem', 'ca_key.pem'], 'no temp file left behind');

  const out = join(dir, 'web');
  const issue = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', 'spiffe://example.org/ns/prod/sa/web', '--out', out, '--ttl', '2h']);
  assert.equal(issue.code, 0, issue.stderr);
  assert.match(issue.stdout, /^issued spiffe:\/\/example\.org\/ns\/prod\/sa\/web \(serial [0-9a-f]+, valid until \S+Z, 2h\) in /);
  assert.equal(await modeOf(join(out, 'svid_key.pem')), 0o600);
  assert.deepEqual(await filesIn(out), SVID_FILES, 'no temp file left behind');

  const text = await run('openssl', ['x509', '-in', join(out, 'svid.pem'), '-noout', '-text']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/web/);
  assert.equal((text.stdout.match(/URI:/g) ?? []).length, 1, 'exactly one URI SAN');
  assert.match(text.stdout, /CA:FALSE/);
  assert.match(text.stdout, /X509v3 Key Usage: critical\s+Digital Signature/);
  assert.match(text.stdout, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text.stdout, /ASN1 OID: prime256v1/);

  const verify = await run('openssl', ['verify', '-CAfile', join(out, 'svid_bundle.pem'), join(out, 'svid.pem')]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const key = await run('openssl', ['pkey', '-in', join(out, 'svid_key.pem'), '-noout', '-text']);
  assert.equal(key.code, 0, key.stderr);
  assert.match(await readFile(join(out, 'svid_key.pem'), 'utf8'), /-----BEGIN PRIVATE KEY-----/, 'PKCS#8');

  const dates = await run('openssl', ['x509', '-in', join(out, 'svid.pem'), '-noout', '-enddate']);
  const notAfter = Date.parse(dates.stdout.replace('notAfter=', '').trim());
  const hours = (notAfter - Date.now()) / 3_600_000;
  assert.ok(hours > 1.9 && hours < 2.1, `ttl about 2h, got ${hours}`);
});

test('--force means the same for ca init and svid issue: without it, refuse naming the file and the flag', async (t) => {
  const dir = await tempDir(t);
  const caDir = await ca(join(dir, 'ca'));
  const caBefore = await readFile(join(caDir, 'ca_key.pem'), 'utf8');
  const again = await sidecarless(['ca', 'init', '--trust-domain', 'example.org', '--out', caDir]);
  assertError(again, 2, 'ERR_SIDECARLESS_USAGE', /ca\.pem already exists; pass --force to replace ca\.pem, ca_key\.pem/, 'ca init twice');
  assert.equal(await readFile(join(caDir, 'ca_key.pem'), 'utf8'), caBefore, 'nothing replaced');

  const id = 'spiffe://example.org/web';
  const out = join(dir, 'web');
  assert.equal((await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', out])).code, 0);
  const svidBefore = await readFile(join(out, 'svid.pem'), 'utf8');
  const twice = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', out]);
  assertError(twice, 2, 'ERR_SIDECARLESS_USAGE', /svid\.pem already exists; pass --force to replace svid\.pem, svid_key\.pem, svid_bundle\.pem/, 'svid issue twice');
  assert.equal(await readFile(join(out, 'svid.pem'), 'utf8'), svidBefore, 'nothing replaced');

  // One file of the set is enough to refuse (a half-provisioned directory is not silently completed).
  const partial = join(dir, 'partial');
  await mkdir(partial);
  await writeFile(join(partial, 'svid_key.pem'), 'mine', { mode: 0o600 });
  const p = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', partial]);
  assertError(p, 2, 'ERR_SIDECARLESS_USAGE', /svid_key\.pem already exists; pass --force/, 'one existing file');
  assert.deepEqual(await filesIn(partial), ['svid_key.pem']);

  const forced = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', out, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^replaced the SVID with spiffe:\/\/example\.org\/web/);
  assert.notEqual(await readFile(join(out, 'svid.pem'), 'utf8'), svidBefore);
  assert.deepEqual(await filesIn(out), SVID_FILES);
  assert.equal(await modeOf(join(out, 'svid_key.pem')), 0o600);

  // The old CA is replaced with --force; the SVID it issued no longer chains to the new bundle.
  const replaced = await sidecarless(['ca', 'init', '--trust-domain', 'example.org', '--out', caDir, '--force']);
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stdout, /^replaced the CA for spiffe:\/\/example\.org/);
  assert.notEqual(await readFile(join(caDir, 'ca_key.pem'), 'utf8'), caBefore);
  assert.equal(await modeOf(join(caDir, 'ca_key.pem')), 0o600);
  const verify = await run('openssl', ['verify', '-CAfile', join(caDir, 'ca.pem'), join(out, 'svid.pem')]);
  assert.notEqual(verify.code, 0);
});

test('svid issue refuses a CA key that is not the CA certificate\'s, and a ca.pem with no certificate', async (t) => {
  const dir = await tempDir(t);
  const good = await ca(join(dir, 'good'));
  const other = await ca(join(dir, 'other'));
  const mixed = join(dir, 'mixed');
  await mkdir(mixed);
  await copyFile(join(good, 'ca.pem'), join(mixed, 'ca.pem'));
  await copyFile(join(other, 'ca_key.pem'), join(mixed, 'ca_key.pem'));
  const args = (caDir: string, out = join(dir, 'out')) => ['svid', 'issue', '--ca', caDir, '--spiffe-id', 'spiffe://example.org/web', '--out', out];
  const r = await sidecarless(args(mixed));
  assertError(r, 1, 'ERR_SIDECARLESS_CA_INVALID', /mixed\/ca_key\.pem is not the private key of \S*mixed\/ca\.pem/, 'key of another CA');

  const noCert = join(dir, 'nocert');
  await mkdir(noCert);
  await copyFile(join(good, 'ca_key.pem'), join(noCert, 'ca.pem')); // a PEM, but of a key
  await copyFile(join(good, 'ca_key.pem'), join(noCert, 'ca_key.pem'));
  assertError(await sidecarless(args(noCert)), 1, 'ERR_SIDECARLESS_CA_INVALID', /nocert\/ca\.pem is not a CA certificate: it holds no CERTIFICATE block/, 'ca.pem without a certificate');

  const garbage = join(dir, 'garbage');
  await mkdir(garbage);
  await writeFile(join(garbage, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n');
  await copyFile(join(good, 'ca_key.pem'), join(garbage, 'ca_key.pem'));
  assertError(await sidecarless(args(garbage)), 1, 'ERR_SIDECARLESS_CA_INVALID', /garbage\/ca\.pem is not a CA certificate: .*invalid base64/, 'broken base64');
  await copyFile(join(good, 'ca.pem'), join(garbage, 'ca.pem'));
  await writeFile(join(garbage, 'ca_key.pem'), 'just text');
  assertError(await sidecarless(args(garbage)), 1, 'ERR_SIDECARLESS_CA_INVALID', /ca_key\.pem holds no PRIVATE KEY block/, 'key file without a key');

  // An SVID of its own as the CA: a certificate, and its key, but not a CA.
  await sidecarless(args(good, join(dir, 'leaf')));
  const leafCa = join(dir, 'leafca');
  await mkdir(leafCa);
  await copyFile(join(dir, 'leaf', 'svid.pem'), join(leafCa, 'ca.pem'));
  await copyFile(join(dir, 'leaf', 'svid_key.pem'), join(leafCa, 'ca_key.pem'));
  assertError(await sidecarless(args(leafCa)), 1, 'ERR_SIDECARLESS_CA_INVALID', /is not a sidecarless CA certificate \(needs cA=true/, 'a leaf as CA');
  assert.deepEqual(await filesIn(dir), ['garbage', 'good', 'leaf', 'leafca', 'mixed', 'nocert', 'other'], 'no --out directory created by a refused issue');
});

test('svid issue TTL: ≤ 0, not a duration and beyond the CA\'s own expiry are refused; an expired CA too', async (t) => {
  const dir = await tempDir(t);
  const caDir = await ca(join(dir, 'ca'), 'example.org', ['--ttl', '2h']);
  const out = join(dir, 'out');
  const issue = (...extra: string[]) => sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', 'spiffe://example.org/web', '--out', out, ...extra]);
  const bad: Array<[string, RegExp]> = [
    ['0s', /--ttl must be more than 0, got "0s"/],
    ['0', /--ttl: invalid duration "0"/],
    ['-1s', /--ttl must be more than 0, got "-1s"/],
    ['abc', /--ttl: invalid duration "abc": expected a number and a unit/],
    ['1h30', /--ttl: invalid duration/],
    ['3h', /--ttl 3h would outlive the CA, which expires at \S+Z \(in 1h 59m\): use --ttl 119m or less, or create a new CA/],
    ['99999999999999999999999d', /would outlive the CA/],
  ];
  for (const [ttl, msg] of bad) {
    assertError(await issue('--ttl', ttl), 2, 'ERR_SIDECARLESS_USAGE', msg, `--ttl ${ttl}`);
  }
  assertError(await issue('--ttl=-5m'), 2, 'ERR_SIDECARLESS_USAGE', /--ttl must be more than 0/, '--ttl=-5m');
  assert.deepEqual(await filesIn(dir), ['ca'], 'nothing written');
  const fits = await issue('--ttl', '119m');
  assert.equal(fits.code, 0, fits.stderr);

  // The default TTL (1h) is checked too.
  const shortCa = await ca(join(dir, 'short'), 'example.org', ['--ttl', '30m']);
  const d = await sidecarless(['svid', 'issue', '--ca', shortCa, '--spiffe-id', 'spiffe://example.org/web', '--out', join(dir, 'o2')]);
  assertError(d, 2, 'ERR_SIDECARLESS_USAGE', /the default --ttl \(1h\) would outlive the CA, .*use --ttl 29m or less/, 'default ttl');

  const dying = await ca(join(dir, 'dying'), 'example.org', ['--ttl', '1s']);
  await new Promise((r) => setTimeout(r, 2100));
  const e = await sidecarless(['svid', 'issue', '--ca', dying, '--spiffe-id', 'spiffe://example.org/web', '--out', join(dir, 'o3'), '--ttl', '1s']);
  assertError(e, 1, 'ERR_SIDECARLESS_CA_INVALID', /the CA in \S+dying expired at \S+Z: create a new one with "sidecarless ca init --force --out /, 'expired CA');

  for (const ttl of ['0s', '-1d', 'x', '36501d']) {
    const r = await sidecarless(['ca', 'init', '--trust-domain', 'example.org', '--out', join(dir, 'never'), '--ttl', ttl]);
    assertError(r, 2, 'ERR_SIDECARLESS_USAGE', /--ttl/, `ca init --ttl ${ttl}`);
  }
});

test('hostile paths: a file where a directory belongs, a directory where a file belongs, unreadable and unwritable', async (t) => {
  const dir = await tempDir(t);
  const caDir = await ca(join(dir, 'ca'));
  const id = 'spiffe://example.org/web';
  const file = join(caDir, 'ca.pem');

  assertError(await sidecarless(['ca', 'init', '--trust-domain', 'a.test', '--out', file]), 1, 'ERR_SIDECARLESS_FILE', /ca\.pem is a file, not a directory/, 'ca init --out FILE');
  assertError(await sidecarless(['ca', 'init', '--trust-domain', 'a.test', '--out', join(file, 'sub')]), 1, 'ERR_SIDECARLESS_FILE', /a part of that path is a file, not a directory/, 'ENOTDIR');
  assertError(await sidecarless(['svid', 'issue', '--ca', file, '--spiffe-id', id, '--out', join(dir, 'o')]), 1, 'ERR_SIDECARLESS_FILE', /ca\.pem is a file, not a directory/, '--ca FILE');
  assertError(await sidecarless(['svid', 'issue', '--ca', join(file, 'x'), '--spiffe-id', id, '--out', join(dir, 'o')]), 1, 'ERR_SIDECARLESS_FILE', /a part of that path is a file/, '--ca ENOTDIR');
  // Node's own recursive mkdir spins forever where the parent refuses new entries with ENOENT.
  if (existsSync('/proc/self')) {
    const proc = await sidecarless(['ca', 'init', '--trust-domain', 'a.test', '--out', '/proc/sidecarless-test/ca'], { timeoutMs: 10_000 });
    assertError(proc, 1, 'ERR_SIDECARLESS_FILE', /cannot create the directory \/proc\/sidecarless-test\/ca: the file system refuses it/, '/proc');
  }
  assertError(await sidecarless(['svid', 'issue', '--ca', join(dir, 'nope'), '--spiffe-id', id, '--out', join(dir, 'o')]), 1, 'ERR_SIDECARLESS_FILE', /nope does not exist: create a CA first with "sidecarless ca init/, 'missing CA');

  // A directory named like the key: refused before any file of the set is replaced, even with --force.
  const out = join(dir, 'web');
  assert.equal((await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', out])).code, 0);
  const certBefore = await readFile(join(out, 'svid.pem'), 'utf8');
  const bundleBefore = await readFile(join(out, 'svid_bundle.pem'), 'utf8');
  const trap = join(dir, 'trap');
  await mkdir(join(trap, 'svid_key.pem'), { recursive: true });
  await copyFile(join(out, 'svid.pem'), join(trap, 'svid.pem'));
  await copyFile(join(out, 'svid_bundle.pem'), join(trap, 'svid_bundle.pem'));
  const r = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', trap, '--force']);
  assertError(r, 1, 'ERR_SIDECARLESS_FILE', /trap\/svid_key\.pem: it is a directory, not a file/, 'key path is a directory');
  assert.equal(await readFile(join(trap, 'svid.pem'), 'utf8'), certBefore, 'certificate untouched');
  assert.equal(await readFile(join(trap, 'svid_bundle.pem'), 'utf8'), bundleBefore, 'bundle untouched');
  assert.deepEqual(await filesIn(trap), SVID_FILES, 'no temp file left behind');

  // Permissions (as an unprivileged user when the tests run as root).
  await giveToUnprivileged(dir);
  await chmod(join(caDir, 'ca_key.pem'), 0o000);
  const unreadable = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', join(dir, 'o4')], { unprivileged: true });
  assertError(unreadable, 1, 'ERR_SIDECARLESS_FILE', /permission denied: cannot read \S+ca_key\.pem/, 'EACCES on read');
  await chmod(join(caDir, 'ca_key.pem'), 0o600);
  const locked = join(dir, 'locked');
  await mkdir(locked);
  await giveToUnprivileged(locked);
  await chmod(locked, 0o555);
  const unwritable = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', id, '--out', locked], { unprivileged: true });
  assertError(unwritable, 1, 'ERR_SIDECARLESS_FILE', /permission denied: cannot write \S+locked\/svid_bundle\.pem/, 'EACCES on write');
  const caLocked = await sidecarless(['ca', 'init', '--trust-domain', 'a.test', '--out', join(locked, 'ca')], { unprivileged: true });
  assertError(caLocked, 1, 'ERR_SIDECARLESS_FILE', /permission denied: cannot create the directory \S+locked\/ca/, 'EACCES on mkdir');
  await chmod(locked, 0o755);
  assert.deepEqual(await filesIn(locked), [], 'nothing left in the locked directory');
  assertNoStack(unwritable);
});
