// The gate's own HTTP/2 target checks (src/inbound/http2/target.ts), pure: nghttp2 resets most of
// these streams before the gate sees them (test/inbound/http2.test.ts), so the gate's floor is
// proven here, field by field, and its normalization is the HTTP/1.1 one (target-check.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingHttpHeaders } from 'node:http2';
import { checkHttp2Target } from '../../src/inbound/http2/target.js';

const BASE: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'payments'], [':path', '/x']];

function check(fields: Array<[string, string]>) {
  const headers: IncomingHttpHeaders = {};
  const raw: string[] = [];
  for (const [n, v] of fields) {
    raw.push(n, v);
    if (headers[n] === undefined) headers[n] = v;
  }
  return checkHttp2Target(headers, raw);
}
const replace = (name: string, value: string) => BASE.map(([n, v]): [string, string] => [n, n === name ? value : v]);
const without = (name: string) => BASE.filter(([n]) => n !== name);

test('well-formed: normalized as HTTP/1.1 is; host is :authority, else Host', () => {
  assert.deepEqual(check(replace(':path', '/public/%2e%2e/a%62c?q')), { ok: true, path: '/abc', host: 'payments', target: '/abc?q' });
  assert.deepEqual(check([...without(':authority'), ['host', 'payments:8443']]), { ok: true, path: '/x', host: 'payments:8443', target: '/x' });
  assert.deepEqual(check([...BASE, ['host', 'PAYMENTS']]), { ok: true, path: '/x', host: 'payments', target: '/x' });
  assert.deepEqual(check([[':method', 'OPTIONS'], [':scheme', 'https'], [':path', '*']]), { ok: true, path: '*', host: '', target: '*' });
  assert.equal(check([...BASE, ['te', 'trailers']]).ok, true);
});

test('refused, each with its reason', () => {
  const cases: Array<[string, Array<[string, string]>, RegExp]> = [
    ['repeated :path', [...BASE, [':path', '/admin']], /more than one :path/],
    ['repeated :method', [...BASE, [':method', 'POST']], /more than one :method/],
    ['unknown pseudo-header', [...BASE, [':foo', 'x']], /:foo/],
    [':protocol', [...BASE, [':protocol', 'websocket']], /:protocol/],
    [':status in a request', [...BASE, [':status', '200']], /:status/],
    ['connection', [...BASE, ['connection', 'close']], /connection-specific field connection/],
    ['keep-alive', [...BASE, ['keep-alive', '5']], /keep-alive/],
    ['transfer-encoding', [...BASE, ['transfer-encoding', 'chunked']], /transfer-encoding/],
    ['upgrade', [...BASE, ['upgrade', 'h2c']], /upgrade/],
    ['te gzip', [...BASE, ['te', 'gzip']], /TE "gzip"/],
    ['two Host', [...without(':authority'), ['host', 'a'], ['Host', 'b']], /more than one Host/],
    ['Host is not :authority', [...BASE, ['host', 'admin']], /Host "admin" is not the :authority "payments"/],
    ['no :method', without(':method'), /no :method/],
    ['lower-case method', replace(':method', 'get'), /:method "get"/],
    ['CONNECT', [[':method', 'CONNECT'], [':authority', 'payments:443']], /CONNECT/],
    ['no :scheme', without(':scheme'), /no :scheme/],
    [':scheme ftp', replace(':scheme', 'ftp'), /:scheme "ftp"/],
    ['no :path', without(':path'), /no :path/],
    ['absolute form', replace(':path', 'https://payments/admin'), /origin-form/],
    ['asterisk with GET', replace(':path', '*'), /origin-form/],
    ['userinfo', replace(':authority', 'evil@payments'), /:authority: .*userinfo/],
    ['encoded slash', replace(':path', '/a%2fb'), /./],
  ];
  for (const [name, fields, reason] of cases) {
    const t = check(fields);
    assert.equal(t.ok, false, name);
    assert.match((t as { reason: string }).reason, reason, name);
  }
});

test('the rapid-reset rule (reset-guard.ts): more than half of at least 100 streams reset by the peer within 1 s', async () => {
  const { ResetGuard } = await import('../../src/inbound/http2/reset-guard.js');
  const g = new ResetGuard();
  let trip = false;
  for (let i = 0; i < 99; i++) {
    g.opened();
    trip = g.closed(true, 1);
  }
  assert.equal(trip, false, 'not before 100 streams');
  g.opened();
  assert.equal(g.closed(true, 1), true);
  const slow = new ResetGuard();
  for (let i = 0; i < 200; i++) {
    slow.opened();
    assert.equal(slow.closed(true, 1000), false, 'a reset after the stream lived 1 s is not premature');
  }
  const some = new ResetGuard();
  for (let i = 0; i < 200; i++) {
    some.opened();
    assert.equal(some.closed(i % 2 === 1, 1), false, 'half is not more than half');
  }
});
