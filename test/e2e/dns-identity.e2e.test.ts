// DNS-like (Linkerd) identities end to end over real TLS: meshes whose SVIDs carry one DNS SAN and
// no URI SAN, trust anchors under the identity domain's dns: key. The server reports the peer and
// the SNI it was sent; the policy admits one DNS identity and refuses another; the client sends
// the endpoint's serverName as SNI and refuses a server whose DNS identity is not the promised one;
// curl, an outside peer with a Linkerd-style certificate, is judged the same way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TLSSocket } from 'node:tls';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type AddressInfo } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { systemClock } from '../../src/clock.js';
import { type BundleSet, withDnsBundles } from '../../src/identity/bundle.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { createMesh, loadPolicy, peerOf, type Mesh } from '../../src/index.js';
import { CoreBackedSource, SourceCore } from '../../src/sources/source.js';
import { buildSvid } from '../../src/sources/svid-set.js';
import { craftLeaf, tempDir } from '../helpers/certs.js';
import { closeServer, listen } from '../helpers/net.js';
import { grpc, payClient, servePay, unary } from '../grpc/helpers.js';

const D = 'identity.linkerd.cluster.local';
const API = `api.default.serviceaccount.${D}`;
const WEB = `web.default.serviceaccount.${D}`;
const DB = `db.default.serviceaccount.${D}`;
const quiet = { info() {}, warn() {}, error() {} };

/** The smallest source of a DNS-SAN SVID: the bundles hold only the Linkerd anchors. */
class DnsSource extends CoreBackedSource {
  constructor(certChainPem: string, keyPem: string, bundles: BundleSet) {
    super(new SourceCore('linkerd-test', systemClock, 'test Linkerd source'));
    this.core.accept(buildSvid(certChainPem, keyPem, bundles, Date.now()), bundles);
  }
  async close(): Promise<void> {
    this.core.close();
  }
}

let anchors: DevCa;
let bundles: BundleSet;
const meshes: Mesh[] = [];
const closers: Array<() => Promise<unknown>> = [];

async function meshAs(name: string, service: string, extra: Record<string, unknown> = {}): Promise<{ mesh: Mesh; certChainPem: string; keyPem: string }> {
  const leaf = await craftLeaf(anchors, { uris: [], dnsNames: [name] });
  const source = new DnsSource(leaf.certChainPem, leaf.keyPem, bundles);
  const mesh = await createMesh({ service, identity: { source }, logger: quiet, ...extra } as never, { dnsIdentity: { name } });
  meshes.push(mesh);
  return { mesh, certChainPem: leaf.certChainPem, keyPem: leaf.keyPem };
}

let apiPort = 0;
let apiMesh: Mesh;
let expressPort = 0;
let fastifyPort = 0;
let h2Port = 0;

before(async () => {
  anchors = await createDevCa({ trustDomain: 'linkerd.anchors' });
  bundles = withDnsBundles(new Map(), [{ domain: D, anchorsPem: anchors.bundlePem }]);
  const policy = loadPolicy({ rules: [{ name: 'web-only', action: 'allow', from: { identities: [WEB] } }] });
  const { mesh: api } = await meshAs(API, 'api', { inbound: { policy }, grpc });
  apiMesh = api;
  const answer = (req: import('node:http').IncomingMessage) => JSON.stringify({ peer: peerOf(req), sni: (req.socket as TLSSocket).servername ?? null });
  const server = api.createServer((req, res) => res.end(answer(req)));
  apiPort = await listen(server);
  closers.push(() => closeServer(server));
  const app = express();
  app.use(api.express());
  app.get('/', (req, res) => res.send(answer(req)));
  const ex = createHttpsServer(api.serverTlsOptions(), app);
  expressPort = await listen(ex);
  closers.push(() => closeServer(ex));
  const fastify: FastifyInstance = Fastify({ https: api.serverTlsOptions() });
  await fastify.register(api.fastify);
  fastify.get('/', async (request) => answer(request.raw));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  fastifyPort = (fastify.server.address() as AddressInfo).port;
  closers.push(() => fastify.close());
  const h2 = api.createServer((req, res) => res.end(JSON.stringify({ peer: peerOf(req), sni: (req.socket as TLSSocket).servername ?? null, h: req.httpVersion })), { http2: true });
  h2Port = await listen(h2 as never);
  closers.push(() => closeServer(h2 as never));
});

after(async () => {
  // The clients first: an HTTP/2 server's close() waits for the sessions their pools hold open.
  for (const m of meshes) if (m !== apiMesh) await m.close();
  for (const c of closers) await c();
  await apiMesh.close();
});

const services = (port: number, identity: string, serverName = API) => ({ outbound: { services: { api: { endpoints: [{ address: `127.0.0.1:${port}`, identity, serverName }] } } } });

test('a DNS-identity client reaches a DNS-identity server: peerOf reports it, SNI is the serverName (node:http, Express, Fastify, HTTP/2)', async () => {
  const { mesh } = await meshAs(WEB, 'web', services(apiPort, API));
  const cases: Array<[string, number, 'http' | 'http2']> = [['node:http', apiPort, 'http'], ['express', expressPort, 'http'], ['fastify', fastifyPort, 'http'], ['http2', h2Port, 'http2']];
  for (const [kind, port, protocol] of cases) {
    mesh.setService('api', { protocol, endpoints: [{ address: `127.0.0.1:${port}`, identity: API, serverName: API }] });
    const res = await mesh.fetch('http://api/');
    assert.equal(res.status, 200, kind);
    const body = (await res.json()) as { peer: Record<string, unknown>; sni: string; h?: string };
    assert.deepEqual(body.peer, { id: WEB, kind: 'dns', dnsName: WEB, trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'web' }, kind);
    assert.equal(body.sni, API, kind);
    if (protocol === 'http2') assert.equal(body.h, '2.0');
  }
});

test('the policy admits one DNS identity and refuses another (403)', async () => {
  const { mesh } = await meshAs(DB, 'db', services(apiPort, API));
  const res = await mesh.fetch('http://api/');
  assert.equal(res.status, 403);
  await res.arrayBuffer();
});

test('the client refuses a server whose DNS identity is not the one promised', async () => {
  const { mesh } = await meshAs(WEB, 'web2', services(apiPort, `other.default.serviceaccount.${D}`, `other.default.serviceaccount.${D}`));
  await assert.rejects(mesh.fetch('http://api/'), (e: Error & { cause?: Error & { code?: string } }) => {
    const text = `${e.message} ${e.cause?.message ?? ''} ${(e.cause as { cause?: Error } | undefined)?.cause?.message ?? ''}`;
    assert.match(text, /expected other\.default\.serviceaccount\.identity\.linkerd\.cluster\.local, the peer presented api\.default/);
    return true;
  });
});

test('an SVID for another DNS identity than the mesh\'s own is refused at start', async () => {
  const leaf = await craftLeaf(anchors, { uris: [], dnsNames: [DB] });
  const source = new DnsSource(leaf.certChainPem, leaf.keyPem, bundles);
  await assert.rejects(createMesh({ service: 'web', identity: { source }, logger: quiet }, { dnsIdentity: { name: WEB } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(e.message, /is for db\.default\.serviceaccount.*but this workload's DNS-like identity is web\.default/);
    return true;
  });
  // And without the internal hook (a SPIFFE mesh), a DNS SVID is not the mesh's SPIFFE ID.
  await assert.rejects(createMesh({ service: 'web', identity: { source }, logger: quiet }), /names the DNS-like identity db\.default.*but this workload's SPIFFE ID is spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
});

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

test('curl with a Linkerd-style certificate: admitted as WEB, refused as DB; it verifies the server by its DNS SAN', async () => {
  const dir = await tempDir();
  closers.push(dir.remove);
  const files = async (name: string) => {
    const leaf = await craftLeaf(anchors, { uris: [], dnsNames: [name] });
    const cert = join(dir.dir, `${name}.pem`);
    const key = join(dir.dir, `${name}.key`);
    await writeFile(cert, leaf.certChainPem);
    await writeFile(key, leaf.keyPem, { mode: 0o600 });
    return ['--cert', cert, '--key', key];
  };
  const ca = join(dir.dir, 'anchors.pem');
  await writeFile(ca, anchors.bundlePem);
  const base = ['--cacert', ca, '--resolve', `${API}:${apiPort}:127.0.0.1`, `https://${API}:${apiPort}/`];
  const web = await curl([...(await files(WEB)), '-w', '\n%{http_code}', ...base]);
  assert.equal(web.code, 0, web.stderr);
  const [json, status] = web.stdout.split('\n');
  assert.equal(status, '200');
  assert.equal(JSON.parse(json!).peer.id, WEB);
  assert.equal(JSON.parse(json!).sni, API, 'curl sends the host name it verifies as SNI');
  const db = await curl([...(await files(DB)), '-o', '/dev/null', '-w', '%{http_code}', ...base]);
  assert.equal(db.stdout, '403');
  // A certificate for a name outside the identity domain is refused at the handshake (strict mode).
  const outside = await curl([...(await files(`evil.default.serviceaccount.${D}.attacker.io`)), '-o', '/dev/null', '-w', '%{http_code}', ...base]);
  assert.notEqual(outside.stdout, '200');
  assert.notEqual(outside.code, 0);
});

test('gRPC: mesh credentials and interceptor with DNS identities; peerOf(call) is the DNS peer, another DNS peer gets status 7', async () => {
  const server = await servePay(apiMesh);
  closers.push(() => server.close());
  const { mesh: web } = await meshAs(WEB, 'web-grpc', { grpc });
  const ok = payClient(server.port, web.grpc.channelCredentials(API));
  try {
    assert.deepEqual(await unary(ok, 'Charge', { n: 1 }), { peer: WEB, n: 1, xfcc: [] });
  } finally {
    ok.close();
  }
  const { mesh: db } = await meshAs(DB, 'db-grpc', { grpc });
  const denied = payClient(server.port, db.grpc.channelCredentials(API));
  try {
    await assert.rejects(unary(denied, 'Charge', { n: 1 }), (e: { code?: number }) => e.code === grpc.status.PERMISSION_DENIED);
  } finally {
    denied.close();
  }
  // A channel that requires another DNS identity refuses the server.
  const wrong = payClient(server.port, web.grpc.channelCredentials(`other.default.serviceaccount.${D}`));
  try {
    await assert.rejects(unary(wrong, 'Charge', { n: 1 }), (e: { code?: number; details?: string }) => e.code === grpc.status.UNAVAILABLE);
  } finally {
    wrong.close();
  }
});
