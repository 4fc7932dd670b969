// `sidecarless ca init` and `svid issue` as a user runs them, checked with the real openssl binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli, run, tempDir } from './process.js';

test('ca init + svid issue write files openssl reads, keys 0600, one URI SAN', async (t) => {
  const dir = await tempDir(t);
  const caDir = join(dir, 'ca');
  const init = await cli(['ca', 'init', '--trust-domain', 'example.org', '--out', caDir]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /created CA for spiffe:\/\/example\.org/);
  assert.equal((await stat(join(caDir, 'ca_key.pem'))).mode & 0o777, 0o600);

  const out = join(dir, 'web');
  const issue = await cli(['svid', 'issue', '--ca', caDir, '--spiffe-id', 'spiffe://example.org/ns/prod/sa/web', '--out', out, '--ttl', '2h']);
  assert.equal(issue.code, 0, issue.stderr);
  assert.equal((await stat(join(out, 'svid_key.pem'))).mode & 0o777, 0o600);

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

test('ca init refuses to overwrite an existing CA without --force', async (t) => {
  const dir = await tempDir(t);
  assert.equal((await cli(['ca', 'init', '--trust-domain', 'a.test', '--out', dir])).code, 0);
  const again = await cli(['ca', 'init', '--trust-domain', 'a.test', '--out', dir]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists; pass --force/);
  assert.equal((await cli(['ca', 'init', '--trust-domain', 'a.test', '--out', dir, '--force'])).code, 0);
});

test('bad input: clear one-line errors and exit 2', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [['ca', 'init', '--out', dir], /--trust-domain is required/],
    [['ca', 'init', '--trust-domain', 'Bad.Domain', '--out', dir], /lower case/],
    [['svid', 'issue', '--ca', join(dir, 'nope'), '--spiffe-id', 'spiffe://a.test/x', '--out', dir], /create a CA first/],
    [['svid', 'issue', '--ca', dir, '--spiffe-id', 'spiffe://a.test', '--out', dir], /names a trust domain, not a workload/],
    [['svid', 'issue', '--ca', dir, '--spiffe-id', 'spiffe://a.test/x', '--out', dir, '--ttl', 'soon'], /--ttl: invalid duration/],
    [['ca', 'init', '--trust-domain', 'a.test', '--out', dir, '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, msg] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg, args.join(' '));
    assert.match(r.stderr, /usage: sidecarless/);
  }
  await cli(['ca', 'init', '--trust-domain', 'a.test', '--out', dir]);
  const other = await cli(['svid', 'issue', '--ca', dir, '--spiffe-id', 'spiffe://b.test/x', '--out', dir]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /signs for trust domain "a\.test"/);
  const unknown = await cli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});
