// telemetry: { dialect: 'istio' }: /metrics also serves Istio's standard metrics, with Istio's
// labels, for a real mesh pair over mTLS; inbound reports as destination, outbound as source.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createDevCa, createMesh, type DevCa, type Mesh } from '../../src/index.js';
import { ConfigError } from '../../src/errors.js';
import { resolveConfig } from '../../src/config.js';
import { ISTIO_BUCKETS, IstioStats, MAX_ISTIO_SERIES, istioWorkload } from '../../src/telemetry/istio.js';
import { type PromSample, parsePrometheus, renderPrometheus } from '../../src/telemetry/prometheus.js';
import { TrafficStats } from '../../src/telemetry/stats.js';
import { closeServer, listen } from '../helpers/net.js';

const quiet = { info() {}, warn() {}, error() {} };
const meshes: Mesh[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
  for (const m of meshes) await m.close().catch(() => {});
});

let ca: DevCa;
let payments: Mesh;
let orders: Mesh;
let plain: Mesh;

const BODY = 'x'.repeat(100);

before(async () => {
  ca = await createDevCa();
  payments = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    labels: { app: 'payments', version: 'v2', 'service.istio.io/canonical-name': 'payments-canon', 'service.istio.io/canonical-revision': 'r7' },
    telemetry: { dialect: 'istio', cluster: 'east' },
    inbound: { policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] }, audit: () => {} },
  });
  meshes.push(payments);
  const server = payments.createServer((req, res) => {
    if (req.url !== '/hang') res.end('ok'); // /hang: never answered (the client gives up)
  });
  cleanups.unshift(() => closeServer(server));
  const port = await listen(server);
  orders = await createMesh({
    service: 'orders',
    namespace: 'shop',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    telemetry: { dialect: 'istio' },
    outbound: { services: { payments: { namespace: 'default', endpoints: [`127.0.0.1:${port}`] } } },
  });
  meshes.push(orders);
  plain = await createMesh({ service: 'plain', identity: { ca }, logger: quiet, admin: { port: 0 }, outbound: { services: { payments: { namespace: 'default', endpoints: [`127.0.0.1:${port}`] } } } });
  meshes.push(plain);
  for (let i = 0; i < 5; i++) assert.equal(await (await orders.fetch('http://payments/charge', { method: 'POST', body: BODY })).text(), 'ok');
  const denied = await orders.fetch('http://payments/admin');
  assert.equal(denied.status, 403);
  await denied.text();
  await (await plain.fetch('http://payments/charge')).text();
});

async function scrape(m: Mesh): Promise<{ text: string; samples: PromSample[]; types: ReadonlyMap<string, string> }> {
  const r = await fetch(`http://127.0.0.1:${m.admin!.address().port}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  const { samples, types } = parsePrometheus(text);
  return { text, samples, types };
}

const find = (samples: PromSample[], name: string, want: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));

const LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version', 'source_canonical_service',
  'source_canonical_revision', 'source_cluster', 'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app',
  'destination_version', 'destination_service', 'destination_service_name', 'destination_service_namespace', 'destination_canonical_service',
  'destination_canonical_revision', 'destination_cluster', 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
].sort();

/** Each histogram series: buckets cumulative, the +Inf bucket equals _count, which equals istio_requests_total. */
function assertHistograms(samples: PromSample[]): void {
  const totals = samples.filter((s) => s.name === 'istio_requests_total');
  assert.ok(totals.length > 0);
  const key = (s: PromSample) => LABELS.map((k) => s.labels[k]).join('\u0000');
  for (const h of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) {
    const by = new Map<string, { buckets: PromSample[]; count?: number; sum?: number }>();
    const of = (s: PromSample) => by.get(key(s)) ?? by.set(key(s), { buckets: [] }).get(key(s))!;
    for (const s of samples) {
      if (s.name === `${h}_bucket`) of(s).buckets.push(s);
      else if (s.name === `${h}_count`) of(s).count = s.value;
      else if (s.name === `${h}_sum`) of(s).sum = s.value;
    }
    assert.equal(by.size, totals.length, h);
    for (const t of totals) {
      const e = by.get(key(t))!;
      assert.deepEqual(e.buckets.map((b) => b.labels.le), [...ISTIO_BUCKETS.map(String), '+Inf'], h);
      for (let i = 1; i < e.buckets.length; i++) assert.ok(e.buckets[i]!.value >= e.buckets[i - 1]!.value, `${h} buckets cumulative`);
      assert.equal(e.buckets.at(-1)!.value, e.count);
      assert.equal(e.count, t.value);
      assert.ok(e.sum! >= 0);
    }
  }
}

test('inbound: reporter=destination, Istio labels from the SPIFFE ID and the mesh options; a denial is counted as 403', async () => {
  const { samples, types } = await scrape(payments);
  assert.equal(types.get('istio_requests_total'), 'counter');
  for (const h of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) assert.equal(types.get(h), 'histogram');
  const ok = find(samples, 'istio_requests_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/shop/sa/orders', response_code: '200' });
  assert.equal(ok.length, 1);
  assert.equal(ok[0]!.value, 5);
  assert.deepEqual(Object.keys(ok[0]!.labels).sort(), LABELS);
  assert.deepEqual(ok[0]!.labels, {
    reporter: 'destination',
    source_workload: 'unknown',
    source_workload_namespace: 'shop',
    source_principal: 'spiffe://cluster.local/ns/shop/sa/orders',
    source_app: 'unknown',
    source_version: 'unknown',
    source_canonical_service: 'unknown',
    source_canonical_revision: 'unknown',
    source_cluster: 'unknown',
    destination_workload: 'payments',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/payments',
    destination_app: 'payments',
    destination_version: 'v2',
    destination_service: 'payments.default.svc.cluster.local',
    destination_service_name: 'payments',
    destination_service_namespace: 'default',
    destination_canonical_service: 'payments-canon',
    destination_canonical_revision: 'r7',
    destination_cluster: 'east',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });
  const denied = find(samples, 'istio_requests_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/shop/sa/orders', response_code: '403' });
  assert.equal(denied.length, 1);
  assert.equal(denied[0]!.value, 1);
  // The plain mesh (no dialect) is a client too: its requests are counted here, by the server.
  assert.equal(find(samples, 'istio_requests_total', { source_principal: 'spiffe://cluster.local/ns/default/sa/plain' })[0]!.value, 1);
  assert.equal(find(samples, 'istio_requests_total', { reporter: 'source' }).length, 0, 'payments made no outbound request');
  const reqBytes = find(samples, 'istio_request_bytes_sum', { source_principal: 'spiffe://cluster.local/ns/shop/sa/orders', response_code: '200' });
  assert.equal(reqBytes[0]!.value, 5 * BODY.length);
  const resBytes = find(samples, 'istio_response_bytes_sum', { source_principal: 'spiffe://cluster.local/ns/shop/sa/orders', response_code: '200' });
  assert.equal(resBytes[0]!.value, 5 * 'ok'.length);
  // 100 bytes fall in the (25, 100] bucket's cumulative count and not below.
  const le = (v: string) => find(samples, 'istio_request_bytes_bucket', { response_code: '200', source_workload_namespace: 'shop', le: v })[0]!.value;
  assert.equal(le('50'), 0);
  assert.equal(le('100'), 5);
  assertHistograms(samples);
});

test('outbound: reporter=source, this workload as the source, the destination from the service and its verified identity', async () => {
  const { samples } = await scrape(orders);
  const ok = find(samples, 'istio_requests_total', { reporter: 'source', response_code: '200' });
  assert.equal(ok.length, 1);
  assert.equal(ok[0]!.value, 5);
  assert.deepEqual(Object.keys(ok[0]!.labels).sort(), LABELS);
  const l = ok[0]!.labels;
  assert.equal(l.source_workload, 'orders');
  assert.equal(l.source_workload_namespace, 'shop');
  assert.equal(l.source_principal, 'spiffe://cluster.local/ns/shop/sa/orders');
  assert.equal(l.source_canonical_service, 'orders'); // no labels: the workload name
  assert.equal(l.source_canonical_revision, 'latest');
  assert.equal(l.source_app, 'unknown');
  assert.equal(l.source_cluster, 'unknown');
  assert.equal(l.destination_principal, 'spiffe://cluster.local/ns/default/sa/payments');
  assert.equal(l.destination_workload_namespace, 'default');
  assert.equal(l.destination_workload, 'unknown');
  assert.equal(l.destination_service, 'payments.default.svc.cluster.local');
  assert.equal(l.destination_service_name, 'payments');
  assert.equal(l.destination_service_namespace, 'default');
  assert.equal(l.connection_security_policy, 'unknown');
  assert.equal(l.response_flags, '-');
  assert.equal(find(samples, 'istio_requests_total', { reporter: 'source', response_code: '403' })[0]!.value, 1);
  assert.equal(find(samples, 'istio_request_bytes_sum', { reporter: 'source', response_code: '200' })[0]!.value, 5 * BODY.length);
  assert.equal(find(samples, 'istio_response_bytes_sum', { reporter: 'source', response_code: '200' })[0]!.value, 5 * 'ok'.length);
  const denied403Bytes = find(samples, 'istio_response_bytes_sum', { reporter: 'source', response_code: '403' })[0]!.value;
  assert.ok(denied403Bytes > 0, 'the 403 body was counted as it passed');
  assert.equal(find(samples, 'istio_requests_total', { reporter: 'destination' }).length, 0);
  assertHistograms(samples);
});

test('without the option no istio_* family is served (the golden signals are)', async () => {
  const { text, samples } = await scrape(plain);
  assert.doesNotMatch(text, /istio_/);
  assert.ok(samples.some((s) => s.name === 'sidecarless_requests_total'));
});

test('a request with no response: response_code 0 and Envoy\'s UF flag outbound', async () => {
  const m = await createMesh({
    service: 'lonely',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    telemetry: { dialect: 'istio' },
    outbound: { services: { ledger: { endpoints: ['127.0.0.1:9'], retry: { maxRetries: 0 } } } },
  });
  meshes.push(m);
  await assert.rejects(m.fetch('http://ledger/x'));
  const { samples } = await scrape(m);
  const s = find(samples, 'istio_requests_total', { reporter: 'source', destination_service_name: 'ledger' });
  assert.equal(s.length, 1);
  assert.equal(s[0]!.labels.response_code, '0');
  assert.equal(s[0]!.labels.response_flags, 'UF');
  assertHistograms(samples);
});

test('series cap: past MAX_ISTIO_SERIES new label sets fold into one _other series per direction; the text still parses', () => {
  const istio = new IstioStats(istioWorkload({ service: 'svc', namespace: 'default', spiffeId: 'spiffe://cluster.local/ns/default/sa/svc', labels: {}, cluster: 'unknown' }));
  const t = new TrafficStats(istio);
  for (let i = 0; i < MAX_ISTIO_SERIES + 500; i++) istio.record('inbound', 'svc', '', `spiffe://cluster.local/ns/n${i}/sa/a`, 200, 'http', '-', 3, 0, 0);
  istio.record('outbound', 'other', 'default', 'spiffe://cluster.local/ns/default/sa/other', 503, 'http', '-', 3, 0, 0);
  const all = [...istio.allSeries()];
  assert.equal(all.length, MAX_ISTIO_SERIES + 2); // the cap, the inbound _other and the outbound one
  const other = all.filter((s) => s.peer === '_other');
  assert.equal(other.length, 2);
  assert.equal(other.find((s) => s.direction === 'inbound')!.count, 500);
  const text = renderPrometheus({
    service: 'svc',
    traffic: t,
    identity: { kind: 'dir', state: 'ready', rotations: 0 } as never,
    handshakes: { authenticated: 0, unauthenticated: 0, rejected: 0, tlsErrors: 0 },
    now: Date.now(),
  });
  const lines = text.split('\n');
  // Every line of the istio_* families parses (the counter whole; the histograms' lines of the folded series).
  const { samples } = parsePrometheus(lines.filter((l) => l.startsWith('# ') || l.startsWith('istio_requests_total{') || l.includes('source_principal="_other"')).join('\n'));
  const folded = find(samples, 'istio_requests_total', { reporter: 'destination', source_principal: '_other' });
  assert.equal(folded.length, 1);
  assert.equal(folded[0]!.value, 500);
  assert.equal(folded[0]!.labels.response_code, '_other');
  assert.equal(folded[0]!.labels.destination_service_name, 'svc');
  assert.equal(find(samples, 'istio_request_duration_milliseconds_count', { reporter: 'destination', source_principal: '_other' })[0]!.value, 500);
  assert.equal(samples.filter((s) => s.name === 'istio_requests_total').length, MAX_ISTIO_SERIES + 2);
  for (const h of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) {
    assert.equal(lines.filter((l) => l.startsWith(`${h}_bucket{`)).length, (MAX_ISTIO_SERIES + 2) * (ISTIO_BUCKETS.length + 1), h);
  }
});

test('telemetry options: strict, named paths, sidecarless by default', () => {
  assert.equal(resolveConfig({ service: 'a' }, {}).telemetry.dialect, 'sidecarless');
  assert.equal(resolveConfig({ service: 'a', telemetry: {} }, {}).telemetry.cluster, 'unknown');
  for (const [bad, path] of [
    [{ dialect: 'envoy' }, 'telemetry.dialect'],
    [{ dialct: 'istio' }, 'telemetry'],
    [{ cluster: 'a b' }, 'telemetry.cluster'],
    ['istio', 'telemetry'],
  ] as const) {
    assert.throws(() => resolveConfig({ service: 'a', telemetry: bad as never }, {}), (e: unknown) => e instanceof ConfigError && e.message.includes(path), JSON.stringify(bad));
  }
});

test('labels: an unauthenticated peer is unknown with connection_security_policy none; label values from options are escaped', () => {
  const me = istioWorkload({ service: 'svc', namespace: 'ns1', spiffeId: 'spiffe://td/ns/ns1/sa/svc', labels: { app: 'a"b\nc\\', 'app.kubernetes.io/version': '1.2' }, cluster: 'c1' });
  assert.equal(me.canonicalService, 'a"b\nc\\'); // no canonical-name nor app.kubernetes.io/name: the app label
  assert.equal(me.canonicalRevision, '1.2');
  const istio = new IstioStats(me);
  istio.record('inbound', 'svc', '', '', 200, 'http', '-', 1, 0, 0);
  istio.record('inbound', 'svc', '', 'spiffe://other.td/custom/path', 500, 'grpc', 'DC', 1, 0, 0);
  const [anon, odd] = [...istio.allSeries()].map((s) => istio.labels(s));
  assert.equal(anon!.source_principal, 'unknown');
  assert.equal(anon!.source_workload_namespace, 'unknown');
  assert.equal(anon!.connection_security_policy, 'none');
  assert.equal(odd!.source_principal, 'spiffe://other.td/custom/path');
  assert.equal(odd!.source_workload_namespace, 'unknown'); // not an /ns/<ns>/sa/<sa> ID
  assert.equal(odd!.connection_security_policy, 'mutual_tls');
  const text = renderPrometheus({
    service: 'svc',
    traffic: new TrafficStats(istio),
    identity: { kind: 'dir', state: 'ready', rotations: 0 } as never,
    handshakes: { authenticated: 0, unauthenticated: 0, rejected: 0, tlsErrors: 0 },
    now: Date.now(),
  });
  const { samples } = parsePrometheus(text);
  const s = find(samples, 'istio_requests_total', { response_code: '500' });
  assert.equal(s.length, 1);
  assert.equal(s[0]!.labels.destination_app, 'a"b\nc\\');
  assert.equal(s[0]!.labels.request_protocol, 'grpc');
  assert.equal(s[0]!.labels.response_flags, 'DC');
  assertHistograms(samples);
});

test('inbound: a client that goes away before the answer is counted with response_code 0 and Envoy\'s DC flag', async () => {
  await assert.rejects(orders.fetch('http://payments/hang', { signal: AbortSignal.timeout(200) }));
  const deadline = Date.now() + 5000;
  for (;;) {
    const { samples } = await scrape(payments);
    const s = find(samples, 'istio_requests_total', { reporter: 'destination', response_code: '0' });
    if (s.length === 1) {
      assert.equal(s[0]!.labels.response_flags, 'DC');
      assert.equal(s[0]!.labels.source_principal, 'spiffe://cluster.local/ns/shop/sa/orders');
      assert.equal(s[0]!.value, 1);
      assertHistograms(samples);
      break;
    }
    assert.ok(Date.now() < deadline, 'the aborted request was never counted');
    await new Promise((r) => setTimeout(r, 50));
  }
});
