// createMesh with identity: { workloadApi } against the Python (C-core) Workload API server: real
// meshes over real mTLS. SVIDs rotate on one stream while clients keep calling (zero failed
// requests, new handshakes see the new certificate); stats().identity and the admin /identity show
// the source; createMesh fails closed, and says why, when the Workload API gives nothing usable.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Logger } from '../../src/config.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh, peerOf } from '../../src/index.js';
import { craftLeaf, idOf, TD, messages } from '../helpers/certs.js';
import { LOOPBACK, closeServer, listen, rawTlsRequest, sleep, waitFor } from '../helpers/net.js';
import { type WorkloadServer, WorkloadServer as Server, wireSvid } from '../helpers/workload-server.js';

const silent: Logger = { info() {}, warn() {}, error() {} } as unknown as Logger;
let ca: DevCa;
const servers: WorkloadServer[] = [];
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
});
after(() => Promise.all(servers.map((s) => s.stop())));

async function serve(): Promise<WorkloadServer> {
  const s = await Server.start();
  servers.push(s);
  return s;
}

type Options = Parameters<typeof createMesh>[0];

/** Both workloads' SVIDs in one message, told apart by hint (as a SPIRE agent serving two entries). */
async function pushBoth(server: WorkloadServer): Promise<{ payments: string; orders: string }> {
  const [payments, orders] = await Promise.all([ca.issue({ spiffeId: idOf('payments') }), ca.issue({ spiffeId: idOf('orders') })]);
  await server.state([wireSvid(payments, { hint: 'payments' }), wireSvid(orders, { hint: 'orders' })]);
  return { payments: payments.serialNumber, orders: orders.serialNumber };
}

test('rotation on the Workload API stream under load: zero failed requests, new handshakes see each new SVID', async (t) => {
  const agent = await serve();
  const first = await pushBoth(agent);
  const server = await createMesh({ service: 'payments', identity: { workloadApi: { socket: agent.address, hint: 'payments' } }, logger: silent } as Options);
  t.after(() => server.close());
  const https = server.createServer((req, res) => res.end(JSON.stringify({ peer: peerOf(req)?.spiffeId ?? null })));
  const port = await listen(https);
  t.after(() => closeServer(https));
  const client = await createMesh({
    service: 'orders',
    identity: { workloadApi: { socket: agent.address, hint: 'orders' } },
    logger: silent,
    outbound: { services: { payments: { endpoints: [`${LOOPBACK}:${port}`] } } },
  } as Options);
  t.after(() => client.close());
  assert.equal(server.stats().identity.serialNumber, first.payments);
  assert.equal(client.stats().identity.serialNumber, first.orders);

  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const loop = async (i: number) => {
    for (let k = 0; !stop; k++) {
      try {
        const res = await client.fetch(`http://payments/charge/${i}/${k}`);
        const body = (await res.json()) as { peer: string };
        if (res.status !== 200 || body.peer !== idOf('orders')) failures.push(`status ${res.status} peer ${body.peer}`);
        else ok++;
      } catch (e) {
        failures.push(String((e as Error).cause ?? e));
      }
    }
  };
  const loops = Array.from({ length: 4 }, (_, i) => loop(i));
  const probe = await craftLeaf(ca, { uris: [idOf('prober')] });
  const held = [first.payments];
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    await sleep(300);
    const next = await pushBoth(agent);
    held.push(next.payments);
    await waitFor(() => server.stats().identity.serialNumber === next.payments && client.stats().identity.serialNumber === next.orders, 5_000, `rotation ${i + 1}`);
    const r = await rawTlsRequest({ port, cert: probe.certChainPem, key: probe.keyPem, ca: ca.bundlePem });
    assert.equal(r.status, 200, r.error?.message);
    seen.push(r.serverSerial!.toLowerCase());
  }
  await sleep(300);
  stop = true;
  await Promise.all(loops);
  assert.deepEqual(failures, [], `${failures.length} failures out of ${ok + failures.length}`);
  assert.ok(ok > 50, `only ${ok} requests completed`);
  assert.deepEqual(seen, held.slice(1).map((s) => s.toLowerCase()), 'each fresh handshake shows the SVID just pushed');
  assert.equal(server.stats().identity.rotations, 4);
  assert.equal(agent.calls.length, 2, 'one stream per mesh, all rotations on it');
  assert.deepEqual(agent.calls.map((c) => c.outcome), ['stream', 'stream']);
});

test('stats().identity and the admin /identity: kind, hint, serial, expiry, and the last error while the agent is away', async (t) => {
  const agent = await serve();
  const svid = await ca.issue({ spiffeId: idOf('orders') });
  await agent.state([wireSvid(svid, { hint: 'internal' })]);
  const mesh = await createMesh({ service: 'orders', identity: { workloadApi: { socket: agent.address } }, admin: { port: 0 }, logger: silent } as Options);
  t.after(() => mesh.close());
  const st = mesh.stats().identity;
  assert.equal(st.kind, 'workload-api');
  assert.equal(st.state, 'ready');
  assert.equal(st.hint, 'internal');
  assert.equal(st.serialNumber, svid.serialNumber);
  assert.equal(st.notAfter, new Date(svid.notAfter).toISOString());
  const admin = async () => {
    const { port } = mesh.admin!.address();
    return (await (await fetch(`http://127.0.0.1:${port}/identity`)).json()) as Record<string, unknown>;
  };
  const a = await admin();
  assert.equal(a.kind, 'workload-api');
  assert.equal(a.serialNumber, svid.serialNumber);
  assert.equal(a.notAfter, st.notAfter);
  assert.equal(a.state, 'ready');
  assert.equal(a.lastError, undefined);

  await agent.fail('PERMISSION_DENIED', 'no identity issued', -1);
  await agent.abort('UNAVAILABLE', 'agent restarting');
  await waitFor(() => mesh.stats().identity.state === 'stale', 5_000, 'stale');
  assert.match(mesh.stats().identity.lastError!, /answered UNAVAILABLE \(14\): agent restarting; the last good SVID stays in use until it expires; reconnecting in /);
  const b = await admin();
  assert.equal(b.state, 'stale');
  assert.match(String(b.lastError), /UNAVAILABLE \(14\): agent restarting/);
  assert.equal(b.serialNumber, svid.serialNumber, 'the last good SVID stays');
  // The retry (after ~1 s, real clock) meets PermissionDenied: the code and message are what status shows.
  await waitFor(() => /PERMISSION_DENIED \(7\): no identity issued/.test(mesh.stats().identity.lastError ?? ''), 5_000, 'the PermissionDenied retry');
  await agent.heal();
  await waitFor(() => mesh.stats().identity.state === 'ready', 10_000, 'ready again');
});

test('createMesh fails closed: no message within startTimeout → IdentityUnavailableError naming the socket', async () => {
  const agent = await serve(); // no state: it holds the first message back
  const started = Date.now();
  await assert.rejects(
    createMesh({ service: 'orders', identity: { workloadApi: { socket: agent.address, startTimeout: '400ms' } }, logger: silent } as Options),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
      assert.match(e.message, new RegExp(`no X\\.509-SVID from the SPIFFE Workload API at ${agent.address.replace(/[/.]/g, '\\$&')} after 400 ms`));
      return true;
    },
  );
  assert.ok(Date.now() - started < 5_000);
  await waitFor(() => agent.cancelled.length === 1, 5_000, 'the stream cancelled by the failed createMesh');
});

test('createMesh: InvalidArgument rejects at once (no wait for startTimeout), saying the server refused the request', async () => {
  const agent = await serve();
  await agent.fail('INVALID_ARGUMENT', 'security header missing from request', -1);
  const started = Date.now();
  await assert.rejects(
    createMesh({ service: 'orders', identity: { workloadApi: { socket: agent.address, startTimeout: '30s' } }, logger: silent } as Options),
    /answered INVALID_ARGUMENT \(3\): security header missing from request; the server refused the request.*Not retrying/,
  );
  assert.ok(Date.now() - started < 10_000, 'did not wait for the 30 s startTimeout');
  await sleep(1_500);
  assert.equal(agent.calls.length, 1, 'no retry');
});

test('an SVID for another SPIFFE ID: createMesh rejects at once, telling a SPIRE user to set spiffeId (or hint)', async () => {
  const agent = await serve();
  const other = await ca.issue({ spiffeId: `spiffe://${TD}/workload/orders-7f9` });
  await agent.state([wireSvid(other)]);
  await assert.rejects(createMesh({ service: 'orders', identity: { workloadApi: { socket: agent.address, startTimeout: '30s' } }, logger: silent } as Options), (e: Error) => {
    const m = messages(e);
    assert.match(m, /is for spiffe:\/\/cluster\.local\/workload\/orders-7f9, but this workload's SPIFFE ID is spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    assert.match(m, /A SPIRE agent hands out the SVIDs of the registration entries that match this process \(offered: no hint \(spiffe:\/\/cluster\.local\/workload\/orders-7f9\)\): set spiffeId/);
    assert.match(m, /identity\.workloadApi\.hint/);
    return true;
  });
  // With spiffeId set to the entry's ID, the same agent is accepted.
  const mesh = await createMesh({ service: 'orders', spiffeId: other.spiffeId, identity: { workloadApi: { socket: agent.address } }, logger: silent } as Options);
  assert.equal(mesh.stats().identity.spiffeId, other.spiffeId);
  await mesh.close();
});

test('SPIFFE_ENDPOINT_SOCKET alone gives the mesh its identity from the Workload API', async (t) => {
  const agent = await serve();
  const svid = await ca.issue({ spiffeId: idOf('orders') });
  await agent.state([wireSvid(svid)]);
  const saved = process.env.SPIFFE_ENDPOINT_SOCKET;
  process.env.SPIFFE_ENDPOINT_SOCKET = agent.address;
  t.after(() => {
    if (saved === undefined) delete process.env.SPIFFE_ENDPOINT_SOCKET;
    else process.env.SPIFFE_ENDPOINT_SOCKET = saved;
  });
  const mesh = await createMesh({ service: 'orders', logger: silent } as Options);
  t.after(() => mesh.close());
  assert.equal(mesh.stats().identity.kind, 'workload-api');
  assert.equal(mesh.stats().identity.serialNumber, svid.serialNumber);
});
