// Issue 15 item 4, CVE-2023-44487 ("HTTP/2 rapid reset"): a client that opens streams and resets
// them at once, in a tight loop, has its session closed with GOAWAY ENHANCE_YOUR_CALM after ~100
// streams (Node 20's nghttp2 alone lets ~1,000 through, then GOAWAY INTERNAL_ERROR); a client on
// another session is served meanwhile, the process stays up, the closure is counted; a client that
// cancels a few of its streams (deadlines) keeps its session.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { connectH2, h2Request } from '../inbound/http2-peer.js';
import { rawRapidReset } from '../inbound/http2-raw.js';

const TD = 'cluster.local';
const quiet = { info() {}, warn() {}, error() {} };
let ca: DevCa;
let client: IssuedSvid;
let mesh: Mesh;
let server: http2.Http2SecureServer;
let port: number;
let handled = 0;

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  client = await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/web` });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet });
  // The app answers on the next turn, so a reset stream is still open when its RST arrives.
  server = mesh.createServer((_req, res) => {
    handled++;
    setImmediate(() => res.end('ok'));
  }, { http2: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(async () => {
  await mesh?.close();
});

test('a rapid-reset client gets GOAWAY ENHANCE_YOUR_CALM after ~100 streams; another client is served meanwhile', async () => {
  const victim = connectH2(port, client);
  const served = (async () => {
    const statuses: Array<number | undefined> = [];
    for (let i = 0; i < 20; i++) statuses.push((await h2Request(victim, { ':path': '/ok' })).status);
    return statuses;
  })();
  const [attack, statuses] = await Promise.all([rawRapidReset(port, client, 5000), served]);
  assert.equal(attack.goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, JSON.stringify(attack));
  assert.ok(handled < 400, `closed long before nghttp2's own limit (~1,000): the app saw ${handled} streams`);
  assert.deepEqual(statuses, Array(20).fill(200), 'the other session was served throughout');
  assert.ok(mesh.stats().inbound.requests.rapidResetSessions >= 1);
  // The server and the victim's session are fine afterwards.
  assert.equal((await h2Request(victim, { ':path': '/after' })).status, 200);
  victim.close();
  const next = connectH2(port, client);
  assert.equal((await h2Request(next, { ':path': '/new' })).status, 200);
  next.close();
});

test('a server that resets its own streams (stream.close) is not taken for a rapid-reset client', async () => {
  const before = mesh.stats().inbound.requests.rapidResetSessions;
  const own = mesh.createServer(undefined, { http2: true });
  own.on('stream', (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
  await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
  const c = connectH2((own.address() as { port: number }).port, client);
  let goaway: number | undefined;
  c.on('goaway', (code) => (goaway = code));
  for (let i = 0; i < 120; i++) assert.equal((await h2Request(c, { ':path': '/x' })).status, undefined);
  assert.equal(goaway, undefined);
  assert.equal(mesh.stats().inbound.requests.rapidResetSessions, before);
  c.close();
  await new Promise<void>((resolve) => own.close(() => resolve()));
});

test('a client that cancels one stream in ten keeps its session', async () => {
  const before = mesh.stats().inbound.requests.rapidResetSessions;
  const c = connectH2(port, client);
  let goaway: number | undefined;
  c.on('goaway', (code) => (goaway = code));
  for (let i = 0; i < 150; i++) {
    if (i % 10 === 0) {
      const s = c.request({ ':path': '/cancelled' });
      s.on('error', () => {});
      s.close(http2.constants.NGHTTP2_CANCEL);
    } else {
      assert.equal((await h2Request(c, { ':path': '/ok' })).status, 200);
    }
  }
  assert.equal(goaway, undefined);
  assert.equal(c.closed, false);
  assert.equal(mesh.stats().inbound.requests.rapidResetSessions, before);
  c.close();
  assert.ok(handled > 150);
});
