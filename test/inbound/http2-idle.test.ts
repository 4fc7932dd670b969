// An HTTP/2 session with no open stream for H2_IDLE_TIMEOUT_MS is closed with GOAWAY NO_ERROR
// (node:http2 servers have none: one request could hold a connection forever); a session with a
// stream open, however quiet, is kept. The mesh's clock is virtual: no waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ServerHttp2Stream } from 'node:http2';
import { type AddressInfo } from 'node:net';
import { VirtualClock } from '../../src/clock.js';
import { createDevCa, createMesh } from '../../src/index.js';
import { H2_IDLE_TIMEOUT_MS } from '../../src/inbound/http2/idle.js';
import { idOf } from '../helpers/certs.js';
import { connectH2, h2Request } from './http2-peer.js';

const quiet = { info() {}, warn() {}, error() {} };

test('HTTP/2 idle timeout: only stream-less time counts; then GOAWAY NO_ERROR, and the next connection is served', async (t) => {
  const clock = new VirtualClock(Date.now());
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const web = await ca.issue({ spiffeId: idOf('web') });
  const mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet }, { clock });
  const held: ServerHttp2Stream[] = [];
  const clients: Array<{ destroy(): void }> = [];
  // Whatever an assertion left open is torn down first: the server's close() waits for open streams.
  t.after(async () => {
    for (const s of held) s.destroy();
    for (const c of clients) c.destroy();
    await new Promise((r) => server.close(r));
    await mesh.close();
  });
  const server = mesh.createServer((req, res) => {
    if (req.url === '/hold') held.push(req.stream);
    else res.end('ok');
  }, { http2: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const session = connectH2(port, web);
  clients.push(session);
  let goaway: number | undefined;
  session.on('goaway', (code: number) => (goaway = code));
  assert.equal((await h2Request(session, { ':path': '/a' })).status, 200);
  const tick = () => new Promise((r) => setTimeout(r, 50)); // let the frames travel
  clock.advance(H2_IDLE_TIMEOUT_MS - 1_000);
  await tick();
  assert.equal(goaway, undefined, 'not idle long enough');
  const hold = h2Request(session, { ':path': '/hold' });
  await (async () => { for (let i = 0; i < 100 && held.length === 0; i++) await tick(); })();
  assert.equal(held.length, 1);
  clock.advance(2 * H2_IDLE_TIMEOUT_MS);
  await tick();
  assert.equal(goaway, undefined, 'a session with an open stream is not idle');
  held[0]!.respond({ ':status': 200 });
  held[0]!.end('late');
  assert.equal((await hold).body, 'late');
  clock.advance(H2_IDLE_TIMEOUT_MS + 1);
  for (let i = 0; i < 100 && goaway === undefined; i++) await tick();
  assert.equal(goaway, 0, 'GOAWAY NO_ERROR once idle');

  const next = connectH2(port, web);
  clients.push(next);
  assert.equal((await h2Request(next, { ':path': '/b' })).status, 200);
});
