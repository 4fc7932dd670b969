// Other people's xDS clients against the ADS server (ads-service.ts): @grpc/grpc-js-xds in a child
// process and gRPC C-core (Debian python3-grpcio), at the same time, on one plaintext grpc-js
// Server. The resources are generateOutboundResources' (portableLbPolicy) plus an inbound
// Listener from renderInboundListener, through a small ResourceSource; the Clusters' ISTIO_MUTUAL
// transport socket is taken out, so the peers call plaintext grpc-js backends (the generated TLS
// contexts are ACKed by grpc-js-xds in outbound-resources.peer.test.ts; this file tests the server).
// One run: every resource ACKed (AdsEvents and clients()), no NACK, no stale-nonce storm; round
// robin across three backends; a 90/10 split within tolerance over 400 calls; the split changed
// (changed()) and followed by both clients within a second.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ClusterCodec } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceSpec, type SplitBackend } from '../../../src/outbound/settings.js';
import { parsePolicy } from '../../../src/policy/index.js';
import { generateOutboundResources, type OutboundResources, TYPE_URLS } from '../../../src/server/xds/outbound-resources.js';
import { inboundListenerName, renderInboundListener } from '../../../src/server/xds/inbound-listener.js';
import { createAdsService } from '../../../src/server/xds/ads-service.js';
import type { AdsRequestEvent, ResourceSource } from '../../../src/server/xds/ads-session.js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest, type DiscoveryResponse } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { grpcBackends, runCoreXdsClient } from '../../helpers/ads-peers.js';
import { runGrpcXdsClient } from '../../helpers/xds/grpc-xds-child.js';
import { idOf } from '../../helpers/certs.js';
import { servingTls } from '../../helpers/ads-server.js';
import { okText } from '../../helpers/xds-istiod.js';
import { waitFor } from '../../helpers/net.js';
import { devCa, ok, quiet, startReplica } from '../../outbound/e2e/replicas.js';
import { createMesh } from '../../../src/mesh.js';

const METHOD = '/x.Y/Z';
const PAYMENTS = 'xds:///payments.default.svc.cluster.local:8080';
const SHOP = 'xds:///shop.default.svc.cluster.local:8080';
const INBOUND = inboundListenerName('127.0.0.1', 9443);
const TYPES = [TYPE_URLS.listener, TYPE_URLS.routes, TYPE_URLS.cluster, TYPE_URLS.endpoints];
const spec = (name: string, o: Partial<ServiceSpec>): ServiceSpec => ({ name, namespace: 'default', hostnames: [], identity: idOf(name), settings: { ...DEFAULT_SERVICE_SETTINGS, balancer: 'round-robin' }, routes: [], endpoints: [], ...o });

/** The generator's resources with the Clusters' transport socket removed (plaintext backends). */
function resources(addresses: readonly string[], split?: readonly SplitBackend[]): OutboundResources {
  const ep = (a: string, name: string) => ({ address: a, identity: idOf(name), weight: 1 });
  const generated = generateOutboundResources([
    { port: 8080, spec: spec('payments', { endpoints: addresses.map((a) => ep(a, 'payments')) }) },
    { port: 8080, spec: spec('shop', { ...(split && { split }), endpoints: [ep(addresses[2]!, 'shop')] }) },
    { port: 8080, spec: spec('shop-a', { endpoints: [ep(addresses[0]!, 'shop-a')] }) },
    { port: 8080, spec: spec('shop-b', { endpoints: [ep(addresses[1]!, 'shop-b')] }) },
  ], { portableLbPolicy: true });
  const clusters = new Map([...generated.get(TYPE_URLS.cluster)!].map(([n, b]) => [n, ClusterCodec.encode({ ...ClusterCodec.decode(b), transportSocket: undefined })]));
  return new Map([...generated, [TYPE_URLS.cluster, clusters]]);
}

test('grpc-js-xds and gRPC C-core: every resource ACKed, round robin over three backends, 90/10 split, a split change followed within a second', async (t) => {
  const backends = await grpcBackends(t, ['b1', 'b2', 'b3'], METHOD);
  const addresses = backends.map((b) => b.address);
  let outbound = resources(addresses, [{ service: 'shop-a', weight: 90 }, { service: 'shop-b', weight: 10 }]);
  const inbound = renderInboundListener({ ip: '127.0.0.1', port: 9443, mode: 'permissive', policy: parsePolicy({ rules: [{ action: 'allow', from: { namespaces: ['default'] } }] }), trustDomain: 'cluster.local', namespace: 'default' });
  const source: ResourceSource = {
    resolve: (_c, type, names) => {
      const all = new Map(outbound.get(type) ?? []);
      if (type === TYPE_URLS.listener) all.set(INBOUND, inbound);
      return names === '*' ? all : new Map([...all].filter(([n]) => names.has(n)));
    },
  };
  const events: Array<{ node: string; r: AdsRequestEvent; at: number }> = [];
  const ads = createAdsService(grpc, { source, plaintext: true, events: { request: (c, r) => events.push({ node: c.node!.id, r, at: Date.now() }) } });
  const server = new grpc.Server();
  server.addService(ads.definition, ads.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  t.after(() => {
    ads.close();
    server.forceShutdown();
  });
  const address = `127.0.0.1:${port}`;
  const phase1 = [{ target: PAYMENTS, method: METHOD, n: 300 }, { target: SHOP, method: METHOD, n: 400 }];
  const phase2 = [{ target: SHOP, method: METHOD, n: 200 }];
  const js = runGrpcXdsClient(t, { server: address, pod: 'js', target: PAYMENTS, phases: [phase1, phase2], deadlineMs: 3_000 });
  const core = runCoreXdsClient(t, { server: address, pod: 'core', phases: [phase1, phase2] });
  const peers = [js, core];
  const fail = (e: unknown) => new Error(`${(e as Error).message}; NACKs: ${JSON.stringify(events.filter((x) => x.r.kind === 'nack').map((x) => [x.node, x.r.typeUrl, x.r.error]))}; stderr: ${peers.map((p) => p.stderr().slice(-2_000)).join(' | ')}`);
  try {
    const [rJs, rCore] = await Promise.all(peers.map((p) => p.next()));
    for (const [who, [rr, split]] of [['grpc-js-xds', rJs!], ['C-core', rCore!]] as const) {
      assert.deepEqual([rr!.errors, split!.errors], [{}, {}], who);
      for (const b of ['b1', 'b2', 'b3']) assert.ok(Math.abs((rr!.counts[b] ?? 0) - 100) <= 15, `${who} round robin: ${JSON.stringify(rr!.counts)}`);
      const minority = split!.counts.b2 ?? 0;
      assert.equal((split!.counts.b1 ?? 0) + minority, 400, `${who} split: only shop-a and shop-b: ${JSON.stringify(split!.counts)}`);
      assert.ok(minority >= 20 && minority <= 65, `${who} 90/10 split: ${JSON.stringify(split!.counts)}`);
    }
    // every type ACKed at the version sent, by both; nothing NACKed; stale requests (if any) few
    const status = ads.clients();
    for (const p of peers) {
      const c = status.find((s) => s.nodeId === p.nodeId);
      assert.ok(c, `${p.nodeId} is a client`);
      assert.deepEqual(c.types.map((x) => x.typeUrl).sort(), [...TYPES].sort());
      for (const x of c.types) {
        assert.equal(x.acked?.version, x.sent?.version, `${p.nodeId} ACKed ${x.typeUrl} at the version sent`);
        assert.equal(x.lastNack, undefined, `${p.nodeId} NACKed ${x.typeUrl}: ${x.lastNack?.error}`);
        assert.ok(x.staleIgnored <= 4, `${p.nodeId} ${x.typeUrl}: ${x.staleIgnored} stale requests`);
      }
      const named = c.types.flatMap((x) => (x.names === '*' ? ['*'] : x.names));
      assert.ok(named.includes('outbound|8080||shop-b.default.svc.cluster.local') && named.includes('payments.default.svc.cluster.local:8080'), JSON.stringify(named));
    }
    assert.equal(events.filter((e) => e.r.kind === 'nack').length, 0);
    assert.ok(events.length < 60, `${events.length} requests in all (no ping-pong)`);

    // the split turns around: both clients have the new RouteConfiguration ACKed within a second
    const shopRoute = 'outbound|8080||shop.default.svc.cluster.local';
    const before = outbound.get(TYPE_URLS.routes)!.get(shopRoute)!;
    outbound = resources(addresses, [{ service: 'shop-a', weight: 10 }, { service: 'shop-b', weight: 90 }]);
    assert.notDeepEqual(outbound.get(TYPE_URLS.routes)!.get(shopRoute), before);
    const changedAt = Date.now();
    const seen = events.length;
    ads.changed();
    const acked = () => peers.every((p) => ads.clients().find((s) => s.nodeId === p.nodeId)!.types.find((x) => x.typeUrl === TYPE_URLS.routes)!.acked?.nonce === ads.clients().find((s) => s.nodeId === p.nodeId)!.types.find((x) => x.typeUrl === TYPE_URLS.routes)!.sent?.nonce && events.slice(seen).some((e) => e.node === p.nodeId && e.r.kind === 'ack' && e.r.typeUrl === TYPE_URLS.routes));
    while (!acked() && Date.now() - changedAt < 1_000) await new Promise((r) => setTimeout(r, 5));
    assert.ok(acked(), `both clients ACK the new split within a second: ${JSON.stringify(events.slice(seen).map((e) => [e.node, e.r.kind, e.r.typeUrl]))}; status ${JSON.stringify(ads.clients())}`);
    assert.deepEqual(events.slice(seen).map((e) => e.r.typeUrl).filter((x) => x !== TYPE_URLS.routes), [], 'only the RouteConfiguration changed, only it was pushed');
    for (const p of peers) p.proceed();
    const after = await Promise.all(peers.map((p) => p.next()));
    for (const [i, [split]] of after.entries()) {
      assert.deepEqual(split!.errors, {});
      assert.ok((split!.counts.b2 ?? 0) >= 160, `${i ? 'C-core' : 'grpc-js-xds'} follows the new split: ${JSON.stringify(split!.counts)}`);
    }
  } catch (e) {
    throw fail(e);
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
  // the streams ended with the peers: no client left
  for (let i = 0; i < 200 && ads.clients().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(ads.clients(), []);
});

test('a raw stream gets the inbound Listener by name, and LDS wildcard carries every Listener', async (t) => {
  let outbound = resources(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']);
  const inbound = renderInboundListener({ ip: '127.0.0.1', port: 9443, mode: 'strict', policy: parsePolicy({ rules: [] }), trustDomain: 'cluster.local', namespace: 'default' });
  const source: ResourceSource = {
    resolve: (_c, type, names) => {
      const all = new Map(outbound.get(type) ?? []);
      if (type === TYPE_URLS.listener) all.set(INBOUND, inbound);
      return names === '*' ? all : new Map([...all].filter(([n]) => names.has(n)));
    },
  };
  const ads = createAdsService(grpc, { source, plaintext: true, coalesceMs: 1 });
  const server = new grpc.Server();
  server.addService(ads.definition, ads.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => {
    ads.close();
    client.close();
    server.forceShutdown();
  });
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => decodeDiscoveryResponse(b));
  const got: DiscoveryResponse[] = [];
  call.on('data', (r: DiscoveryResponse) => got.push(r));
  call.on('error', () => {});
  const until = async (n: number) => {
    for (let i = 0; i < 300 && got.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, n);
  };
  call.write(Buffer.from(encodeDiscoveryRequest({ node: { id: 'raw' }, typeUrl: TYPE_URLS.listener, resourceNames: [INBOUND] })));
  await until(1);
  assert.deepEqual(got[0]!.resources.map((r) => Buffer.from(r.value)), [Buffer.from(inbound)]);
  call.write(Buffer.from(encodeDiscoveryRequest({ typeUrl: TYPE_URLS.listener, resourceNames: ['*'], responseNonce: got[0]!.nonce })));
  await until(2);
  assert.equal(got[1]!.resources.length, 5, 'four outbound Listeners and the inbound one');
  // a service goes away: the wildcard response no longer carries its Listener (removal by absence)
  outbound = generateOutboundResources([{ port: 8080, spec: spec('payments', {}) }], { portableLbPolicy: true });
  ads.changed();
  await until(3);
  assert.equal(got[2]!.resources.length, 2);
  call.end();
});

test("the mesh's own xDS client over TLS with a token: discovers a service, calls it over mTLS, follows a change of endpoints", async (t) => {
  const [v1, v2] = await Promise.all([startReplica('v1', ok), startReplica('v2', ok)]);
  t.after(() => Promise.all([v1.close(), v2.close()]).then(() => {}));
  let endpoints = [v1.address];
  const generate = () => generateOutboundResources([{ port: 8080, spec: spec('payments', { endpoints: endpoints.map((address) => ({ address, identity: idOf('payments'), weight: 1 })) }) }]);
  let outbound = generate();
  const source: ResourceSource = { resolve: (_c, type, names) => new Map([...(outbound.get(type) ?? [])].filter(([n]) => names === '*' || names.has(n))) };
  const ads = createAdsService(grpc, {
    source,
    authenticate: (md) => {
      if (md.get('authorization')[0] !== 'Bearer good-token') throw { code: grpc.status.UNAUTHENTICATED, details: 'bad token' };
      return 'spiffe://cluster.local/ns/default/sa/client';
    },
  });
  const tls = await servingTls(t);
  const server = new grpc.Server();
  server.addService(ads.definition, ads.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', tls.credentials, (e, p) => (e ? reject(e) : resolve(p))));
  t.after(() => {
    ads.close();
    server.forceShutdown();
  });
  const m = await createMesh({ service: 'client', identity: { ca: await devCa() }, controlPlane: { address: `localhost:${port}`, root: tls.rootFile, token: 'good-token' }, logger: quiet }, { env: { INSTANCE_IP: '10.0.0.9' } });
  t.after(() => m.close());
  const url = 'http://payments.default.svc.cluster.local:8080/x';
  assert.equal(await okText(m, url), 'v1');
  const [c] = ads.clients();
  assert.equal(c?.identity, 'spiffe://cluster.local/ns/default/sa/client');
  assert.equal(c?.plaintext, false);
  assert.deepEqual(c?.types.map((x) => [x.typeUrl, x.acked?.version === x.sent?.version, x.lastNack]), [TYPE_URLS.cluster, TYPE_URLS.endpoints, TYPE_URLS.listener, TYPE_URLS.routes].map((x) => [x, true, undefined]), 'every type ACKed at the version sent');
  endpoints = [v2.address];
  outbound = generate();
  ads.changed();
  await waitFor(async () => (await okText(m, url)) === 'v2', 3_000);
});
