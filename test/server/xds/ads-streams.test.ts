// The bare ADS server (ads-service.ts) over a hand-made ResourceSource: a raw stream gets the
// inbound Listener by name and LDS wildcard carries every Listener (removal by absence); the mesh's
// own xDS client over TLS with a token discovers a service, calls it over mTLS and follows a change.
// (Other people's xDS clients, grpc-js-xds and C-core, are judged against the composed control
// plane in test/server/control-plane.peers.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceSpec } from '../../../src/outbound/settings.js';
import { parsePolicy } from '../../../src/policy/index.js';
import { generateOutboundResources, type OutboundResources, TYPE_URLS } from '../../../src/server/xds/outbound-resources.js';
import { inboundListenerName, renderInboundListener } from '../../../src/server/xds/inbound-listener.js';
import { createAdsService } from '../../../src/server/xds/ads-service.js';
import type { ResourceSource } from '../../../src/server/xds/ads-session.js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest, type DiscoveryResponse } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { idOf } from '../../helpers/certs.js';
import { servingTls } from '../../helpers/ads-server.js';
import { okText } from '../../helpers/xds-istiod.js';
import { waitFor } from '../../helpers/net.js';
import { devCa, ok, quiet, startReplica } from '../../outbound/e2e/replicas.js';
import { createMesh } from '../../../src/mesh.js';

const INBOUND = inboundListenerName('127.0.0.1', 9443);
const spec = (name: string, o: Partial<ServiceSpec>): ServiceSpec => ({ name, namespace: 'default', hostnames: [], identity: idOf(name), settings: { ...DEFAULT_SERVICE_SETTINGS, balancer: 'round-robin' }, routes: [], endpoints: [], ...o });

/** The generator's resources for three services on `addresses` (portable lb policy). */
function resources(addresses: readonly string[]): OutboundResources {
  const ep = (a: string, name: string) => ({ address: a, identity: idOf(name), weight: 1 });
  return generateOutboundResources([
    { port: 8080, spec: spec('payments', { endpoints: addresses.map((a) => ep(a, 'payments')) }) },
    { port: 8080, spec: spec('shop', { endpoints: [ep(addresses[2]!, 'shop')] }) },
    { port: 8080, spec: spec('shop-a', { endpoints: [ep(addresses[0]!, 'shop-a')] }) },
    { port: 8080, spec: spec('shop-b', { endpoints: [ep(addresses[1]!, 'shop-b')] }) },
  ], { portableLbPolicy: true });
}

test('a raw stream gets the inbound Listener by name, and LDS wildcard carries every Listener', async (t) => {
  let outbound = resources(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']);
  const inbound = renderInboundListener({ ip: '127.0.0.1', port: 9443, mode: 'strict', policy: parsePolicy({ rules: [] }), trustDomain: 'cluster.local', namespace: 'default' });
  const source: ResourceSource = {
    resolve: (_c, type, names) => {
      const all = new Map(outbound.get(type) ?? []);
      if (type === TYPE_URLS.listener) all.set(INBOUND, inbound);
      return names === '*' ? all : new Map([...all].filter(([n]) => names.includes(n)));
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
  const source: ResourceSource = { resolve: (_c, type, names) => new Map([...(outbound.get(type) ?? [])].filter(([n]) => names === '*' || names.includes(n))) };
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
