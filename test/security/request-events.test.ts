// SECURITY-CASES 32: every server event that hands a request to app code — 'request', 'upgrade'
// (WebSocket, with the real `ws` package as server and client), 'connect', 'checkContinue' and
// 'checkExpectation' — is judged exactly like a plain request, on every server type users build:
// authenticated, target and Host checked, policy applied, identity headers removed; a denied
// upgrade or CONNECT gets 403 on the socket, which is closed; an Expect request is judged before
// `100 Continue` is sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { SERVER_KINDS, type ServerKind, type Served, serveKind } from '../helpers/servers.js';
import { LOOPBACK, expectContinueRequest, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const id = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
const WEB = id('web');
const ADMIN = id('admin');

const POLICY = {
  rules: [
    { name: 'admin-only', action: 'deny', from: { notIdentities: [ADMIN] }, to: { paths: ['/admin', '/admin/*'] } },
    { name: 'readers', action: 'allow', from: { identities: ['*'] }, to: { methods: ['GET', 'HEAD', 'POST', 'PUT'] } },
    { name: 'tunnel', action: 'allow', from: { identities: [ADMIN] }, to: { methods: ['CONNECT'] } },
  ],
};

let ca: DevCa;
let mesh: Mesh;
const who: Record<'web' | 'admin' | 'stranger', IssuedSvid> = {} as never;
const servers = new Map<string, Served>();
const key = (kind: ServerKind, expectListeners: boolean) => `${kind}${expectListeners ? '+expect-listeners' : ''}`;

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  who.web = await ca.issue({ spiffeId: WEB });
  who.admin = await ca.issue({ spiffeId: ADMIN });
  who.stranger = await (await createDevCa({ trustDomain: TD })).issue({ spiffeId: ADMIN });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY } });
  for (const kind of SERVER_KINDS) {
    for (const expectListeners of [false, true]) servers.set(key(kind, expectListeners), await serveKind(kind, mesh, { expectListeners }));
  }
});
after(async () => {
  for (const s of servers.values()) await s.close();
  await mesh?.close();
});

/** A WebSocket client (the `ws` package) over mTLS; resolves with how the handshake ended. */
function openWs(port: number, path: string, as: IssuedSvid, headers: Record<string, string> = {}): Promise<{ open: boolean; status?: number; reply?: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const options = { cert: as.certChainPem, key: as.keyPem, ca: ca.bundlePem, checkServerIdentity: () => undefined, headers: { host: 'payments', ...headers } };
    const ws = new WebSocket(`wss://${LOOPBACK}:${port}${path}`, options as unknown as WebSocket.ClientOptions);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ open: false });
    }, 5_000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve({ open: false, status: res.statusCode! });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => ws.send('hello'));
    ws.on('message', (m) => {
      clearTimeout(timer);
      resolve({ open: true, reply: JSON.parse(String(m)) });
      ws.close();
    });
    ws.on('error', () => {
      clearTimeout(timer);
      resolve({ open: false });
    });
  });
}

function raw(s: Served, as: IssuedSvid | undefined, request: string) {
  return rawTlsRequest({ port: s.port, ...(as && { cert: as.certChainPem, key: as.keyPem }), request });
}

const upgrade = (path: string, host = 'payments') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

for (const kind of SERVER_KINDS) {
  describe(`${kind}: upgrade (ws)`, () => {
    const s = () => servers.get(key(kind, false))!;

    test('a denied WebSocket upgrade gets 403 and never reaches the ws server; the allowed one opens', async () => {
      const before = s().events.length;
      const denied = await openWs(s().port, '/admin/live', who.web);
      assert.deepEqual(denied, { open: false, status: 403 }, `${kind}: web → /admin/live`);
      const ok = await openWs(s().port, '/public/chat', who.web, { 'l5d-client-id': 'admin.default.serviceaccount.identity.linkerd.cluster.local' });
      assert.equal(ok.open, true, `${kind}: web → /public/chat`);
      assert.equal(ok.reply!.peer, WEB, 'the ws handler sees the verified peer');
      assert.equal((ok.reply!.headers as Record<string, unknown>)['l5d-client-id'], undefined, 'identity headers are removed from upgrades too');
      const admin = await openWs(s().port, '/admin/live', who.admin);
      assert.equal(admin.open, true, `${kind}: admin → /admin/live`);
      const upgrades = s().events.slice(before).filter((e) => e.event === 'upgrade');
      assert.deepEqual(upgrades.map((e) => [e.url, e.peer]), [['/public/chat', WEB], ['/admin/live', ADMIN]]);
    });

    test('upgrades are normalized and checked like requests: dot segments, %2F, bad Host', async () => {
      const before = s().events.length;
      const dotted = await raw(s(), who.web, upgrade('/public/../admin'));
      assert.equal(dotted.status, 403, dotted.response);
      assert.match(dotted.response, /connection: close/i);
      for (const [req, what] of [[upgrade('/public/%2fadmin'), '%2F'], [upgrade('/public/x', 'a:1:2'), 'Host a:1:2'], [upgrade('/public/x', 'a@b'), 'userinfo']] as const) {
        const r = await raw(s(), who.web, req);
        assert.equal(r.status, 400, `${kind} ${what}: ${r.response}`);
      }
      assert.deepEqual(s().events.slice(before), [], 'no app code ran');
    });

    test('no client certificate, or an unknown CA: no upgrade, no answer', async () => {
      const before = s().events.length;
      for (const as of [undefined, who.stranger]) {
        const r = await raw(s(), as, upgrade('/public/chat'));
        assert.equal(r.status, undefined, r.response);
      }
      assert.deepEqual(s().events.slice(before), []);
    });
  });

  describe(`${kind}: CONNECT`, () => {
    const s = () => servers.get(key(kind, false))!;
    const connectReq = (target: string, host = target) => `CONNECT ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

    test('judged by method and authority: web is denied with 403 on the socket, admin tunnels', async () => {
      const before = s().events.length;
      const denied = await raw(s(), who.web, connectReq('db.internal:5432'));
      assert.equal(denied.status, 403, denied.response);
      const ok = await raw(s(), who.admin, connectReq('db.internal:5432'));
      assert.equal(ok.status, 200, ok.response);
      assert.deepEqual(s().events.slice(before).map((e) => [e.event, e.url, e.peer]), [['connect', 'db.internal:5432', ADMIN]]);
    });

    test('a malformed authority, or one that is not Host → 400, nothing reaches the listener', async () => {
      const before = s().events.length;
      for (const [target, host] of [['db.internal', 'db.internal'], ['db.internal:x', 'db.internal:x'], ['a@db:5432', 'a@db:5432'], ['db.internal:5432', 'other:5432'], ['/path', 'db:1']]) {
        const r = await raw(s(), who.admin, connectReq(target!, host));
        assert.equal(r.status, 400, `${target} / ${host}: ${r.response}`);
      }
      assert.deepEqual(s().events.slice(before), []);
    });
  });

  for (const expectListeners of [false, true]) {
    describe(`${kind}: Expect${expectListeners ? ' (app listens to checkContinue/checkExpectation)' : ' (node:http defaults)'}`, () => {
      const s = () => servers.get(key(kind, expectListeners))!;
      const head = (path: string, as = 'payments') => `POST ${path} HTTP/1.1\r\nHost: ${as}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;

      test('100-continue: a denied request gets 403 and no "100 Continue"; an allowed one gets 100, then the app', async () => {
        const before = s().events.length;
        const denied = await expectContinueRequest({ port: s().port, cert: who.web.certChainPem, key: who.web.keyPem, head: head('/admin/refund'), body: 'hello', waitMs: 3_000 });
        assert.match(denied.response, /^HTTP\/1\.1 403 /, denied.response);
        assert.doesNotMatch(denied.response, /100 Continue/);
        assert.equal(denied.sentBody, false, 'the client never had to send the body');
        const ok = await expectContinueRequest({ port: s().port, cert: who.web.certChainPem, key: who.web.keyPem, head: head('/public/upload'), body: 'hello' });
        assert.match(ok.response, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, ok.response);
        const events = s().events.slice(before).map((e) => e.event);
        assert.deepEqual(events, expectListeners ? ['checkContinue', 'request'] : ['request']);
      });

      test('another expectation: denied → 403; admitted → the app listener, or 417 (node:http)', async () => {
        const before = s().events.length;
        const req = (path: string) => `GET ${path} HTTP/1.1\r\nHost: payments\r\nExpect: something-else\r\nConnection: close\r\n\r\n`;
        const denied = await raw(s(), who.web, req('/admin'));
        assert.equal(denied.status, 403, denied.response);
        const ok = await raw(s(), who.web, req('/public/x'));
        assert.equal(ok.status, expectListeners ? 200 : 417, ok.response);
        assert.deepEqual(s().events.slice(before).map((e) => e.event), expectListeners ? ['checkExpectation'] : []);
      });
    });
  }
}

describe('the counters see every event', () => {
  test('upgrades, CONNECTs and Expect requests are counted like requests', () => {
    const st = mesh.stats().inbound;
    assert.ok(st.requests.refused > 0 && st.requests.admitted > 0, JSON.stringify(st.requests));
    assert.ok(st.authz.byRule['admin-only']!.deny >= SERVER_KINDS.length * 4, JSON.stringify(st.authz.byRule));
    assert.ok(st.authz.byRule['tunnel']!.allow >= SERVER_KINDS.length, JSON.stringify(st.authz.byRule));
  });
});
