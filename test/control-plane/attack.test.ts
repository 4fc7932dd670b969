// Attacks on the snapshot layer (issue 10): router ownership when a hostname moves between services
// in one snapshot, hostnames validation accepts only what the router can serve, and split state
// (smooth weighted round robin) survives updates that do not change the split.
// Real Outbound (pools are made, not connected), a dev-CA identity, virtual time.
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/net.js';
import { after, describe, test } from 'node:test';
import { Reconciler } from '../../src/control-plane/reconcile.js';
import { validHostname } from '../../src/control-plane/validate.js';
import { HostRouter } from '../../src/outbound/router.js';
import { type Mesh } from '../../src/mesh.js';
import { outboundRig, snap, svc } from '../helpers/outbound-rig.js';
import { type Behaviour, call, client, ok, type Replica, startReplica, status } from '../outbound/e2e/replicas.js';

const opened: Array<Replica | Mesh> = [];
const closers: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(opened.map((x) => x.close().catch(() => {})));
});
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function rig() {
  const { outbound, close } = await outboundRig();
  closers.push(close);
  return { outbound, r: new Reconciler({ setPolicy() {}, setMode() {} }, outbound) };
}

describe('attack: a hostname moved from one service to another in one snapshot', () => {
  test('the new owner gets it whatever the order the services are listed in', async () => {
    const { outbound, r } = await rig();
    const ep = (port: number) => ({ endpoints: [`127.0.0.1:${port}`] });
    // "blue" is listed before "green": the reconciler upserts blue (taking the name) before green (giving it up).
    r.apply(snap([svc('blue', { ...ep(9001), hostnames: ['blue.example.com'] }), svc('green', { ...ep(9002), hostnames: ['green.example.com', 'shop.example.com', '*.shop.example.com', '*'] })]));
    assert.equal(outbound.resolve('shop.example.com')?.name, 'green');
    r.apply(snap([svc('blue', { ...ep(9001), hostnames: ['blue.example.com', 'shop.example.com', '*.shop.example.com', '*'] }), svc('green', { ...ep(9002), hostnames: ['green.example.com'] })]));
    assert.equal(outbound.resolve('shop.example.com')?.name, 'blue', 'the exact name moved to blue');
    assert.equal(outbound.resolve('a.shop.example.com')?.name, 'blue', 'the suffix wildcard moved to blue');
    assert.equal(outbound.resolve('anything.else')?.name, 'blue', 'the catch-all moved to blue');
    assert.equal(outbound.resolve('green.example.com')?.name, 'green');
  });

  test('HostRouter: the last service given a name holds it; deleting a former holder does not unroute it', () => {
    const a = { name: 'a', namespace: 'default' };
    const b = { name: 'b', namespace: 'default' };
    const router = new HostRouter<typeof a>();
    router.set(a, ['x.example.com', '*']);
    router.set(b, ['x.example.com', '*']);
    router.set(a, []);
    assert.equal(router.resolve('x.example.com'), b);
    assert.equal(router.resolve('y.example.com'), b);
    router.delete(a);
    assert.equal(router.resolve('x.example.com'), b);
  });
});

describe('attack: hostnames the validator accepts are hostnames the router serves', () => {
  test('a trailing root dot before a port still matches names written with that port', () => {
    const shop = { name: 'shop', namespace: 'default' };
    const wild = { name: 'wild', namespace: 'default' };
    const router = new HostRouter<typeof shop>();
    router.set(shop, ['shop.example.com:8080']);
    router.set(wild, ['*.wild.example.com:8443']);
    assert.equal(router.resolve('shop.example.com:8080'), shop);
    assert.equal(router.resolve('SHOP.example.com.:8080'), shop, 'root dot, port kept');
    assert.equal(router.resolve('a.wild.example.com.:8443'), wild, 'root dot, suffix wildcard with its port');
    assert.equal(router.resolve('shop.example.com.:9090'), undefined, 'another port is another name');
    assert.equal(router.resolve('[::1]:8080'), undefined);
  });

  test('a prefix wildcard with a port ("shop.*:8080") is refused: the router would take it literally', () => {
    assert.equal(validHostname('shop.*:8080'), false);
    assert.equal(validHostname('shop.*'), true);
    assert.equal(validHostname('*.shop.com:8080'), true);
  });
});

describe('attack: split state across updates that do not change the split', () => {
  const routed = {
    endpoints: ['127.0.0.1:9001'],
    routes: [{ name: 'checkout', match: { path: { prefix: '/checkout' } }, split: [{ service: 'payments', weight: 9 }, { service: 'payments-v2', weight: 1 }] }],
  };
  test('a route split keeps its place in the rotation when only the service timeout changes', async () => {
    const { outbound, r } = await rig();
    const v2 = svc('payments-v2', { endpoints: ['127.0.0.1:9002'] });
    r.apply(snap([svc('payments', routed), v2]));
    const s = outbound.get('payments')!;
    const picks: string[] = [];
    const req = { method: 'GET', path: '/checkout', header: () => undefined };
    for (let i = 0; i < 10; i++) {
      picks.push(s.settingsFor(req).split!.pick()!);
      // A control plane re-pushing the service with another timeout (xDS does so often).
      r.apply(snap([svc('payments', { ...routed, timeout: { request: `${i + 1}s` } }), v2]));
    }
    assert.equal(picks.filter((p) => p === 'payments-v2').length, 1, `one request in ten reaches the canary: ${picks.join(',')}`);
    const st = s.stats().routes![0]!;
    assert.equal(st.requests, 10, 'route counter kept');
  });

  test('the service-level split keeps its rotation when setService re-sends the same weights', async () => {
    const { outbound, r } = await rig();
    const v2 = svc('payments-v2', { endpoints: ['127.0.0.1:9002'] });
    const cfg = { endpoints: ['127.0.0.1:9001'], split: [{ service: 'payments', weight: 9 }, { service: 'payments-v2', weight: 1 }] };
    r.apply(snap([svc('payments', cfg), v2]));
    const s = outbound.get('payments')!;
    const picks: string[] = [];
    for (let i = 0; i < 10; i++) {
      picks.push(s.defaultSettings().split!.pick()!);
      r.apply(snap([svc('payments', cfg), v2]));
    }
    assert.equal(picks.filter((p) => p === 'payments-v2').length, 1, `one request in ten reaches the canary: ${picks.join(',')}`);
  });
});

describe('attack: a service removed while a request of it is in flight (real mTLS)', () => {
  test('its in-flight try that answers 503 ends the request with that 503, not a "mesh closed" error', async () => {
    let first = true;
    // The first request answers 503 after 300 ms (retryable); any later one 200.
    const flaky: Behaviour = (req, res, r) => {
      if (!first) return ok(req, res, r);
      first = false;
      const t = setTimeout(() => status(503)(req, res, r), 300);
      res.on('close', () => clearTimeout(t));
    };
    const p = await startReplica('flaky', flaky, { service: 'payments' });
    opened.push(p);
    const m = await client({ services: { payments: { endpoints: [p.address] } } });
    opened.push(m);
    const inflight = call(m, 'http://payments/x');
    await waitFor(() => p.hits === 1, 5_000, 'the request to reach the replica');
    m.setService('payments', null);
    const r = await inflight;
    assert.equal(r.error, undefined, `the in-flight request finished (${r.error?.message ?? ''} ${r.error?.cause?.code ?? ''})`);
    assert.equal(r.status, 503, 'the answer of its last try, as the removed service gave it');
  });

  test('a request waiting for a pending split backend fails at once when its own service is removed', async () => {
    const p = await startReplica('checkout-1', ok, { service: 'checkout' });
    opened.push(p);
    const m = await client({ pendingTimeout: '5s', services: { checkout: { endpoints: [p.address] } } });
    opened.push(m);
    m.setSplit('checkout', [{ service: 'checkout-v2', weight: 1 }]);
    const t0 = Date.now();
    const waiting = call(m, 'http://checkout/x');
    // The request is waiting once nothing has reached the replica and the split points at a pending backend.
    await waitFor(() => m.stats().outbound.services.checkout!.routed === 1, 5_000, 'the request to be dispatched');
    m.setService('checkout', null);
    const r = await waiting;
    const took = Date.now() - t0;
    assert.equal(r.status, 0);
    assert.equal(r.error?.cause?.code, 'ERR_SIDECARLESS_UNKNOWN_SERVICE', r.error?.cause?.message);
    assert.ok(took < 2_000, `failed at removal, not after pendingTimeout (${took} ms)`);
  });
});
