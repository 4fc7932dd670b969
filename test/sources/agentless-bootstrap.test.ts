// Agentless identity (issue 14, item 2): what a function has instead of an agent. An SVID handed in
// as PEM text (options, or SIDECARLESS_SVID_*_PEM), and a platform token exchanged with a control
// plane's CA — the embedded control plane's, and the istiod-protocol test CA on the second stack —
// read from a file or an environment variable. A wrong token, an expired token and an unreachable
// CA each fail closed: createMesh rejects after startTimeout with a message that says which.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { VirtualClock } from '../../src/clock.js';
import { ConfigError, createDevCa, createMesh, peerOf, type Mesh } from '../../src/index.js';
import { issueToken } from '../../src/server/ca/tokens.js';
import { type RunningControlPlane, startControlPlane } from '../../src/server/control-plane-server.js';
import { filesOf } from '../helpers/certs.js';
import { startIstioCa } from '../helpers/istio-ca-server.js';
import { closeServer, listen } from '../helpers/net.js';
import { makeTempDir } from '../helpers/tmp.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;

function recorder() {
  const lines: string[] = [];
  return { lines, logger: { info() {}, warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m) } };
}

async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** createMesh on a virtual clock that must fail: the rejection after startTimeout (15 s), and what was logged. */
async function failsAfterStartTimeout(options: Parameters<typeof createMesh>[0], env: NodeJS.ProcessEnv = {}): Promise<{ error: Error & { code?: string }; lines: string[] }> {
  const clock = new VirtualClock(Date.now());
  const { lines, logger } = recorder();
  let settled = false;
  const outcome = createMesh({ logger, ...options }, { clock, env }).then(
    async (m) => {
      await m.close();
      assert.fail('createMesh resolved');
    },
    (e: Error) => e,
  ).finally(() => (settled = true));
  await until(() => lines.some((l) => /no identity yet/.test(l)));
  await clock.advanceAsync(14_999);
  assert.equal(settled, false, 'waits for startTimeout (the token may be being refreshed)');
  await clock.advanceAsync(1);
  const error = (await outcome) as Error & { code?: string };
  assert.equal(error.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE', String(error));
  return { error, lines };
}

/** An expired JWT of the right shape (header.claims.signature), signed by nobody in particular. */
function expiredJwt(expSecondsAgo: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ iss: 'https://oidc.example', sub: 'system:serviceaccount:default:orders', aud: ['istio-ca'], iat: now - expSecondsAgo - 600, exp: now - expSecondsAgo })}.c2ln`;
}

describe('an SVID handed in as PEM text', () => {
  test('from the options and from SIDECARLESS_SVID_PEM, _KEY_PEM, _BUNDLE_PEM: serves and calls over mTLS', async (t) => {
    const ca = await createDevCa({ trustDomain: TD });
    const files = filesOf(await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/payments` }));
    const payments = await createMesh({ service: 'payments', logger: recorder().logger, identity: { pem: { svid: files.certChainPem, key: files.keyPem, bundle: files.bundlePem } } });
    t.after(() => payments.close());
    const server = payments.createServer((req, res) => res.end(peerOf(req)?.spiffeId ?? 'none'));
    t.after(() => closeServer(server));
    const port = await listen(server);
    const o = filesOf(await ca.issue({ spiffeId: ORDERS }));
    const env = { SIDECARLESS_SVID_PEM: o.certChainPem, SIDECARLESS_SVID_KEY_PEM: o.keyPem, SIDECARLESS_SVID_BUNDLE_PEM: o.bundlePem };
    const orders = await createMesh({ service: 'orders', logger: recorder().logger, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } }, { env });
    t.after(() => orders.close());
    assert.equal(orders.stats().identity.kind, 'pem');
    assert.equal(await (await orders.fetch('http://payments/')).text(), ORDERS);
    // SIDECARLESS_IDENTITY_DIR wins over the PEM variables; the PEM variables over SPFFE_ENDPOINT_SOCKET.
    const { resolveConfig } = await import('../../src/config.js');
    assert.deepEqual(Object.keys(resolveConfig({ service: 'orders' }, { ...env, SIDECARLESS_IDENTITY_DIR: '/x' }).identity!), ['dir']);
    assert.deepEqual(Object.keys(resolveConfig({ service: 'orders' }, { ...env, SPIFFE_ENDPOINT_SOCKET: 'unix:///x.sock' }).identity!), ['pem']);
  });

  test('one variable missing, a key that is not PEM, a key of another certificate, an SVID of another workload: refused, the key never printed', async () => {
    const ca = await createDevCa({ trustDomain: TD });
    const o = filesOf(await ca.issue({ spiffeId: ORDERS }));
    const other = filesOf(await ca.issue({ spiffeId: ORDERS }));
    await assert.rejects(createMesh({ service: 'orders' }, { env: { SIDECARLESS_SVID_PEM: o.certChainPem, SIDECARLESS_SVID_BUNDLE_PEM: o.bundlePem } }), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /identity\.pem\.key.*SIDECARLESS_SVID_KEY_PEM/s);
      return true;
    });
    const secret = o.keyPem.split('\n')[1]!;
    await assert.rejects(createMesh({ service: 'orders', identity: { pem: { svid: o.certChainPem, key: `not a key ${secret}`, bundle: o.bundlePem } } }), (e: Error) => {
      assert.match(e.message, /identity\.pem\.key must be PEM text with a PRIVATE KEY block/);
      assert.ok(!e.message.includes(secret), 'the key is never echoed');
      return true;
    });
    await assert.rejects(createMesh({ service: 'orders', logger: recorder().logger, identity: { pem: { svid: o.certChainPem, key: other.keyPem, bundle: o.bundlePem } } }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match(e.message, /the SVID from identity\.pem .* cannot be used: .*key/i);
      assert.ok(!e.message.includes(other.keyPem.split('\n')[1]!));
      return true;
    });
    await assert.rejects(createMesh({ service: 'payments', logger: recorder().logger, identity: { pem: { svid: o.certChainPem, key: o.keyPem, bundle: o.bundlePem } } }), /orders/);
  });
});

describe('a platform token exchanged with the embedded control plane’s CA', () => {
  let cp: RunningControlPlane;
  let dir: string;
  before(async () => {
    dir = makeTempDir('sidecarless-agentless-').dir;
    await writeFile(join(dir, 'mesh.yaml'), `trustDomain: ${TD}\nservices:\n  - name: payments\n    port: 8443\n`);
    cp = await startControlPlane({ meshFile: join(dir, 'mesh.yaml'), state: join(dir, 'state'), listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', graceMs: 300, logger: recorder().logger });
  });
  after(() => cp.close());
  const controlPlane = (token: unknown) => ({ address: cp.address, root: cp.rootFile, token }) as never;

  test('from an environment variable, read on every use: an SVID for the token’s workload', async (t) => {
    const m: Mesh = await createMesh({ service: 'orders', logger: recorder().logger, controlPlane: controlPlane({ env: 'PLATFORM_TOKEN' }) }, { env: { PLATFORM_TOKEN: issueToken(cp.state, { namespace: 'default', serviceAccount: 'orders' }) } });
    t.after(() => m.close());
    assert.equal(m.identity.getX509Svid().spiffeId.id, ORDERS);
    assert.equal(m.stats().identity.kind, 'istio-ca');
  });

  test('the variable unset: fails closed, naming the variable', async () => {
    const { error } = await failsAfterStartTimeout({ service: 'orders', controlPlane: controlPlane({ env: 'PLATFORM_TOKEN' }) });
    assert.match(error.message, /the environment variable PLATFORM_TOKEN \(controlPlane\.token\.env\) is not set/);
  });

  test('a wrong token: fails closed, saying the CA refused it and where it was read from', async () => {
    const bad = issueToken(cp.state, { namespace: 'default', serviceAccount: 'orders' }).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const { error } = await failsAfterStartTimeout({ service: 'orders', controlPlane: controlPlane({ env: 'T' }) }, { T: bad });
    assert.match(error.message, /refused the token in the environment variable T \(UNAUTHENTICATED: request authenticate failure\)/);
    assert.doesNotMatch(error.message, /expired at/);
  });

  test('an expired token: fails closed, saying when it expired', async () => {
    const expired = issueToken({ tokenKey: cp.state.tokenKey, clock: { now: () => Date.now() - 2 * 3_600_000 } }, { namespace: 'default', serviceAccount: 'orders', ttlMs: 3_600_000 });
    const { error } = await failsAfterStartTimeout({ service: 'orders', controlPlane: controlPlane(expired) });
    assert.match(error.message, /refused the token given in controlPlane\.token \(UNAUTHENTICATED: .*\): the token expired at \d{4}-\d\d-\d\dT[\d:.]+Z \(its exp claim\)\. Its issuer must refresh it/);
  });

  test('an unreachable CA: fails closed, saying it cannot be reached; nothing is served', async () => {
    const server = await import('node:net').then((net) => net.createServer());
    const port = await listen(server);
    await closeServer(server); // a port nobody listens on any more
    const { error } = await failsAfterStartTimeout({ service: 'orders', controlPlane: { address: `127.0.0.1:${port}`, root: cp.rootFile, token: 'x' } as never });
    assert.match(error.message, /cannot reach the Istio CA at 127\.0\.0\.1:\d+ .*UNAVAILABLE/);
  });
});

describe('the same against the istiod-protocol test CA (second stack)', () => {
  test('an expired token and an unreachable CA fail closed with the same words; a token in the environment works', async (t) => {
    const ca = await startIstioCa(t, { tokens: { 'env-token': ORDERS } });
    const m = await createMesh({ service: 'orders', logger: recorder().logger, controlPlane: { address: ca.address, root: ca.rootFile, token: { env: 'ISTIO_TOKEN' } } }, { env: { ISTIO_TOKEN: 'env-token' } });
    t.after(() => m.close());
    assert.equal(m.identity.getX509Svid().spiffeId.id, ORDERS);
    const { error } = await failsAfterStartTimeout({ service: 'orders', controlPlane: { address: ca.address, root: ca.rootFile, token: { env: 'ISTIO_TOKEN' } } }, { ISTIO_TOKEN: expiredJwt(30) });
    assert.match(error.message, /the Istio CA at localhost:\d+ refused the token in the environment variable ISTIO_TOKEN \(UNAUTHENTICATED[^)]*\): the token expired at/);
    const last = (await ca.waitForCalls(2)).at(-1)!;
    assert.equal(last.code, 'UNAUTHENTICATED', 'the token was sent and refused by the CA (the client does not judge it)');
  });
});
