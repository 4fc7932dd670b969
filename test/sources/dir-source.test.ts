// DirSource: spiffe-helper files in a watched directory; bad updates rejected whole.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtualClock } from '../../src/clock.js';
import { IdentityUnavailableError } from '../../src/errors.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { DirSource, createDirSource } from '../../src/sources/dir.js';
import { TD, craftLeaf, filesOf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { waitFor } from '../helpers/net.js';

const ID = idOf('orders');
let ca: DevCa;
let other: DevCa;
let root: { dir: string; remove: () => Promise<void> };
let n = 0;

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  other = await createDevCa({ trustDomain: TD }); // same trust domain name, another key
  root = await tempDir('sidecarless-dir-');
});
after(async () => {
  await root.remove();
});

async function freshDir(): Promise<string> {
  const d = join(root.dir, `d${++n}`);
  await mkdir(d);
  return d;
}

async function started(dir: string, extra: Partial<ConstructorParameters<typeof DirSource>[0]> = {}) {
  const errors: Error[] = [];
  const source = await createDirSource({ dir, pollMs: 100, onError: (e) => errors.push(e), ...extra });
  return { source, errors };
}

test('starts from files written to the directory', async (t) => {
  const dir = await freshDir();
  const svid = await ca.issue({ spiffeId: ID });
  await writeSvidDir(dir, filesOf(svid));
  const { source } = await started(dir);
  t.after(() => source.close());
  await source.ready(1000);
  const got = source.getX509Svid();
  assert.equal(got.spiffeId.id, ID);
  assert.equal(got.chain[0]!.serialNumber, svid.serialNumber);
  assert.equal(got.certChainPem, svid.certChainPem);
  const s = source.status();
  assert.equal(s.state, 'ready');
  assert.equal(s.kind, 'dir');
  assert.equal(s.spiffeId, ID);
  assert.equal(s.serialNumber, svid.serialNumber);
  assert.deepEqual(s.trustDomains, [TD]);
  assert.equal(s.rotations, 0);
  assert.equal(s.lastError, undefined);
  assert.ok(source.getBundle(TD));
  assert.equal(source.getBundle('other.example'), undefined);
});

test('rotation by rewriting the files is picked up (watch or poll) and announced', async (t) => {
  const dir = await freshDir();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
  const { source } = await started(dir);
  t.after(() => source.close());
  let updates = 0;
  source.onUpdate(() => updates++);
  const serials = [source.status().serialNumber];
  for (let i = 0; i < 3; i++) {
    const next = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(next));
    await waitFor(() => source.status().serialNumber === next.serialNumber, 5_000, `rotation ${i + 1}`);
    serials.push(next.serialNumber);
  }
  assert.equal(new Set(serials).size, 4);
  assert.equal(source.status().rotations, 3);
  assert.equal(updates, 3);
  assert.equal(source.status().state, 'ready');
});

test('federated roots in svid_bundle.pem are grouped by their trust-domain URI SAN', async (t) => {
  const dir = await freshDir();
  const fed = await createDevCa({ trustDomain: 'partner.example' });
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID }), fed.bundlePem));
  const { source } = await started(dir);
  t.after(() => source.close());
  assert.deepEqual([...source.getBundles().keys()].sort(), ['cluster.local', 'partner.example']);
  assert.equal(source.getBundle('partner.example')!.roots[0]!.fingerprint, fed.root.fingerprint);
});

interface BadCase {
  name: string;
  /** Writes the bad update into `dir` (the good set is in place). */
  write: (dir: string, good: Awaited<ReturnType<DevCa['issue']>>) => Promise<void>;
  error: RegExp;
}

const BAD: BadCase[] = [
  {
    name: 'unparsable PEM (garbage)',
    write: (dir) => writeFile(join(dir, 'svid.pem'), 'this is not a certificate\n'),
    error: /no CERTIFICATE block/,
  },
  {
    name: 'unparsable PEM (invalid base64 inside the block)',
    write: (dir) => writeFile(join(dir, 'svid.pem'), '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'),
    error: /not valid PEM|invalid base64/,
  },
  {
    name: 'a DER that is not a certificate',
    write: (dir) => writeFile(join(dir, 'svid.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
    error: /cannot be parsed/,
  },
  {
    name: 'key not matching the certificate (a rotation caught half-way)',
    write: async (dir) => {
      const next = await ca.issue({ spiffeId: ID });
      await writeFile(join(dir, 'svid.pem'), next.certChainPem); // new cert, old key
    },
    error: /private key does not belong to the leaf/,
  },
  {
    name: 'garbage key file',
    write: (dir) => writeFile(join(dir, 'svid_key.pem'), 'nope'),
    error: /no PRIVATE KEY block/,
  },
  {
    name: 'a chain from another CA (same trust domain name)',
    write: async (dir) => {
      const rogue = await other.issue({ spiffeId: ID });
      await writeFile(join(dir, 'svid_key.pem'), rogue.keyPem);
      await writeFile(join(dir, 'svid.pem'), rogue.certChainPem);
    },
    error: /does not lead to a root/,
  },
  {
    name: 'an expired SVID',
    write: async (dir) => {
      const old = await craftLeaf(ca, { uris: [ID], notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 });
      await writeFile(join(dir, 'svid_key.pem'), old.keyPem);
      await writeFile(join(dir, 'svid.pem'), old.certChainPem);
    },
    error: /expired/,
  },
  {
    name: 'a leaf that breaks the SVID rules (two URI SANs)',
    write: async (dir) => {
      const bad = await craftLeaf(ca, { uris: [ID, idOf('admin')] });
      await writeFile(join(dir, 'svid_key.pem'), bad.keyPem);
      await writeFile(join(dir, 'svid.pem'), bad.certChainPem);
    },
    error: /2 URI SANs/,
  },
  {
    name: 'a garbage bundle',
    write: (dir) => writeFile(join(dir, 'svid_bundle.pem'), 'garbage'),
    error: /svid_bundle\.pem: the bundle has no CERTIFICATE blocks/,
  },
  {
    name: 'a bundle that no longer holds our CA',
    write: (dir) => writeFile(join(dir, 'svid_bundle.pem'), other.bundlePem),
    error: /does not lead to a root/,
  },
  {
    name: 'files deleted (source lost)',
    write: async (dir) => {
      await unlink(join(dir, 'svid.pem'));
      await unlink(join(dir, 'svid_key.pem'));
    },
    error: /svid(_key)?\.pem does not exist/,
  },
];

for (const c of BAD) {
  test(`bad update rejected whole, previous kept: ${c.name}`, async (t) => {
    const dir = await freshDir();
    const good = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(good));
    const clock = new VirtualClock(Date.now());
    const { source, errors } = await started(dir, { clock });
    t.after(() => source.close());
    let updates = 0;
    source.onUpdate(() => updates++);
    const before = source.getX509Svid();

    await c.write(dir, good);
    await source.reload();
    const s = source.status();
    assert.equal(s.state, 'stale');
    assert.match(s.lastError ?? '', c.error);
    assert.ok(errors.length >= 1 && c.error.test(errors.at(-1)!.message), errors.map((e) => e.message).join('; '));
    // The previous SVID is still served, whole (cert and key together).
    const now = source.getX509Svid();
    assert.equal(now, before);
    assert.equal(s.serialNumber, good.serialNumber);
    assert.equal(updates, 0);
    // Poll (every 100 ms), retries and the watch's debounce do not sneak it in later either: 2 s of
    // them (20 polls, the first retries), each read run to its end.
    await clock.advanceAsync(2_000);
    assert.equal(source.getX509Svid(), before);
    assert.equal(source.status().state, 'stale');

    // A good set afterwards is accepted and clears the error.
    const fixed = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(fixed));
    await source.reload();
    await waitFor(() => source.status().serialNumber === fixed.serialNumber, 5_000, 'the good set');
    assert.equal(source.status().state, 'ready');
    assert.equal(source.status().lastError, undefined);
  });
}

test('a failed read is retried by itself, backing off (250 ms, 500 ms, 1 s with random 0): fixing the files is enough', async (t) => {
  // A directory not there yet: no watcher, and the poll is off, so only the retries read.
  const dir = join(root.dir, `retried-${++n}`);
  const clock = new VirtualClock(Date.now());
  const { source, errors } = await started(dir, { clock, pollMs: 3_600_000, random: () => 0 });
  t.after(() => source.close());
  const ahead = () => clock.pending().map((at) => at - clock.now());
  assert.equal(source.status().state, 'starting');
  assert.deepEqual(ahead(), [250, 3_600_000], 'the first retry, and the poll');
  await clock.advanceAsync(250);
  assert.deepEqual(ahead(), [500, 3_600_000 - 250], 'the second retry backs off');
  await clock.advanceAsync(500);
  assert.deepEqual(ahead(), [1_000, 3_600_000 - 750]);
  assert.equal(errors.length, 1, 'the same failure, read again, is reported once');
  await mkdir(dir);
  const svid = await ca.issue({ spiffeId: ID });
  await writeSvidDir(dir, filesOf(svid));
  await clock.advanceAsync(999);
  assert.equal(source.status().state, 'starting', 'nothing reads before the retry');
  await clock.advanceAsync(1);
  assert.equal(source.status().state, 'ready');
  assert.equal(source.status().serialNumber, svid.serialNumber);
  assert.equal(ahead().length, 2, `no retry once read, only the lifecycle check and the poll: ${ahead()}`);
  assert.ok(ahead().includes(3_600_000 - 1_750), String(ahead()));
});

test('missing directory at start: ready(200) rejects at 200 ms naming the path; files appearing later make it ready', async (t) => {
  const dir = join(root.dir, `later-${++n}`);
  const clock = new VirtualClock(Date.now());
  const { source } = await started(dir, { clock });
  t.after(() => source.close());
  assert.equal(source.status().state, 'starting');
  let outcome: unknown = 'pending';
  source.ready(200).then(() => (outcome = 'resolved'), (e: unknown) => (outcome = e));
  await clock.advanceAsync(199);
  assert.equal(outcome, 'pending');
  await clock.advanceAsync(1);
  const e = outcome as unknown; // set by the callbacks above
  assert.ok(e instanceof IdentityUnavailableError, String(e));
  assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
  assert.ok(e.message.includes(dir), e.message);
  assert.match(e.message, /does not exist/);
  assert.match(e.message, /after 200 ms/);
  assert.throws(() => source.getX509Svid(), (err: unknown) => err instanceof IdentityUnavailableError && err.message.includes(dir));

  const waiting = source.ready(10_000);
  await mkdir(dir);
  const svid = await ca.issue({ spiffeId: ID });
  await writeSvidDir(dir, filesOf(svid));
  await clock.advanceAsync(100); // the poll finds them
  await waiting;
  assert.equal(source.getX509Svid().chain[0]!.serialNumber, svid.serialNumber);
  assert.equal(source.status().state, 'ready');
});

test('empty directory at start: the error names the missing file', async (t) => {
  const dir = await freshDir();
  const clock = new VirtualClock(Date.now());
  const { source } = await started(dir, { clock });
  t.after(() => source.close());
  const refused = assert.rejects(source.ready(150), /svid(_key|_bundle)?\.pem does not exist/);
  await clock.advanceAsync(150);
  await refused;
});

test('case 29: use-time expiry with a virtual clock: getX509Svid throws after notAfter, state "expired"', async (t) => {
  const clock = new VirtualClock(Date.now());
  const dir = await freshDir();
  const svid = await ca.issue({ spiffeId: ID, ttlMs: 60_000 });
  await writeSvidDir(dir, filesOf(svid));
  const { source } = await started(dir, { clock });
  t.after(() => source.close());
  assert.equal(source.getX509Svid().notAfter, svid.notAfter);
  clock.set(svid.notAfter);
  assert.ok(source.getX509Svid(), 'valid through notAfter itself');
  clock.set(svid.notAfter + 1_000);
  assert.throws(() => source.getX509Svid(), (e: unknown) => {
    assert.ok(e instanceof IdentityUnavailableError);
    assert.match(e.message, /expired at .* no renewal arrived from the identity directory .* Refusing to serve or call with it/);
    assert.ok(e.message.includes(ID));
    return true;
  });
  const s = source.status();
  assert.equal(s.state, 'expired');
  assert.equal(s.secondsLeft, 0);
});

test('the directory replaced wholesale (Kubernetes swaps a symlinked dir) is picked up by polling', async (t) => {
  const dir = await freshDir();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
  const { source } = await started(dir);
  t.after(() => source.close());
  await rm(dir, { recursive: true });
  await mkdir(dir);
  const next = await ca.issue({ spiffeId: ID });
  await writeSvidDir(dir, filesOf(next));
  await waitFor(() => source.status().serialNumber === next.serialNumber, 5_000, 'the new directory');
});

test('close: state "closed", no more SVIDs', async () => {
  const dir = await freshDir();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
  const { source } = await started(dir);
  await source.close();
  assert.equal(source.status().state, 'closed');
  assert.throws(() => source.getX509Svid(), /closed/);
});

test('reload() resolves after a read that began after the call, even while the poll and the watch keep reads in flight', async (t) => {
  const dir = await freshDir();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
  // A 1 ms poll re-reads constantly while the files are bad: a reload is nearly always asked
  // while another read is in flight, and must not answer with that read's (older) view.
  const { source } = await started(dir, { pollMs: 1 });
  t.after(() => source.close());
  for (let i = 0; i < 15; i++) {
    await writeFile(join(dir, 'svid.pem'), 'garbage');
    await writeFile(join(dir, 'svid_key.pem'), 'garbage');
    await source.reload();
    assert.match(source.status().lastError ?? '', /CERTIFICATE/, `round ${i}: garbage seen`);
    const next = await ca.issue({ spiffeId: ID });
    await writeSvidDir(dir, filesOf(next));
    await source.reload();
    assert.equal(source.status().serialNumber, next.serialNumber, `round ${i}: the new set seen`);
    assert.equal(source.status().state, 'ready');
  }
});

test('an onError that throws (a broken logger) stops neither the retries nor the process', async (t) => {
  const dir = await freshDir();
  const clock = new VirtualClock(Date.now());
  let told = 0;
  const source = await createDirSource({ dir, pollMs: 100_000, clock, random: () => 0, onError: () => { told++; throw new Error('logger down'); } });
  t.after(() => source.close());
  assert.equal(source.status().state, 'starting');
  assert.equal(told, 1);
  const svid = await ca.issue({ spiffeId: ID });
  await writeSvidDir(dir, filesOf(svid));
  await clock.advanceAsync(300); // the first retry (250 ms with random 0) still runs
  await waitFor(() => source.status().state === 'ready', 5_000, 'ready after the retry');
});

test('the directory taken away and put back unchanged (found by npm run chaos): stale while it is gone, ready again once it is back', async (t) => {
  const dir = await freshDir();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: ID })));
  const { source } = await started(dir, { pollMs: 50 });
  t.after(() => source.close());
  assert.equal(source.status().state, 'ready');
  const { rename } = await import('node:fs/promises');
  await rename(dir, `${dir}.away`);
  await waitFor(() => source.status().state === 'stale', 5_000, 'stale while the directory is gone');
  await rename(`${dir}.away`, dir);
  // The same files, the same signature: before the fix the read returned early and the source stayed stale.
  await waitFor(() => source.status().state === 'ready', 5_000, 'ready again with the same files');
  assert.equal(source.status().lastError, undefined);
});
