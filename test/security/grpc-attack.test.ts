// An outsider against mesh.grpc with real grpc-js servers and raw node:http2 / grpc-js peers:
// a denied client-streaming or bidi method whose client sends messages before (and after) the
// decision, a TLS session ticket of a refused connection replayed, malformed gRPC frames,
// identity metadata (defaults and the mesh's own identityHeaders), unknown methods probed by a
// peer the SPIFFE check refuses, a server with serverCredentials() but no interceptor, and a
// server with the right SPIFFE ID from a federated trust domain's CA.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type DevCa, type Mesh, createDevCa, createMesh, peerOf } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { ManualSource, TD, craftLeaf, filesOf, idOf } from '../helpers/certs.js';
import { grpc } from '../grpc/helpers.js';

const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>,
};
const def = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const SVC: grpc.ServiceDefinition = {
  Charge: def('/atk.Pay/Charge', false, false),
  Upload: def('/atk.Pay/Upload', true, false),
  Chat: def('/atk.Pay/Chat', true, true),
};
const Client = grpc.makeGenericClientConstructor(SVC, 'atk.Pay');
type AnyClient = InstanceType<typeof Client> & Record<string, (...a: unknown[]) => unknown>;
const POLICY = {
  rules: [
    { name: 'no-streams', action: 'deny', from: { identities: ['*'] }, to: { paths: ['/atk.Pay/Upload', '/atk.Pay/Chat'] } },
    { name: 'callers', action: 'allow', from: { identities: [idOf('orders')] }, to: { paths: ['/atk.Pay/*'] } },
  ],
};

/** What app code saw: handler starts, messages, and the identity metadata it was handed. */
const seen: string[] = [];
let ca: DevCa;
let payments: Mesh;
let orders: Mesh;
const servers: grpc.Server[] = [];

async function serve(mesh: Mesh, interceptors: grpc.ServerInterceptor[]): Promise<number> {
  const server = new grpc.Server({ interceptors });
  servers.push(server);
  server.addService(SVC, {
    Charge(call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) {
      seen.push('Charge');
      const md = call.metadata.getMap();
      cb(null, { peer: peerOf(call)?.spiffeId ?? null, md: Object.keys(md).filter((k) => /client|identity|user-id/.test(k)) });
    },
    Upload(call: grpc.ServerReadableStream<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) {
      seen.push('Upload');
      call.on('data', (m) => seen.push(`Upload:${JSON.stringify(m)}`));
      call.on('end', () => cb(null, {}));
    },
    Chat(call: grpc.ServerDuplexStream<Record<string, unknown>, unknown>) {
      seen.push('Chat');
      call.on('data', (m) => seen.push(`Chat:${JSON.stringify(m)}`));
      call.on('end', () => call.end());
    },
  });
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', mesh.grpc.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))));
}

let port: number;
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  payments = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    inbound: { policy: POLICY, identityHeaders: ['x-user-id'] },
    grpc,
  });
  orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, grpc });
  port = await serve(payments, [payments.grpc.interceptor()]);
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
  await orders?.close();
  await payments?.close();
});

const client = (p: number, creds = orders.grpc.channelCredentials('payments')) => new Client(`127.0.0.1:${p}`, creds, { 'grpc.ssl_target_name_override': 'payments' }) as AnyClient;
const charge = (c: AnyClient, md = new grpc.Metadata()) =>
  new Promise<Record<string, unknown>>((resolve, reject) =>
    c.Charge!({}, md, { deadline: Date.now() + 3_000 }, (e: grpc.ServiceError | null, r: Record<string, unknown>) => (e ? reject(e) : resolve(r))),
  );
const frame = (v: unknown) => {
  const body = Buffer.from(JSON.stringify(v));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
};

test('a denied client-streaming or bidi method: messages sent before and after the decision never reach app code', async () => {
  const c = client(port);
  try {
    const upload = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = c.Upload!({ deadline: Date.now() + 3_000 }, (e: grpc.ServiceError | null) => resolve(e)) as grpc.ClientWritableStream<unknown>;
      for (let i = 0; i < 20; i++) s.write({ i, pad: 'x'.repeat(1000) });
      s.end();
    });
    assert.equal(upload?.code, grpc.status.PERMISSION_DENIED);
    const chat = await new Promise<grpc.ServiceError>((resolve) => {
      const s = c.Chat!({ deadline: Date.now() + 3_000 }) as grpc.ClientDuplexStream<unknown, unknown>;
      s.on('data', () => seen.push('Chat:reply'));
      s.on('error', resolve);
      for (let i = 0; i < 20; i++) s.write({ i });
      setImmediate(() => s.write({ late: true }));
    });
    assert.equal(chat.code, grpc.status.PERMISSION_DENIED);
    assert.deepEqual(seen.filter((s) => /^(Upload|Chat)/.test(s)), [], 'no handler ran, no message was delivered');
    assert.equal((await charge(c)).peer, idOf('orders'), 'the connection still serves allowed calls');
  } finally {
    c.close();
  }
});

test('identity metadata (defaults and inbound.identityHeaders, any case, repeated) never reaches the handler', async () => {
  const c = client(port);
  try {
    const md = new grpc.Metadata();
    for (const k of ['x-forwarded-client-cert', 'l5d-client-id', 'l5d-client-identity', 'X-User-Id']) {
      md.add(k, 'spiffe://cluster.local/ns/default/sa/admin');
      md.add(k, 'admin');
    }
    const r = await charge(c, md);
    assert.deepEqual(r, { peer: idOf('orders'), md: [] });
  } finally {
    c.close();
  }
});

/** A raw h2 connection to `p` presenting `leaf`; resumes `session` when given. */
async function rawSession(p: number, leaf: { keyPem: string; certChainPem: string }, roots: string, session?: Buffer) {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port: p,
    ALPNProtocols: ['h2'],
    key: leaf.keyPem,
    cert: leaf.certChainPem,
    ca: roots,
    checkServerIdentity: () => undefined,
    ...(session && { session }),
  });
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => (ticket = s));
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const h2 = h2connect(`https://127.0.0.1:${p}`, { createConnection: () => socket });
  h2.on('error', () => {});
  return { h2, socket: socket as TLSSocket, ticket: () => ticket };
}

function rawCall(h2: ClientHttp2Session, path: string, body: Buffer[] = [frame({})], extra: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const req = h2.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let status = '';
    req.on('response', (h) => (status = String(h['grpc-status'] ?? status)));
    req.on('trailers', (h) => (status = String(h['grpc-status'] ?? status)));
    const t = setTimeout(() => (req.close(), resolve('hung')), 1_500);
    req.on('close', () => (clearTimeout(t), resolve(status || `rst:${req.rstCode}`)));
    req.on('error', () => {});
    req.resume();
    for (const b of body) req.write(b);
    req.end();
  });
}

test('federation: a refused chain stays refused on a connection that resumes its TLS session; probes of unknown methods reach no app code', async () => {
  const caB = await createDevCa({ trustDomain: 'other.example' });
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId: idOf('payments') }), caB.bundlePem));
  const fed = await createMesh({ service: 'payments', identity: { source }, logger: quiet, inbound: { policy: POLICY }, grpc });
  try {
    const p = await serve(fed, [fed.grpc.interceptor()]);
    const ran = seen.length;
    const forged = await craftLeaf(caB, { uris: [idOf('orders')] });
    const roots = ca.bundlePem + caB.bundlePem;
    const first = await rawSession(p, forged, roots);
    assert.equal(await rawCall(first.h2, '/atk.Pay/Charge'), '16');
    await once(first.socket, 'close');
    const ticket = first.ticket();
    assert.ok(ticket, 'the server issued a session ticket');
    const again = await rawSession(p, forged, roots, ticket);
    try {
      assert.equal(again.socket.isSessionReused(), true, 'the session was resumed: only the leaf is known');
      // grpc-js routes before any interceptor: an unknown method is UNIMPLEMENTED even for a peer
      // the SPIFFE check refuses (it learns which methods exist, no app code runs).
      assert.notEqual(await rawCall(again.h2, '/atk.Pay/Nope'), '0');
      assert.equal(await rawCall(again.h2, '/atk.Pay/Charge'), '16');
    } finally {
      again.h2.destroy();
    }
    assert.match(fed.grpc.stats().lastRejection ?? '', /cluster\.local/);
    assert.equal(seen.length, ran, 'no handler ran');
  } finally {
    await fed.close();
  }
});

test('malformed gRPC traffic from an admitted peer: each call fails, the process and the connection survive', async () => {
  const svid = await ca.issue({ spiffeId: idOf('orders') });
  const s = await rawSession(port, svid, ca.bundlePem);
  try {
    const before = seen.length;
    const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 0x7b]);
    const outcomes = await Promise.all([
      rawCall(s.h2, '/atk.Pay/Charge', [huge]), // declares a 4 GiB message
      rawCall(s.h2, '/atk.Pay/Charge', [Buffer.from([1, 0, 0, 0, 2, 0x7b, 0x7d])], { 'grpc-encoding': 'gzip' }), // "compressed", not gzip
      rawCall(s.h2, '/atk.Pay/Charge', [Buffer.from([1, 0, 0, 0, 2, 0x7b, 0x7d])], { 'grpc-encoding': 'br-nope' }),
      rawCall(s.h2, '/atk.Pay/Charge', [Buffer.from([0, 0, 0, 0, 3, 0x7b, 0x7d])]), // truncated message
      rawCall(s.h2, '/atk.Pay/Charge', [Buffer.from([0, 0, 0, 0, 8, ...Buffer.from('not json')])]), // undeserialisable
      rawCall(s.h2, '/atk.Pay/Charge', [Buffer.concat([frame({}), frame({})])]), // two messages on a unary method
      rawCall(s.h2, `/atk.Pay/${'A'.repeat(8000)}`),
      rawCall(s.h2, '/atk.Pay/Chargé'),
    ]);
    assert.deepEqual(outcomes, ['8', '13', '12', '12', '13', '12', '12', '12']);
    assert.equal(seen.length, before, `no handler completed a malformed call: ${outcomes.join(' ')}`);
    // An unparsable grpc-timeout: grpc-js answers INTERNAL itself, outside the interceptors, yet
    // still hands the call on (the allowed handler runs, and grpc-js then leaves the stream open).
    // An unparsable grpc-timeout is grpc-js's to judge: it sends INTERNAL on a later tick but still
    // hands the call on, and the handler's OK wins (grpc-js 1.14). The policy still judged it.
    assert.equal(await rawCall(s.h2, '/atk.Pay/Charge', [frame({})], { 'grpc-timeout': '99999999999999999999H' }), '0');
    assert.equal(await rawCall(s.h2, '/atk.Pay/Charge'), '0', 'the connection still serves a good call');
  } finally {
    s.h2.destroy();
  }
});

test('serverCredentials() without the interceptor: peers are still SPIFFE-checked and peerOf works, but no policy runs', async () => {
  const p = await serve(payments, []);
  const c = client(p);
  try {
    const md = new grpc.Metadata();
    md.set('l5d-client-id', 'admin');
    // Upload is denied by the policy; without the interceptor nothing judges it (docs/grpc.md says so).
    const r = await charge(c, md);
    assert.equal(r.peer, idOf('orders'));
  } finally {
    c.close();
  }
});

test('the channel refuses a server with the right SPIFFE ID under a federated trust domain\'s CA', async () => {
  const caB = await createDevCa({ trustDomain: 'other.example' });
  const forged = await craftLeaf(caB, { uris: [idOf('payments')] });
  const caller = new ManualSource();
  caller.set(filesOf(await ca.issue({ spiffeId: idOf('orders') }), caB.bundlePem));
  const fedOrders = await createMesh({ service: 'orders', identity: { source: caller }, logger: quiet, grpc });
  // A plain grpc-js server (a mesh would refuse this SVID as its own) presenting the forged leaf.
  const evil = new grpc.Server();
  servers.push(evil);
  evil.addService(SVC, { Charge: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => (seen.push('evil'), cb(null, {})), Upload() {}, Chat() {} });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.bundlePem + caB.bundlePem), [{ private_key: Buffer.from(forged.keyPem), cert_chain: Buffer.from(forged.certChainPem) }], false);
  const p = await new Promise<number>((resolve, reject) => evil.bindAsync('127.0.0.1:0', creds, (e, n) => (e ? reject(e) : resolve(n))));
  const c = client(p, fedOrders.grpc.channelCredentials('payments'));
  try {
    const err = (await charge(c).then(() => assert.fail('served'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /cluster\.local/);
    assert.ok(!seen.includes('evil'));
  } finally {
    c.close();
    await fedOrders.close();
  }
});

test('the app\'s own interceptor listed before the mesh\'s, and an insecure port: the policy and the peer check still hold', async () => {
  const saw: string[] = [];
  const appFirst: grpc.ServerInterceptor = (_d, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (md, n) => (saw.push(String(md.get('l5d-client-id')[0] ?? '')), n(md)),
          onReceiveMessage: (m, n) => (saw.push('message'), n(m)),
        }),
    });
  const p = await serve(payments, [appFirst, payments.grpc.interceptor()]);
  const c = client(p);
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = c.Upload!({ deadline: Date.now() + 3_000 }, (e: grpc.ServiceError | null) => resolve(e)) as grpc.ClientWritableStream<unknown>;
      s.write({ i: 1 });
      s.end();
    });
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED, 'the policy still decides');
    assert.deepEqual(saw, [''], 'the app\'s interceptor saw the metadata (documented: put the mesh\'s first), no message');
    assert.ok(!seen.some((x) => x.startsWith('Upload')));
  } finally {
    c.close();
  }
  // The mesh's interceptor on a server bound without TLS: every call UNAUTHENTICATED.
  const plain = new grpc.Server({ interceptors: [payments.grpc.interceptor()] });
  servers.push(plain);
  plain.addService(SVC, { Charge: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => (seen.push('plain'), cb(null, {})), Upload() {}, Chat() {} });
  const pp = await new Promise<number>((resolve, reject) => plain.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, n) => (e ? reject(e) : resolve(n))));
  const ic = new Client(`127.0.0.1:${pp}`, grpc.credentials.createInsecure()) as AnyClient;
  try {
    const e = (await charge(ic).then(() => assert.fail('served'), (x: grpc.ServiceError) => x)) as grpc.ServiceError;
    assert.equal(e.code, grpc.status.UNAUTHENTICATED);
    assert.ok(!seen.includes('plain'));
  } finally {
    ic.close();
  }
});
