// SVIDs rotating on both sides of a grpc-js call while clients keep calling: zero failed calls.
// Both SVIDs live 2 s (see test/security/rotation-under-load.test.ts for why not less) and the run
// lasts 4 s, so by the end neither first SVID is valid any more: a fresh connection that
// succeeds then proves the server swapped its certificate in place (same server, never
// restarted) and the channel used the client's new SVID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { TD, idOf } from '../helpers/certs.js';
import { grpc, payClient, servePay, unary, watch } from './helpers.js';

const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;
const RUN_MS = 4_000;

test('grpc-js calls across SVID rotation on both sides under load: zero failures', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const payments = await createMesh({ service: 'payments', identity: { ca, ttl: 2_000 }, logger: quiet, grpc } as Parameters<typeof createMesh>[0]);
  t.after(() => payments.close());
  const orders = await createMesh({ service: 'orders', identity: { ca, ttl: 2_000 }, logger: quiet, grpc } as Parameters<typeof createMesh>[0]);
  t.after(() => orders.close());
  const server = await servePay(payments);
  t.after(() => server.close());
  const firstServerSerial = payments.identity.status().serialNumber;
  const firstClientSerial = orders.identity.status().serialNumber;

  const creds = orders.grpc.channelCredentials('payments');
  const shared = payClient(server.port, creds);
  t.after(() => shared.close());
  const until = Date.now() + RUN_MS;
  const failures: string[] = [];
  let ok = 0;
  let fresh = 0;
  const loop = async (i: number) => {
    for (let k = 0; Date.now() < until; k++) {
      try {
        const r = k % 5 === 4 ? (await watch(shared, 2))[1] : await unary(shared, 'Charge', { n: k });
        if (r?.peer !== idOf('orders')) failures.push(`loop ${i}: ${JSON.stringify(r)}`);
        else ok++;
      } catch (e) {
        failures.push(`loop ${i}: ${(e as Error).message}`);
      }
    }
  };
  // New connections all along (a channel of its own each time, no shared subchannel).
  const probes = async () => {
    while (Date.now() < until) {
      const c = payClient(server.port, creds, { 'grpc.use_local_subchannel_pool': 1 });
      try {
        await unary(c, 'Charge', { n: -1 });
        fresh++;
      } catch (e) {
        failures.push(`fresh connection: ${(e as Error).message}`);
      } finally {
        c.close();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await Promise.all([loop(0), loop(1), loop(2), probes()]);

  assert.deepEqual(failures, [], `${failures.length} failures out of ${ok + failures.length}`);
  assert.ok(ok > 20, `only ${ok} calls completed`);
  assert.ok(fresh >= 5, `only ${fresh} fresh connections`);
  assert.ok(payments.identity.status().rotations >= 2, `server rotations: ${payments.identity.status().rotations}`);
  assert.ok(orders.identity.status().rotations >= 2, `client rotations: ${orders.identity.status().rotations}`);
  assert.notEqual(payments.identity.status().serialNumber, firstServerSerial);
  assert.notEqual(orders.identity.status().serialNumber, firstClientSerial);
  // Both first SVIDs have expired: this connection is made with the current ones only.
  const last = payClient(server.port, creds, { 'grpc.use_local_subchannel_pool': 1 });
  try {
    assert.equal((await unary(last, 'Charge', { n: 0 })).peer, idOf('orders'));
  } finally {
    last.close();
  }
});
