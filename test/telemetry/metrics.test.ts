// OpenTelemetry metrics after real mTLS traffic, read through the SDK (@opentelemetry/sdk-metrics)
// with a MetricReader collected by hand: every instrument, its unit, its attributes and exact counts.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { metrics } from '@opentelemetry/api';
import { DataPointType, MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import { ManualReader } from '../helpers/otel-reader.js';
import { createDevCa, createMesh, type DevCa, type Mesh } from '../../src/index.js';
import { HTTP_DURATION_BUCKETS } from '../../src/telemetry/stats.js';
import { closeServer, listen, waitFor } from '../helpers/net.js';

const reader = new ManualReader();
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);

const quiet = { info() {}, warn() {}, error() {} };
const PAYMENTS = 'spiffe://cluster.local/ns/default/sa/payments';
const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';
const meshes: Mesh[] = [];
const closers: Array<() => Promise<void>> = [];
let ca: DevCa;

after(async () => {
  for (const c of closers) await c();
  for (const m of meshes) await m.close();
  await provider.shutdown();
});

async function server(status: number): Promise<{ mesh: Mesh; port: number }> {
  const mesh = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } }] }, audit: () => {} },
  });
  meshes.push(mesh);
  const s = mesh.createServer((_req, res) => {
    res.statusCode = status;
    res.end(status === 200 ? 'ok' : 'unavailable');
  });
  closers.push(() => closeServer(s));
  return { mesh, port: await listen(s) };
}

async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  const out = new Map<string, MetricData>();
  for (const sm of resourceMetrics.scopeMetrics) {
    if (sm.scope.name !== 'sidecarless') continue;
    assert.equal(sm.scope.version, '0.1.0');
    for (const m of sm.metrics) out.set(m.descriptor.name, m);
  }
  return out;
}

type Point = { attributes: Record<string, unknown>; value: unknown };
const points = (m: MetricData | undefined): Point[] => (m ? (m.dataPoints as unknown as Point[]) : []);
const sum = (ps: Point[], where: (a: Record<string, unknown>) => boolean) =>
  ps.filter((p) => where(p.attributes)).reduce((n, p) => n + (typeof p.value === 'number' ? p.value : (p.value as { count: number }).count), 0);

let okPort = 0;
let badPort = 0;
let orders: Mesh;
let ok: Mesh;
let rotating: Mesh;

before(async () => {
  ca = await createDevCa();
  ({ mesh: ok, port: okPort } = await server(200));
  ({ port: badPort } = await server(503));
  orders = await createMesh({
    service: 'orders',
    identity: { ca },
    logger: quiet,
    outbound: {
      services: {
        payments: { endpoints: [`127.0.0.1:${okPort}`] },
        // Always 503: 1 try + 2 retries per request.
        flaky: { identity: PAYMENTS, endpoints: [`127.0.0.1:${badPort}`], retry: { maxRetries: 2, backoff: { base: '1ms', max: '2ms' } } },
        // No budget at all: every retry refused.
        stingy: { identity: PAYMENTS, endpoints: [`127.0.0.1:${badPort}`], retry: { budget: { retryRatio: 0, minRetriesPerSecond: 0 } } },
        // One failure ejects the 503 endpoint.
        mixed: { identity: PAYMENTS, endpoints: [`127.0.0.1:${okPort}`, `127.0.0.1:${badPort}`], retry: false, failureAccrual: { consecutiveFailures: 1 } },
      },
    },
  });
  meshes.push(orders);
  rotating = await createMesh({ service: 'rotating', identity: { ca, ttl: '2s' }, logger: quiet });
  meshes.push(rotating);
});

test('every instrument has its name, unit and attributes, and counts equal the requests made', async () => {
  for (let i = 0; i < 20; i++) assert.equal((await orders.fetch('http://payments/charge', { method: 'POST', body: '{}' })).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await orders.fetch('http://payments/admin/refund')).status, 403);
  for (let i = 0; i < 2; i++) assert.equal((await orders.fetch('http://flaky/x')).status, 503);
  for (let i = 0; i < 3; i++) assert.equal((await orders.fetch('http://stingy/x')).status, 503);
  let mixedCalls = 0;
  for (; mixedCalls < 50 && orders.stats().outbound.services.mixed!.ejections === 0; mixedCalls++) await (await orders.fetch('http://mixed/x')).text();
  assert.ok(orders.stats().outbound.services.mixed!.ejections >= 1, 'the 503 endpoint was ejected');
  await waitFor(() => rotating.identity.status().rotations >= 1, 5_000, 'a rotation');

  const m = await collect();
  const names = [
    'http.server.request.duration',
    'http.client.request.duration',
    'http.server.active_requests',
    'http.client.active_requests',
    'sidecarless.authz.decisions',
    'sidecarless.retries',
    'sidecarless.retry_budget.exhausted',
    'sidecarless.endpoint.ejections',
    'sidecarless.identity.expiry',
    'sidecarless.identity.rotations',
  ];
  for (const n of names) assert.ok(m.has(n), `${n} is exported; got ${[...m.keys()].join(', ')}`);

  // Durations: histograms in seconds, with the HTTP semantic-convention buckets.
  for (const n of ['http.server.request.duration', 'http.client.request.duration']) {
    const d = m.get(n)!;
    assert.equal(d.descriptor.unit, 's');
    assert.equal(d.dataPointType, DataPointType.HISTOGRAM);
    for (const p of d.dataPoints as Array<{ value: { buckets: { boundaries: number[] } } }>) assert.deepEqual(p.value.buckets.boundaries, [...HTTP_DURATION_BUCKETS]);
  }
  const server = points(m.get('http.server.request.duration'));
  const okServer = (a: Record<string, unknown>) => a['server.port'] === okPort;
  assert.equal(sum(server, (a) => okServer(a) && a['http.response.status_code'] === 200), 20 + (mixedCalls - sumMixedBad(mixedCalls)));
  assert.equal(sum(server, (a) => okServer(a) && a['http.response.status_code'] === 403), 3);
  const s200 = server.find((p) => okServer(p.attributes) && p.attributes['http.request.method'] === 'POST')!;
  assert.deepEqual(s200.attributes, {
    'http.request.method': 'POST',
    'url.scheme': 'https',
    'server.address': '127.0.0.1',
    'server.port': okPort,
    'sidecarless.service': 'payments',
    'sidecarless.tls': 'mtls',
    'sidecarless.peer.spiffe_id': ORDERS,
    'http.response.status_code': 200,
  });
  // The 503 replica: error.type is the status.
  const bad = server.filter((p) => p.attributes['server.port'] === badPort);
  assert.ok(bad.every((p) => p.attributes['error.type'] === '503'));

  const client = points(m.get('http.client.request.duration'));
  assert.equal(sum(client, (a) => a['sidecarless.service'] === 'payments' && a['http.response.status_code'] === 200), 20);
  assert.equal(sum(client, (a) => a['sidecarless.service'] === 'payments' && a['http.response.status_code'] === 403), 3);
  assert.equal(sum(client, (a) => a['sidecarless.service'] === 'flaky'), 2, 'one logical request each, whatever the tries');
  const c200 = client.find((p) => p.attributes['sidecarless.service'] === 'payments' && p.attributes['http.response.status_code'] === 200)!;
  assert.deepEqual(c200.attributes, {
    'http.request.method': 'POST',
    'url.scheme': 'https',
    'server.address': 'payments',
    'server.port': 80,
    'sidecarless.service': 'payments',
    'sidecarless.tls': 'mtls',
    'sidecarless.peer.spiffe_id': PAYMENTS,
    'http.response.status_code': 200,
  });
  const flaky = client.find((p) => p.attributes['sidecarless.service'] === 'flaky')!;
  assert.equal(flaky.attributes['error.type'], '503');
  assert.equal(flaky.attributes['http.response.status_code'], 503);

  // Active requests: up-down counters back at zero.
  for (const n of ['http.server.active_requests', 'http.client.active_requests']) {
    assert.equal(m.get(n)!.descriptor.unit, '{request}');
    assert.ok(points(m.get(n)).length > 0);
    for (const p of points(m.get(n))) assert.equal(p.value, 0, `${n} ${JSON.stringify(p.attributes)}`);
  }

  // Authorization: 3 denials by the rule; allows = every other request that reached a server.
  const authz = points(m.get('sidecarless.authz.decisions'));
  assert.equal(sum(authz, (a) => a['sidecarless.authz.decision'] === 'deny' && a['sidecarless.authz.rule'] === 'no-admin' && a['sidecarless.authz.action'] === 'deny'), 3);
  assert.equal(sum(authz, (a) => a['sidecarless.authz.decision'] === 'allow'), sum(server, (a) => a['http.response.status_code'] !== 403));

  // Retries: 2 per flaky request, for its 503s; none for stingy (budget), which shows as exhausted.
  const retries = points(m.get('sidecarless.retries'));
  assert.equal(m.get('sidecarless.retries')!.descriptor.unit, '{retry}');
  assert.equal(sum(retries, (a) => a['sidecarless.service'] === 'flaky' && a['sidecarless.retry.reason'] === '503'), 4);
  assert.equal(sum(retries, (a) => a['sidecarless.service'] === 'stingy'), 0);
  assert.equal(sum(points(m.get('sidecarless.retry_budget.exhausted')), (a) => a['sidecarless.service'] === 'stingy'), 3);

  const ej = points(m.get('sidecarless.endpoint.ejections'));
  assert.equal(sum(ej, (a) => a['sidecarless.service'] === 'mixed' && a['sidecarless.endpoint'] === `127.0.0.1:${badPort}`), orders.stats().outbound.services.mixed!.ejections);

  const expiry = points(m.get('sidecarless.identity.expiry'));
  assert.equal(m.get('sidecarless.identity.expiry')!.descriptor.unit, 's');
  const ordersExpiry = expiry.find((p) => p.attributes['sidecarless.spiffe_id'] === ORDERS)!;
  assert.ok((ordersExpiry.value as number) > 3000 && (ordersExpiry.value as number) <= 3600, String(ordersExpiry.value));
  assert.equal(ordersExpiry.attributes['sidecarless.service'], 'orders');

  const rot = points(m.get('sidecarless.identity.rotations'));
  assert.equal(sum(rot, (a) => a['sidecarless.spiffe_id'] === 'spiffe://cluster.local/ns/default/sa/rotating'), rotating.identity.status().rotations);

  // The mesh's own golden signals agree, without any SDK.
  const inbound = ok.stats().traffic.series.find((s) => s.direction === 'inbound' && s.peer === ORDERS)!;
  assert.equal(inbound.byClass['4xx'], 3);
  assert.equal(inbound.denials, 3);
  const out = orders.stats().traffic;
  const flakySeries = out.series.find((s) => s.service === 'flaky')!;
  assert.deepEqual(flakySeries.retries, { '503': 4 });
  assert.equal(flakySeries.byClass['5xx'], 2);
  assert.equal(out.retryBudgetExhausted.stingy, 3);
});

/** How many of the `mixed` calls went to the 503 replica: the rest reached the ok one. */
function sumMixedBad(_calls: number): number {
  const s = orders.stats().traffic.series.find((x) => x.service === 'mixed');
  return s ? s.byClass['5xx'] : 0;
}

test('with no MeterProvider the instruments are not created, and recording costs next to nothing', async () => {
  const { instruments } = await import('../../src/telemetry/instruments.js');
  assert.ok(instruments(), 'a provider is registered in this file');
  metrics.disable();
  assert.equal(instruments(), undefined);
  const t0 = performance.now();
  for (let i = 0; i < 1_000_000; i++) instruments();
  const perCallNs = ((performance.now() - t0) * 1e6) / 1_000_000;
  assert.ok(perCallNs < 200, `${perCallNs.toFixed(1)} ns per check`);
  // Traffic still works and still counts in the mesh's own stats.
  const before = ok.stats().traffic.series.find((s) => s.direction === 'inbound')!.requests;
  assert.equal((await orders.fetch('http://payments/charge', { method: 'POST' })).status, 200);
  assert.equal(ok.stats().traffic.series.find((s) => s.direction === 'inbound')!.requests, before + 1);
  metrics.setGlobalMeterProvider(provider);
});
