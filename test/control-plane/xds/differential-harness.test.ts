// The differential test's harness, judged on its own (test/helpers/xds/): the SotW server's
// protocol rules seen by a raw ADS stream, its two ports, and the backends' one-port
// demultiplexing of mTLS HTTP/1.1 (a real mesh client) and plaintext gRPC (a real grpc-js client),
// including peers that send garbage.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createMesh } from '../../../src/mesh.js';
import { AggregatedDiscoveryService, type DiscoveryRequest, type DiscoveryResponse } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { decodeListener } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import type { DeepPartial } from '../../../src/proto/wire.js';
import { type Backend, startBackends } from '../../helpers/xds/backends.js';
import { TYPE, cluster, clusterName, listener, routeConfiguration, service } from '../../helpers/xds/resources.js';
import { translateCluster } from '../../../src/control-plane/xds/translate/cluster.js';
import { translateEndpoints } from '../../../src/control-plane/xds/translate/endpoints.js';
import { translateListener } from '../../../src/control-plane/xds/translate/listener.js';
import { formatReasons } from '../../../src/control-plane/xds/translate/result.js';
import { decodeCluster } from '../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { decodeClusterLoadAssignment } from '../../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { type XdsServer, startXdsServer } from '../../helpers/xds/xds-server.js';
import { devCa, quiet } from '../../outbound/e2e/replicas.js';

const Ads = grpc.makeGenericClientConstructor(AggregatedDiscoveryService as unknown as grpc.ServiceDefinition, 'ads');

interface RawStream {
  send(r: DeepPartial<DiscoveryRequest>): void;
  /** The next response (rejects if none comes within `ms`). */
  next(ms?: number): Promise<DiscoveryResponse>;
  /** Resolves true if no response arrives within `ms`. */
  quiet(ms: number): Promise<boolean>;
  status: Promise<grpc.StatusObject>;
  close(): void;
}

function rawStream(address: string, creds: grpc.ChannelCredentials, md = new grpc.Metadata()): RawStream {
  const client = new Ads(address, creds) as unknown as grpc.Client & { StreamAggregatedResources(md: grpc.Metadata): grpc.ClientDuplexStream<DeepPartial<DiscoveryRequest>, DiscoveryResponse> };
  const call = client.StreamAggregatedResources(md);
  const queue: DiscoveryResponse[] = [];
  const waiting: Array<(r: DiscoveryResponse) => void> = [];
  call.on('data', (r: DiscoveryResponse) => (waiting.length ? waiting.shift()!(r) : queue.push(r)));
  call.on('error', () => {});
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return {
    send: (r) => call.write(r),
    next: (ms = 3_000) =>
      queue.length
        ? Promise.resolve(queue.shift()!)
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no response')), ms);
            waiting.push((r) => {
              clearTimeout(timer);
              resolve(r);
            });
          }),
    quiet: (ms) => new Promise((resolve) => setTimeout(() => resolve(queue.length === 0), ms)),
    status,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

const names = (r: DiscoveryResponse) => r.resources.map((a) => decodeListener(a.value).name);
const plaintext = grpc.credentials.createInsecure();
const V1 = clusterName('v1');

describe('differential harness: the SotW ADS server', () => {
  let server: XdsServer;
  const cleanups: Array<() => Promise<void>> = [];
  const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const lds = (n: string) => listener({ name: n, routeConfigName: `rc-${n}` });
  before(async () => {
    server = await startXdsServer(t, { resources: [lds('a:80'), lds('b:80'), routeConfiguration([{ to: V1 }])] });
  });

  it('LDS: a first empty list is the wildcard (all), "*" too; names give the subscribed ones that exist', async () => {
    const s = rawStream(server.plaintextAddress, plaintext);
    try {
      s.send({ node: { id: 'n-wild' }, typeUrl: TYPE.listener });
      const all = await s.next();
      assert.deepEqual(names(all).sort(), ['a:80', 'b:80']);
      assert.equal(all.versionInfo, server.version(TYPE.listener));
      s.send({ typeUrl: TYPE.listener, versionInfo: all.versionInfo, responseNonce: all.nonce, resourceNames: ['b:80', 'missing:1'] });
      const named = await s.next();
      assert.deepEqual(names(named), ['b:80'], 'the subscription changed: answered, the missing one absent');
      s.send({ typeUrl: TYPE.listener, versionInfo: named.versionInfo, responseNonce: named.nonce, resourceNames: ['*'] });
      assert.deepEqual(names(await s.next()).sort(), ['a:80', 'b:80']);
      const other = rawStream(server.plaintextAddress, plaintext);
      other.send({ node: { id: 'n-star' }, typeUrl: TYPE.listener, resourceNames: ['*', 'a:80'] });
      assert.deepEqual(names(await other.next()).sort(), ['a:80', 'b:80']);
      other.close();
    } finally {
      s.close();
    }
  });

  it('ACK and NACK recorded with error_detail and not answered; a stale nonce ignored; update pushes only what changed', async () => {
    const s = rawStream(server.plaintextAddress, plaintext);
    try {
      s.send({ node: { id: 'n-acks' }, typeUrl: TYPE.listener, resourceNames: ['a:80'] });
      const r1 = await s.next();
      s.send({ typeUrl: TYPE.route, resourceNames: [routeConfiguration([]).name] });
      const rds = await s.next();
      assert.equal(rds.typeUrl, TYPE.route);
      assert.notEqual(rds.nonce, r1.nonce);
      s.send({ typeUrl: TYPE.listener, versionInfo: r1.versionInfo, responseNonce: r1.nonce, resourceNames: ['a:80'] });
      assert.ok(await s.quiet(150), 'an ACK is not answered');
      s.send({ typeUrl: TYPE.route, versionInfo: '', responseNonce: rds.nonce, resourceNames: [routeConfiguration([]).name], errorDetail: { code: 3, message: 'bad route' } });
      assert.ok(await s.quiet(150), 'a NACK is not answered');
      const client = await server.waitFor('n-acks', () => server.clients.find((c) => c.nodeId === 'n-acks' && c.events.length === 4));
      assert.deepEqual(client.events.map((e) => [e.kind, e.typeUrl === TYPE.route ? 'rds' : 'lds']), [['request', 'lds'], ['request', 'rds'], ['ack', 'lds'], ['nack', 'rds']]);
      assert.deepEqual(client.events[3]!.error, { code: 3, message: 'bad route' });
      assert.equal(client.via, 'plaintext');

      const before = server.version(TYPE.listener);
      server.update([lds('a:80'), lds('b:80'), routeConfiguration([{ to: clusterName('v2') }])]);
      assert.equal(server.version(TYPE.listener), before, 'Listeners unchanged: same version');
      const pushed = await s.next();
      assert.equal(pushed.typeUrl, TYPE.route, 'only the RouteConfiguration is pushed');
      assert.ok(await s.quiet(150));
      s.send({ typeUrl: TYPE.route, versionInfo: '', responseNonce: rds.nonce, resourceNames: ['x'] });
      assert.ok(await s.quiet(150), 'a request with a stale nonce is not answered, even with new names');
      await server.waitFor('the stale request', () => client.events.at(-1)?.kind === 'stale');
    } finally {
      s.close();
    }
  });

  it('the TLS port: pinned to the dev CA root, a bearer token required (UNAUTHENTICATED without)', async () => {
    const root = await readFile(server.rootFile);
    const tls = grpc.credentials.createSsl(root);
    const bad = rawStream(server.address, tls);
    bad.send({ node: { id: 'n-bad' }, typeUrl: TYPE.listener });
    assert.equal((await bad.status).code, grpc.status.UNAUTHENTICATED);
    bad.close();
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${server.token}`);
    const good = rawStream(server.address, tls, md);
    try {
      good.send({ node: { id: 'n-tls' }, typeUrl: TYPE.listener, resourceNames: ['a:80'] });
      assert.deepEqual(names(await good.next()), ['a:80']);
      assert.equal(server.clients.find((c) => c.nodeId === 'n-tls')?.via, 'tls');
      assert.equal(server.clients.filter((c) => c.nodeId === 'n-bad').length, 0, 'a refused call is no client');
    } finally {
      good.close();
    }
  });
});

describe('differential harness: a backend is one port for mTLS HTTP/1.1 and plaintext gRPC', () => {
  let backends: Record<string, Backend>;
  const cleanups: Array<() => Promise<void>> = [];
  const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  before(async () => {
    backends = await startBackends(t, ['a'], { ca: await devCa(), methods: ['/x.Y/Z'] });
  });

  const grpcCall = (address: string, method = '/x.Y/Z') =>
    new Promise<string>((resolve, reject) => {
      const c = new grpc.Client(address, plaintext);
      c.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 3_000 }, (e, r) => {
        c.close();
        if (e) reject(e);
        else resolve(r!.toString());
      });
    });

  it('garbage, a bare close and a cut TLS hello are dropped; both sides keep answering their name and count it', async () => {
    const b = backends.a!;
    const [host, port] = [b.address.split(':')[0]!, Number(b.address.split(':')[1])];
    const poke = (bytes: Buffer | null) =>
      new Promise<void>((resolve) => {
        const s = connect(port, host, () => (bytes ? s.end(bytes) : s.end()));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    await poke(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await poke(null);
    await poke(Buffer.from([0x16, 0x03, 0x01, 0x00]));
    await poke(Buffer.from('PRI * HTTP/2.0\r\n'));

    assert.equal(await grpcCall(b.address), 'a');
    await assert.rejects(grpcCall(b.address, '/x.Y/Unknown'), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED);
    assert.equal(b.grpcHits(), 1);

    const mesh = await createMesh({ service: 'client', identity: { ca: await devCa() }, logger: quiet, outbound: { services: { payments: { endpoints: [b.address] } } } });
    try {
      const r = await mesh.fetch('http://payments/x.Y/Z');
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'a');
      assert.equal(b.httpHits(), 1);
    } finally {
      await mesh.close();
    }
  });

  it('resources: named as istiod names them, and read by our translators as meant (SAN → SPIFFE ID, RDS name, endpoint addresses)', () => {
    const [c, e] = service(V1, [backends.a!.address]);
    assert.equal(c!.name, 'outbound|8080|v1|payments.default.svc.cluster.local');
    assert.equal(e!.name, c!.name);
    assert.equal(listener().name, 'payments.default.svc.cluster.local:8080');
    assert.equal(routeConfiguration([]).name, 'outbound|8080||payments.default.svc.cluster.local');
    const tls = translateCluster(decodeCluster(cluster(V1, { sans: ['spiffe://cluster.local/ns/default/sa/payments'] }).any.value));
    assert.ok(tls.ok, tls.ok ? '' : formatReasons(tls.reasons));
    assert.deepEqual(tls.value.identities, ['spiffe://cluster.local/ns/default/sa/payments'], "the UpstreamTlsContext's SAN is the expected SPIFFE ID");
    const listen = translateListener(decodeListener(listener().any.value));
    assert.deepEqual(listen.ok && listen.value.routes, { rds: 'outbound|8080||payments.default.svc.cluster.local' });
    const cla = translateEndpoints(decodeClusterLoadAssignment(e!.any.value), 'spiffe://cluster.local/ns/default/sa/payments');
    assert.deepEqual(cla.ok && cla.value.map((x) => x.address), [backends.a!.address]);
  });
});
