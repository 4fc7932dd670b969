// The Linkerd streams client (src/control-plane/linkerd/streams.ts) against a scripted Linkerd
// destination + policy controller on Debian's grpcio (test/helpers/py/linkerd_policy.py), over
// real mutual TLS with Linkerd-style DNS-SAN-only ECDSA certificates: the requests carry what
// linkerd2-proxy sends, messages arrive decoded (first of a stream flagged), a server-ended stream
// reconnects after the backoff on the injected clock, a rotated client certificate re-dials, a
// server with another identity is refused before any request, and the server refuses clients
// without a certificate chaining to its anchors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { VirtualClock } from '../../../src/clock.js';
import { LinkerdStreamError } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import { seededRandom } from '../../../src/random.js';
import { loadGrpc } from '../../../src/sources/grpc.js';
import { CREDENTIALS_CHECK_MS, createLinkerdStreams, type Delivery, type LinkerdStreams } from '../../../src/control-plane/linkerd/streams.js';
import { ipToString, tcpAddressToString } from '../../../src/proto/linkerd/net-addr.js';
import { InboundServerPolicies } from '../../../src/proto/linkerd/inbound.js';
import { CLIENT_NAME, DESTINATION_NAME, type LinkerdPolicyServer, startLinkerdPolicyServer } from '../../helpers/linkerd-policy-server.js';

const grpc = await loadGrpc();
const quiet: Logger = { info() {}, warn() {}, error() {} };
const WORKLOAD = JSON.stringify({ ns: 'emojivoto', pod: 'web-7d9f8-abcde' });
const CONTEXT = JSON.stringify({ ns: 'emojivoto', nodeName: 'node-1', pod: 'web-7d9f8-abcde' });

let server: LinkerdPolicyServer;
before(async () => {
  server = await startLinkerdPolicyServer();
});
after(() => server.close());

interface Rig {
  streams: LinkerdStreams;
  clock: VirtualClock;
  cert: { current: 'client-a' | 'client-b' | 'client-foreign' | undefined };
}

function rig(o: { policyName?: string } = {}): Rig {
  const clock = new VirtualClock(1_000_000);
  const cert: Rig['cert'] = { current: 'client-a' };
  const streams = createLinkerdStreams({
    grpc,
    destination: { address: server.address, serverName: DESTINATION_NAME },
    // The test server is both controllers: its certificate names the destination controller.
    policy: { address: server.address, serverName: o.policyName ?? DESTINATION_NAME },
    trustAnchorsPem: () => server.pki.anchorsPem,
    clientCertificate: () => (cert.current ? server.pki.client(cert.current) : undefined),
    clock,
    random: seededRandom(1),
    logger: quiet,
    sourceWorkload: WORKLOAD,
  });
  return { streams, clock, cert };
}

/** Values delivered to `on`, awaitable. */
function collector<T>() {
  const items: Array<{ value: T; delivery: Delivery }> = [];
  const errors: Error[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const until = async (cond: () => boolean, what: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${items.length} items, errors ${errors.map((e) => e.message).join('; ')})`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return {
    items,
    errors,
    on: (value: T, delivery: Delivery) => (items.push({ value, delivery }), wake()),
    onError: (e: Error) => (errors.push(e), wake()),
    items$: (n: number) => until(() => items.length >= n, `${n} items`),
    errors$: (n: number) => until(() => errors.length >= n, `${n} errors`),
  };
}

const endpoint = (ip: string, port: number, weight: number) => ({
  addr: { ip: { ipv4: ipv4(ip) }, port },
  weight,
  tlsIdentity: { dnsLikeIdentity: { name: 'emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local' }, serverName: { name: 'emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local' } },
  protocolHint: { h2: {} },
  metricLabels: { pod: 'emoji-0' },
});
function ipv4(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

test('Destination.Get: the request linkerd2-proxy sends; the initial add, then a push mid-stream, a duplicate and a remove arrive decoded, in order', async (t) => {
  const { streams } = rig();
  t.after(() => streams.close());
  const path = 'emoji-svc.emojivoto.svc.cluster.local:8080';
  await server.send({ cmd: 'set', rpc: 'Get', key: path, json: { add: { addrs: [endpoint('10.1.0.7', 8080, 10000)], metricLabels: { namespace: 'emojivoto' } } } });
  const c = collector<import('../../../src/control-plane/linkerd/streams.js').DestinationUpdate>();
  streams.getDestination(path, CONTEXT, c.on, c.onError);
  const req = await server.waitFor((e) => e.event === 'request' && e.key === path);
  assert.deepEqual(req.fields, { scheme: 'k8s', path, context_token: CONTEXT });
  assert.deepEqual(req.peer, [CLIENT_NAME], 'the workload’s certificate was presented');
  await c.items$(1);
  const first = c.items[0]!;
  assert.equal(first.delivery.first, true);
  assert.equal(first.value.update?.kind, 'add');
  const add = first.value.update?.kind === 'add' ? first.value.update.add : undefined;
  const a = add!.addrs[0]!;
  assert.equal(tcpAddressToString(a.addr!), '10.1.0.7:8080');
  assert.equal(a.weight, 10000);
  assert.deepEqual(a.tlsIdentity?.strategy, { kind: 'dnsLikeIdentity', dnsLikeIdentity: { name: 'emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local' } });
  assert.equal(a.tlsIdentity?.serverName?.name, 'emoji.emojivoto.serviceaccount.identity.linkerd.cluster.local');
  assert.equal(a.protocolHint?.protocol?.kind, 'h2');
  assert.equal(add!.metricLabels.get('namespace'), 'emojivoto');

  await server.send({ cmd: 'push', rpc: 'Get', key: path, json: { add: { addrs: [endpoint('10.1.0.8', 8080, 5000)] } } });
  await server.send({ cmd: 'push', rpc: 'Get', key: path, json: { add: { addrs: [endpoint('10.1.0.8', 8080, 5000)] } } });
  await server.send({ cmd: 'push', rpc: 'Get', key: path, json: { remove: { addrs: [{ ip: { ipv4: ipv4('10.1.0.7') }, port: 8080 }] } } });
  await server.send({ cmd: 'push', rpc: 'Get', key: path, json: { noEndpoints: { exists: true } } });
  await c.items$(5);
  assert.deepEqual(c.items.slice(1).map((i) => [i.delivery.first, i.value.update?.kind]), [[false, 'add'], [false, 'add'], [false, 'remove'], [false, 'noEndpoints']]);
  const removed = c.items[3]!.value.update;
  assert.equal(removed?.kind === 'remove' && ipToString(removed.remove.addrs[0]!.ip), '10.1.0.7');
  assert.deepEqual(c.errors, []);
});

test('OutboundPolicies.Watch and InboundServerPolicies.WatchPort: the requests carry the workload, the authority and the port; policies arrive decoded', async (t) => {
  const { streams } = rig();
  t.after(() => streams.close());
  const authority = 'web-svc.emojivoto.svc.cluster.local:80';
  const policy = {
    protocol: {
      http2: {
        routes: [
          {
            metadata: { default: 'http' },
            rules: [
              {
                matches: [{ path: { prefix: '/api' } }],
                backends: { randomAvailable: { backends: [{ backend: { backend: { balancer: { discovery: { dst: { path: authority } }, peakEwma: { defaultRtt: '0.030s', decay: '10s' } } } }, weight: 1 }] } },
                timeouts: { request: '5s' },
                retry: { maxRetries: 2, conditions: { statusRanges: [{ start: 500, end: 599 }] } },
              },
            ],
          },
        ],
        failureAccrual: { consecutiveFailures: { maxFailures: 7, backoff: { minBackoff: '1s', maxBackoff: '60s', jitterRatio: 0.5 } } },
      },
    },
  };
  await server.send({ cmd: 'set', rpc: 'Watch', key: authority, json: policy });
  await server.send({ cmd: 'set', rpc: 'WatchPort', key: '8080', json: { protocol: { http1: {} }, authorizations: [{ authentication: { meshTLS: { identities: { suffixes: [{ parts: ['emojivoto', 'serviceaccount', 'identity', 'linkerd', 'cluster', 'local'] }] } } } }] } });
  const out = collector<import('../../../src/control-plane/linkerd/streams.js').OutboundPolicy>();
  const inb = collector<import('../../../src/control-plane/linkerd/streams.js').InboundServer>();
  streams.watchOutbound(authority, out.on, out.onError);
  streams.watchPort(WORKLOAD, 8080, inb.on, inb.onError);
  const w = await server.waitFor((e) => e.event === 'request' && e.rpc === 'Watch' && e.key === authority);
  assert.deepEqual(w.fields, { source_workload: WORKLOAD, authority });
  const p = await server.waitFor((e) => e.event === 'request' && e.rpc === 'WatchPort' && e.key === '8080');
  assert.deepEqual(p.fields, { workload: WORKLOAD, port: 8080 });
  await out.items$(1);
  await inb.items$(1);
  const kind = out.items[0]!.value.protocol?.kind;
  assert.equal(kind?.kind, 'http2');
  const h2 = kind?.kind === 'http2' ? kind.http2 : undefined;
  const rule = h2!.routes[0]!.rules[0]!;
  assert.deepEqual(rule.matches[0]!.path?.kind, { kind: 'prefix', prefix: '/api' });
  assert.deepEqual(rule.timeouts?.request, { seconds: 5, nanos: 0 });
  assert.equal(rule.retry?.maxRetries, 2);
  const dist = rule.backends?.kind;
  const backend = dist?.kind === 'randomAvailable' ? dist.randomAvailable.backends[0] : undefined;
  assert.equal(backend?.weight, 1);
  const bal = backend?.backend?.backend?.kind;
  assert.equal(bal?.kind === 'balancer' && bal.balancer.discovery?.kind?.kind === 'dst' && bal.balancer.discovery.kind.dst.path, authority);
  assert.deepEqual(bal?.kind === 'balancer' && bal.balancer.load, { kind: 'peakEwma', peakEwma: { defaultRtt: { seconds: 0, nanos: 30_000_000 }, decay: { seconds: 10, nanos: 0 } } });
  assert.deepEqual(h2!.failureAccrual?.kind, { kind: 'consecutiveFailures', consecutiveFailures: { maxFailures: 7, backoff: { minBackoff: { seconds: 1, nanos: 0 }, maxBackoff: { seconds: 60, nanos: 0 }, jitterRatio: 0.5, respectRetryAfterHint: false } } });
  const authn = inb.items[0]!.value.authorizations[0]!.authentication?.permit;
  assert.equal(authn?.kind === 'meshTLS' && authn.meshTLS.clients?.kind === 'identities' && authn.meshTLS.clients.identities.suffixes[0]!.parts.join('.'), 'emojivoto.serviceaccount.identity.linkerd.cluster.local');
});

test('a stream the server ends with UNAVAILABLE reports a coded error and reconnects only after the backoff on the injected clock; backoff doubles without a message, resets after one', async (t) => {
  const { streams, clock } = rig();
  t.after(() => streams.close());
  const authority = 'flaky.emojivoto.svc.cluster.local:80';
  await server.send({ cmd: 'set', rpc: 'Watch', key: authority, json: { protocol: { opaque: {} } } });
  const c = collector<unknown>();
  streams.watchOutbound(authority, c.on, c.onError);
  await c.items$(1);
  const count = () => server.requests('Watch').filter((e) => e.key === authority).length;
  await server.waitFor(() => count() === 1); // the server's report may trail its message

  await server.send({ cmd: 'remove', rpc: 'Watch', key: authority });
  await server.send({ cmd: 'close', rpc: 'Watch', key: authority, code: 'UNAVAILABLE', details: 'controller restarting' });
  await c.errors$(1);
  const e = c.errors[0] as LinkerdStreamError;
  assert.ok(e instanceof LinkerdStreamError);
  assert.equal(e.code, 'ERR_SIDECARLESS_LINKERD_STREAM');
  assert.equal(e.grpcStatus, 'UNAVAILABLE');
  assert.equal(e.stream, 'outbound');
  assert.match(e.message, /controller restarting/);
  const due = clock.pending().filter((at) => at - clock.now() < CREDENTIALS_CHECK_MS - 1)[0]! - clock.now();
  assert.ok(due >= 1000 && due <= 1200, `first reconnect in 1–1.2 s (${due})`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(count(), 1, 'no reconnect before the backoff');
  clock.advance(due);
  await server.waitFor(() => count() === 2);

  // No message on this stream: the next backoff doubles.
  await server.send({ cmd: 'close', rpc: 'Watch', key: authority, code: 'UNAVAILABLE' });
  await c.errors$(2);
  const due2 = Math.min(...clock.pending()) - clock.now();
  assert.ok(due2 >= 2000 && due2 <= 2400, `second reconnect in 2–2.4 s (${due2})`);
  await server.send({ cmd: 'set', rpc: 'Watch', key: authority, json: { protocol: { opaque: {} } } });
  clock.advance(due2);
  await c.items$(2);
  assert.equal(c.items[1]!.delivery.first, true, 'the first message of the new stream');
  // A message arrived: the backoff starts over at 1 s.
  await server.send({ cmd: 'close', rpc: 'Watch', key: authority, code: 'UNAVAILABLE' });
  await c.errors$(3);
  const due3 = Math.min(...clock.pending()) - clock.now();
  assert.ok(due3 >= 1000 && due3 <= 1200, `reset to 1–1.2 s (${due3})`);
});

test('a rotated workload certificate re-dials every open stream, on both channels, with the new certificate', async (t) => {
  const { streams, clock, cert } = rig();
  t.after(() => streams.close());
  const port = '9090';
  await server.send({ cmd: 'set', rpc: 'WatchPort', key: port, json: { protocol: { opaque: {} } } });
  const path = 'rotating.emojivoto.svc.cluster.local:80';
  await server.send({ cmd: 'set', rpc: 'Get', key: path, json: { noEndpoints: { exists: false } } });
  const c = collector<unknown>();
  const d = collector<unknown>();
  streams.watchPort(WORKLOAD, 9090, c.on, c.onError);
  await c.items$(1);
  // The destination channel dials later, with the same certificate.
  streams.getDestination(path, CONTEXT, d.on, d.onError);
  await d.items$(1);
  const firstCert = (await server.waitFor((e) => e.event === 'request' && e.rpc === 'WatchPort' && e.key === port)).cert;
  assert.equal((await server.waitFor((e) => e.event === 'request' && e.rpc === 'Get' && e.key === path)).cert, firstCert);
  assert.ok(firstCert);
  clock.advance(CREDENTIALS_CHECK_MS);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(server.requests('WatchPort').filter((e) => e.key === port).length, 1, 'no re-dial while the certificate is the same');
  cert.current = 'client-b';
  clock.advance(CREDENTIALS_CHECK_MS);
  const again = await server.waitFor((e) => e.event === 'request' && e.key === port && e.cert !== firstCert);
  assert.deepEqual(again.peer, [CLIENT_NAME]);
  await server.waitFor((e) => e.event === 'request' && e.key === path && e.cert !== firstCert);
  await c.items$(2);
  await d.items$(2);
  assert.equal(c.items[1]!.delivery.first, true);
  assert.deepEqual([...c.errors, ...d.errors], [], 'a re-dial is not a loss');
});

test('a controller whose certificate is not the expected identity is refused before any request; so is one without a client certificate', async (t) => {
  const { streams, cert } = rig({ policyName: 'linkerd-policy.linkerd.serviceaccount.identity.linkerd.cluster.local' });
  t.after(() => streams.close());
  const authority = 'wrong-identity.emojivoto.svc.cluster.local:80';
  const c = collector<unknown>();
  streams.watchOutbound(authority, c.on, c.onError);
  await c.errors$(1);
  assert.equal((c.errors[0] as LinkerdStreamError).code, 'ERR_SIDECARLESS_LINKERD_STREAM');
  assert.equal((c.errors[0] as LinkerdStreamError).grpcStatus, 'UNAVAILABLE');
  assert.match(c.errors[0]!.message, /not in the cert's altnames|does not match/i, 'refused for the name');
  assert.equal(server.requests().filter((e) => e.key === authority).length, 0, 'no request reached the server');

  cert.current = undefined;
  const d = collector<unknown>();
  streams.getDestination('nocert.emojivoto.svc.cluster.local:80', CONTEXT, d.on, d.onError);
  await d.errors$(1);
  assert.match(d.errors[0]!.message, /no Linkerd certificate yet/);
  assert.equal((d.errors[0] as LinkerdStreamError).grpcStatus, undefined);
});

test('the server refuses a client without a certificate, and one whose certificate chains to other anchors', async () => {
  const def = InboundServerPolicies.WatchPort;
  for (const [label, tls] of [
    ['no certificate', { ca: server.pki.anchorsPem }],
    ['foreign anchors', { ca: server.pki.anchorsPem, key: server.pki.client('client-foreign').keyPem, cert: server.pki.client('client-foreign').certChainPem }],
  ] as const) {
    const creds = grpc.credentials.createFromSecureContext(createSecureContext(tls));
    const client = new grpc.Client(server.address, creds, { 'grpc.ssl_target_name_override': DESTINATION_NAME, 'grpc.default_authority': DESTINATION_NAME });
    const port = label === 'no certificate' ? 7001 : 7002;
    const status = await new Promise<number>((resolve) => {
      const call = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, { workload: WORKLOAD, port }, { deadline: Date.now() + 3000 });
      call.on('data', () => {});
      call.on('error', () => {});
      call.on('status', (s) => resolve(s.code));
    });
    client.close();
    assert.notEqual(status, grpc.status.OK, label);
    assert.equal(server.requests('WatchPort').filter((e) => e.key === String(port)).length, 0, `${label}: no request reached the handler`);
  }
});

test('a response that does not decode ends the stream with a coded error, delivers nothing, and the stream reconnects after the backoff', async (t) => {
  const { streams, clock } = rig();
  t.after(() => streams.close());
  const path = 'garbled.emojivoto.svc.cluster.local:80';
  await server.send({ cmd: 'set', rpc: 'Get', key: path, json: { noEndpoints: { exists: true } } });
  const c = collector<import('../../../src/control-plane/linkerd/streams.js').DestinationUpdate>();
  streams.getDestination(path, CONTEXT, c.on, c.onError);
  await c.items$(1);
  // Update.add (field 1) whose WeightedAddrSet holds a truncated WeightedAddr.
  await server.send({ cmd: 'raw', rpc: 'Get', key: path, b64: Buffer.from([0x0a, 0x04, 0x0a, 0x02, 0x18, 0x80]).toString('base64') });
  await c.errors$(1);
  assert.equal(c.items.length, 1, 'nothing delivered for the bad message');
  const e = c.errors[0] as LinkerdStreamError;
  assert.equal(e.code, 'ERR_SIDECARLESS_LINKERD_STREAM');
  assert.match(e.message, /weight/, 'the error names the field');
  const due = Math.min(...clock.pending()) - clock.now();
  assert.ok(due >= 1000 && due <= 1200, `${due}`);
  clock.advance(due);
  await c.items$(2);
  assert.equal(c.items[1]!.delivery.first, true);
});

test('a controller with the right name under other trust anchors is refused before any request (the anchors are the only roots)', async (t) => {
  const other = await startLinkerdPolicyServer();
  t.after(() => other.close());
  const clock = new VirtualClock(0);
  const streams = createLinkerdStreams({
    grpc,
    destination: { address: other.address, serverName: DESTINATION_NAME },
    policy: { address: other.address, serverName: DESTINATION_NAME },
    trustAnchorsPem: () => server.pki.anchorsPem,
    clientCertificate: () => server.pki.client('client-a'),
    clock,
    random: seededRandom(2),
    logger: quiet,
    sourceWorkload: WORKLOAD,
  });
  t.after(() => streams.close());
  const c = collector<unknown>();
  streams.getDestination('impostor.emojivoto.svc.cluster.local:80', CONTEXT, c.on, c.onError);
  await c.errors$(1);
  assert.equal((c.errors[0] as LinkerdStreamError).grpcStatus, 'UNAVAILABLE');
  assert.match(c.errors[0]!.message, /certificate|verify/i);
  assert.deepEqual(other.requests(), [], 'no request reached the impostor');
  assert.equal(c.items.length, 0);
});

test('the function a watch returns ends its stream at the server and stops its reconnects', async (t) => {
  const { streams, clock } = rig();
  t.after(() => streams.close());
  const authority = 'short-lived.emojivoto.svc.cluster.local:80';
  await server.send({ cmd: 'set', rpc: 'Watch', key: authority, json: { protocol: { opaque: {} } } });
  const c = collector<unknown>();
  const stop = streams.watchOutbound(authority, c.on, c.onError);
  await c.items$(1);
  stop();
  await server.waitFor((e) => e.event === 'ended' && e.key === authority);
  clock.advance(60_000);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(server.requests('Watch').filter((e) => e.key === authority).length, 1, 'no new stream');
  assert.deepEqual(c.errors, [], 'a stop is not a loss');
});

test('a controller that goes away and comes back (a restart, new anchors read at the dial): errors while it is down, the stream is back once it is up', async (t) => {
  let current = await startLinkerdPolicyServer();
  t.after(() => current.close());
  const port = Number(current.address.split(':')[1]);
  const clock = new VirtualClock(0);
  const streams = createLinkerdStreams({
    grpc,
    destination: { address: current.address, serverName: DESTINATION_NAME },
    policy: { address: current.address, serverName: DESTINATION_NAME },
    trustAnchorsPem: () => current.pki.anchorsPem,
    clientCertificate: () => current.pki.client('client-a'),
    clock,
    random: () => 0,
    logger: quiet,
    sourceWorkload: WORKLOAD,
  });
  t.after(() => streams.close());
  const path = 'restart.emojivoto.svc.cluster.local:80';
  await current.send({ cmd: 'set', rpc: 'Get', key: path, json: { noEndpoints: { exists: true } } });
  const c = collector<unknown>();
  streams.getDestination(path, CONTEXT, c.on, c.onError);
  await c.items$(1);
  await current.close();
  await c.errors$(1);
  assert.equal((c.errors[0] as LinkerdStreamError).grpcStatus, 'UNAVAILABLE');
  // Down: the reconnect after 1 s fails too.
  clock.advance(1000);
  await c.errors$(2);
  assert.equal(c.items.length, 1, 'nothing delivered while it is down');
  current = await startLinkerdPolicyServer(DESTINATION_NAME, port);
  await current.send({ cmd: 'set', rpc: 'Get', key: path, json: { noEndpoints: { exists: false } } });
  clock.advance(2000);
  await c.items$(2);
  assert.equal(c.items[1]!.delivery.first, true);
});
