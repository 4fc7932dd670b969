// examples/control-plane/*.ts as a user runs them, against servers of the same protocols on the
// second stack (Python gRPC C-core): a Workload API server standing in for the SPIRE agent, and a
// test Istio CA (python3-cryptography signing) standing in for istiod.
import { test } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { startIstioCa } from '../helpers/istio-ca-server.js';
import { WorkloadServer, wireSvid } from '../helpers/workload-server.js';
import { waitFor } from '../helpers/net.js';
import { run, startService, tempDir, tsxArgs } from './process.js';
import { startXdsResponder } from '../helpers/xds-responder.js';
import { cluster, serveIstiodShaped, weighted } from '../helpers/xds-istiod.js';
import { devCa as replicaCa, ok, startReplica } from '../outbound/e2e/replicas.js';
import { filesOf, writeSvidDir } from '../helpers/certs.js';

const TD = 'example.org';
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;

test('examples/control-plane/spire.ts: two services take their SVIDs by hint from the Workload API and talk over mTLS; --watch follows a rotation', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const server = await WorkloadServer.start();
  t.after(() => server.stop());
  const issue = async () => [wireSvid(await ca.issue({ spiffeId: id('payments') }), { hint: 'payments' }), wireSvid(await ca.issue({ spiffeId: id('orders') }), { hint: 'orders' })];
  await server.state(await issue());
  const env = { SPIFFE_ENDPOINT_SOCKET: server.address, TRUST_DOMAIN: TD, SIDECARLESS_IDENTITY_DIR: '' };

  const once = await run(process.execPath, tsxArgs('examples/control-plane/spire.ts'), { env, timeoutMs: 60_000 });
  assert.equal(once.code, 0, once.stderr + once.stdout);
  assert.match(once.stdout, new RegExp(`payments +${id('payments')} from SPIFFE Workload API at ${server.address.replace(/[/.]/g, '\\$&')}.*\\(hint payments, serial `));
  assert.match(once.stdout, new RegExp(`orders +${id('orders')} .*\\(hint orders, `));
  assert.match(once.stdout, new RegExp(`orders → payments: 200 \\{"caller":"${id('orders')}"\\}`));

  const watching = await startService(tsxArgs('examples/control-plane/spire.ts').concat('--watch'), /watching for rotations/, env, 60_000);
  t.after(() => watching.stop());
  await server.state(await issue());
  await waitFor(() => /payments rotated: .*orders → payments: 200/.test(watching.output()) && /orders rotated: .*orders → payments: 200/.test(watching.output()), 20_000, 'both rotations');
});

test('examples/control-plane/spire.ts without SPIFFE_ENDPOINT_SOCKET: says what to set, exit 2', async () => {
  const r = await run(process.execPath, tsxArgs('examples/control-plane/spire.ts'), { env: { SPIFFE_ENDPOINT_SOCKET: '' }, timeoutMs: 60_000 });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /set SPIFFE_ENDPOINT_SOCKET/);
});

test('examples/control-plane/istio-ca.ts: the SVID istiod’s CA issues for the token, served and called over mTLS, the token and ClusterID sent as istiod expects', async (t) => {
  const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';
  const ca = await startIstioCa(t, { tokens: { 'tok-orders': ORDERS }, clusterId: 'Kubernetes' });
  const tokenFile = join(ca.dir, 'istio-token');
  await writeFile(tokenFile, 'tok-orders');
  const env = { ISTIOD: ca.address, ISTIO_ROOT: ca.rootFile, ISTIO_TOKEN: tokenFile, SIDECARLESS_IDENTITY_DIR: '', SPIFFE_ENDPOINT_SOCKET: '' };
  const r = await run(process.execPath, tsxArgs('examples/control-plane/istio-ca.ts'), { env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`orders ${ORDERS} from Istio CA at ${ca.address} \\(serial \\w+, valid until \\S+, next renewal \\S+\\)`));
  assert.match(r.stdout, new RegExp(`orders → orders: 200 \\{"caller":"${ORDERS}"\\}`));
  const call = ca.calls.find((c) => c.issued === ORDERS)!;
  assert.equal(call.authorization, 'Bearer tok-orders');
  assert.equal(call.clusterid, 'Kubernetes');
});

test('examples/control-plane/istiod.ts: the target discovered over xDS (Listener → routes → clusters → endpoints) and called over mTLS, every request answered by the backend its route names', async (t) => {
  const x = await startXdsResponder(t);
  const [v1, v2] = await Promise.all([startReplica('v1', ok), startReplica('v2', ok)]);
  t.after(() => Promise.all([v1.close(), v2.close()]).then(() => {}));
  serveIstiodShaped(x, { v1, v2 }, [weighted([[cluster('v1'), 0], [cluster('v2'), 1]])]);
  const dir = await tempDir(t);
  const ca = await replicaCa();
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' })));
  const token = join(dir, 'istio-token');
  await writeFile(token, 'good-token');
  const env = { ISTIOD: x.server.address, ISTIO_ROOT: x.server.rootFile, ISTIO_TOKEN: token, SIDECARLESS_IDENTITY_DIR: dir, SPIFFE_ENDPOINT_SOCKET: '', INSTANCE_IP: '10.0.0.9', POD_NAME: 'orders-7d9f' };
  const r = await run(process.execPath, tsxArgs('examples/control-plane/istiod.ts'), { env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((r.stdout.match(/orders → http:\/\/payments\.default\.svc\.cluster\.local:8080\/: 200 v2/g) ?? []).length, 5, r.stdout);
  assert.match(r.stdout, new RegExp(`snapshot \\d+ from xds:${x.server.address}: .*outbound\\|8080\\|v2\\|payments`));
  const first = x.server.streams[0]!.requests[0]!;
  assert.equal(first.node?.id, 'sidecar~10.0.0.9~orders-7d9f.default~default.svc.cluster.local');
  assert.equal(x.server.streams[0]!.clusterId, 'Kubernetes');
});

test('examples/control-plane/embedded/run.sh: three services join the embedded control plane, find each other by name and call over mTLS under its policies', async () => {
  const r = await run('bash', ['examples/control-plane/embedded/run.sh'], { env: { LISTEN: '127.0.0.1:0', ADMIN_LISTEN: '127.0.0.1:0' }, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(r.stderr, '', 'no warnings');
  const cp = 'spiffe://cluster\\.local/ns/default/sa/';
  assert.match(r.stdout, /control-plane │ control plane serving ADS \+ CA on 127\.0\.0\.1:\d+ \(TLS\)/);
  assert.equal((r.stdout.match(new RegExp(`orders → payments → ledger: 200; payments saw ${cp}orders, ledger saw ${cp}payments \\(entry \\d\\)`, 'g')) ?? []).length, 3, r.stdout);
  assert.match(r.stdout, /orders → payments GET \/charge: 403/);
  assert.match(r.stdout, /orders → ledger POST \/entries: 403/);
  // The status: both servers registered themselves (no endpoint in the mesh file), three certificates issued.
  assert.match(r.stdout, /payments\.default:8443 +http +127\.0\.0\.1:\d+ up/);
  assert.match(r.stdout, /ledger\.default:8443 +http +127\.0\.0\.1:\d+ up/);
  assert.match(r.stdout, /certificates issued \(3\)/);
});
