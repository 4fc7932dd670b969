// One place per event: a decision, an ejection, a rotation or a snapshot application is published
// once on the mesh's bus, and every surface derives from it — exactly one increment each in
// mesh.stats() counters, the Prometheus text, an OpenTelemetry reader — and a third party's
// diagnostics_channel subscriber sees it. Then the same through a real mesh over mTLS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ManualReader } from '../helpers/otel-reader.js';
import { createDevCa, createMesh, type Mesh } from '../../src/index.js';
import { createDevCaSource } from '../../src/sources/dev-ca.js';
import { AuthzCounters, deriveTelemetry, publishRotations } from '../../src/telemetry/derive.js';
import { type AuthzMessage, CHANNELS, MeshEvents } from '../../src/telemetry/events.js';
import { parsePrometheus, renderPrometheus } from '../../src/telemetry/prometheus.js';
import { TrafficStats } from '../../src/telemetry/stats.js';
import { closeServer, listen } from '../helpers/net.js';

const reader = new ManualReader();
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);
after(() => provider.shutdown());

type Point = { attributes: Record<string, unknown>; value: unknown };
/** Sum of the points of instrument `name` whose attributes pass `where` (OTel's view, collected now). */
async function otelSum(name: string, where: (a: Record<string, unknown>) => boolean = () => true): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  let n = 0;
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== name) continue;
      for (const p of m.dataPoints as Point[]) if (where(p.attributes)) n += p.value as number;
    }
  }
  return n;
}

const IDENTITY = { kind: 'dir', spiffeId: 'spiffe://cluster.local/ns/default/sa/payments', state: 'ready', rotations: 0, secondsLeft: 100 } as never;
const HANDSHAKES = { authenticated: 0, unauthenticated: 0, rejected: 0, tlsErrors: 0 };
/** The value of one Prometheus sample (0 when absent). */
function prom(traffic: TrafficStats, name: string, labels: Record<string, string>): number {
  const scrape = parsePrometheus(renderPrometheus({ service: 'payments', traffic, identity: IDENTITY, handshakes: HANDSHAKES, now: Date.now() }));
  const hits = scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(hits.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}`);
  return hits[0]?.value ?? 0;
}

/** Collects what a third party subscribed to `name` receives, until the test ends. */
function listen3p<T>(t: { after(fn: () => void): void }, name: string): T[] {
  const got: T[] = [];
  const fn = (m: unknown) => void got.push(m as T);
  subscribe(name, fn);
  t.after(() => void unsubscribe(name, fn));
  return got;
}

const ORDERS = { id: 'spiffe://cluster.local/ns/default/sa/orders', spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' };
const subject = { peer: ORDERS, sourceIp: '10.0.0.7', method: 'GET', path: '/charge', host: 'payments' };
const allow = { allowed: true, result: 'allow' as const, rule: 'orders-in', action: 'allow', audit: ['watch'] };
const deny = { allowed: false, result: 'deny' as const, rule: 'no-admin', action: 'deny', audit: [] as string[] };

function wired(): { events: MeshEvents; traffic: TrafficStats; authz: AuthzCounters } {
  const events = new MeshEvents('payments');
  const traffic = new TrafficStats();
  deriveTelemetry(events, traffic);
  return { events, traffic, authz: new AuthzCounters(events) };
}

test('a decision: one increment in the stats counters, the Prometheus text and OTel; the channel sees it once', async (t) => {
  const seen = listen3p<AuthzMessage>(t, CHANNELS.authz);
  const { events, traffic, authz } = wired();
  const otelBefore = await otelSum('sidecarless.authz.decisions', (a) => a['sidecarless.authz.rule'] === 'orders-in');
  events.authz(allow, subject);
  assert.deepEqual(authz.stats, { allowed: 1, denied: 0, malformed: 0, byRule: { 'orders-in': { allow: 1, deny: 0, audit: 0 }, watch: { allow: 0, deny: 0, audit: 1 } } });
  assert.deepEqual(traffic.snapshot().authz, [
    { decision: 'allow', rule: 'orders-in', action: 'allow', count: 1 },
    { decision: 'allow', rule: 'watch', action: 'audit', count: 1 },
  ]);
  assert.equal(prom(traffic, 'sidecarless_authz_decisions_total', { decision: 'allow', rule: 'orders-in', action: 'allow' }), 1);
  assert.equal(prom(traffic, 'sidecarless_authz_decisions_total', { decision: 'allow', rule: 'watch', action: 'audit' }), 1);
  assert.equal((await otelSum('sidecarless.authz.decisions', (a) => a['sidecarless.authz.rule'] === 'orders-in')) - otelBefore, 1);
  assert.deepEqual(seen, [
    { mesh: 'payments', result: 'allow', rule: 'orders-in', action: 'allow', audit: ['watch'], peer: ORDERS.spiffeId, sourceIp: '10.0.0.7', method: 'GET', path: '/charge', host: 'payments' },
  ]);

  events.authz(deny, { ...subject, peer: null, path: '/admin' });
  assert.equal(authz.stats.denied, 1);
  assert.equal(authz.stats.allowed, 1);
  assert.equal(prom(traffic, 'sidecarless_authz_decisions_total', { decision: 'deny', rule: 'no-admin' }), 1);
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.peer, null, 'an unauthenticated peer is null, not ""');
});

test('a malformed request: counted as malformed only (not a decision of a rule); the channel says why', async (t) => {
  const seen = listen3p<AuthzMessage>(t, CHANNELS.authz);
  const { events, traffic, authz } = wired();
  events.malformed({ peer: ORDERS, sourceIp: '10.0.0.7', method: 'GET', reason: 'encoded slash in path' });
  assert.deepEqual(authz.stats, { allowed: 0, denied: 0, malformed: 1, byRule: {} });
  assert.deepEqual(traffic.snapshot().authz, []);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.result, 'malformed');
  assert.equal(seen[0]!.reason, 'encoded slash in path');
});

test('an ejection: one increment in traffic stats, Prometheus and OTel; the channel sees it', async (t) => {
  const seen = listen3p(t, CHANNELS.ejection);
  const { events, traffic } = wired();
  const where = (a: Record<string, unknown>) => a['sidecarless.service'] === 'ledger-ej' && a['sidecarless.endpoint'] === '127.0.0.1:9001';
  const before = await otelSum('sidecarless.endpoint.ejections', where);
  events.ejection({ service: 'ledger-ej', endpoint: '127.0.0.1:9001', key: '127.0.0.1:9001 spiffe://cluster.local/ns/default/sa/ledger', penaltyMs: 1000 });
  assert.deepEqual(traffic.snapshot().ejections, { 'ledger-ej': { '127.0.0.1:9001': 1 } });
  assert.equal(prom(traffic, 'sidecarless_endpoint_ejections_total', { service: 'ledger-ej', endpoint: '127.0.0.1:9001' }), 1);
  assert.equal((await otelSum('sidecarless.endpoint.ejections', where)) - before, 1);
  assert.deepEqual(seen, [{ mesh: 'payments', service: 'ledger-ej', endpoint: '127.0.0.1:9001', key: '127.0.0.1:9001 spiffe://cluster.local/ns/default/sa/ledger', penaltyMs: 1000 }]);
});

test('a snapshot application: accepted and rejected counted apart in stats, Prometheus and OTel; the channel sees both', async (t) => {
  const seen = listen3p(t, CHANNELS.snapshot);
  const { events, traffic } = wired();
  const where = (result: string) => (a: Record<string, unknown>) => a['sidecarless.snapshot.source'] === 'test-xds' && a['sidecarless.snapshot.result'] === result;
  events.snapshot({ version: '7', source: 'test-xds', services: 3, result: 'accepted' });
  events.snapshot({ version: '8', source: 'test-xds', services: 3, result: 'rejected', error: 'split of payments names "payments-v3", not a service' });
  assert.deepEqual(traffic.snapshot().snapshots, { 'test-xds': { accepted: 1, rejected: 1 } });
  assert.equal(prom(traffic, 'sidecarless_snapshot_applications_total', { source: 'test-xds', result: 'accepted' }), 1);
  assert.equal(prom(traffic, 'sidecarless_snapshot_applications_total', { source: 'test-xds', result: 'rejected' }), 1);
  assert.equal(await otelSum('sidecarless.snapshot.applications', where('accepted')), 1);
  assert.equal(await otelSum('sidecarless.snapshot.applications', where('rejected')), 1);
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[1], { mesh: 'payments', version: '8', source: 'test-xds', services: 3, result: 'rejected', error: 'split of payments names "payments-v3", not a service' });
});

test('rotations of a real source: one event per rotation, one OTel increment each; the channel sees them', async (t) => {
  const seen = listen3p<{ mesh: string; spiffeId: string; rotations: number }>(t, CHANNELS.rotation);
  const ca = await createDevCa();
  const spiffeId = 'spiffe://cluster.local/ns/default/sa/rotator';
  const source = await createDevCaSource({ ca, spiffeId });
  t.after(() => source.close());
  const events = new MeshEvents('rotator');
  deriveTelemetry(events, new TrafficStats());
  const off = publishRotations(source, events, spiffeId);
  const where = (a: Record<string, unknown>) => a['sidecarless.spiffe_id'] === spiffeId;
  const before = await otelSum('sidecarless.identity.rotations', where);
  await source.rotate();
  await source.rotate();
  assert.equal(source.status().rotations, 2);
  assert.equal((await otelSum('sidecarless.identity.rotations', where)) - before, 2);
  assert.deepEqual(seen, [
    { mesh: 'rotator', spiffeId, rotations: 1 },
    { mesh: 'rotator', spiffeId, rotations: 2 },
  ]);
  off();
  await source.rotate();
  assert.equal(seen.length, 2, 'unsubscribed: no more events');
});

test('the bus: listeners in order, unsubscribe once and for good, a listener added while publishing waits for the next event', () => {
  const events = new MeshEvents('m');
  const calls: string[] = [];
  const offA = events.on('ejection', () => {
    calls.push('a');
    events.on('ejection', () => calls.push('late'));
  });
  const offB = events.on('ejection', () => calls.push('b'));
  const e = { service: 's', endpoint: 'h:1', key: 'h:1', penaltyMs: 1 };
  events.ejection(e);
  assert.deepEqual(calls, ['a', 'b']);
  offA();
  offA(); // twice: no effect on the others
  events.ejection(e);
  assert.deepEqual(calls, ['a', 'b', 'b', 'late']);
  offB();
  assert.throws(() => events.on('nope' as 'authz', () => {}), /unknown mesh event "nope"; one of authz, malformed, ejection, rotation, snapshot/);
  assert.throws(() => events.on('authz', 42 as never), /must be a function/);
});

test('no channel subscriber: no message is built (publishing is a property read)', () => {
  const events = new MeshEvents('m');
  let reads = 0;
  // A decision whose fields count their reads: the bus's own listeners read none here, so any read is the channel message.
  const counting = new Proxy(allow, { get: (o, k) => (reads++, o[k as keyof typeof o]) });
  events.authz(counting, subject);
  assert.equal(reads, 0);
  const fn = () => {};
  subscribe(CHANNELS.authz, fn);
  try {
    events.authz(counting, subject);
  } finally {
    unsubscribe(CHANNELS.authz, fn);
  }
  assert.ok(reads > 0);
});

test('through a real mesh over mTLS: each request is one message on the channel and one count in stats and /metrics', async (t) => {
  const seen = listen3p<AuthzMessage>(t, CHANNELS.authz);
  const ca = await createDevCa();
  const quiet = { info() {}, warn() {}, error() {} };
  const payments: Mesh = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] }, audit: () => {} },
  });
  t.after(() => payments.close());
  const server = payments.createServer((_req, res) => res.end('ok'));
  const port = await listen(server);
  t.after(() => closeServer(server));
  const orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  t.after(() => orders.close());
  assert.equal((await orders.fetch('http://payments/charge')).status, 200);
  assert.equal((await orders.fetch('http://payments/admin')).status, 403);
  const mine = seen.filter((m) => m.mesh === 'payments');
  assert.deepEqual(mine.map((m) => [m.result, m.rule, m.path, m.peer]), [
    ['allow', 'default:all-authenticated', '/charge', 'spiffe://cluster.local/ns/default/sa/orders'],
    ['deny', 'no-admin', '/admin', 'spiffe://cluster.local/ns/default/sa/orders'],
  ]);
  const s = payments.stats();
  assert.equal(s.inbound.authz.allowed, 1);
  assert.equal(s.inbound.authz.denied, 1);
  assert.deepEqual(s.traffic.authz.map((e) => [e.decision, e.rule, e.count]), [
    ['allow', 'default:all-authenticated', 1],
    ['deny', 'no-admin', 1],
  ]);
  const a = payments.admin!.address();
  const scrape = parsePrometheus(await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text());
  const decisions = scrape.samples.filter((x) => x.name === 'sidecarless_authz_decisions_total');
  assert.deepEqual(decisions.map((x) => [x.labels.decision, x.labels.rule, x.value]), [
    ['allow', 'default:all-authenticated', 1],
    ['deny', 'no-admin', 1],
  ]);
});
