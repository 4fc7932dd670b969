// SECURITY-CASES 38 (and 6, 26, 27 through the Workload API): a Workload API server (the Python,
// C-core one) sends hostile or broken X509SVIDResponses after a good start. Each is refused whole:
// the last good SVID and bundles stay in use, the state is `stale` with the reason, and the stream
// goes on (the next good message is taken on the same call). Before any good message, the same
// messages leave the source without an SVID (fail closed). And the source dials nothing but the
// configured address: no HTTP proxy from the environment, no name lookups.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { systemClock } from '../../src/clock.js';
import { type DevCa, type IssuedSvid, createDevCa } from '../../src/identity/dev-ca.js';
import { encodeX509SVIDResponse } from '../../src/proto/workload.js';
import { type WorkloadApiSource, createWorkloadApiSource } from '../../src/sources/workload-api.js';
import { craftLeaf } from '../helpers/certs.js';
import { LOOPBACK, waitFor } from '../helpers/net.js';
import { type WireSvid, type WorkloadServer, WorkloadServer as Server, derOf, federated, wireSvid } from '../helpers/workload-server.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/ns/default/sa/orders`;
let ca: DevCa;
/** Another CA that calls itself example.org: its leaves must not verify against the real root. */
let impostor: DevCa;
let partner: DevCa;
let layered: DevCa;
let good: IssuedSvid;
let server: WorkloadServer;
let source: WorkloadApiSource;
const errors: string[] = [];

before(async () => {
  [ca, impostor, partner, layered] = await Promise.all([
    createDevCa({ trustDomain: TD }),
    createDevCa({ trustDomain: TD }),
    createDevCa({ trustDomain: 'partner.org' }),
    createDevCa({ trustDomain: TD, intermediates: 1 }),
  ]);
  good = await ca.issue({ spiffeId: ID });
  server = await Server.start();
  await server.state([wireSvid(good)], federated(partner));
  source = createWorkloadApiSource({ address: server.address, clock: systemClock, expect: { spiffeId: ID }, onError: (e) => errors.push(e.message) });
  await source.ready(5_000);
});
after(async () => {
  await source.close();
  await server.stop();
});

/** Sends a bad state and checks it is refused with `why`, the last good one kept, then restores a good state on the same stream. */
async function refused(send: () => Promise<void>, why: RegExp): Promise<void> {
  const before = errors.length;
  const serial = source.status().serialNumber;
  const bundles = [...source.getBundles().keys()].sort();
  await send();
  await waitFor(() => errors.length > before, 5_000, `a refusal matching ${why}`);
  const st = source.status();
  assert.equal(st.state, 'stale');
  assert.match(st.lastError!, why);
  assert.match(st.lastError!, /sent an X509SVIDResponse that was refused \(the previous SVID stays in use\)|is for .* but this workload's SPIFFE ID/);
  assert.equal(st.serialNumber, serial, 'the last good SVID stays');
  assert.equal(source.getX509Svid().chain[0]!.serialNumber, serial);
  assert.deepEqual([...source.getBundles().keys()].sort(), bundles, 'and its bundles');
  const fresh = await ca.issue({ spiffeId: ID });
  await server.state([wireSvid(fresh)], federated(partner));
  await waitFor(() => source.status().serialNumber === fresh.serialNumber, 5_000, 'the next good message');
  assert.equal(source.status().state, 'ready');
  assert.equal(server.calls.length, 1, 'all on the one stream');
}

const state = (svids: WireSvid[], fed: Record<string, Buffer> = federated(partner)) => () => server.state(svids, fed);

test('an SVID of another trust domain than its bundle proves: refused (a partner CA never vouches for example.org)', async () => {
  // The leaf names example.org but is signed by partner.org's CA, whose roots arrive as a federated bundle.
  const leaf = await craftLeaf(partner, { uris: [ID] });
  await refused(state([wireSvid({ spiffeId: ID, certChainPem: leaf.certChainPem, keyPem: leaf.keyPem, bundlePem: ca.bundlePem })]), /svids\[0\]: .*(verif|chain|signature)/i);
  // A partner.org leaf with example.org's roots as its "own" bundle: verified against them as partner.org's roots, and fails.
  const theirs = await partner.issue({ spiffeId: 'spiffe://partner.org/ns/default/sa/orders' });
  await refused(state([wireSvid(theirs, { bundlePem: ca.bundlePem })], {}), /svids\[0\]: /);
});

test('an SVID whose key does not match its certificate: refused', async () => {
  const a = await ca.issue({ spiffeId: ID });
  const b = await ca.issue({ spiffeId: ID });
  await refused(state([wireSvid(a, { keyPem: b.keyPem })]), /svids\[0\]: the private key does not belong to the leaf certificate/);
});

test('a chain that does not verify: a leaf from another CA of the same name, an intermediate left out, an expired leaf', async () => {
  const fake = await impostor.issue({ spiffeId: ID });
  await refused(state([wireSvid(fake, { bundlePem: ca.bundlePem })]), /svids\[0\]: /);
  const deep = await layered.issue({ spiffeId: ID });
  const leafOnly = deep.certChainPem.slice(0, deep.certChainPem.indexOf('-----END CERTIFICATE-----') + 26);
  await refused(state([wireSvid({ ...deep, certChainPem: leafOnly })]), /svids\[0\]: /);
  const old = await craftLeaf(ca, { uris: [ID], notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 1_000 });
  await refused(state([wireSvid({ spiffeId: ID, certChainPem: old.certChainPem, keyPem: old.keyPem, bundlePem: ca.bundlePem })]), /svids\[0\]: .*expired|not valid/i);
  // The same layered SVID with its intermediate verifies (the check is not just "one certificate").
  await server.state([wireSvid(deep)]);
  await waitFor(() => source.status().serialNumber === deep.serialNumber, 5_000, 'the layered SVID');
  await server.state([wireSvid(good)], federated(partner));
  await waitFor(() => source.status().serialNumber === good.serialNumber, 5_000, 'back');
});

test('federated bundles with a bad key or bad roots reject the whole message', async () => {
  const root = derOf(partner.bundlePem);
  for (const [key, why] of [
    ['partner.org', /federated_bundles\["partner\.org"\]/],
    ['spiffe://partner.org/ns/x', /federated_bundles\["spiffe:\/\/partner\.org\/ns\/x"\]: the key must be a trust domain ID/],
    ['spiffe://Partner.org', /federated_bundles\["spiffe:\/\/Partner\.org"\]/],
    ['', /federated_bundles\[""\]/],
    ['https://partner.org', /federated_bundles\["https:\/\/partner\.org"\]/],
  ] as const) {
    await refused(state([wireSvid(good)], { [key]: root }), why);
  }
  await refused(state([wireSvid(good)], { 'spiffe://partner.org': Buffer.from('not DER') }), /federated_bundles\["spiffe:\/\/partner\.org"\]: the DER certificates are malformed/);
  await refused(state([wireSvid(good)], { 'spiffe://partner.org': Buffer.alloc(0) }), /federated_bundles\["spiffe:\/\/partner\.org"\]: .*empty/);
  await refused(state([wireSvid(good)], { 'spiffe://partner.org': Buffer.concat([root, Buffer.from([0x30])]) }), /malformed at byte/);
  // The SVID's own trust domain with other roots than its bundle field: refused, not guessed.
  await refused(state([wireSvid(good)], { [`spiffe://${TD}`]: derOf(impostor.bundlePem) }), /names the SVID's own trust domain with other roots/);
});

test('garbage: bytes that are no X509SVIDResponse, an empty message, empty or garbled fields', async () => {
  await refused(() => server.raw(Buffer.from('garbage, not protobuf')), /the bytes are not an X509SVIDResponse/);
  const whole = Buffer.from(encodeX509SVIDResponse({ svids: [{ ...wireSvid(good), spiffeId: ID, hint: '' }] }));
  await refused(() => server.raw(whole.subarray(0, whole.length - 7)), /the bytes are not an X509SVIDResponse/);
  await refused(() => server.raw(Buffer.alloc(0)), /the message holds no SVID/);
  await refused(state([{ ...wireSvid(good), x509Svid: Buffer.from('junk') }]), /svids\[0\]\.x509_svid: the DER certificates are malformed/);
  await refused(state([{ ...wireSvid(good), x509Svid: Buffer.alloc(0) }]), /svids\[0\]\.x509_svid is empty/);
  await refused(state([{ ...wireSvid(good), x509SvidKey: Buffer.from('junk') }]), /svids\[0\]\.x509_svid_key is not an unencrypted PKCS#8 DER key/);
  await refused(state([{ ...wireSvid(good), bundle: Buffer.alloc(0) }]), /svids\[0\]\.bundle is empty/);
  await refused(state([{ ...wireSvid(good), spiffeId: 'spiffe://example.org/ns/default/sa/admin' }]), /svids\[0\]\.spiffe_id says spiffe:\/\/example\.org\/ns\/default\/sa\/admin but its certificate is for/);
});

test('a hostile server picks the sizes: hundreds of SVIDs, huge hints and keys, messages past 4 MiB; the messages stay short', async () => {
  const many = Array.from({ length: 300 }, (_, i) => ({ ...wireSvid(good), hint: `h${i}`.padEnd(1000, 'x') }));
  const big = await Server.start();
  try {
    await big.state(many);
    const src = createWorkloadApiSource({ address: big.address, clock: systemClock, hint: 'wanted' });
    try {
      await waitFor(() => src.status().lastError !== undefined, 10_000, 'the refusal');
      const msg = src.status().lastError!;
      assert.match(msg, /no SVID has the hint "wanted"; the Workload API offered "h0x+…" \(spiffe:\/\/example\.org\/ns\/default\/sa\/orders\),.* and 290 more\./);
      assert.ok(msg.length < 3_000, `${msg.length} characters`);
      // Past grpc-js's 4 MiB receive limit the stream ends (RESOURCE_EXHAUSTED) and is retried: no unbounded read.
      await big.state(Array.from({ length: 3000 }, () => ({ ...wireSvid(good), hint: 'x'.repeat(2000) })));
      await waitFor(() => /RESOURCE_EXHAUSTED \(8\): Received message larger than max/.test(src.status().lastError ?? ''), 10_000, 'the size refusal');
    } finally {
      await src.close();
    }
  } finally {
    await big.stop();
  }
  await refused(state([wireSvid(good)], { ['spiffe://' + 'b'.repeat(100_000)]: derOf(partner.bundlePem) }), /federated_bundles\["spiffe:\/\/b+…"\]/);
  assert.ok(source.status().lastError === undefined);
});

test('a server\'s words reach messages and logs with control characters escaped: status details, federated keys, SPIFFE IDs', async (t) => {
  const evil = 'no identity\n\u001b[31mFORGED 2030-01-01 INFO identity ok\u009b0m';
  const clean = (msg: string) => {
    assert.doesNotMatch(msg, /[\u0000-\u001f\u007f-\u009f]/, JSON.stringify(msg));
    assert.match(msg, /(\\n|\\u000a)\\u001b\[31mFORGED/, 'the characters are shown, escaped');
  };
  const s2 = await Server.start();
  t.after(() => s2.stop());
  await s2.fail('PERMISSION_DENIED', evil, -1);
  const seen: string[] = [];
  const src = createWorkloadApiSource({ address: s2.address, clock: systemClock, onError: (e) => seen.push(e.message) });
  t.after(() => src.close());
  await waitFor(() => seen.length > 0, 5_000, 'the refusal');
  assert.match(seen[0]!, /answered PERMISSION_DENIED \(7\): no identity\\u000a/);
  clean(seen[0]!);
  clean(src.status().lastError!);
  await refused(state([wireSvid(good)], { [`spiffe://${evil}`]: derOf(partner.bundlePem) }), /federated_bundles\["spiffe:\/\/no identity\\n\\u001b/);
  clean(errors.at(-1)!);
  await refused(state([{ ...wireSvid(good), spiffeId: `spiffe://${TD}/${evil}` }]), /svids\[0\]\.spiffe_id says spiffe:\/\/example\.org\/no identity\\u000a/);
  clean(errors.at(-1)!);
});

test('an SVID for another workload is refused on rotation (the mesh pins its SPIFFE ID)', async () => {
  const admin = await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/admin` });
  await refused(state([wireSvid(admin)]), /is for spiffe:\/\/example\.org\/ns\/default\/sa\/admin, but this workload's SPIFFE ID is spiffe:\/\/example\.org\/ns\/default\/sa\/orders.*set spiffeId/);
});

test('before any good message, hostile messages leave the source without an SVID: it fails closed', async (t) => {
  const s2 = await Server.start();
  t.after(() => s2.stop());
  const a = await ca.issue({ spiffeId: ID });
  const b = await ca.issue({ spiffeId: ID });
  await s2.state([wireSvid(a, { keyPem: b.keyPem })]);
  const src = createWorkloadApiSource({ address: s2.address, clock: systemClock });
  t.after(() => src.close());
  await assert.rejects(src.ready(1_000), /after 1000 ms: the SPIFFE Workload API at .* sent an X509SVIDResponse that was refused: svids\[0\]: the private key does not belong/);
  assert.equal(src.status().state, 'starting');
  assert.throws(() => src.getX509Svid(), /no X\.509-SVID yet from the SPIFFE Workload API/);
});

test('the source dials only the configured address: not an HTTP proxy from the environment, not another socket', async (t) => {
  const proxyHits: Socket[] = [];
  const proxy = createServer((s) => {
    proxyHits.push(s);
    s.destroy();
  });
  await new Promise<void>((r) => proxy.listen(0, LOOPBACK, r));
  t.after(() => new Promise<void>((r) => proxy.close(() => r())));
  const proxyUrl = `http://${LOOPBACK}:${(proxy.address() as { port: number }).port}`;
  const saved = { grpc_proxy: process.env.grpc_proxy, https_proxy: process.env.https_proxy, http_proxy: process.env.http_proxy, no_grpc_proxy: process.env.no_grpc_proxy, no_proxy: process.env.no_proxy };
  Object.assign(process.env, { grpc_proxy: proxyUrl, https_proxy: proxyUrl, http_proxy: proxyUrl });
  delete process.env.no_grpc_proxy;
  delete process.env.no_proxy;
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const tcp = await Server.start({ tcp: true });
  t.after(() => tcp.stop());
  await tcp.state([wireSvid(good)]);
  const src = createWorkloadApiSource({ address: tcp.address, clock: systemClock });
  t.after(() => src.close());
  await src.ready(5_000);
  assert.equal(src.status().serialNumber, good.serialNumber);
  await tcp.waitForCalls(1); // the server's record comes on another pipe than its message
  assert.equal(tcp.calls.length, 1);
  assert.equal(proxyHits.length, 0, 'nothing went to the proxy of the environment');
  // The main server of this file, on its Unix socket, saw one call in all: the tcp source dialled nothing else.
  assert.equal(server.calls.length, 1);
});
