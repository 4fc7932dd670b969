// SECURITY-CASES 34: one host. A Host that is not RFC 9110 grammar, a duplicate Host, or an
// absolute-form authority other than Host → 400 on every server type; otherwise the host the
// policy judges is the host the app reads (Express req.hostname, Fastify request.hostname).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { hostProblem, sameAuthority } from '../../src/policy/authority.js';
import { SERVER_KINDS, type Served, serveKind } from '../helpers/servers.js';
import { rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const POLICY = { rules: [{ name: 'no-denied-host', action: 'deny', to: { hosts: ['denied.example'] } }] };

const MALFORMED: Array<[string, string]> = [
  ['userinfo', 'user@payments'],
  ['a path', 'payments/admin'],
  ['a query', 'payments?x'],
  ['a fragment', 'payments#x'],
  ['a backslash', 'payments\\admin'],
  ['percent-encoding', '%64enied.example'],
  ['a second colon', 'denied.example:1:2'],
  ['a non-digit port', 'denied.example:x'],
  ['a port past 65535', 'payments:65536'],
  ['a six-digit port', 'payments:000080'],
  ['sub-delims', 'denied.example,payments'],
  ['an IPvFuture literal', '[v1.fe]'],
  ['not an IPv6 address', '[payments]'],
  ['an unclosed IPv6 literal', '[::1'],
  ['junk after the IPv6 literal', '[::1]x'],
  ['an empty name with a port', ':8443'],
  ['an empty label', 'denied..example'],
  ['two trailing dots', 'denied.example..'],
];

let ca: DevCa;
let client: IssuedSvid;
let mesh: Mesh;
const servers: Served[] = [];

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  client = await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/web` });
  mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: POLICY } });
  for (const kind of SERVER_KINDS) servers.push(await serveKind(kind, mesh));
});
after(async () => {
  for (const s of servers) await s.close();
  await mesh?.close();
});

function send(s: Served, head: string) {
  return rawTlsRequest({ port: s.port, cert: client.certChainPem, key: client.keyPem, request: `${head}Connection: close\r\n\r\n` });
}

describe('the grammar (pure)', () => {
  test('accepted and refused values, with the reason', () => {
    for (const ok of ['payments', 'PAYMENTS:8443', 'a-b.c_d~e', '10.0.0.1:1', '[::1]', '[::1]:8443', 'payments:', 'payments.', '']) assert.equal(hostProblem(ok), undefined, ok);
    for (const [why, value] of MALFORMED) assert.ok(hostProblem(value), `${why}: ${value}`);
    assert.match(hostProblem('a@b')!, /userinfo/);
    assert.match(hostProblem('a:1:2')!, /second ":"/);
    assert.ok(hostProblem('db', true), 'CONNECT needs a port');
    assert.ok(sameAuthority('Payments:8443', 'payments:8443') && sameAuthority('payments:', 'payments') && !sameAuthority('payments:443', 'payments'));
  });
});

for (const [i, kind] of SERVER_KINDS.entries()) {
  describe(`${kind}`, () => {
    const s = () => servers[i]!;

    test('a Host outside the grammar → 400, nothing runs', async () => {
      const before = s().events.length;
      for (const [why, value] of MALFORMED) {
        const r = await send(s(), `GET /x HTTP/1.1\r\nHost: ${value}\r\n`);
        assert.equal(r.status, 400, `${kind} ${why} (${value}): ${r.response.slice(0, 120)}`);
      }
      assert.deepEqual(s().events.slice(before), []);
    });

    test('two Host headers → 400 (Node keeps only the first; the gate counts them)', async () => {
      const before = s().events.length;
      for (const hosts of [['payments', 'denied.example'], ['payments', 'payments'], ['denied.example', 'payments']]) {
        const r = await send(s(), `GET /x HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}`);
        assert.equal(r.status, 400, `${kind} ${hosts}: ${r.response.slice(0, 120)}`);
      }
      assert.deepEqual(s().events.slice(before), []);
    });

    test('an absolute-form authority other than Host → 400; the same one is served', async () => {
      const before = s().events.length;
      const bad = await send(s(), 'GET https://payments/x HTTP/1.1\r\nHost: denied.example\r\n');
      assert.equal(bad.status, 400, bad.response);
      const bad2 = await send(s(), 'GET https://denied.example/x HTTP/1.1\r\nHost: payments\r\n');
      assert.equal(bad2.status, 400, bad2.response);
      const same = await send(s(), 'GET https://denied.example/x HTTP/1.1\r\nHost: DENIED.example\r\n');
      assert.equal(same.status, 403, `the host judged is denied.example: ${same.response}`);
      assert.deepEqual(s().events.slice(before), []);
    });

    test('the policy judges the host the app reads (any case, a port, a trailing dot)', async () => {
      for (const value of ['denied.example', 'DENIED.example:8443', 'denied.example.']) {
        const r = await send(s(), `GET /x HTTP/1.1\r\nHost: ${value}\r\n`);
        assert.equal(r.status, 403, `${kind} ${value}: ${r.response.slice(0, 120)}`);
      }
      const before = s().events.length;
      const ok = await send(s(), 'GET /x HTTP/1.1\r\nHost: Payments:8443\r\n');
      assert.equal(ok.status, 200, ok.response);
      const seen = s().events.slice(before)[0]!;
      if (kind === 'node:http') assert.equal(seen.hostname, 'Payments:8443');
      else assert.equal(seen.hostname?.toLowerCase(), 'payments', `${kind}: the framework's hostname is the judged one`);
    });
  });
}
