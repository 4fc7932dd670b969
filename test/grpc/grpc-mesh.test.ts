// mesh.grpc with real grpc-js clients and servers in one process: mesh credentials on both sides
// (unary and server streaming), the server's SPIFFE ID required by the channel, a client without
// a certificate or from another trust domain's chain refused, the policy per method (status 7,
// not a protocol error; the handler never runs), peerOf(call), identity metadata removed, and
// golden metrics per method with grpc_response_status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ManualReader } from '../helpers/otel-reader.js';
import { type DevCa, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { ManualSource, TD, craftLeaf, filesOf, idOf } from '../helpers/certs.js';
import { type PayServer, grpc, payClient, servePay, unary, watch } from './helpers.js';

const reader = new ManualReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

/** Plain grpc-js clients below check no host name: the server's identity is not what they test. */
const ANY_HOST = { checkServerIdentity: () => undefined };
const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;
const POLICY = {
  rules: [
    { name: 'no-refunds', action: 'deny', from: { identities: [idOf('orders')] }, to: { paths: ['/demo.Pay/Refund'] } },
    { name: 'callers', action: 'allow', from: { identities: [idOf('orders')] }, to: { methods: ['POST'], paths: ['/demo.Pay/*'] } },
  ],
};

let ca: DevCa;
let payments: Mesh;
let orders: Mesh;
let server: PayServer;
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  payments = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY }, admin: { port: 0 }, grpc });
  orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, grpc });
  server = await servePay(payments);
});
after(async () => {
  await server?.close();
  await orders?.close();
  await payments?.close();
});

test('unary and server-streaming calls with mesh credentials on both sides; peerOf(call) is the client', async () => {
  const client = payClient(server.port, orders.grpc.channelCredentials('payments'));
  try {
    const md = new grpc.Metadata();
    md.set('x-forwarded-client-cert', 'By=spiffe://cluster.local/ns/default/sa/admin');
    const res = await unary(client, 'Charge', { n: 1 }, md);
    assert.deepEqual(res, { peer: idOf('orders'), n: 1, xfcc: [] }, 'the identity metadata is removed before the handler');
    const msgs = await watch(client, 3);
    assert.deepEqual(msgs, [0, 1, 2].map((i) => ({ i, peer: idOf('orders') })));
  } finally {
    client.close();
  }
});

test('a denied method is status 7 (PERMISSION_DENIED) with a message; its handler never runs', async () => {
  const client = payClient(server.port, orders.grpc.channelCredentials('payments'));
  try {
    const before = server.ran.filter((r) => r === 'Refund').length;
    const err = (await unary(client, 'Refund', { n: 2 }).then(() => assert.fail('allowed'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.match(err.details, /\/demo\.Pay\/Refund denied by no-refunds/);
    assert.equal(server.ran.filter((r) => r === 'Refund').length, before);
    // The connection is fine: the next allowed call on it works.
    assert.equal((await unary(client, 'Charge', { n: 3 })).n, 3);
  } finally {
    client.close();
  }
});

test('on the wire a denial is a trailers-only response: :status 200, grpc-status 7, grpc-message', async () => {
  const { connect } = await import('node:http2');
  const svid = orders.identity.getX509Svid();
  const session = connect(`https://127.0.0.1:${server.port}`, { cert: svid.certChainPem, key: svid.keyPem, ca: ca.bundlePem, checkServerIdentity: () => undefined });
  const call = (path: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
      req.on('response', (h, flags) => resolve({ ...h, endStream: (flags & 1) === 1 }));
      req.on('error', reject);
      req.end(Buffer.from([0, 0, 0, 0, 2, 0x7b, 0x7d])); // one uncompressed message: {}
    });
  try {
    const headers = await call('/demo.Pay/Refund');
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], '7');
    assert.match(decodeURIComponent(String(headers['grpc-message'])), /denied by no-refunds/);
    assert.equal(headers.endStream, true, 'trailers-only: the HEADERS frame ends the stream');
    // Other spellings of the denied method reach no handler: grpc-js routes the exact path only,
    // and the policy judges the method's registered path.
    const ran = server.ran.length;
    for (const p of ['/demo.Pay/Re%66und', '/demo.Pay/Refund/', '//demo.Pay/Refund', '/demo.pay/refund', '/demo.Pay/./Refund']) {
      assert.equal((await call(p))['grpc-status'], '12', p);
    }
    assert.equal(server.ran.length, ran);
  } finally {
    session.close();
  }
});

test('the channel refuses a server that presents another SPIFFE ID (every connection, none resumed)', async () => {
  for (const target of ['inventory', idOf('payments', 'prod')]) {
    const client = payClient(server.port, orders.grpc.channelCredentials(target));
    try {
      const err = (await unary(client, 'Charge', { n: 4 }).then(() => assert.fail('connected'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /the server presented spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
    } finally {
      client.close();
    }
  }
  // A channel to the right service after a refused one still verifies (and works).
  const good = payClient(server.port, orders.grpc.channelCredentials('payments'));
  try {
    assert.equal((await unary(good, 'Charge', { n: 5 })).peer, idOf('orders'));
  } finally {
    good.close();
  }
  assert.throws(() => orders.grpc.channelCredentials('Not A Name'), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
});

test('the channel never resumes a TLS session: every connection is a full handshake, checked', async () => {
  // Node skips checkServerIdentity on a resumed session; grpc-js's channel offers none. A server
  // that issues session tickets sees every connection of fresh channels as a full handshake.
  const { createSecureServer } = await import('node:http2');
  const svid = payments.identity.getX509Svid();
  const h2 = createSecureServer({ cert: svid.certChainPem, key: svid.keyPem, ca: ca.bundlePem, requestCert: true });
  const reused: boolean[] = [];
  h2.on('secureConnection', (s) => reused.push(s.isSessionReused()));
  h2.on('stream', (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true }));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const port = (h2.address() as { port: number }).port;
  try {
    for (let i = 0; i < 3; i++) {
      const c = payClient(port, orders.grpc.channelCredentials('payments'), { 'grpc.use_local_subchannel_pool': 1 });
      const err = (await unary(c, 'Charge', {}).then(() => assert.fail('answered'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNIMPLEMENTED, err.details);
      c.close();
    }
    assert.deepEqual(reused, [false, false, false]);
    // Control: this server does resume a session a client offers (so the check above could fail).
    const opts = { host: '127.0.0.1', port, cert: orders.identity.getX509Svid().certChainPem, key: orders.identity.getX509Svid().keyPem, ca: ca.bundlePem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined };
    const first = tlsConnect(opts);
    const [session] = (await once(first, 'session')) as [Buffer];
    first.destroy();
    const second = tlsConnect({ ...opts, session });
    await once(second, 'secureConnect');
    assert.equal(second.isSessionReused(), true);
    second.destroy();
  } finally {
    await new Promise((r) => h2.close(r));
  }
});

test('a client without a certificate, or with one of another CA, is refused', async () => {
  const noCert = payClient(server.port, grpc.credentials.createSsl(Buffer.from(ca.bundlePem), null, null, ANY_HOST));
  const otherCa = await createDevCa({ trustDomain: TD });
  const stranger = otherCa.issue({ spiffeId: idOf('orders') });
  const wrongCa = payClient(
    server.port,
    grpc.credentials.createSsl(Buffer.from(ca.bundlePem), Buffer.from((await stranger).keyPem), Buffer.from((await stranger).certChainPem), ANY_HOST),
  );
  const ran = server.ran.length;
  try {
    for (const c of [noCert, wrongCa]) {
      const err = (await unary(c, 'Charge', { n: 6 }).then(() => assert.fail('served'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
      assert.doesNotMatch(err.details, /altname/i);
    }
    assert.equal(server.ran.length, ran, 'no handler ran');
  } finally {
    noCert.close();
    wrongCa.close();
  }
});

test('federation: a client chain is verified against the bundle of its own trust domain', async () => {
  const caB = await createDevCa({ trustDomain: 'other.example' });
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId: idOf('payments') }), caB.bundlePem));
  const fed = await createMesh({ service: 'payments', identity: { source }, logger: quiet, grpc });
  const fedServer = await servePay(fed);
  const roots = Buffer.from(ca.bundlePem + caB.bundlePem);
  const as = async (leaf: { keyPem: string; certChainPem: string }) => {
    const c = payClient(fedServer.port, grpc.credentials.createSsl(roots, Buffer.from(leaf.keyPem), Buffer.from(leaf.certChainPem), ANY_HOST));
    try {
      return await unary(c, 'Charge', { n: 9 }).then((r) => r.peer as string, (e: grpc.ServiceError) => e);
    } finally {
      c.close();
    }
  };
  try {
    // B's CA vouching for A's admin: OpenSSL accepts the chain (B's root is trusted), SPIFFE does not.
    const forged = await as(await craftLeaf(caB, { uris: [idOf('admin')] }));
    assert.ok(forged instanceof Error && [grpc.status.UNAUTHENTICATED, grpc.status.UNAVAILABLE].includes((forged as grpc.ServiceError).code), String(forged));
    assert.match(fed.grpc.stats().lastRejection ?? '', /does not lead to a root of trust domain "cluster.local"/);
    assert.equal(fedServer.ran.length, 0, 'no handler ran for the forged identity');
    // B's own workload is admitted as itself.
    assert.equal(await as(await craftLeaf(caB, { uris: ['spiffe://other.example/ns/x/sa/y'] })), 'spiffe://other.example/ns/x/sa/y');
  } finally {
    await fedServer.close();
    await fed.close();
  }
});

test('golden metrics per method with grpc_response_status, denials and authz decisions', async () => {
  const series = payments.stats().traffic.series.filter((s) => s.direction === 'inbound' && s.peer === idOf('orders'));
  const charge = series.find((s) => s.route === '/demo.Pay/Charge');
  const refund = series.find((s) => s.route === '/demo.Pay/Refund');
  const watchS = series.find((s) => s.route === '/demo.Pay/Watch');
  assert.ok(charge && refund && watchS, JSON.stringify(series));
  assert.deepEqual(charge.grpcStatus, { 0: charge.requests });
  assert.ok(charge.requests >= 3);
  assert.deepEqual(refund.grpcStatus, { 7: 2 }, 'the grpc-js denial and the raw HTTP/2 one');
  assert.equal(refund.denials, 2);
  assert.deepEqual(watchS.grpcStatus, { 0: 1 });
  const authz = payments.stats().traffic.authz;
  assert.ok(authz.some((a) => a.decision === 'deny' && a.rule === 'no-refunds' && a.count === 2), JSON.stringify(authz));
  assert.equal(payments.stats().traffic.active.inbound, 0);
  // OpenTelemetry: the same calls as http.server.request.duration points with the RPC attributes.
  const { resourceMetrics } = await reader.collect();
  const duration = resourceMetrics.scopeMetrics.flatMap((m) => m.metrics).find((m) => m.descriptor.name === 'http.server.request.duration');
  const refunds = duration?.dataPoints.find((p) => p.attributes['rpc.method'] === 'Refund' && p.attributes['sidecarless.service'] === 'payments');
  assert.ok(refunds, 'a data point for /demo.Pay/Refund');
  assert.deepEqual(
    { ...refunds.attributes, count: (refunds.value as { count: number }).count },
    {
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'url.scheme': 'https',
      'http.route': '/demo.Pay/Refund',
      'sidecarless.service': 'payments',
      'sidecarless.tls': 'mtls',
      'sidecarless.peer.spiffe_id': idOf('orders'),
      'rpc.system': 'grpc',
      'rpc.service': 'demo.Pay',
      'rpc.method': 'Refund',
      'rpc.grpc.status_code': 7,
      count: 2,
    },
  );
  const { port } = payments.admin!.address();
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(text, /sidecarless_grpc_responses_total\{direction="inbound",service="payments",peer="spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders",route="\/demo\.Pay\/Refund",grpc_response_status="7"\} 2/);
});

test('createMesh({ grpc }) takes only a grpc-js module; credentials are of the module given', async () => {
  await assert.rejects(createMesh({ service: 'x', identity: { ca }, logger: quiet, grpc: {} as never }), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
  assert.ok(payments.grpc.serverCredentials() instanceof grpc.ServerCredentials);
  assert.ok(orders.grpc.channelCredentials('payments') instanceof grpc.ChannelCredentials);
  assert.equal(payments.grpc.module, grpc);
});
