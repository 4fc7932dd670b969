// `sidecarless svid inspect --dir DIR` on good and hostile directories, through the built CLI. Its
// verdict must be the mesh's: a directory it calls OK is one a DirSource accepts, and vice versa.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createDirSource } from '../../src/sources/dir.js';
import { type SvidFiles, craftLeaf, filesOf, writeSvidDir } from '../helpers/certs.js';
import { tempDir } from './process.js';
import { assertError, assertNoStack, giveToUnprivileged, sidecarless } from './cli-run.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/ns/prod/sa/web`;
let ca: DevCa;
let other: DevCa;
let layered: DevCa;
/** A CA made three hours ago, for leaves whose validity lies in the past or the future. */
let oldCa: DevCa;
before(async () => {
  oldCa = await createDevCa({ trustDomain: TD, clock: { ...systemClock, now: () => Date.now() - 3 * 3_600_000 } });
  ca = await createDevCa({ trustDomain: TD });
  other = await createDevCa({ trustDomain: TD }); // same trust domain name, another key
  layered = await createDevCa({ trustDomain: TD, intermediates: 1 });
});

async function dirWith(root: string, name: string, files: SvidFiles): Promise<string> {
  const d = join(root, name);
  await mkdir(d);
  await writeSvidDir(d, files);
  return d;
}

/** What a mesh makes of the directory: accepted, or the reason it refused. */
async function meshVerdict(dir: string): Promise<string> {
  const errors: string[] = [];
  const source = await createDirSource({ dir, onError: (e) => errors.push(e.message) });
  try {
    return source.status().state === 'ready' ? 'accepted' : `refused: ${errors[0]}`;
  } finally {
    await source.close();
  }
}

async function inspect(dir: string, unprivileged = false) {
  const r = await sidecarless(['svid', 'inspect', '--dir', dir], { unprivileged });
  assertNoStack(r, dir);
  return r;
}

/** The value of a report line, e.g. line(out, 'key'). */
function line(stdout: string, label: string): string {
  const m = new RegExp(`^  ${label} {2,}(.*)$`, 'm').exec(stdout);
  assert.ok(m, `no "${label}" line in:\n${stdout}`);
  return m[1]!;
}

test('a good directory: who, valid from/until and time left, key type, key matches, chain verifies; exit 0', async (t) => {
  const root = await tempDir(t);
  const caDir = join(root, 'ca');
  assert.equal((await sidecarless(['ca', 'init', '--trust-domain', TD, '--out', caDir])).code, 0);
  const out = join(root, 'web');
  const issued = await sidecarless(['svid', 'issue', '--ca', caDir, '--spiffe-id', ID, '--out', out, '--ttl', '90m', '--dns', 'web.example.org']);
  assert.equal(issued.code, 0, issued.stderr);
  const r = await inspect(out);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, new RegExp(`^SVID in ${out}\n`));
  assert.equal(line(r.stdout, 'spiffe id'), ID);
  assert.match(line(r.stdout, 'valid from'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(line(r.stdout, 'valid until'), /^\S+Z  \((1h 29m|1h 30m) left\)$/);
  assert.equal(line(r.stdout, 'key type'), 'ECDSA P-256');
  assert.equal(line(r.stdout, 'key'), 'svid_key.pem matches the certificate');
  assert.equal(line(r.stdout, 'chain'), `verifies against svid_bundle.pem (trust domain ${TD}, no intermediates)`);
  assert.equal(line(r.stdout, 'dns names'), 'web.example.org');
  assert.match(line(r.stdout, 'serial'), /^[0-9a-f]+$/);
  assert.match(r.stdout, /\nOK: valid now, key matches, chain verifies\n$/);
  assert.equal(await meshVerdict(out), 'accepted');

  const chained = await dirWith(root, 'layered', filesOf(await layered.issue({ spiffeId: ID })));
  const c = await inspect(chained);
  assert.equal(c.code, 0, c.stdout);
  assert.equal(line(c.stdout, 'chain'), `verifies against svid_bundle.pem (trust domain ${TD}, 1 intermediate)`);
  assert.equal(await meshVerdict(chained), 'accepted');
});

test('each problem is named, exit 1 with one error line; and a DirSource refuses the same directories', async (t) => {
  const root = await tempDir(t);
  const good = await ca.issue({ spiffeId: ID });
  const now = Date.now();
  const expired = await craftLeaf(oldCa, { uris: [ID], notBefore: now - 7_200_000, notAfter: now - 3_600_000 });
  const future = await craftLeaf(ca, { uris: [ID], notBefore: now + 3_600_000, notAfter: now + 7_200_000 });
  const twoIds = await craftLeaf(ca, { uris: [ID, `spiffe://${TD}/other`] });
  const noLeafUsage = await craftLeaf(ca, { uris: [ID], keyUsage: null });
  const cases: Array<{ name: string; files: SvidFiles; lines: Array<[string, RegExp]>; problem: RegExp }> = [
    {
      name: 'key-of-another',
      files: { ...filesOf(good), keyPem: (await ca.issue({ spiffeId: ID })).keyPem },
      lines: [['key', /^DOES NOT MATCH: svid_key\.pem is the key of another certificate$/], ['chain', /^verifies/]],
      problem: /1 problem: the key does not match the certificate/,
    },
    {
      name: 'other-bundle',
      files: { ...filesOf(good), bundlePem: other.bundlePem },
      lines: [['key', /matches/], ['chain', /^DOES NOT VERIFY against svid_bundle\.pem: the chain of spiffe:\/\/example\.org\/ns\/prod\/sa\/web does not lead to a root/]],
      problem: /the chain does not verify against svid_bundle\.pem/,
    },
    {
      name: 'expired',
      files: { certChainPem: expired.certChainPem, keyPem: expired.keyPem, bundlePem: oldCa.bundlePem },
      lines: [['valid until', /^\S+Z  EXPIRED 1h( \d+m)? ago$/], ['chain', /^verifies/]],
      problem: /1 problem: expired 1h( \d+m)? ago/,
    },
    {
      name: 'not-yet-valid',
      files: { certChainPem: future.certChainPem, keyPem: future.keyPem, bundlePem: ca.bundlePem },
      lines: [['valid until', /NOT YET VALID: starts in (59m \d+s|1h)$/]],
      problem: /not valid until \S+Z/,
    },
    {
      name: 'two-ids',
      files: { certChainPem: twoIds.certChainPem, keyPem: twoIds.keyPem, bundlePem: ca.bundlePem },
      lines: [['spiffe id', /^NOT AN X\.509-SVID: the leaf certificate has 2 URI SANs/], ['chain', /^not checked \(the certificate is not an X\.509-SVID\)$/]],
      problem: /the certificate is not an X\.509-SVID/,
    },
    {
      name: 'no-key-usage',
      files: { certChainPem: noLeafUsage.certChainPem, keyPem: noLeafUsage.keyPem, bundlePem: ca.bundlePem },
      lines: [['spiffe id', /^NOT AN X\.509-SVID: the leaf certificate has no key usage extension/]],
      problem: /not an X\.509-SVID/,
    },
    {
      name: 'pem-without-certificate',
      files: { ...filesOf(good), certChainPem: good.keyPem },
      lines: [['certificate', /^INVALID: svid\.pem holds no CERTIFICATE block$/], ['chain', /^not checked \(no certificate\)$/]],
      problem: /svid\.pem holds no certificate/,
    },
    {
      name: 'broken-base64',
      files: { ...filesOf(good), certChainPem: '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' },
      lines: [['certificate', /^INVALID: svid\.pem cannot be parsed: .*invalid base64/]],
      problem: /svid\.pem cannot be parsed/,
    },
    {
      name: 'truncated-der',
      files: { ...filesOf(good), certChainPem: `-----BEGIN CERTIFICATE-----\n${Buffer.from([0x30, 0x82, 0x05, 0x00, 0x30]).toString('base64')}\n-----END CERTIFICATE-----\n` },
      lines: [['certificate', /^INVALID: svid\.pem cannot be parsed/]],
      problem: /svid\.pem cannot be parsed/,
    },
    {
      name: 'key-not-a-key',
      files: { ...filesOf(good), keyPem: good.certChainPem },
      lines: [['key', /^INVALID: svid_key\.pem holds no PRIVATE KEY block$/]],
      problem: /svid_key\.pem holds no private key/,
    },
    {
      name: 'bundle-empty',
      files: { ...filesOf(good), bundlePem: '' },
      lines: [['bundle', /^INVALID: svid_bundle\.pem: the bundle has no CERTIFICATE blocks$/]],
      problem: /svid_bundle\.pem cannot be used/,
    },
  ];
  for (const c of cases) {
    const dir = await dirWith(root, c.name, c.files);
    const r = await inspect(dir);
    assert.equal(r.code, 1, `${c.name}: ${r.stdout}${r.stderr}`);
    for (const [label, value] of c.lines) assert.match(line(r.stdout, label), value, c.name);
    assert.match(r.stdout, /\nPROBLEMS: .+\n$/, c.name);
    const first = r.stderr.trimEnd();
    assert.match(first, /^sidecarless: the SVID in \S+ has \d+ problems?: .+ \[ERR_SIDECARLESS_SVID_INVALID\]$/, c.name);
    assert.match(first, c.problem, c.name);
    // not-yet-valid and expired are refused by the mesh as well; the mesh stops at the first problem.
    assert.match(await meshVerdict(dir), /^refused: /, `${c.name}: a mesh refuses it too`);
  }
});

test('missing and unreadable files, directories where files belong, and a bad --dir', async (t) => {
  const root = await tempDir(t);
  const empty = join(root, 'empty');
  await mkdir(empty);
  const r = await inspect(empty);
  assert.equal(r.code, 1);
  assert.equal(line(r.stdout, 'certificate'), 'svid.pem: MISSING: the file does not exist');
  assert.equal(line(r.stdout, 'key'), 'svid_key.pem: MISSING: the file does not exist');
  assert.equal(line(r.stdout, 'bundle'), 'svid_bundle.pem: MISSING: the file does not exist');
  assert.match(r.stderr, /^sidecarless: the SVID in \S+ has 3 problems: svid\.pem is missing; svid_key\.pem is missing; svid_bundle\.pem is missing \[ERR_SIDECARLESS_SVID_INVALID\]\n$/);

  const good = await dirWith(root, 'good', filesOf(await ca.issue({ spiffeId: ID })));
  const dirs = join(root, 'dirs');
  await mkdir(join(dirs, 'svid_bundle.pem'), { recursive: true });
  await copyFile(join(good, 'svid.pem'), join(dirs, 'svid.pem'));
  await copyFile(join(good, 'svid_key.pem'), join(dirs, 'svid_key.pem'));
  const d = await inspect(dirs);
  assert.equal(d.code, 1);
  assert.equal(line(d.stdout, 'bundle'), 'svid_bundle.pem: UNREADABLE: it is a directory, not a file');
  assert.equal(line(d.stdout, 'key'), 'svid_key.pem matches the certificate', 'what can be checked still is');

  const locked = join(root, 'locked');
  await mkdir(locked);
  await writeSvidDir(locked, filesOf(await ca.issue({ spiffeId: ID })));
  await giveToUnprivileged(root);
  await chmod(join(locked, 'svid_key.pem'), 0o000);
  const u = await inspect(locked, true);
  assert.equal(u.code, 1, u.stdout + u.stderr);
  assert.equal(line(u.stdout, 'key'), 'svid_key.pem: UNREADABLE: permission denied');
  assert.equal(line(u.stdout, 'spiffe id'), ID);
  assert.match(u.stderr, /svid_key\.pem cannot be read \(permission denied\)/);

  assertError(await inspect(join(root, 'nope')), 1, 'ERR_SIDECARLESS_FILE', /nope does not exist: issue an SVID into it with "sidecarless svid issue --out /, 'missing dir');
  assertError(await inspect(join(good, 'svid.pem')), 1, 'ERR_SIDECARLESS_FILE', /svid\.pem is a file, not a directory/, 'a file as --dir');
  assertError(await inspect(join(good, 'svid.pem', 'x')), 1, 'ERR_SIDECARLESS_FILE', /a part of that path is a file/, 'ENOTDIR');
  const noList = join(root, 'nolist');
  await mkdir(noList);
  await writeSvidDir(noList, filesOf(await ca.issue({ spiffeId: ID })));
  await giveToUnprivileged(noList);
  await chmod(noList, 0o000);
  const n = await inspect(noList, true);
  await chmod(noList, 0o755); // so the temp tree can be removed by a non-root owner
  assert.equal(n.code, 1);
  assert.match(n.stdout + n.stderr, /permission denied/);
});
