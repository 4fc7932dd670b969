// telemetry: { dialect: 'linkerd' }: /metrics also serves linkerd2-proxy's request_total,
// response_total and response_latency_ms, with its labels, bucket bounds and classification, for a
// real mesh pair over mTLS (mesh.fetch → mesh server), a client without a certificate (permissive),
// and real grpc-js calls through mesh.grpc (gRPC non-OK classified as linkerd2-proxy does).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { createDevCa, createMesh, type DevCa, type Mesh } from '../../src/index.js';
import { resolveConfig } from '../../src/config.js';
import { fastConfig } from '../../src/config/fast.js';
import { LINKERD_GRPC_FAILURES, LINKERD_LATENCY_BUCKETS, LinkerdStats, MAX_LINKERD_TARGETS, dstLabels, linkerdWorkloadLabels, socketAddr, splitAddress } from '../../src/telemetry/linkerd.js';
import { type PromSample, parsePrometheus, renderPrometheus } from '../../src/telemetry/prometheus.js';
import { TrafficStats } from '../../src/telemetry/stats.js';
import { peerName } from '../../src/telemetry/peer-name.js';
import { PAY, grpc, payClient, unary } from '../grpc/helpers.js';
import { closeServer, listen } from '../helpers/net.js';

const quiet = { info() {}, warn() {}, error() {} };
const meshes: Mesh[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups) await c();
  for (const m of meshes) await m.close().catch(() => {});
});

const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
const PAYMENTS = 'spiffe://cluster.local/ns/default/sa/payments';
const NAMES = ['request_total', 'response_total', 'response_latency_ms'];

let ca: DevCa;
let payments: Mesh;
let orders: Mesh;
let plain: Mesh;
let port: number;
let grpcPort: number;

before(async () => {
  ca = await createDevCa();
  payments = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    grpc,
    labels: { app: 'payments', 'linkerd.io/proxy-deployment': 'payments', 'linkerd.io/control-plane-ns': 'linkerd' },
    telemetry: { dialect: 'linkerd' },
    inbound: { mode: 'permissive' },
  });
  meshes.push(payments);
  const server = payments.createServer((req, res) => {
    if (req.url === '/fail') res.statusCode = 503;
    res.end('ok');
  });
  cleanups.unshift(() => closeServer(server));
  port = await listen(server);
  // gRPC: Charge OK, Refund INTERNAL (a failure for Linkerd), Watch unused; a NOT_FOUND is a success.
  const g = new grpc.Server({ interceptors: [payments.grpc.interceptor()] });
  g.addService(PAY, {
    Charge: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      call.request.n === 404 ? cb({ code: grpc.status.NOT_FOUND, details: 'no such charge' }) : cb(null, { n: call.request.n }),
    Refund: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.INTERNAL, details: 'boom' }),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  });
  grpcPort = await new Promise<number>((resolve, reject) => g.bindAsync('127.0.0.1:0', payments.grpc.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))));
  cleanups.unshift(() => new Promise<void>((r) => g.tryShutdown(() => r())));

  orders = await createMesh({
    service: 'orders',
    namespace: 'shop',
    identity: { ca },
    logger: quiet,
    admin: { port: 0 },
    grpc,
    telemetry: { dialect: 'linkerd' },
    outbound: { services: { payments: { namespace: 'default', endpoints: [{ address: `127.0.0.1:${port}`, labels: { pod: 'payments-7d9f', serviceaccount: 'payments' } }] } } },
  });
  meshes.push(orders);
  plain = await createMesh({ service: 'plain', identity: { ca }, logger: quiet, admin: { port: 0 }, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } } });
  meshes.push(plain);

  for (let i = 0; i < 3; i++) assert.equal(await (await orders.fetch('http://payments/charge')).text(), 'ok');
  for (let i = 0; i < 2; i++) assert.equal((await orders.fetch('http://payments/fail').then(async (r) => (await r.text(), r))).status, 503);
  await (await plain.fetch('http://payments/charge')).text();
  // A client without a certificate (permissive: served unauthenticated).
  const status = await new Promise<number>((resolve, reject) => {
    const r = httpsRequest({ host: '127.0.0.1', port, path: '/anon', ca: ca.bundlePem, checkServerIdentity: () => undefined, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(status, 200);
  const client = payClient(grpcPort, orders.grpc.channelCredentials('payments'));
  try {
    assert.equal((await unary(client, 'Charge', { n: 1 })).n, 1);
    await assert.rejects(unary(client, 'Refund', { n: 2 }), (e: grpc.ServiceError) => e.code === grpc.status.INTERNAL);
    await assert.rejects(unary(client, 'Charge', { n: 404 }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  } finally {
    client.close();
  }
  const { samples } = await scrape(orders);
  const retried = samples.filter((s) => s.name === 'sidecarless_retries_total' && s.labels.reason === '503').reduce((a, s) => a + s.value, 0);
  assert.equal(retried % 2, 0);
  retries503 = retried / 2;
});

/** How many times orders retried each of its two 503s (its sidecarless_retries_total, halved). */
let retries503 = -1;
const RETRIES_503 = () => retries503;

async function scrape(m: Mesh): Promise<{ samples: PromSample[]; types: ReadonlyMap<string, string> }> {
  const r = await fetch(`http://127.0.0.1:${m.admin!.address().port}/metrics`);
  assert.equal(r.status, 200);
  return parsePrometheus(await r.text());
}

const find = (samples: PromSample[], name: string, want: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));

const one = (samples: PromSample[], name: string, want: Record<string, string>): PromSample => {
  const f = find(samples, name, want);
  assert.equal(f.length, 1, `${name} ${JSON.stringify(want)}: ${JSON.stringify(f)}`);
  return f[0]!;
};

/** Each response_latency_ms series: Linkerd's bounds, cumulative, +Inf = _count; the counts per status sum to request_total. */
function assertHistograms(samples: PromSample[]): void {
  const key = (s: PromSample) => JSON.stringify(Object.entries(s.labels).filter(([k]) => k !== 'le').sort());
  const by = new Map<string, { buckets: PromSample[]; count?: number; sum?: number }>();
  const of = (s: PromSample) => by.get(key(s)) ?? by.set(key(s), { buckets: [] }).get(key(s))!;
  for (const s of samples) {
    if (s.name === 'response_latency_ms_bucket') of(s).buckets.push(s);
    else if (s.name === 'response_latency_ms_count') of(s).count = s.value;
    else if (s.name === 'response_latency_ms_sum') of(s).sum = s.value;
  }
  assert.ok(by.size > 0);
  for (const e of by.values()) {
    assert.deepEqual(e.buckets.map((b) => b.labels.le), [...LINKERD_LATENCY_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < e.buckets.length; i++) assert.ok(e.buckets[i]!.value >= e.buckets[i - 1]!.value, 'cumulative');
    assert.equal(e.buckets.at(-1)!.value, e.count);
    assert.ok(Number.isInteger(e.sum), 'whole milliseconds, as the proxy');
  }
  for (const t of samples.filter((s) => s.name === 'request_total')) {
    const counts = samples.filter((s) => s.name === 'response_latency_ms_count' && Object.entries(t.labels).every(([k, v]) => s.labels[k] === v));
    assert.equal(counts.reduce((a, s) => a + s.value, 0), t.value, `latency counts of ${JSON.stringify(t.labels)}`);
    const responses = samples.filter((s) => s.name === 'response_total' && Object.entries(t.labels).every(([k, v]) => s.labels[k] === v));
    assert.equal(responses.reduce((a, s) => a + s.value, 0), t.value, `responses of ${JSON.stringify(t.labels)}`);
  }
}

test('inbound over mTLS: request_total / response_total / response_latency_ms with linkerd2-proxy labels; 5xx is a failure', async () => {
  const { samples, types } = await scrape(payments);
  assert.equal(types.get('request_total'), 'counter');
  assert.equal(types.get('response_total'), 'counter');
  assert.equal(types.get('response_latency_ms'), 'histogram');
  const target = { direction: 'inbound', authority: 'payments', target_addr: `127.0.0.1:${port}`, target_ip: '127.0.0.1', target_port: String(port), tls: 'true', client_id: ORDERS };
  // orders retried each 503 (its default retry policy): every try is a request here.
  const tries = 2 * (1 + RETRIES_503());
  const req = one(samples, 'request_total', target);
  assert.equal(req.value, 3 + tries);
  assert.deepEqual(req.labels, { ...target, namespace: 'default', deployment: 'payments', control_plane_ns: 'linkerd', app: 'payments' });
  const ok = one(samples, 'response_total', { ...target, status_code: '200' });
  assert.equal(ok.value, 3);
  assert.deepEqual({ c: ok.labels.classification, g: ok.labels.grpc_status, e: ok.labels.error }, { c: 'success', g: '', e: '' });
  const fail = one(samples, 'response_total', { ...target, status_code: '503' });
  assert.equal(fail.value, tries);
  assert.equal(fail.labels.classification, 'failure');
  assert.equal(one(samples, 'response_latency_ms_count', { ...target, status_code: '200' }).value, 3);
  assert.equal(one(samples, 'response_latency_ms_bucket', { ...target, status_code: '503', le: '+Inf' }).value, tries);
  assert.equal(find(samples, 'response_latency_ms_bucket', { ...target, status_code: '200' })[0]!.labels.classification, undefined, 'latency is by status only');
  // The plain mesh (no dialect) is a client too: counted here, by the server, under its own identity.
  assert.equal(one(samples, 'request_total', { direction: 'inbound', client_id: 'spiffe://cluster.local/ns/default/sa/plain' }).value, 1);
  assertHistograms(samples);
});

test('a client without a certificate (permissive): tls="true", client_id="" — as the proxy labels a TLS connection without a client identity', async () => {
  const { samples } = await scrape(payments);
  const t = one(samples, 'request_total', { direction: 'inbound', target_port: String(port), client_id: '' });
  assert.equal(t.value, 1);
  assert.equal(t.labels.tls, 'true');
  assert.equal(t.labels.authority, `127.0.0.1:${port}`);
  assert.equal(one(samples, 'response_total', { direction: 'inbound', client_id: '', status_code: '200' }).labels.classification, 'success');
});

test('gRPC through mesh.grpc: status_code 200, grpc_status the code; INTERNAL a failure, NOT_FOUND and OK successes (client-policy Codes)', async () => {
  const { samples } = await scrape(payments);
  const target = { direction: 'inbound', target_addr: `127.0.0.1:${grpcPort}`, tls: 'true', client_id: ORDERS };
  assert.equal(one(samples, 'request_total', target).value, 3);
  assert.equal(one(samples, 'request_total', target).labels.authority, `127.0.0.1:${grpcPort}`, "grpc-js's :authority: the target it dialed");
  const cls = (code: number) => one(samples, 'response_total', { ...target, status_code: '200', grpc_status: String(code) });
  assert.equal(cls(0).labels.classification, 'success');
  assert.equal(cls(13).labels.classification, 'failure');
  assert.equal(cls(5).labels.classification, 'success');
  for (const c of [0, 13, 5]) assert.equal(cls(c).value, 1);
  assert.deepEqual([...LINKERD_GRPC_FAILURES].sort((a, b) => a - b), [2, 4, 7, 13, 14, 15]);
  assertHistograms(samples);
});

test('outbound from mesh.fetch: server_id the endpoint identity verified, dst_service / dst_namespace, the workload namespace', async () => {
  const { samples } = await scrape(orders);
  const target = { direction: 'outbound', authority: 'payments', target_addr: `127.0.0.1:${port}`, target_ip: '127.0.0.1', target_port: String(port), tls: 'true', server_id: PAYMENTS };
  // Per try, as the proxy's endpoint metrics: each retried 503 is one more request.
  const tries = 2 * (1 + RETRIES_503());
  assert.ok(RETRIES_503() > 0, 'the default policy retries a 503');
  const req = one(samples, 'request_total', target);
  assert.equal(req.value, 3 + tries);
  assert.deepEqual(req.labels, { ...target, dst_namespace: 'default', dst_pod: 'payments-7d9f', dst_service: 'payments', dst_serviceaccount: 'payments', namespace: 'shop' });
  assert.equal(one(samples, 'response_total', { ...target, status_code: '200', classification: 'success' }).value, 3);
  assert.equal(one(samples, 'response_total', { ...target, status_code: '503', classification: 'failure' }).value, tries);
  assert.equal(find(samples, 'request_total', { direction: 'inbound' }).length, 0, 'orders served nothing');
  assertHistograms(samples);
});

test('dialect off: none of the Linkerd families', async () => {
  const r = await fetch(`http://127.0.0.1:${plain.admin!.address().port}/metrics`);
  const text = await r.text();
  const { samples, types } = parsePrometheus(text);
  for (const n of NAMES) assert.equal(types.has(n), false, n);
  assert.equal(samples.filter((s) => /^(request_total|response_total|response_latency_ms)/.test(s.name)).length, 0);
  assert.ok(samples.some((s) => s.name === 'sidecarless_requests_total'));
});

test('LinkerdStats: whole milliseconds into the bounds, no status_code without a response, error labels, the cap folds into _other', () => {
  const l = new LinkerdStats([['namespace', 'ns']]);
  l.inbound('a:80', '::ffff:10.0.0.1', 8080, 'web.ns.serviceaccount.identity.linkerd.cluster.local', { status: 200 }, 1.9);
  l.outbound('b:80', '[fd00::1]:9090', 'spiffe://td/ns/x/sa/b', 'b', '', { status: undefined, error: 'timeout' }, 30000.5);
  const traffic = new TrafficStats(null, l);
  const text = renderPrometheus({ service: 's', traffic, identity: { kind: 'x', state: 'ready', rotations: 0 } as never, handshakes: { authenticated: 0, unauthenticated: 0, rejected: 0, tlsErrors: 0 }, now: 0 });
  const { samples } = parsePrometheus(text);
  const inb = { direction: 'inbound', target_addr: '10.0.0.1:8080', target_ip: '10.0.0.1', client_id: 'web.ns.serviceaccount.identity.linkerd.cluster.local' };
  assert.equal(one(samples, 'response_latency_ms_bucket', { ...inb, le: '1' }).value, 1, '1.9 ms is 1 ms to the proxy');
  assert.equal(one(samples, 'response_latency_ms_sum', inb).value, 1);
  const out = { direction: 'outbound', target_addr: '[fd00::1]:9090', target_ip: 'fd00::1', target_port: '9090' };
  const err = one(samples, 'response_total', out);
  assert.equal(err.labels.status_code, undefined);
  assert.deepEqual([err.labels.classification, err.labels.grpc_status, err.labels.error], ['failure', '', 'timeout']);
  assert.equal(err.labels.dst_namespace, undefined, 'no namespace known: no dst_namespace');
  assert.equal(one(samples, 'response_latency_ms_bucket', { ...out, le: '20000' }).value, 0);
  assert.equal(one(samples, 'response_latency_ms_bucket', { ...out, le: '30000' }).value, 1, '30000.5 ms is 30000: in le=30000');

  const capped = new LinkerdStats([]);
  for (let i = 0; i < MAX_LINKERD_TARGETS + 50; i++) capped.inbound(`h${i}`, '10.0.0.1', 80, null, { status: 200 }, 1);
  const all = [...capped.allTargets()];
  assert.equal(all.length, MAX_LINKERD_TARGETS + 1);
  assert.equal(all.at(-1)!.requests, 50);
  assert.match(all.at(-1)!.labels, /authority="_other"/);
});

test('workload labels as linkerd-viz maps pod labels; addresses as the proxy prints them', () => {
  assert.deepEqual(
    Object.fromEntries(linkerdWorkloadLabels({ namespace: 'emojivoto', pod: 'web-1', labels: { 'linkerd.io/proxy-deployment': 'web', 'linkerd.io/proxy-job': 'j', 'app.kubernetes.io/name': 'web', direction: 'x', 'linkerd.io/workload-ns': 'emojivoto' } })),
    { deployment: 'web', k8s_job: 'j', workload_ns: 'emojivoto', app_kubernetes_io_name: 'web', namespace: 'emojivoto', pod: 'web-1' },
  );
  assert.deepEqual(dstLabels('web', 'emojivoto', { 'pod-template-hash': 'x', pod: 'web-1', service: 'over' }), [
    ['dst_namespace', 'emojivoto'], ['dst_pod', 'web-1'], ['dst_pod_template_hash', 'x'], ['dst_service', 'over'],
  ]);
  assert.deepEqual(socketAddr('::1', 80), { addr: '[::1]:80', ip: '::1', port: '80' });
  assert.deepEqual(splitAddress('payments.default.svc:8080'), { addr: 'payments.default.svc:8080', ip: 'payments.default.svc', port: '8080' });
});

test('a peer is named by its id when it has one (a Linkerd DNS-like identity), else by its SPIFFE ID', () => {
  const dns = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';
  assert.equal(peerName({ spiffeId: ORDERS, trustDomain: 'cluster.local' } as never), ORDERS);
  assert.equal(peerName({ id: dns, spiffeId: undefined, trustDomain: 'cluster.local' } as never), dns);
});

test('config: dialect linkerd accepted (the fast path builds what zod builds), others refused', () => {
  assert.equal(resolveConfig({ service: 'a', telemetry: { dialect: 'linkerd' } }, {}).telemetry.dialect, 'linkerd');
  assert.deepStrictEqual(fastConfig({ service: 'a', telemetry: { dialect: 'linkerd' } }, {}), resolveConfig({ service: 'a', telemetry: { dialect: 'linkerd' } }, {}));
  assert.throws(() => resolveConfig({ service: 'a', telemetry: { dialect: 'linkerd2' as never } }, {}), /telemetry\.dialect/);
});

test('a client\'s 12 KiB or malformed Host header is labelled authority="_other": a scrape stays small', async () => {
  const anon = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const r = httpsRequest({ host: '127.0.0.1', port, path: '/big', headers: { host }, ca: ca.bundlePem, checkServerIdentity: () => undefined, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      r.on('error', reject);
      r.end();
    });
  const before = (await (await fetch(`http://127.0.0.1:${payments.admin!.address().port}/metrics`)).text()).length;
  // The mesh answers 400 to such a Host, but the request is still counted (it was served a response).
  for (let i = 0; i < 20; i++) await anon(`h${i}${'x'.repeat(12 * 1024)}.example:443`);
  await anon('evil"host\\x'); // a mesh may refuse it (400); if it is counted, it is _other too
  const text = await (await fetch(`http://127.0.0.1:${payments.admin!.address().port}/metrics`)).text();
  assert.ok(text.length - before < 64 * 1024, `the scrape grew by ${text.length - before} bytes`);
  const { samples } = parsePrometheus(text);
  assert.ok(samples.every((s) => (s.labels.authority ?? '').length <= 261));
  assert.equal(find(samples, 'request_total', { direction: 'inbound', authority: '_other', client_id: '' }).reduce((a, s) => a + s.value, 0) >= 20, true);
});
