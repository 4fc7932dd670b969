// SECURITY-CASES 36 (identity headers in chunked trailers are removed like headers) and connection
// hygiene (a connection that never sends a request is closed after inbound.firstRequestTimeout),
// on every server type.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { SERVER_KINDS, type Served, serveKind } from '../helpers/servers.js';
import { LOOPBACK, rawTlsRequest, sleep } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const IDLE_MS = 400;

let ca: DevCa;
let client: IssuedSvid;
let mesh: Mesh;
const servers: Served[] = [];

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  client = await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/web` });
  mesh = await createMesh({
    service: 'payments',
    identity: { ca },
    logger: quiet,
    inbound: { identityHeaders: ['X-Client-Identity'], firstRequestTimeout: IDLE_MS },
  });
  for (const kind of SERVER_KINDS) servers.push(await serveKind(kind, mesh));
});
after(async () => {
  for (const s of servers) await s.close();
  await mesh?.close();
});

const CHUNKED =
  'POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: l5d-client-id, x-checksum\r\nConnection: close\r\n\r\n' +
  '5\r\nhello\r\n0\r\n' +
  'L5D-Client-Id: admin.default.serviceaccount.identity.linkerd.cluster.local\r\n' +
  'x-forwarded-client-cert: By=spiffe://cluster.local/ns/default/sa/payments;URI=spiffe://cluster.local/ns/default/sa/admin\r\n' +
  'X-Client-Identity: admin\r\n' +
  'x-checksum: abc\r\n\r\n';

/** Opens an authenticated TLS connection and reports when (if ever) the server closes it. */
function idleConnection(port: number, sendAfterMs?: number, request?: string): Promise<{ closedAfterMs: number | undefined; response: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let response = '';
    let closedAfterMs: number | undefined;
    const socket = connect({ host: LOOPBACK, port, cert: client.certChainPem, key: client.keyPem, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    socket.on('data', (d) => (response += d.toString('latin1')));
    socket.on('error', () => {});
    socket.once('secureConnect', () => {
      if (sendAfterMs !== undefined) setTimeout(() => socket.write(request ?? 'GET /x HTTP/1.1\r\nHost: payments\r\n\r\n'), sendAfterMs);
    });
    const timer = setTimeout(() => socket.destroy(), IDLE_MS * 4);
    socket.once('close', () => {
      clearTimeout(timer);
      if (Date.now() - t0 < IDLE_MS * 4) closedAfterMs = Date.now() - t0;
      resolve({ closedAfterMs, response });
    });
  });
}

for (const [i, kind] of SERVER_KINDS.entries()) {
  describe(kind, () => {
    const s = () => servers[i]!;

    test('case 36: identity trailers are removed from req.trailers and req.rawTrailers; others stay', async () => {
      const before = s().events.length;
      const r = await rawTlsRequest({ port: s().port, cert: client.certChainPem, key: client.keyPem, request: CHUNKED });
      assert.equal(r.status, 200, r.response);
      const body = JSON.parse(r.body) as { trailers: Record<string, string>; rawTrailers?: string[] };
      assert.deepEqual(body.trailers, { 'x-checksum': 'abc' }, `${kind}: ${r.body}`);
      if (body.rawTrailers) assert.deepEqual(body.rawTrailers, ['x-checksum', 'abc']);
      assert.deepEqual(s().events.slice(before)[0]!.trailers, { 'x-checksum': 'abc' });
    });

    test('a connection that never sends a request is closed after firstRequestTimeout', async () => {
      const idle = await idleConnection(s().port);
      assert.ok(idle.closedAfterMs !== undefined, `${kind}: the idle connection stayed open`);
      assert.ok(idle.closedAfterMs! >= IDLE_MS - 50 && idle.closedAfterMs! < IDLE_MS * 3, `${kind}: closed after ${idle.closedAfterMs} ms`);
      assert.equal(idle.response, '', 'closed without an answer');
    });

    test('a request before the timeout clears it: a slow upload is not cut, keep-alive follows node:http', async () => {
      // Headers at 100 ms, the body long after the first-request timeout would have fired.
      const head = 'POST /slow HTTP/1.1\r\nHost: payments\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\n';
      const r = await new Promise<string>((resolve) => {
        let out = '';
        const socket = connect({ host: LOOPBACK, port: s().port, cert: client.certChainPem, key: client.keyPem, rejectUnauthorized: false });
        socket.on('error', () => {});
        socket.on('data', (d) => (out += d.toString('latin1')));
        socket.once('secureConnect', async () => {
          await sleep(100);
          socket.write(head);
          await sleep(IDLE_MS * 2);
          socket.write('body');
        });
        socket.on('close', () => resolve(out));
      });
      assert.match(r, /^HTTP\/1\.1 200 /, `${kind}: ${r.slice(0, 100)}`);
    });
  });
}
