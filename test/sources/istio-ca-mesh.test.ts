// createMesh({ service, controlPlane }) without `identity`: the SVID comes from the control plane's
// Istio CA (DESIGN.md), here the test CA on the second stack. Real meshes serve and fetch over mTLS
// with SVIDs that CA issued; options and environment variables; precedence; startTimeout; close.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { VirtualClock } from '../../src/clock.js';
import { resolveConfig } from '../../src/config.js';
import { ConfigError, createDevCa, createMesh, peerOf, type Mesh } from '../../src/index.js';
import { filesOf, writeSvidDir } from '../helpers/certs.js';
import { type IstioCaServer, startIstioCa } from '../helpers/istio-ca-server.js';
import { closeServer, listen, socketsTo } from '../helpers/net.js';
import { tempDirFor } from '../helpers/tmp.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;
type T = Parameters<typeof startIstioCa>[0];

function recorder() {
  const warnings: string[] = [];
  return { warnings, logger: { info() {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) } };
}

async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function token(ca: IstioCaServer, value: string, name: string): Promise<string> {
  const file = join(ca.dir, name);
  await writeFile(file, value);
  return file;
}

async function meshOf(t: T, opts: Parameters<typeof createMesh>[0], internals?: Parameters<typeof createMesh>[1]): Promise<Mesh> {
  const m = await createMesh({ logger: recorder().logger, ...opts }, internals);
  t.after(() => m.close());
  return m;
}

describe('identity from the control plane’s CA', () => {
  test('two meshes get their SVIDs from the CA by their tokens and talk over mTLS: the server sees the caller’s issued identity', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'tok-orders': ORDERS, 'tok-payments': PAYMENTS }, clusterId: 'Kubernetes' });
    const cp = (file: string) => ({ address: ca.address, root: ca.rootFile, token: { file }, clusterId: 'Kubernetes' });
    const payments = await meshOf(t, { service: 'payments', namespace: 'shop', controlPlane: cp(await token(ca, 'tok-payments', 'payments-token')) });
    const server = payments.createServer((req, res) => res.end(JSON.stringify({ caller: peerOf(req)?.spiffeId })));
    t.after(() => closeServer(server));
    const port = await listen(server);
    const orders = await meshOf(t, {
      service: 'orders',
      controlPlane: cp(await token(ca, 'tok-orders', 'orders-token')),
      outbound: { services: { payments: { namespace: 'shop', endpoints: [`127.0.0.1:${port}`] } } },
    });
    const res = await orders.fetch('http://payments/charge');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { caller: ORDERS });
    const st = orders.stats().identity;
    assert.equal(st.kind, 'istio-ca');
    assert.equal(st.state, 'ready');
    assert.equal(st.spiffeId, ORDERS);
    await ca.waitForCalls(2); // the server's record travels by its stdout, the answer by gRPC: either may come first
    assert.deepEqual(ca.calls.map((c) => [c.issued, c.clusterid, c.validity]), [[PAYMENTS, 'Kubernetes', 86_400], [ORDERS, 'Kubernetes', 86_400]]);
    assert.equal(st.serialNumber?.replace(/^0+/, ''), ca.calls[1]!.serial);
  });

  test('from the environment: SIDECARLESS_CONTROL_PLANE, _ROOT and _TOKEN_FILE', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const env = { SIDECARLESS_CONTROL_PLANE: ca.address, SIDECARLESS_CONTROL_PLANE_ROOT: ca.rootFile, SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: await token(ca, 'tok', 't') };
    const m = await meshOf(t, { service: 'orders' }, { env });
    assert.equal(m.stats().identity.kind, 'istio-ca');
    assert.equal((await ca.waitForCalls(1))[0]!.token, 'tok');
  });

  test('precedence: an explicit identity, then SIDECARLESS_IDENTITY_DIR, win over the control plane’s CA (which is never called)', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const controlPlane = { address: ca.address, root: ca.rootFile, token: 'tok' };
    const devCa = await createDevCa({ trustDomain: TD });
    const a = await meshOf(t, { service: 'orders', controlPlane, identity: { ca: devCa } });
    assert.equal(a.stats().identity.kind, 'dev-ca');
    const dir = tempDirFor(t);
    await writeSvidDir(dir, filesOf(await devCa.issue({ spiffeId: ORDERS })));
    const b = await meshOf(t, { service: 'orders', controlPlane }, { env: { SIDECARLESS_IDENTITY_DIR: dir } });
    assert.equal(b.stats().identity.kind, 'dir');
    assert.equal(ca.calls.length, 0);
    assert.equal(ca.received, 0);
  });

  test('a refused token: createMesh rejects with IdentityUnavailableError after startTimeout, saying the token was refused and where it was read from', async (t) => {
    const ca = await startIstioCa(t, { tokens: { good: ORDERS } });
    const file = await token(ca, 'wrong', 'token');
    const clock = new VirtualClock(Date.now());
    const { warnings, logger } = recorder();
    let settled = false;
    const p = createMesh({ service: 'orders', logger, controlPlane: { address: ca.address, root: ca.rootFile, token: { file } } }, { clock });
    const outcome = p.then(() => assert.fail('createMesh resolved'), (e: unknown) => e).finally(() => (settled = true));
    await until(() => warnings.some((w) => /no identity yet/.test(w)));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, 'createMesh waits for startTimeout (the token may be being rotated)');
    await clock.advanceAsync(14_999);
    assert.equal(settled, false);
    await clock.advanceAsync(1);
    await assert.rejects(Promise.reject(await outcome), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match(e.message, new RegExp(`no X\\.509-SVID from the Istio CA at ${ca.address} after 15000 ms: the Istio CA at ${ca.address} refused the token file ${file} \\(UNAUTHENTICATED`));
      return true;
    });
    assert.ok(warnings.some((w) => /no identity yet \(retrying\): .*refused the token file/.test(w)), warnings.join('\n'));
    assert.equal((await ca.waitForCalls(1))[0]!.code, 'UNAUTHENTICATED');
  });

  test('a token for another workload: createMesh rejects after startTimeout with a message that says so', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'admin-token': `spiffe://${TD}/ns/default/sa/admin` } });
    const clock = new VirtualClock(Date.now());
    const { warnings, logger } = recorder();
    const p = createMesh({ service: 'orders', logger, controlPlane: { address: ca.address, root: ca.rootFile, token: 'admin-token' } }, { clock });
    const outcome = p.then(() => assert.fail('createMesh resolved'), (e: unknown) => e);
    await until(() => warnings.some((w) => /no identity yet/.test(w)));
    await clock.advanceAsync(15_000);
    assert.match(String(await outcome), /IdentityUnavailableError: no X\.509-SVID from the Istio CA .*issued a certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/admin, not for spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders: the token given in controlPlane\.token belongs to another workload/);
  });

  test('closing the mesh closes the gRPC channel to the CA', async (t) => {
    const ca = await startIstioCa(t, { tokens: { tok: ORDERS } });
    const sockets = socketsTo(t, ca.port);
    const m = await createMesh({ service: 'orders', logger: recorder().logger, controlPlane: { address: ca.address, root: ca.rootFile, token: 'tok' } });
    assert.ok(sockets.some((s) => !s.destroyed));
    await m.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(sockets.length > 0 && sockets.every((s) => s.destroyed));
  });
});

describe('controlPlane options', () => {
  const messageOf = (input: unknown, env: NodeJS.ProcessEnv = {}) => {
    try {
      resolveConfig(input as never, env);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message;
    }
    return assert.fail('expected a ConfigError');
  };

  test('are checked whole, each problem named by its path (and its variable)', () => {
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod.istio-system.svc', root: '/r', token: 't' } }), /- controlPlane\.address must be host:port/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', token: 't' } }), /- controlPlane\.root is required/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r' } }), /- controlPlane\.token is required: pass a token, \{ file \} or \{ env \}, or set SIDECARLESS_CONTROL_PLANE_TOKEN_FILE/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: '' } }), /- controlPlane\.token/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: { path: '/t' } } }), /- controlPlane\.token/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: 't', clusterID: 'K' } }), /- controlPlane\.clusterID: unknown option \(did you mean "clusterId"\?\)/);
    assert.match(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: 't', clusterId: 'my cluster\n' } }), /- controlPlane\.clusterId must be visible ASCII without spaces \(it is sent as a header\)/);
    assert.match(messageOf({ service: 'a' }, { SIDECARLESS_CONTROL_PLANE: 'istiod:15012' }), /- controlPlane\.root is required: pass it, or set SIDECARLESS_CONTROL_PLANE_ROOT \(SIDECARLESS_CONTROL_PLANE is set: a control plane needs address, root and token\)/);
    // Only the token file in the environment (a pod template that mounts it for every container): both missing fields say why a control plane is wanted at all.
    const tokenOnly = messageOf({ service: 'a' }, { SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: '/t' });
    assert.match(tokenOnly, /- controlPlane\.address is required: pass it, or set SIDECARLESS_CONTROL_PLANE \(SIDECARLESS_CONTROL_PLANE_TOKEN_FILE is set/);
    assert.match(tokenOnly, /- controlPlane\.root is required: pass it, or set SIDECARLESS_CONTROL_PLANE_ROOT \(SIDECARLESS_CONTROL_PLANE_TOKEN_FILE is set/);
    // Given in code, missing in code: no variable is blamed.
    assert.doesNotMatch(messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', token: 't' } }), /is set/);
    assert.match(messageOf({ service: 'a' }, { SIDECARLESS_CONTROL_PLANE: 'nope', SIDECARLESS_CONTROL_PLANE_ROOT: '/r', SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: '/t' }), /- controlPlane\.address \(from SIDECARLESS_CONTROL_PLANE\) must be host:port/);
  });

  test('a token given where the path of its file goes is refused, and not printed (it would have been in every error, log line, /identity and /config)', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJhdWQiOlsiaXN0aW8tY2EiXX0.c2lnbmF0dXJlLXNlY3JldA';
    const fromEnv = messageOf({ service: 'a' }, { SIDECARLESS_CONTROL_PLANE: 'istiod:15012', SIDECARLESS_CONTROL_PLANE_ROOT: '/r', SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: jwt });
    assert.match(fromEnv, /- controlPlane\.token\.file \(from SIDECARLESS_CONTROL_PLANE_TOKEN_FILE\) is a token \(a JWT\), not the path of a file/);
    const inCode = messageOf({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: { file: jwt } } });
    assert.match(inCode, /- controlPlane\.token\.file is a token/);
    for (const m of [fromEnv, inCode]) assert.ok(!m.includes('c2lnbmF0dXJlLXNlY3JldA') && !m.includes('eyJhdWQi'), m);
    // Paths, dots and all, are paths.
    for (const file of ['/var/run/secrets/tokens/istio-token', 'istio.token.v2', './eyJ.x.y/token']) {
      assert.deepEqual(resolveConfig({ service: 'a', controlPlane: { address: 'istiod:15012', root: '/r', token: { file } } }, {}).controlPlane?.token, { file });
    }
  });

  test('the environment fills only what the code left unset; a token in code is never replaced by the file', () => {
    const env = { SIDECARLESS_CONTROL_PLANE: 'istiod.istio-system.svc:15012', SIDECARLESS_CONTROL_PLANE_ROOT: '/env/root.pem', SIDECARLESS_CONTROL_PLANE_TOKEN_FILE: '/env/token' };
    assert.deepEqual(resolveConfig({ service: 'a' }, env).controlPlane, { address: 'istiod.istio-system.svc:15012', root: '/env/root.pem', token: { file: '/env/token' } });
    assert.deepEqual(resolveConfig({ service: 'a', controlPlane: { address: 'x:1', root: '/r', token: 'literal', clusterId: 'K' } }, env).controlPlane, {
      address: 'x:1',
      root: '/r',
      token: 'literal',
      clusterId: 'K',
    });
    assert.equal(resolveConfig({ service: 'a' }, {}).controlPlane, undefined);
  });
});
