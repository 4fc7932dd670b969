// Issue 9 item 8: createMesh refuses an SVID whose SPIFFE ID (or trust domain) is not the
// workload's — from identity.dir, SIDECARLESS_IDENTITY_DIR and a user-given X509Source — naming
// both IDs and what to change; a later rotation to another ID is rejected, the previous SVID kept,
// the error in stats and logs. Real files, real TLS handshakes, real child processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualClock } from '../../src/clock.js';
import { type Logger } from '../../src/config.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { type Mesh, type X509Source, type X509Svid, createMesh } from '../../src/index.js';
import { ManualSource, TD, filesOf, idOf, tempDir, writeSvidDir } from '../helpers/certs.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';
import { run } from '../e2e/process.js';

type Options = Parameters<typeof createMesh>[0];
const ORDERS = idOf('orders');
const PAYMENTS = idOf('payments');

function recorder() {
  const lines: Array<{ level: string; msg: string }> = [];
  const logger: Logger = {
    info: (msg) => void lines.push({ level: 'info', msg }),
    warn: (msg) => void lines.push({ level: 'warn', msg }),
    error: (msg) => void lines.push({ level: 'error', msg }),
  };
  return { lines, logger };
}

let ca: DevCa;
let caOther: DevCa; // trust domain example.org
let root: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  caOther = await createDevCa({ trustDomain: 'example.org' });
  root = await tempDir('sidecarless-workload-id-');
});
after(() => root.remove());

async function dirWith(spiffeId: string, from: DevCa = ca): Promise<string> {
  const d = join(root.dir, `d${++n}`);
  await import('node:fs/promises').then((fs) => fs.mkdir(d));
  await writeSvidDir(d, filesOf(await from.issue({ spiffeId })));
  return d;
}

/** Asserts an IdentityUnavailableError that names both IDs, and returns its message. */
async function refusedAtStart(p: Promise<unknown>, actual: string, expected: string): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', String(e));
    message = (e as Error).message;
    assert.ok(message.includes(`is for ${actual}`), message);
    assert.ok(message.includes(`this workload's SPIFFE ID is ${expected}`), message);
    return true;
  });
  return message;
}

describe('at start: createMesh refuses an SVID for another workload', () => {
  test('identity.dir holding another service\'s SVID: rejected at once (not after startTimeout), naming spiffeId to set', async () => {
    const dir = await dirWith(PAYMENTS);
    const { lines, logger } = recorder();
    const clock = new VirtualClock(Date.now()); // the startTimeout cannot pass unless the test moves it
    const msg = await refusedAtStart(createMesh({ service: 'orders', logger, identity: { dir, startTimeout: 10_000, pollInterval: 50 } } as Options, { clock }), PAYMENTS, ORDERS);
    assert.match(msg, /^the X\.509-SVID from the identity directory .* is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
    assert.match(msg, /derived as spiffe:\/\/<trustDomain>\/ns\/<namespace>\/sa\/<service> from trustDomain "cluster\.local", namespace "default" and service "orders"/);
    assert.match(msg, /set spiffeId: "spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments" \(or SIDECARLESS_SPIFFE_ID\); otherwise give this workload an SVID for spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    // The directory source was closed: no timer is left to read the files again, and new (bad) ones are never looked at.
    assert.deepEqual(clock.pending(), [], 'every timer of the source was cancelled');
    const logged = lines.length;
    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: idOf('billing') })));
    await clock.advanceAsync(10_000);
    assert.equal(lines.length, logged, `the source kept running: ${lines.slice(logged).map((l) => l.msg).join(' | ')}`);
  });

  test('SIDECARLESS_IDENTITY_DIR holding an SVID of another trust domain: names trustDomain to set', async () => {
    const dir = await dirWith('spiffe://example.org/ns/default/sa/orders', caOther);
    const msg = await refusedAtStart(
      createMesh({ service: 'orders', logger: recorder().logger }, { env: { SIDECARLESS_IDENTITY_DIR: dir } }),
      'spiffe://example.org/ns/default/sa/orders',
      ORDERS,
    );
    assert.match(msg, /the trust domains differ \("example\.org" is not "cluster\.local"\)/);
    assert.match(msg, /set trustDomain: "example\.org" \(or SIDECARLESS_TRUST_DOMAIN\);/);
  });

  test('an explicit spiffeId (option or SIDECARLESS_SPIFFE_ID) that the SVID does not carry', async () => {
    const dir = await dirWith(ORDERS);
    const msg = await refusedAtStart(
      createMesh({ service: 'orders', spiffeId: 'spiffe://cluster.local/orders-v2', logger: recorder().logger, identity: { dir } } as Options),
      ORDERS,
      'spiffe://cluster.local/orders-v2',
    );
    assert.match(msg, /\(set by the spiffeId option or SIDECARLESS_SPIFFE_ID\)/);
    await refusedAtStart(
      createMesh({ service: 'orders', logger: recorder().logger, identity: { dir } }, { env: { SIDECARLESS_SPIFFE_ID: 'spiffe://cluster.local/x' } }),
      ORDERS,
      'spiffe://cluster.local/x',
    );
  });

  test('a user-given X509Source with another ID: rejected at once; the user\'s source stays open (it is theirs)', async () => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: PAYMENTS })));
    const started = Date.now();
    await refusedAtStart(createMesh({ service: 'orders', logger: recorder().logger, identity: { source, startTimeout: 10_000 } } as Options), PAYMENTS, ORDERS);
    assert.ok(Date.now() - started < 5_000);
    assert.equal(source.status().state, 'ready');
    assert.equal(source.getX509Svid().spiffeId.id, PAYMENTS);
  });

  test('a user-given source that claims the right ID in its X509Svid object but holds another\'s certificate: the PEM decides', async () => {
    const real = await ca.issue({ spiffeId: PAYMENTS });
    const honest = new ManualSource();
    const svid = honest.set(filesOf(real));
    const liar: X509Source = {
      getX509Svid: (): X509Svid => ({ ...svid, spiffeId: { trustDomain: TD, path: '/ns/default/sa/orders', id: ORDERS } }),
      getBundles: () => honest.getBundles(),
      getBundle: (td) => honest.getBundle(td),
      onUpdate: () => () => {},
      ready: async () => {},
      status: () => honest.status(),
      close: async () => {},
    };
    await refusedAtStart(createMesh({ service: 'orders', logger: recorder().logger, identity: { source: liar } } as Options), PAYMENTS, ORDERS);
    // … and a key that does not belong to the certificate is refused too.
    const other = await ca.issue({ spiffeId: ORDERS });
    const mine = new ManualSource();
    const good = mine.set(filesOf(other));
    const wrongKey: X509Source = { ...liar, getX509Svid: () => ({ ...good, keyPem: real.keyPem }), getBundles: () => mine.getBundles() };
    await assert.rejects(createMesh({ service: 'orders', logger: recorder().logger, identity: { source: wrongKey } } as Options), /refused: the private key does not belong to the leaf certificate/);
  });

  test('a malformed expected ID given to a DirSource fails at construction, not on the first SVID', async () => {
    const { DirSource } = await import('../../src/sources/dir.js');
    assert.throws(() => new DirSource({ dir: root.dir, expect: { spiffeId: 'spiffe://Bad/x' } }), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  });

  test('the matching cases start: derived ID, explicit spiffeId, another trust domain configured as such', async (t) => {
    const m1 = await createMesh({ service: 'orders', logger: recorder().logger, identity: { dir: await dirWith(ORDERS) } } as Options);
    t.after(() => m1.close());
    assert.equal(m1.stats().identity.spiffeId, ORDERS);
    const m2 = await createMesh({ service: 'orders', spiffeId: 'spiffe://cluster.local/custom/orders', logger: recorder().logger, identity: { dir: await dirWith('spiffe://cluster.local/custom/orders') } } as Options);
    t.after(() => m2.close());
    const m3 = await createMesh({ service: 'orders', trustDomain: 'example.org', logger: recorder().logger, identity: { dir: await dirWith('spiffe://example.org/ns/default/sa/orders', caOther) } } as Options);
    t.after(() => m3.close());
    assert.equal(m3.spiffeId, 'spiffe://example.org/ns/default/sa/orders');
  });

  for (const kind of ['dir', 'source'] as const) {
    test(`after the refusal nothing keeps the process alive (${kind}; a child process that never calls exit)`, async () => {
      const dir = await dirWith(PAYMENTS);
      const fixture = fileURLToPath(new URL('./fixtures/refused-start-exits.ts', import.meta.url));
      const r = await run(process.execPath, ['--import', 'tsx', fixture, kind, dir], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `the child did not exit by itself: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      assert.equal(out.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match(out.message, /is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments, but this workload's SPIFFE ID is spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    });
  }
});

describe('on rotation: an SVID for another ID is rejected, the previous one kept', () => {
  async function serve(mesh: Mesh) {
    const server = mesh.createServer((_req, res) => res.end('ok'));
    const port = await listen(server);
    return { port, close: () => closeServer(server) };
  }
  async function serverSerial(port: number): Promise<string> {
    const c = await ca.issue({ spiffeId: idOf('client') });
    const r = await rawTlsRequest({ port, cert: c.certChainPem, key: c.keyPem });
    assert.equal(r.status, 200, r.response.slice(0, 100));
    return r.serverSerial!.toLowerCase().replace(/^0+/, '');
  }
  const norm = (s: string | undefined) => s?.toLowerCase().replace(/^0+/, '');

  test('identity.dir: files rewritten for another service', async (t) => {
    const dir = await dirWith(ORDERS);
    const { lines, logger } = recorder();
    const clock = new VirtualClock(Date.now()); // TLS checks against real time, the mesh's own near it
    const mesh = await createMesh({ service: 'orders', logger, identity: { dir, pollInterval: 50 } } as Options, { clock });
    t.after(() => mesh.close());
    const s = await serve(mesh);
    t.after(s.close);
    const first = mesh.stats().identity.serialNumber;
    assert.equal(await serverSerial(s.port), norm(first));

    await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: PAYMENTS })));
    await clock.advanceAsync(50); // the poll (or the watch) reads them
    assert.notEqual(mesh.stats().identity.lastError, undefined, 'the rejection');
    const st = mesh.stats().identity;
    assert.equal(st.state, 'stale');
    assert.equal(st.spiffeId, ORDERS);
    assert.equal(st.serialNumber, first);
    assert.match(st.lastError!, /is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments, but this workload's SPIFFE ID is spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    assert.equal(await serverSerial(s.port), norm(first), 'new handshakes still present the previous SVID');
    // Logged once, although the poll reads the unchanged files again and again (100 reads).
    await clock.advanceAsync(5_000);
    const rejected = lines.filter((l) => /keeping the previous SVID: the X\.509-SVID .* is for .*payments/.test(l.msg));
    assert.equal(rejected.length, 1, lines.map((l) => l.msg).join('\n'));
    assert.equal(rejected[0]!.level, 'warn');

    const good = await ca.issue({ spiffeId: ORDERS });
    await writeSvidDir(dir, filesOf(good));
    await clock.advanceAsync(50);
    assert.equal(mesh.stats().identity.serialNumber, good.serialNumber, 'the good rotation');
    assert.equal(mesh.stats().identity.lastError, undefined);
    assert.equal(mesh.stats().identity.state, 'ready');
    assert.equal(await serverSerial(s.port), norm(good.serialNumber));
  });

  test('a user-given X509Source rotating to another ID (announced by onUpdate)', async (t) => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: ORDERS })));
    const { lines, logger } = recorder();
    const mesh = await createMesh({ service: 'orders', logger, identity: { source } } as Options);
    t.after(() => mesh.close());
    const s = await serve(mesh);
    t.after(s.close);
    const first = mesh.stats().identity.serialNumber;
    source.set(filesOf(await ca.issue({ spiffeId: PAYMENTS })));
    const st = mesh.stats().identity;
    assert.equal(st.serialNumber, first);
    assert.equal(st.state, 'stale');
    assert.match(st.lastError!, /is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
    assert.equal(mesh.identity.getX509Svid().spiffeId.id, ORDERS, 'the mesh serves the previous SVID');
    assert.equal(await serverSerial(s.port), norm(first));
    assert.equal(lines.filter((l) => /keeping the previous SVID/.test(l.msg)).length, 1);
    const good = await ca.issue({ spiffeId: ORDERS });
    source.set(filesOf(good));
    assert.equal(mesh.stats().identity.serialNumber, good.serialNumber);
    assert.equal(mesh.stats().identity.lastError, undefined);
    assert.equal(await serverSerial(s.port), norm(good.serialNumber));
    assert.equal(mesh.stats().identity.rotations, 1, 'the refused SVID is no rotation');
  });

  test('a user-given source that changes its SVID without telling (no onUpdate): checked at use time all the same', async (t) => {
    const inner = new ManualSource();
    inner.set(filesOf(await ca.issue({ spiffeId: ORDERS })));
    const silentSource: X509Source = {
      getX509Svid: (): X509Svid => inner.getX509Svid(),
      getBundles: () => inner.getBundles(),
      getBundle: (td) => inner.getBundle(td),
      onUpdate: () => () => {}, // never announces anything
      ready: (ms) => inner.ready(ms),
      status: () => inner.status(),
      close: () => inner.close(),
    };
    const mesh = await createMesh({ service: 'orders', logger: recorder().logger, identity: { source: silentSource } } as Options);
    t.after(() => mesh.close());
    const first = mesh.stats().identity.serialNumber;
    inner.set(filesOf(await ca.issue({ spiffeId: PAYMENTS })));
    assert.equal(mesh.identity.getX509Svid().spiffeId.id, ORDERS);
    assert.equal(mesh.stats().identity.serialNumber, first);
    assert.match(mesh.stats().identity.lastError!, /is for .*payments/);
    const good = await ca.issue({ spiffeId: ORDERS });
    inner.set(filesOf(good));
    assert.equal(mesh.identity.getX509Svid().chain[0]!.serialNumber, good.serialNumber);
  });

  test('mesh.close() releases the pin, and leaves the user\'s source open', async () => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: ORDERS })));
    const mesh = await createMesh({ service: 'orders', logger: recorder().logger, identity: { source } } as Options);
    await mesh.close();
    assert.equal(mesh.stats().identity.state, 'closed');
    assert.equal(source.status().state, 'ready');
    source.set(filesOf(await ca.issue({ spiffeId: ORDERS }))); // no listener of the closed mesh runs
    assert.equal(mesh.stats().identity.state, 'closed');
  });
});
