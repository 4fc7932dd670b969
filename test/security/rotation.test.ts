// SECURITY-CASES 25–29 at the mesh level: identity unavailable at start, source lost after a good
// start, bad updates rejected whole, and an expired SVID with no renewal (fail closed both ways).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { VirtualClock } from '../../src/clock.js';
import { type Logger } from '../../src/config.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { type Mesh, createMesh, peerOf } from '../../src/index.js';
import { type DirSource } from '../../src/sources/dir.js';
import { ManualSource, TD, craftLeaf, filesOf, findCode, idOf, messages, tempDir, writeSvidDir } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen, rawTlsRequest, waitFor } from '../helpers/net.js';

const silent: Logger = { info() {}, warn() {}, error() {} } as unknown as Logger;
type Options = Parameters<typeof createMesh>[0];

let ca: DevCa;
let tmp: { dir: string; remove: () => Promise<void> };
let n = 0;
const meshes: Mesh[] = [];

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  tmp = await tempDir('sidecarless-rotation-');
});
after(async () => {
  await Promise.all(meshes.map((m) => m.close().catch(() => {})));
  await tmp.remove();
});

async function mesh(options: Options, internals?: Parameters<typeof createMesh>[1]): Promise<Mesh> {
  const m = await createMesh({ logger: silent, ...options } as Options, internals);
  meshes.push(m);
  return m;
}

async function serve(m: Mesh) {
  const state = { calls: 0 };
  const server = m.createServer((req: IncomingMessage, res: ServerResponse) => {
    state.calls++;
    res.end(JSON.stringify({ peer: peerOf(req) }));
  });
  const port = await listen(server);
  return { server, port, state, close: () => closeServer(server) };
}

async function dir(): Promise<string> {
  const d = join(tmp.dir, `d${++n}`);
  await mkdir(d);
  return d;
}

const sameSerial = (a: string | undefined, b: string | undefined) => !!a && !!b && a.toLowerCase() === b.toLowerCase();

describe('case 25: identity unavailable at start → createMesh rejects, saying why', () => {
  test('empty identity directory: ERR_SIDECARLESS_IDENTITY_UNAVAILABLE naming the missing file', async () => {
    const d = await dir();
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { dir: d, startTimeout: 300 } } as Options), (e: unknown) => {
      const err = e as Error & { code?: string };
      assert.equal(err.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.ok(err.message.includes(join(d, 'svid')), err.message);
      assert.match(err.message, /svid(_key|_bundle)?\.pem does not exist/);
      assert.match(err.message, /refuses traffic/);
      return true;
    });
  });

  test('missing identity directory', async () => {
    const d = join(tmp.dir, 'never-created');
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { dir: d, startTimeout: '300ms' } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.ok((e as Error).message.includes(d));
      return true;
    });
  });

  test('an expired SVID in the directory at start is not served: the error says it expired', async () => {
    const d = await dir();
    const old = await craftLeaf(ca, { uris: [idOf('orders')], notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 });
    await writeSvidDir(d, { certChainPem: old.certChainPem, keyPem: old.keyPem, bundlePem: ca.bundlePem });
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { dir: d, startTimeout: 300 } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match((e as Error).message, /expired/);
      return true;
    });
  });

  test('a dev CA that cannot issue', async () => {
    const broken = { trustDomain: TD, clock: ca.clock, signCsr: async () => Promise.reject(new Error('the CA is down')) } as unknown as DevCa;
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { ca: broken, startTimeout: 200 } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match((e as Error).message, /the CA is down/);
      return true;
    });
  });

  test('a custom source that never becomes ready', async () => {
    const source = new ManualSource();
    source.fail(new Error('workload API socket not found'));
    await assert.rejects(createMesh({ service: 'orders', logger: silent, identity: { source, startTimeout: 200 } } as Options), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match((e as Error).message, /workload API socket not found/);
      return true;
    });
  });
});

describe('cases 26 and 27: a DirSource-backed server keeps its last good SVID', () => {
  let m: Mesh;
  let srv: Awaited<ReturnType<typeof serve>>;
  let d: string;
  let firstSerial: string;
  const client = async () => craftLeaf(ca, { uris: [idOf('orders')] });
  const probe = async () => {
    const c = await client();
    return rawTlsRequest({ port: srv.port, cert: c.certChainPem, key: c.keyPem });
  };
  const reload = () => (m.identity as unknown as DirSource).reload();

  before(async () => {
    d = await dir();
    const svid = await ca.issue({ spiffeId: idOf('payments') });
    firstSerial = svid.serialNumber;
    await writeSvidDir(d, filesOf(svid));
    m = await mesh({ service: 'payments', identity: { dir: d, pollInterval: 100 } });
    srv = await serve(m);
  });
  after(() => srv.close());

  test('serves with the SVID from the directory', async () => {
    const r = await probe();
    assert.equal(r.status, 200);
    assert.ok(sameSerial(r.serverSerial, firstSerial));
    assert.equal(m.stats().identity.state, 'ready');
    assert.equal(m.stats().identity.kind, 'dir');
  });

  test('case 26: files deleted → previous SVID still served, state "stale" with the reason', async () => {
    await unlink(join(d, 'svid.pem'));
    await unlink(join(d, 'svid_key.pem'));
    await reload();
    await waitFor(() => m.stats().identity.state === 'stale', 5_000, 'stale');
    assert.match(m.stats().identity.lastError ?? '', /does not exist/);
    const r = await probe();
    assert.equal(r.status, 200, 'new connections are still served');
    assert.ok(sameSerial(r.serverSerial, firstSerial));
    assert.equal(m.stats().identity.serialNumber, firstSerial);
  });

  test('case 26: garbage written → still the previous SVID', async () => {
    await writeFile(join(d, 'svid.pem'), 'garbage');
    await writeFile(join(d, 'svid_key.pem'), 'garbage');
    await reload();
    assert.equal(m.stats().identity.state, 'stale');
    assert.match(m.stats().identity.lastError ?? '', /CERTIFICATE/);
    const r = await probe();
    assert.equal(r.status, 200);
    assert.ok(sameSerial(r.serverSerial, firstSerial));
  });

  test('case 27: a new certificate with the old key is rejected whole; the matching key completes it', async () => {
    // Restore the good set first.
    const good = await ca.issue({ spiffeId: idOf('payments') });
    await writeSvidDir(d, filesOf(good));
    await reload();
    await waitFor(() => m.stats().identity.serialNumber === good.serialNumber, 5_000, 'the good set');
    assert.equal(m.stats().identity.state, 'ready');

    const next = await ca.issue({ spiffeId: idOf('payments') });
    await writeFile(join(d, 'svid.pem'), next.certChainPem); // half a rotation
    await reload();
    assert.equal(m.stats().identity.state, 'stale');
    assert.match(m.stats().identity.lastError ?? '', /private key does not belong/);
    const mid = await probe();
    assert.equal(mid.status, 200, 'handshakes keep working with the consistent previous pair');
    assert.ok(sameSerial(mid.serverSerial, good.serialNumber));

    await writeFile(join(d, 'svid_key.pem'), next.keyPem);
    await reload();
    await waitFor(() => m.stats().identity.serialNumber === next.serialNumber, 5_000, 'the completed rotation');
    assert.equal(m.stats().identity.state, 'ready');
    const after = await probe();
    assert.equal(after.status, 200);
    assert.ok(sameSerial(after.serverSerial, next.serialNumber), 'new handshakes use the new SVID');
  });

  test('case 27: an SVID from another CA is rejected; peers keep trusting the served one', async () => {
    const rogue = await createDevCa({ trustDomain: TD });
    const bad = await rogue.issue({ spiffeId: idOf('payments') });
    const before = m.stats().identity.serialNumber;
    await writeSvidDir(d, { certChainPem: bad.certChainPem, keyPem: bad.keyPem, bundlePem: ca.bundlePem });
    await reload();
    assert.equal(m.stats().identity.state, 'stale');
    assert.equal(m.stats().identity.serialNumber, before);
    assert.equal((await probe()).status, 200);
  });
});

describe('case 29: SVID expired and no renewal → fail closed both ways', () => {
  test('inbound: new connections refused (app never runs); outbound: calls refused with IDENTITY_UNAVAILABLE', async (t) => {
    const clock = new VirtualClock(Date.now());
    const source = new ManualSource(clock);
    const svid = source.set(filesOf(await ca.issue({ spiffeId: idOf('payments'), ttlMs: 60_000 })));
    const server = await mesh({ service: 'payments', identity: { source } }, { clock });
    const srv = await serve(server);
    t.after(() => srv.close());

    // A peer the expired workload would call.
    const peerMesh = await mesh({ service: 'ledger', identity: { ca } });
    const peer = await serve(peerMesh);
    t.after(() => peer.close());
    const caller = await mesh(
      { service: 'payments', identity: { source }, outbound: { services: { ledger: { endpoints: [`${LOOPBACK}:${peer.port}`] } } } },
      { clock },
    );

    const c = await craftLeaf(ca, { uris: [idOf('orders')] });
    const ok = await rawTlsRequest({ port: srv.port, cert: c.certChainPem, key: c.keyPem });
    assert.equal(ok.status, 200);
    assert.equal(server.stats().identity.state, 'ready');

    clock.set(svid.notAfter + 1_000);
    assert.equal(server.stats().identity.state, 'expired');

    // Inbound: a fresh connection is closed before any request reaches the app.
    const calls = srv.state.calls;
    const refused = await rawTlsRequest({ port: srv.port, cert: c.certChainPem, key: c.keyPem });
    assert.equal(refused.status, undefined, refused.response.slice(0, 100));
    assert.equal(srv.state.calls, calls);
    await waitFor(() => /expired/.test(server.stats().inbound.handshakes.lastRejection ?? ''), 3_000, 'the rejection reason');
    assert.match(server.stats().inbound.handshakes.lastRejection!, /Refusing to serve or call/);

    // Outbound: no call goes out with the expired SVID.
    const peerCalls = peer.state.calls;
    const err = await caller.fetch('http://ledger/entries').then(
      (r) => assert.fail(`called with an expired SVID: ${r.status}`),
      (e: unknown) => e,
    );
    const unavailable = findCode(err, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.ok(unavailable, messages(err));
    assert.match(unavailable.message, /expired .* no renewal/);
    assert.equal(peer.state.calls, peerCalls);

    // A renewal restores service on new connections, both ways.
    // Valid in real time (the peer's clock) and in the virtual time of this workload.
    source.set(filesOf(await ca.issue({ spiffeId: idOf('payments'), notBefore: Date.now() - 10_000, ttlMs: 3_600_000 })));
    assert.equal(server.stats().identity.state, 'ready');
    const back = await rawTlsRequest({ port: srv.port, cert: c.certChainPem, key: c.keyPem });
    assert.equal(back.status, 200);
    const res = await caller.fetch('http://ledger/entries');
    assert.equal(res.status, 200);
    await res.text();
  });

  test('a short-lived real SVID that is never renewed: refused once it expires (real time)', async (t) => {
    const source = new ManualSource();
    const svid = source.set(filesOf(await ca.issue({ spiffeId: idOf('payments'), notBefore: Date.now() - 10_000, ttlMs: 1_500 })));
    const server = await mesh({ service: 'payments', identity: { source } });
    const srv = await serve(server);
    t.after(() => srv.close());
    const c = await craftLeaf(ca, { uris: [idOf('orders')] });
    await waitFor(() => Date.now() > svid.notAfter + 50, 5_000, 'expiry');
    const calls = srv.state.calls;
    const r = await rawTlsRequest({ port: srv.port, cert: c.certChainPem, key: c.keyPem });
    assert.equal(r.status, undefined);
    assert.equal(srv.state.calls, calls);
    assert.equal(server.stats().identity.state, 'expired');
  });
});
