// Reconcile: a snapshot applied whole or not at all, keeping the runtime of what stays. Real
// Outbound (pools are made, not connected), a dev-CA identity, virtual time for the balancer.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Reconciler, type SnapshotEvent, diffSnapshots } from '../../src/control-plane/reconcile.js';
import { loadPolicy, type Policy } from '../../src/policy/index.js';
import { outboundRig, snap, svc } from '../helpers/outbound-rig.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function rig() {
  const { clock, outbound, close } = await outboundRig();
  closers.push(close);
  const calls: string[] = [];
  const inbound = {
    setPolicy(p: Policy) {
      if ((p as unknown as { rules?: unknown[] }).rules?.length === 99) throw new Error('compile failed');
      calls.push('policy');
    },
    setMode(m: string) {
      calls.push(`mode:${m}`);
    },
  };
  const events: SnapshotEvent[] = [];
  const r = new Reconciler(inbound, outbound, (e) => events.push(e));
  return { clock, outbound, r, calls, events };
}

describe('reconcile', () => {
  test('a service added is routable at once; one removed is gone from routing and closed; the rest are untouched', async () => {
    const { outbound, r } = await rig();
    const payments = svc('payments', { endpoints: ['127.0.0.1:9001'] });
    r.apply(snap([payments]));
    const before = outbound.get('payments');
    r.apply(snap([payments, svc('inventory', { endpoints: ['127.0.0.1:9002'] })]));
    assert.equal(outbound.resolve('inventory.default.svc.cluster.local')?.name, 'inventory');
    assert.equal(outbound.get('payments'), before, 'a service shared by reference is the same runtime object');
    const inventory = outbound.get('inventory')!;
    r.apply(snap([payments]));
    assert.equal(outbound.resolve('inventory'), undefined);
    assert.ok(inventory.closed, 'the removed service is closing (its pools drain in-flight requests first)');
    assert.equal(outbound.get('payments'), before);
  });

  test('endpoints that stay keep their pool and EWMA; new ones start fresh; gone ones drain', async () => {
    const { outbound, r, clock } = await rig();
    const v1 = svc('payments', { endpoints: ['127.0.0.1:9001', '127.0.0.1:9002'] });
    r.apply(snap([v1]));
    const s = outbound.get('payments')!;
    const kept = s.endpoint('127.0.0.1:9001')!;
    const t = s.balancer.get('127.0.0.1:9001')!.start();
    clock.advance(400);
    t.end({ ok: true });
    const ewma = s.stats().endpoints.find((e) => e.address === '127.0.0.1:9001')!.ewmaMs;
    assert.ok(ewma > 100, `EWMA learned (${ewma})`);
    r.apply(snap([{ ...v1, endpoints: [{ ...v1.endpoints![0]!, weight: 5 }, { address: '127.0.0.1:9003', identity: v1.identity, weight: 1 }] }]));
    assert.equal(outbound.get('payments'), s, 'same service object');
    assert.equal(s.endpoint('127.0.0.1:9001')!.pool, kept.pool, 'same pool: connections kept');
    const after = s.stats().endpoints;
    assert.equal(after.find((e) => e.address === '127.0.0.1:9001')!.ewmaMs, ewma, 'EWMA kept');
    assert.equal(after.find((e) => e.address === '127.0.0.1:9001')!.weight, 5, 'new weight taken');
    assert.deepEqual(after.map((e) => e.address).sort(), ['127.0.0.1:9001', '127.0.0.1:9003']);
  });

  test('settings: a retry change keeps the balancer, budget and pools; a balancer change starts fresh estimates; a budget change a fresh budget', async () => {
    const { outbound, r } = await rig();
    const base = svc('payments', { endpoints: ['127.0.0.1:9001'] });
    r.apply(snap([base]));
    const s = outbound.get('payments')!;
    const { balancer, budget } = s;
    const pool = s.endpoint('127.0.0.1:9001')!.pool;
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], retry: { maxRetries: 1 } })]));
    assert.equal(s.balancer, balancer);
    assert.equal(s.budget, budget);
    assert.equal(s.endpoint('127.0.0.1:9001')!.pool, pool);
    assert.equal(s.defaultSettings().retry!.maxRetries, 1);
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], retry: { maxRetries: 1 }, balancer: 'round-robin' })]));
    assert.notEqual(s.balancer, balancer);
    assert.equal(s.stats().balancer, 'round-robin');
    assert.equal(s.endpoint('127.0.0.1:9001')!.pool, pool, 'pools are kept across a balancer change');
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], balancer: 'round-robin', retry: { budget: { retryRatio: 0.5 } } })]));
    assert.notEqual(s.budget, budget);
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], balancer: 'round-robin', retry: { budget: { retryRatio: 0.5 } }, connections: { maxPerEndpoint: 4 } })]));
    assert.notEqual(s.endpoint('127.0.0.1:9001')!.pool, pool, 'pool options are fixed at creation: a new pool');
    const h1 = s.endpoint('127.0.0.1:9001')!.pool;
    const undici = await import('undici');
    assert.ok(h1 instanceof undici.Pool);
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], balancer: 'round-robin', retry: { budget: { retryRatio: 0.5 } }, connections: { maxPerEndpoint: 4 }, protocol: 'grpc' })]));
    const h2 = s.endpoint('127.0.0.1:9001')!.pool;
    assert.ok(h2 instanceof undici.Client && !(h2 instanceof undici.Pool), 'a protocol change: a new pool, one h2 client per endpoint');
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], balancer: 'round-robin', retry: { budget: { retryRatio: 0.5 } }, connections: { maxPerEndpoint: 4 }, protocol: 'http2' })]));
    assert.equal(s.endpoint('127.0.0.1:9001')!.pool, h2, 'grpc → http2: the same HTTP/2 connection, judged as plain HTTP/2 from now on');
    assert.equal(s.grpc, false);
  });

  test('a change of identity or namespace is a different service: replaced', async () => {
    const { outbound, r } = await rig();
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'] })]));
    const s = outbound.get('payments')!;
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], identity: 'spiffe://cluster.local/ns/default/sa/payments-v2' })]));
    assert.notEqual(outbound.get('payments'), s);
    assert.ok(s.closed);
    assert.equal(outbound.get('payments')!.identity, 'spiffe://cluster.local/ns/default/sa/payments-v2');
  });

  test('routes and split swap as one reference: the hot path sees old or new, never a mix', async () => {
    const { outbound, r } = await rig();
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'] }), svc('canary', { endpoints: ['127.0.0.1:9002'] })]));
    const s = outbound.get('payments')!;
    const before = s.defaultSettings();
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'], split: [{ service: 'canary', weight: 1 }], routes: [{ name: 'v2', match: { path: { prefix: '/v2' } }, timeout: { request: '1s' } }] }), svc('canary', { endpoints: ['127.0.0.1:9002'] })]));
    const req = (path: string) => ({ method: 'GET', path, header: () => undefined });
    assert.equal(before.split, undefined, 'a settings object read before the swap is unchanged');
    assert.equal(s.settingsFor(req('/v2/x')).route, 'v2');
    assert.equal(s.settingsFor(req('/v2/x')).timeout.requestMs, 1000);
    assert.deepEqual(s.settingsFor(req('/other')).split?.backends, [{ service: 'canary', weight: 1 }]);
  });

  test('a bad snapshot is rejected whole: nothing of it applied, the error kept for stats, the next good one clears it', async () => {
    const { outbound, r, calls, events } = await rig();
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001'] })], { complete: true }));
    const good = r.current!;
    const bad = snap([svc('payments', { endpoints: ['127.0.0.1:9001', '127.0.0.1:9009'] }), svc('checkout', { split: [{ service: 'nope', weight: 1 }] })], { complete: true, policy: loadPolicy({ rules: [{ name: 'x', action: 'deny', to: [{ paths: ['/admin'] }] }] }) });
    assert.throws(() => r.apply(bad), { code: 'ERR_SIDECARLESS_CONFIG_INVALID', message: /snapshot \d+ from test rejected, keeping version \d+:\n {2}- checkout\.split\.0\.service: "nope" is not a mesh service/ });
    assert.equal(r.current, good);
    assert.equal(outbound.get('checkout'), undefined);
    assert.equal(outbound.get('payments')!.endpoints.length, 1, 'the valid half was not applied either');
    assert.deepEqual(calls, ['policy'], 'the bad snapshot\'s policy was not applied');
    assert.match(r.lastRejected!.error, /nope/);
    assert.deepEqual(events.map((e) => e.accepted), [true, false]);
    // A policy the inbound side cannot compile rejects the snapshot before any service changes.
    const uncompilable = snap([svc('payments', { endpoints: ['127.0.0.1:9001', '127.0.0.1:9009'] })], { policy: { rules: new Array(99) } as unknown as Policy });
    assert.throws(() => r.apply(uncompilable), /compile failed/);
    assert.equal(outbound.get('payments')!.endpoints.length, 1);
    r.apply(snap([svc('payments', { endpoints: ['127.0.0.1:9001', '127.0.0.1:9009'] })]));
    assert.equal(r.lastRejected, undefined);
    assert.equal(outbound.get('payments')!.endpoints.length, 2);
  });

  test('pending references are listed until delivered; waiting requests are woken by the change', async () => {
    const { outbound, r, clock } = await rig();
    r.apply(snap([svc('payments', { split: [{ service: 'payments-v2', weight: 1 }] })]));
    assert.deepEqual(r.pending.map((p) => p.missing), ['payments-v2']);
    const woke = outbound.nextChange(10_000);
    r.apply(snap([svc('payments', { split: [{ service: 'payments-v2', weight: 1 }] }), svc('payments-v2', { endpoints: ['127.0.0.1:9001'] })]));
    assert.equal(await woke, true);
    assert.deepEqual(r.pending, []);
    const quiet = outbound.nextChange(500);
    assert.deepEqual(clock.pending().length, 1, 'the wait is one timer on the mesh clock');
    clock.advance(499);
    r.apply({ ...r.current!, version: 'same' });
    assert.equal(await quiet, true, 'any applied snapshot wakes waiters (they re-check what they need)');
    const timesOut = outbound.nextChange(500);
    clock.advance(500);
    assert.equal(await timesOut, false, 'no change within the wait: false, exactly at its end');
    assert.deepEqual(clock.pending(), []);
  });

  test('inbound: the policy is set only when it changed, the mode only when it changed', async () => {
    const { r, calls } = await rig();
    const a = snap([]);
    r.apply(a);
    r.apply({ ...a, version: 'b' });
    r.apply({ ...a, version: 'c', inbound: { ...a.inbound, mode: 'permissive', defaultPolicy: 'all-unauthenticated' } });
    assert.deepEqual(calls, ['policy', 'mode:permissive']);
  });

  test('inbound: a new control-plane policy (meshPolicy) sets both layers together; the same one sets nothing', () => {
    const a = snap([]);
    const mesh = loadPolicy({ rules: [{ name: 'm', action: 'deny', to: [{ paths: ['/x'] }] }] });
    const b = { ...a, version: 'b', inbound: { ...a.inbound, meshPolicy: mesh } };
    assert.equal(diffSnapshots(a, b).policy, true);
    assert.equal(diffSnapshots(b, { ...b, version: 'c' }).policy, false);
    assert.equal(diffSnapshots(b, { ...a, version: 'd' }).policy, true, 'withdrawn');
    const seen: Array<[Policy, Policy | undefined]> = [];
    const r = new Reconciler({ setPolicy: (p, m) => void seen.push([p, m]), setMode() {} }, { upsert() {}, remove() {}, changed() {} });
    r.apply(a);
    r.apply(b);
    r.apply({ ...a, version: 'e' });
    assert.deepEqual(seen, [[a.inbound.policy, undefined], [a.inbound.policy, mesh], [a.inbound.policy, undefined]]);
  });

  test('diffSnapshots costs what changed: one service of 1,000 is one upsert', () => {
    const many = Array.from({ length: 1000 }, (_, i) => svc(`s${i}`, { endpoints: [`10.0.${i % 250}.1:8443`] }));
    const a = snap(many);
    const services = new Map(a.services);
    services.set('s7', { ...many[7]!, endpoints: [] });
    services.delete('s9');
    const d = diffSnapshots(a, { ...a, services });
    assert.deepEqual(d.upserts.map((s) => s.name), ['s7']);
    assert.deepEqual(d.removals, ['s9']);
    assert.equal(d.policy, false);
  });
});
