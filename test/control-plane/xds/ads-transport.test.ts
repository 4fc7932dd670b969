// The ADS transport over a real stream: grpc-js on both sides, TLS with a dev-CA serving certificate
// for localhost, the project's own codecs on the wire (test/helpers/ads-server.ts). The session's
// backoff runs on a VirtualClock (the clock is the boundary), everything else is real: what the
// server asserts is what arrived over the socket.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { VirtualClock } from '../../../src/clock.js';
import { AdsTransport, type AdsTransportOptions } from '../../../src/control-plane/xds/ads-transport.js';
import { CLUSTER_TYPE_URL as CDS, INVALID_ARGUMENT, LISTENER_TYPE_URL as LDS, type Decode } from '../../../src/control-plane/xds/discovery.js';
import { buildNode } from '../../../src/control-plane/xds/node.js';
import { type Logger } from '../../../src/logger.js';
import { startAdsServer, type AdsServer } from '../../helpers/ads-server.js';
import { socketsTo, waitFor } from '../../helpers/net.js';
import { tempDirFor } from '../../helpers/tmp.js';

const node = buildNode({
  service: 'payments', namespace: 'shop', spiffeId: 'spiffe://cluster.local/ns/shop/sa/payments', labels: { app: 'payments' },
  ip: '10.4.0.17', clusterId: 'Kubernetes', version: '0.1.0',
});

/** Resources are JSON `{ name, bad? }` here: the decoder is injected (the real ones are later slices). */
const decode: Decode = (_typeUrl, any) => {
  const v = JSON.parse(Buffer.from(any.value).toString()) as { name: string; bad?: string };
  if (v.bad) throw new Error(v.bad);
  return { name: v.name, value: v };
};
const res = (typeUrl: string, r: object) => ({ typeUrl, value: Buffer.from(JSON.stringify(r)) });

function quietLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (m: string, f?: Record<string, unknown>) => lines.push(`${m} ${f ? JSON.stringify(f) : ''}`);
  return { lines, info: log, warn: log, error: log };
}

function transportFor(t: { after(fn: () => void): void }, ads: AdsServer, o: Partial<AdsTransportOptions> = {}) {
  const clock = new VirtualClock(1_000_000);
  const logger = quietLogger();
  const transport = new AdsTransport({
    address: ads.address, root: ads.rootFile, token: 'good-token', clusterId: 'Kubernetes', node, decode, clock, random: () => 0.5, logger, ...o,
  });
  t.after(() => transport.close());
  return { transport, clock, logger };
}

test('the first request of the stream carries the node, with the bearer token and ClusterID as metadata; later ones do not', async (t) => {
  const ads = await startAdsServer(t);
  const { transport } = transportFor(t, ads);
  transport.session.subscribe(LDS, ['payments.shop.svc.cluster.local:8080']);
  transport.start();
  transport.start(); // once: no second stream
  transport.session.subscribe(CDS, ['outbound|8080||payments.shop.svc.cluster.local']);
  const [first, second] = await ads.requests(0, 2);
  assert.equal(ads.streams[0]!.authorization, 'Bearer good-token');
  assert.equal(ads.streams[0]!.clusterId, 'Kubernetes');
  assert.equal(first!.node?.id, 'sidecar~10.4.0.17~payments.shop~shop.svc.cluster.local');
  assert.equal(first!.node?.userAgentName, 'sidecarless');
  assert.equal(first!.node?.metadata?.fields.get('GENERATOR')?.stringValue, 'grpc');
  assert.equal(first!.node?.metadata?.fields.get('SERVICE_ACCOUNT')?.stringValue, 'payments');
  assert.equal(first!.typeUrl, LDS);
  assert.deepEqual(first!.resourceNames, ['payments.shop.svc.cluster.local:8080']);
  assert.equal(first!.responseNonce, '');
  assert.equal(second!.node, undefined, 'only the first request carries the node');
  assert.equal(second!.typeUrl, CDS);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ads.streams.length, 1, 'start() twice opens one stream');
});

test('an ACK after a good response and a NACK with error_detail after a bad one reach the server over the stream', async (t) => {
  const ads = await startAdsServer(t);
  const { transport } = transportFor(t, ads);
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await ads.requests(0, 1);
  const s = ads.streams[0]!;
  s.send({ versionInfo: 'v1', nonce: 'n1', typeUrl: LDS, resources: [res(LDS, { name: 'a:80' })] });
  const [, ack] = await ads.requests(0, 2);
  assert.deepEqual([ack!.versionInfo, ack!.responseNonce, ack!.errorDetail], ['v1', 'n1', undefined]);
  assert.deepEqual(ack!.resourceNames, ['a:80']);
  assert.ok(transport.session.resources(LDS).has('a:80'), 'the ACKed resource is in force');

  s.send({ versionInfo: 'v2', nonce: 'n2', typeUrl: LDS, resources: [res(LDS, { name: 'a:80', bad: 'retry_on "5xx-ish" is not a retry condition' })] });
  const [, , nack] = await ads.requests(0, 3);
  assert.equal(nack!.versionInfo, 'v1', 'a NACK carries the previous ACKed version');
  assert.equal(nack!.responseNonce, 'n2');
  assert.equal(nack!.errorDetail?.code, INVALID_ARGUMENT);
  assert.match(nack!.errorDetail!.message, /5xx-ish/);
  assert.equal(transport.session.status().types[0]!.ackedVersion, 'v1', 'the last good version stays in force');
});

test('a stream the server ends reconnects after the backoff and re-sends the ACKed versions, with the node and empty nonces', async (t) => {
  const ads = await startAdsServer(t);
  const { transport, clock, logger } = transportFor(t, ads);
  transport.session.subscribe(LDS, ['a:80']);
  transport.session.subscribe(CDS, ['c1']);
  transport.start();
  await ads.requests(0, 2);
  const s = ads.streams[0]!;
  s.send({ versionInfo: 'L7', nonce: 'x1', typeUrl: LDS, resources: [res(LDS, { name: 'a:80' })] });
  s.send({ versionInfo: 'C3', nonce: 'x2', typeUrl: CDS, resources: [res(CDS, { name: 'c1' })] });
  await ads.requests(0, 4);
  s.end();
  await waitFor(() => transport.session.status().stream.state === 'backoff', 5_000, 'the session to see the stream end');
  assert.equal(ads.streams.length, 1, 'nothing reconnects before the backoff has passed');
  assert.match(logger.lines.join('\n'), /ADS stream to localhost:\d+ ended: the server ended it \(OK\); reconnecting in 1000 ms/);
  clock.advance(1_000);
  const again = await ads.requests(1, 2);
  assert.equal(ads.streams[1]!.authorization, 'Bearer good-token', 'the token goes on the new stream too');
  assert.equal(again[0]!.node?.id, node.id, 'the new stream starts with the node');
  assert.deepEqual(again.map((r) => [r.typeUrl, r.versionInfo, r.responseNonce, r.resourceNames]), [
    [LDS, 'L7', '', ['a:80']],
    [CDS, 'C3', '', ['c1']],
  ]);
  assert.ok(transport.session.resources(CDS).has('c1'), 'the resources were kept through the outage');
});

test('a wrong root: no connection is accepted, the token is never sent, and the session backs off', async (t) => {
  const ads = await startAdsServer(t);
  const sockets = socketsTo(t, ads.port);
  const { transport, clock } = transportFor(t, ads, { root: ads.otherRootFile });
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await waitFor(() => transport.session.status().stream.state === 'backoff', 5_000, 'the TLS failure');
  assert.ok(sockets.length > 0, 'the client did try to connect');
  assert.match(transport.session.status().stream.lastError ?? '', /UNAVAILABLE/);
  clock.advance(1_000); // a second attempt, same root: refused again
  await waitFor(() => transport.session.status().stream.failures === 2, 5_000, 'the second attempt');
  assert.deepEqual([ads.streams.length, ads.refused.length], [0, 0], 'no call reached the server: no token was sent');
});

test('an unreadable root or token file is a lost stream with a message that says which file, and backs off', async (t) => {
  const ads = await startAdsServer(t);
  const dir = tempDirFor(t, 'sidecarless-ads-files-');
  const { transport } = transportFor(t, ads, { root: join(dir, 'missing-root.pem') });
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await waitFor(() => transport.session.status().stream.state === 'backoff', 5_000, 'the root read failure');
  assert.match(transport.session.status().stream.lastError ?? '', /cannot read the control-plane root .*missing-root\.pem: it does not exist/);

  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, '  \n');
  const second = transportFor(t, ads, { token: { file: tokenFile } }).transport;
  second.session.subscribe(LDS, ['a:80']);
  second.start();
  await waitFor(() => second.session.status().stream.state === 'backoff', 5_000, 'the empty token');
  assert.match(second.session.status().stream.lastError ?? '', /token file .*token is empty/);
  assert.equal(ads.streams.length + ads.refused.length, 0);
});

test('a token the server refuses: UNAUTHENTICATED ends the stream, and the session backs off', async (t) => {
  const ads = await startAdsServer(t);
  const { transport } = transportFor(t, ads, { token: 'stolen' });
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await waitFor(() => transport.session.status().stream.state === 'backoff', 5_000, 'the refusal');
  assert.deepEqual(ads.refused, ['Bearer stolen']);
  assert.match(transport.session.status().stream.lastError ?? '', /UNAUTHENTICATED: authentication failure/);
});

test('a server that sends bytes that are not a DiscoveryResponse, or a 10 kB error: the stream is lost, the process lives, the log stays short', async (t) => {
  const ads = await startAdsServer(t);
  const { transport, clock, logger } = transportFor(t, ads);
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await ads.requests(0, 1);
  ads.streams[0]!.send({ versionInfo: 'v1', nonce: 'n1', typeUrl: LDS, resources: [res(LDS, { name: 'a:80' })] });
  await ads.requests(0, 2);
  ads.streams[0]!.sendRaw(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)); // a length far past the end
  await waitFor(() => transport.session.status().stream.state === 'backoff', 5_000, 'the broken message to end the stream');
  assert.match(transport.session.status().stream.lastError ?? '', /INTERNAL/);
  assert.ok(transport.session.resources(LDS).has('a:80'), 'the last good resources stay');
  clock.advance(1_000);
  await ads.requests(1, 1);
  ads.streams[1]!.fail(13, `overloaded ${'y'.repeat(10_000)}`);
  await waitFor(() => transport.session.status().stream.failures === 2, 5_000, 'the second loss');
  assert.match(transport.session.status().stream.lastError ?? '', /^INTERNAL: overloaded y{400,500}…$/);
  assert.ok(logger.lines.every((l) => l.length < 1_000), "no log line carries a peer's 10 kB");
});

test('close() ends the stream and leaves no socket, no timer, and no reconnect', async (t) => {
  const ads = await startAdsServer(t);
  const sockets = socketsTo(t, ads.port);
  const { transport, clock } = transportFor(t, ads);
  transport.session.subscribe(LDS, ['a:80']);
  transport.start();
  await ads.requests(0, 1);
  await waitFor(() => transport.session.status().stream.state === 'connected', 5_000, 'READY');
  assert.ok(clock.pending().length > 0, 'a does-not-exist timer runs on the ready stream');
  transport.close();
  await waitFor(() => ads.streams[0]!.ended, 5_000, 'the server to see the stream end');
  await waitFor(() => sockets.every((s) => s.destroyed), 2_000, 'every socket closed');
  assert.deepEqual(clock.pending(), [], 'no timer is left');
  assert.equal(transport.session.status().stream.state, 'closed');
  clock.advance(60_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ads.streams.length, 1, 'nothing reconnects after close()');
  assert.throws(() => transport.start(), /closed/);
});
