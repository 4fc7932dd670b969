// The Istio CA source (sources/istio-ca.ts over issuers/istio-ca.ts) against a test CA on the second
// stack (test/helpers/py/istio_ca_server.py: Python gRPC C-core, python3-cryptography), which
// behaves like istiod: it authenticates `authorization: Bearer <token>` and `clusterid`, verifies
// the CSR, and issues the TOKEN's identity for validity_duration seconds, leaf first and root last.
import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pemToCertDers } from '../../src/identity/pem.js';
import { istioCaIssuer } from '../../src/sources/issuers/istio-ca.js';
import { type IstioCaSourceOptions, IstioCaSource, createIstioCaSource } from '../../src/sources/istio-ca.js';
import { createCsr, generateKeyPair } from '../../src/identity/keys.js';
import { x509 } from '../helpers/x509.js';
import { type IstioCaServer, startIstioCa } from '../helpers/istio-ca-server.js';
import { socketsTo } from '../helpers/net.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const ADMIN = `spiffe://${TD}/ns/default/sa/admin`;
type T = Parameters<typeof startIstioCa>[0];

async function tokenFile(ca: IstioCaServer, value: string, name = 'istio-token'): Promise<string> {
  const file = join(ca.dir, name);
  await writeFile(file, value);
  return file;
}

/** A source against `ca`, closed when the test ends; errors collected. */
function sourceOf(t: T, ca: IstioCaServer, o: Partial<IstioCaSourceOptions> & Pick<IstioCaSourceOptions, 'token'>) {
  const errors: string[] = [];
  const source = new IstioCaSource({ address: ca.address, root: ca.rootFile, trustDomain: TD, spiffeId: ORDERS, ttlMs: 3_600_000, random: () => 0.5, onError: (e) => errors.push(e.message), ...o });
  t.after(() => source.close());
  return { source, errors };
}

describe('issuance', () => {
  test('CreateCertificate with the bearer token, ClusterID, the CSR and validity_duration; the leaf is the token’s identity, the bundle the CA’s root', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'tok-orders': ORDERS }, clusterId: 'Kubernetes' });
    const { source, errors } = sourceOf(t, ca, { token: { file: await tokenFile(ca, 'tok-orders\n') }, clusterId: 'Kubernetes', ttlMs: 7_200_000 });
    await source.start();
    assert.deepEqual(errors, []);
    const st = source.status();
    assert.equal(st.kind, 'istio-ca');
    assert.equal(st.state, 'ready');
    const [call] = await ca.waitForCalls(1); // the server's record travels by its stdout, the answer by gRPC: either may come first
    assert.equal(call!.authorization, 'Bearer tok-orders', 'the token, trimmed, after "Bearer "');
    assert.equal(call!.clusterid, 'Kubernetes');
    assert.equal(call!.validity, 7200, 'validity_duration in seconds');
    assert.equal(call!.csrValid, true, 'the CSR signature verified with python3-cryptography');
    assert.deepEqual(call!.csrSans, [ORDERS], 'the CSR names the workload');
    const svid = source.getX509Svid();
    assert.equal(svid.spiffeId.id, ORDERS);
    assert.equal(svid.chain[0]!.serialNumber.replace(/^0+/, ''), call!.serial);
    assert.equal(svid.notAfter - svid.notBefore, 7_200_000, 'the CA honoured the requested lifetime');
    const rootDer = pemToCertDers((await import('node:fs')).readFileSync(ca.rootFile, 'utf8'))[0]!;
    assert.ok(source.getBundles().get(TD)!.roots.some((r) => Buffer.from(r.der).equals(rootDer)), 'the bundle holds the CA root');
  });

  test('a chain with an intermediate (leaf, intermediate, root) is served leaf and intermediate, the root in the bundle', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS }, intermediate: true });
    const { source, errors } = sourceOf(t, ca, { token: 'tok' });
    await source.start();
    assert.deepEqual(errors, []);
    const svid = source.getX509Svid();
    assert.ok(svid.chain.length >= 2, 'leaf and intermediate');
    assert.equal(svid.chain[1]!.isCa, true);
    assert.ok(source.getBundles().get(TD)!.roots.length >= 1);
  });

  test('no ClusterID header when clusterId is not set; the default lifetime asked is Istio’s 24 h', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const s = await createIstioCaSource({ address: ca.address, root: ca.rootFile, token: 'tok', trustDomain: TD, spiffeId: ORDERS });
    t.after(() => s.close());
    assert.equal(s.status().state, 'ready');
    await ca.waitForCalls(1);
    assert.equal(ca.calls[0]!.clusterid, null);
    assert.equal(ca.calls[0]!.validity, 86_400);
  });

  test('the issuer alone, against an address, a root and a token (what a bench needs), names the CA by its address', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const issuer = istioCaIssuer({ address: `127.0.0.1:${ca.port}`, serverName: 'istiod.istio-system.svc', root: ca.rootFile, token: 'tok', trustDomain: TD });
    t.after(() => issuer.close());
    assert.equal(issuer.description, `Istio CA at 127.0.0.1:${ca.port}`);
    const keys = await generateKeyPair();
    for (let i = 0; i < 3; i++) {
      const issued = await issuer.issue({ csrPem: await createCsr(keys, ORDERS), spiffeId: ORDERS, ttlMs: 60_000 });
      const leaf = new x509.X509Certificate(new Uint8Array(pemToCertDers(issued.certChainPem)[0]!));
      assert.equal(leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items[0]!.value, ORDERS);
    }
    await ca.waitForCalls(3);
    assert.equal(ca.calls.length, 3);
  });
});

describe('the token', () => {
  test('is read again for every call: a token file rotated between calls sends the new token', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'tok-1': ORDERS, 'tok-2': ORDERS } });
    const file = await tokenFile(ca, 'tok-1');
    const { source, errors } = sourceOf(t, ca, { token: { file } });
    await source.start();
    await writeFile(file, 'tok-2');
    await source.rotate();
    assert.deepEqual(errors, []);
    await ca.waitForCalls(2);
    assert.deepEqual(ca.calls.map((c) => c.token), ['tok-1', 'tok-2']);
    assert.equal(source.status().rotations, 1);
  });

  test('a missing or empty token file: a clear error naming the path, and nothing is sent to the CA', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const missing = join(ca.dir, 'no-such-token');
    const a = sourceOf(t, ca, { token: { file: missing } });
    await a.source.start();
    assert.match(a.errors[0]!, new RegExp(`cannot read the control-plane token file ${missing}: it does not exist`));
    const empty = await tokenFile(ca, '  \n', 'empty');
    const b = sourceOf(t, ca, { token: { file: empty } });
    await b.source.start();
    assert.match(b.errors[0]!, new RegExp(`the token file ${empty} is empty`));
    const spaced = await tokenFile(ca, 'two words', 'spaced');
    const c = sourceOf(t, ca, { token: { file: spaced } });
    await c.source.start();
    assert.match(c.errors[0]!, /holds characters a bearer token cannot have/);
    assert.ok(!c.errors[0]!.includes('two words'), 'the token itself is never in a message');
    for (const s of [a, b, c]) assert.equal(s.source.status().state, 'starting');
    assert.equal(ca.calls.length, 0);
  });

  test('a wrong token: UNAUTHENTICATED, the message says the token was refused and where it was read from; the right one later is taken', async (t) => {
    const ca = await startIstioCa(t, { tokens: { good: ORDERS } });
    const file = await tokenFile(ca, 'stolen');
    const { source, errors } = sourceOf(t, ca, { token: { file } });
    await source.start();
    await ca.waitForCalls(1);
    assert.equal(ca.calls[0]!.code, 'UNAUTHENTICATED');
    assert.match(errors[0]!, new RegExp(`Istio CA at ${ca.address} refused the token file ${file} \\(UNAUTHENTICATED: request authenticate failure\\)`));
    assert.ok(!errors[0]!.includes('stolen'));
    assert.equal(source.status().state, 'starting');
    assert.match(source.status().lastError!, /UNAUTHENTICATED/);
    assert.throws(() => source.getX509Svid(), /no X\.509-SVID yet from the Istio CA at .*refused the token file/);
    await writeFile(file, 'good');
    await source.rotate();
    assert.equal(source.status().state, 'ready');
  });

  test('a ClusterID the CA does not know is refused as istiod does (UNAUTHENTICATED), and the message names the cluster', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS }, clusterId: 'Kubernetes' });
    const { source, errors } = sourceOf(t, ca, { token: 'tok', clusterId: 'other-cluster' });
    await source.start();
    await ca.waitForCalls(1);
    assert.equal(ca.calls[0]!.clusterid, 'other-cluster');
    assert.match(errors[0]!, /refused the token given in controlPlane\.token .*for cluster other-cluster/);
  });

  test('a token for another workload: istiod issues the token’s identity; refused with a message that says so, nothing served', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'admin-token': ADMIN } });
    const file = await tokenFile(ca, 'admin-token');
    const { source, errors } = sourceOf(t, ca, { token: { file } });
    await source.start();
    await ca.waitForCalls(1);
    assert.equal(ca.calls[0]!.issued, ADMIN, 'the CA issued the token’s identity, not the CSR’s');
    assert.deepEqual(ca.calls[0]!.csrSans, [ORDERS]);
    assert.match(errors[0]!, new RegExp(`issued a certificate for ${ADMIN}, not for ${ORDERS}: the token file ${file} belongs to another workload`));
    assert.equal(source.status().state, 'starting');
  });
});

test('a lifetime that is not 1 s or more (it was sent as validity_duration 0 or -5, or failed every call as a serialization error), or an address that is not host:port (a plain Error), is a ConfigError when the source is made', async (t) => {
  const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
  for (const ttlMs of [Infinity, NaN, -5_000, 0, 999, 1e30]) {
    assert.throws(
      () => new IstioCaSource({ address: ca.address, root: ca.rootFile, token: 'tok', trustDomain: TD, spiffeId: ORDERS, ttlMs }),
      (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CONFIG_INVALID' && /ttlMs must be a lifetime in ms from 1000/.test(e.message),
      String(ttlMs),
    );
  }
  for (const address of ['istiod.istio-system.svc', 'a:b:1', '']) {
    assert.throws(
      () => istioCaIssuer({ address, root: ca.rootFile, token: 'tok', trustDomain: TD }),
      (e: Error & { code?: string }) => e.code === 'ERR_SIDECARLESS_CONFIG_INVALID' && /must be host:port/.test(e.message),
      address,
    );
  }
  // An issuer used on its own refuses the same lifetimes on the call, before anything is sent.
  const issuer = istioCaIssuer({ address: ca.address, root: ca.rootFile, token: 'tok', trustDomain: TD });
  t.after(() => issuer.close());
  const csrPem = await createCsr(await generateKeyPair(), ORDERS);
  await assert.rejects(issuer.issue({ csrPem, spiffeId: ORDERS, ttlMs: 0 }), /ttlMs must be a lifetime in ms from 1000/);
  const s = new IstioCaSource({ address: ca.address, root: ca.rootFile, token: 'tok', trustDomain: TD, spiffeId: ORDERS, ttlMs: 1_500 });
  t.after(() => s.close());
  await s.start();
  assert.equal(s.status().state, 'ready');
  await ca.waitForCalls(1);
  assert.deepEqual(ca.calls.map((c) => c.validity), [2], 'rounded up to whole seconds; nothing sent for the refused ones');
});

describe('renewal and the root', () => {
  test('renewed before expiry at about half the lifetime, with a fresh key; the old SVID is served until then', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const { source, errors } = sourceOf(t, ca, { token: 'tok', ttlMs: 4_000 });
    await source.start();
    const first = source.getX509Svid();
    const renewed = new Promise<void>((r) => source.onUpdate(r));
    await renewed;
    const second = source.getX509Svid();
    assert.deepEqual(errors, []);
    assert.notEqual(second.chain[0]!.serialNumber, first.chain[0]!.serialNumber);
    assert.notEqual(second.keyPem, first.keyPem);
    const [c1, c2] = await ca.waitForCalls(2);
    assert.equal(c1!.validity, 4);
    const at = (c2!.t - first.notBefore) / (first.notAfter - first.notBefore);
    assert.ok(at >= 0.4 && at < 0.9, `renewed at ${at.toFixed(2)} of the lifetime, before expiry`);
  });

  test('the root file is read again: a pinned root replaced by the right one is picked up by the next call (re-dial)', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const pinned = join(ca.dir, 'pinned-root.pem');
    await copyFile(ca.otherRootFile, pinned);
    const { source, errors } = sourceOf(t, ca, { token: 'tok', root: pinned });
    await source.start();
    assert.match(errors[0]!, new RegExp(`cannot reach the Istio CA at ${ca.address} \\(TLS pinned to ${pinned}\\) \\(UNAVAILABLE: .*certificate`));
    assert.equal(ca.calls.length, 0, 'nothing reached the CA over the unverified connection');
    await copyFile(ca.rootFile, pinned);
    await source.rotate();
    assert.equal(source.status().state, 'ready');
    await ca.waitForCalls(1);
    assert.equal(ca.calls.length, 1);
  });

  test('a missing or unparsable root file: a clear error naming it, nothing sent', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const missing = join(ca.dir, 'none.pem');
    const a = sourceOf(t, ca, { token: 'tok', root: missing });
    await a.source.start();
    assert.match(a.errors[0]!, new RegExp(`cannot read the control-plane root ${missing}: it does not exist`));
    const notPem = join(ca.dir, 'not.pem');
    await writeFile(notPem, 'hello\n');
    const b = sourceOf(t, ca, { token: 'tok', root: notPem });
    await b.source.start();
    assert.match(b.errors[0]!, new RegExp(`the control-plane root ${notPem} holds no PEM CERTIFICATE block`));
    assert.equal(ca.calls.length, 0);
  });

  test('a slow CA: the call’s deadline ends it with a message, the source retries', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    await ca.fault(null, 1_500);
    const { source, errors } = sourceOf(t, ca, { token: 'tok', callTimeoutMs: 300 });
    await source.start();
    assert.match(errors[0]!, new RegExp(`Istio CA at ${ca.address} \\(TLS pinned to .*\\) did not answer within 300 ms \\(DEADLINE_EXCEEDED\\)`));
    assert.ok(source.rotateAt > Date.now(), 'a retry is scheduled');
  });

  test('close() cancels a call in flight and closes the channel: no connection of ours stays open', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const sockets = socketsTo(t, ca.port);
    const { source, errors } = sourceOf(t, ca, { token: 'tok' });
    await source.start();
    const toCa = () => sockets;
    assert.ok(toCa().length > 0 && toCa().some((s) => !s.destroyed), 'the channel holds a connection to the CA');
    await ca.fault(null, 3_000);
    const pending = source.rotate();
    await ca.waitForReceived(2);
    const t0 = Date.now();
    await source.close();
    await pending;
    assert.ok(Date.now() - t0 < 1_000, 'close() did not wait for the slow answer');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(toCa().map((s) => s.destroyed), toCa().map(() => true), 'every connection to the CA is closed');
    assert.deepEqual(errors, [], 'a call cancelled by close() is not reported');
  });
});
