// The embedded control plane attacked from outside: a workload's valid token used to claim another
// namespace, one authenticated workload flooding the registry, a hostile ADS client growing its
// subscriptions without bound on the plaintext port, and a web page reading /status through DNS
// rebinding. One control plane (TLS + plaintext + admin) for the file; raw grpc-js streams for
// the hostile clients.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type RunningControlPlane, startControlPlane } from '../../src/server/control-plane-server.js';
import { issueToken } from '../../src/server/ca/tokens.js';
import { type DiscoveryResponse, decodeDiscoveryResponse, encodeDiscoveryRequest } from '../../src/proto/envoy/service/discovery/v3/discovery.js';
import type { Value } from '../../src/proto/google/protobuf/struct.js';
import { inboundListenerName } from '../../src/control-plane/xds/translate/inbound.js';
import { VirtualClock } from '../../src/clock.js';
import { MAX_REGISTRATIONS_PER_IDENTITY, Registry } from '../../src/server/registry/registry.js';
import { MAX_SUBSCRIBED_NAME_BYTES } from '../../src/server/xds/ads-session.js';
import { MAX_ADDRESSES_PER_STREAM } from '../../src/server/registry/registrar.js';
import { MAX_INBOUND_LISTENERS_PER_CLIENT } from '../../src/server/resource-source.js';
import { makeTempDir } from '../helpers/tmp.js';

const TD = 'cluster.local';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const MESH = `trustDomain: ${TD}
services:
  - name: payments
    port: 8443
  - name: orders
    port: 8080
  - name: ledger
    namespace: prod
    port: 9000
`;

let cp: RunningControlPlane;
const logs: string[] = [];

before(async () => {
  const dir = makeTempDir('sidecarless-cp-attack-').dir;
  await writeFile(join(dir, 'mesh.yaml'), MESH);
  const logger = { info: (m: string) => void logs.push(m), warn: (m: string) => void logs.push(`warn: ${m}`), error: (m: string) => void logs.push(`error: ${m}`) };
  cp = await startControlPlane({ meshFile: join(dir, 'mesh.yaml'), state: join(dir, 'state'), listen: '127.0.0.1:0', plaintextListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger });
});
after(async () => {
  await cp?.close();
});

interface Hostile {
  readonly call: grpc.ClientDuplexStream<Buffer, DiscoveryResponse>;
  send(typeUrl: string, names: readonly string[], nonce?: string, version?: string): void;
  next(): Promise<DiscoveryResponse>;
  readonly status: Promise<grpc.StatusObject>;
  close(): void;
}

type NodeSpec = { cluster: string; fields?: Record<string, string> };

/** A raw ADS stream: over TLS with a bearer token when `token` is given, else on the plaintext port. */
function hostile(spec: NodeSpec, token?: string): Hostile {
  const address = token === undefined ? cp.plaintextAddress! : cp.address.replace('127.0.0.1', 'localhost');
  const creds = token === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(readFileSync(cp.rootFile));
  const client = new grpc.Client(address, creds, { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => decodeDiscoveryResponse(b), md);
  call.on('error', () => {});
  const queue: DiscoveryResponse[] = [];
  const waiting: Array<(r: DiscoveryResponse) => void> = [];
  call.on('data', (r: DiscoveryResponse) => (waiting.length > 0 ? waiting.shift()!(r) : queue.push(r)));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  const fields = new Map<string, Value>(Object.entries(spec.fields ?? {}).map(([k, v]) => [k, { stringValue: v }]));
  let first = true;
  return {
    call,
    send(typeUrl, names, nonce = '', version = '') {
      const node = first ? { node: { id: `sidecar~127.0.0.1~${spec.cluster}~x`, cluster: spec.cluster, metadata: { fields } } } : {};
      first = false;
      call.write(Buffer.from(encodeDiscoveryRequest({ ...node, typeUrl, resourceNames: [...names], responseNonce: nonce, versionInfo: version })));
    },
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    status,
    close() {
      call.cancel();
      client.close();
    },
  };
}

const tokenFor = (namespace: string, serviceAccount: string) => issueToken(cp.state, { namespace, serviceAccount });

/** The first of: a response, or the stream's end. */
async function firstOf(h: Hostile): Promise<DiscoveryResponse | grpc.StatusObject> {
  return Promise.race([h.next(), h.status]);
}

describe('the embedded control plane under attack', () => {
  test("a token for one namespace cannot open a stream whose node cluster names another (no NAMESPACE metadata to compare)", async () => {
    // orders' token, node "ledger.prod" with neither NAMESPACE nor SERVICE_ACCOUNT: the namespace
    // the control plane reads from the node (prod) is not the token's (default).
    const h = hostile({ cluster: 'ledger.prod', fields: { INSTANCE_IPS: '127.0.0.1' } }, tokenFor('default', 'orders'));
    h.send(LDS, [inboundListenerName('127.0.0.1', 9000)]);
    const r = await firstOf(h);
    h.close();
    assert.equal((r as grpc.StatusObject).code, grpc.status.PERMISSION_DENIED, `served: ${JSON.stringify(r).slice(0, 200)}`);
    assert.match((r as grpc.StatusObject).details, /namespace "prod"/);
    // The same token with its own namespace in the cluster (and no metadata) still works.
    const ok = hostile({ cluster: 'orders.default', fields: { INSTANCE_IPS: '127.0.0.1' } }, tokenFor('default', 'orders'));
    ok.send(LDS, [inboundListenerName('127.0.0.1', 8080)]);
    const served = await firstOf(ok);
    ok.close();
    assert.ok('nonce' in served, `refused: ${JSON.stringify(served)}`);
  });

  test('one authenticated workload cannot register thousands of addresses in one ACK (the registry is shared by every service)', async () => {
    const names = Array.from({ length: 500 }, (_, i) => inboundListenerName('127.0.0.1', 20_000 + i));
    const h = hostile({ cluster: 'orders.default', fields: { INSTANCE_IPS: '127.0.0.1', NAMESPACE: 'default', SERVICE_ACCOUNT: 'orders' } }, tokenFor('default', 'orders'));
    h.send(LDS, names);
    const r = await h.next();
    h.send(LDS, names, r.nonce, r.versionInfo); // the ACK that registers
    const deadline = Date.now() + 2_000;
    const count = () => cp.status().services.find((s) => s.name === 'orders')!.endpoints.length;
    while (count() === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    const status = cp.status();
    h.close();
    assert.equal(count(), MAX_ADDRESSES_PER_STREAM, 'registered addresses of one stream');
    const client = status.clients.find((c) => (c as { cluster: string }).cluster === 'orders.default' && (c as { registration?: { addresses: string[] } }).registration?.addresses.length);
    assert.match(JSON.stringify(client), /at most \d+ addresses per stream/);
  });

  test('a plaintext ADS client cannot grow its subscriptions without bound (names held per stream are capped)', async () => {
    const h = hostile({ cluster: 'anyone.default' });
    const big = (prefix: string) => Array.from({ length: 5_000 }, (_, i) => `${prefix}-${i}-${'x'.repeat(220)}`);
    h.send(EDS, big('eds')); // ~1.1 MB of names: under the cap, taken (no such resources: nothing sent)
    h.send(CDS, big('cds')); // as much again on another type: over MAX_SUBSCRIBED_NAME_BYTES for the stream
    const s = await Promise.race([h.status, new Promise<grpc.StatusObject>((r) => setTimeout(() => r({ code: grpc.status.OK, details: 'still open', metadata: new grpc.Metadata() }), 1_500))]);
    h.close();
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED, s.details);
    assert.match(s.details, new RegExp(`${MAX_SUBSCRIBED_NAME_BYTES}`));
    // An ordinary client on the same port is still served.
    const ok = hostile({ cluster: 'anyone.default' });
    ok.send(LDS, ['payments.default.svc.cluster.local:8443']);
    const r = await firstOf(ok);
    ok.close();
    assert.ok('nonce' in r, JSON.stringify(r));
  });

  test('a request naming 10,000 inbound Listeners gets the first 64, not 10,000 renders (seconds of CPU, 6 MB) for 450 kB sent', async () => {
    const h = hostile({ cluster: 'anyone.default' });
    h.send(LDS, Array.from({ length: 10_000 }, (_, i) => inboundListenerName('10.1.0.1', 1 + i)));
    const r = await firstOf(h);
    h.close();
    assert.ok('nonce' in r, JSON.stringify(r));
    assert.equal(r.resources.length, MAX_INBOUND_LISTENERS_PER_CLIENT);
  });

  test('a client that stops reading while responses keep coming is ended, not buffered for without bound', { timeout: 10_000 }, async (t) => {
    const h = hostile({ cluster: 'reader.default' });
    t.after(() => h.close()); // also when an assertion fails: an open channel would hold the run
    h.call.pause();
    const names = (k: number) => Array.from({ length: 64 }, (_, i) => inboundListenerName('10.2.0.1', 1 + i + (k % 2)));
    for (let k = 0; k < 200; k++) h.send(LDS, names(k)); // every one a new subscription: every one answered (~40 kB)
    const listed = () => cp.status().clients.some((c) => (c as { cluster: string }).cluster === 'reader.default');
    const deadline = Date.now() + 3_000;
    while (listed() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.equal(listed(), false, 'the stream is still served');
    h.call.resume();
    const s = await h.status;
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED, s.details);
    assert.match(s.details, /waiting for the client to read/);
  });

  test('/status answers only requests addressed to it by IP or localhost (DNS rebinding: a page on another name cannot read it)', async () => {
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(`${cp.adminUrl}/status`);
        const req = request({ host: u.hostname, port: u.port, path: '/status', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    const port = new URL(cp.adminUrl).port;
    assert.equal(await get(`attacker.example:${port}`), 421);
    assert.equal(await get(`127.0.0.1.nip.io:${port}`), 421);
    assert.equal(await get(`127.0.0.1:${port}`), 200);
    assert.equal(await get(`localhost:${port}`), 200);
    assert.equal(await get(`[::1]:${port}`), 200);
  });
});

test('one identity cannot fill the registry: a per-identity cap leaves room for every other service', () => {
  const reg = new Registry({ clock: new VirtualClock(1) });
  const spiffe = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
  let taken = 0;
  for (let i = 0; i < MAX_REGISTRATIONS_PER_IDENTITY + 50; i++) {
    if (reg.register(`s${i}`, { service: 'orders', namespace: 'default', address: `10.0.${i >> 8}.${i & 255}:8080`, identity: spiffe('orders'), labels: {} })) taken++;
  }
  assert.equal(taken, MAX_REGISTRATIONS_PER_IDENTITY);
  assert.equal(reg.register('other', { service: 'payments', namespace: 'default', address: '10.9.0.1:8443', identity: spiffe('payments'), labels: {} }), true);
  // A registration the identity already holds can move to a new stream (a reconnect), even at the cap.
  assert.equal(reg.register('s-new', { service: 'orders', namespace: 'default', address: '10.0.0.0:8080', identity: spiffe('orders'), labels: {} }), true);
  reg.close();
});
