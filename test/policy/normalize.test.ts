import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTarget } from '../../src/policy/index.js';

const ok: Array<[string, string, string?]> = [
  // [target, expected path, expected full target when different]
  ['/', '/'],
  ['/a/b', '/a/b'],
  ['/a/b/', '/a/b/'],
  ['/public/../admin', '/admin'], // case 14
  ['/public/./../admin', '/admin'],
  ['/public/x/../../admin', '/admin'],
  ['/../a', '/a'],
  ['/../../a', '/a'],
  ['/..', '/'],
  ['/a/..', '/'],
  ['/a/../', '/'],
  ['/a/b/..', '/a/'],
  ['/a/.', '/a/'],
  ['/a/./', '/a/'],
  ['/.', '/'],
  ['/./a', '/a'],
  ['//admin', '/admin'], // case 15
  ['///admin', '/admin'],
  ['/a//admin', '/a/admin'],
  ['/a//', '/a/'],
  ['//', '/'],
  ['/a/.hidden', '/a/.hidden'],
  ['/a/..b', '/a/..b'],
  ['/a/...', '/a/...'],
  ['/%61dmin', '/admin'], // case 17
  ['/%61%64%6D%69%6e', '/admin'],
  ['/%41dmin', '/Admin'],
  ['/a%2Db%5f%7E%2e', '/a-b_~.'],
  ['/%2561', '/%2561'], // never decoded twice
  ['/%25', '/%25'],
  ['/%2e%2e/admin', '/admin'],
  ['/%2E%2E/admin', '/admin'],
  ['/.%2e/admin', '/admin'],
  ['/%2e./admin', '/admin'],
  ['/a/%2e/b', '/a/b'],
  ['/public/%2e%2e/admin', '/admin'],
  ['/a%3ab', '/a%3Ab'], // reserved stays encoded, hex upper-cased
  ['/a%3Ab', '/a%3Ab'],
  ['/a%20b', '/a%20b'],
  ['/a%0ab', '/a%0Ab'],
  ['/a%3fb', '/a%3Fb'],
  ['/a%23b', '/a%23b'],
  ['/a%c3%a9', '/a%C3%A9'],
  ['/a?x=1', '/a', '/a?x=1'], // case 19: query kept apart
  ['/a/../b?x=../../admin', '/b', '/b?x=../../admin'],
  ['/a?%2F=%5C', '/a', '/a?%2F=%5C'], // encodings in the query are not the path's business
  ['/a?', '/a', '/a'],
  ['/a?b?c', '/a', '/a?b?c'],
  ['http://host/admin', '/admin'], // case 23
  ['http://host:8080/a/../admin?q', '/admin', '/admin?q'],
  ['https://host', '/'],
  ['HTTP://host?x', '/', '/?x'],
  ['/Admin', '/Admin'], // case 20: case preserved
];

for (const [input, path, target] of ok) {
  test(`normalize ${JSON.stringify(input)} → ${path}`, () => {
    const r = normalizeTarget(input, 'GET');
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    assert.equal(r.path, path);
    assert.equal(r.target, target ?? path);
  });
}

const bad: Array<[string, RegExp, string?]> = [
  ['', /empty/],
  ['a/b', /start with/],
  ['admin', /start with/],
  ['*', /OPTIONS/, 'GET'],
  ['/a%2Fb', /%2F/], // case 16
  ['/a%2fb', /%2F/],
  ['/..%2fadmin', /%2F/],
  ['/a%5Cb', /%5C/],
  ['/a%5cb', /%5C/],
  ['/a\\b', /backslash/],
  ['/a?x=\\', /backslash/],
  ['/a\u0000b', /NUL/],
  ['/a%00b', /NUL/],
  ['/a#frag', /#/],
  ['/a?x#y', /#/],
  ['/a b', /space/],
  ['/a\tb', /control/],
  ['/a\rb', /control/],
  ['/a\nb', /control/],
  ['/a\u007fb', /control/],
  ['/a\u0085b', /non-ASCII/],
  ['/é', /non-ASCII/],
  ['/a%', /percent/],
  ['/a%4', /percent/],
  ['/a%zz', /percent/],
  ['/a%g1', /percent/],
  ['ftp://host/a', /scheme/],
  ['http://user@host/a', /userinfo/],
  ['http:///a', /authority/],
  ['//host:80/a%2f', /%2F/],
];

for (const [input, reason, method] of bad) {
  test(`reject ${JSON.stringify(input)}`, () => {
    const r = normalizeTarget(input, method ?? 'GET');
    assert.equal(r.ok, false, JSON.stringify(r));
    if (r.ok) return;
    assert.match(r.reason, reason);
  });
}

test('OPTIONS * is the asterisk form', () => {
  assert.deepEqual(normalizeTarget('*', 'OPTIONS'), { ok: true, path: '*', query: '', target: '*' });
});

test('absolute form exposes the authority', () => {
  const r = normalizeTarget('http://Example.com:8080/x?y', 'GET');
  assert.ok(r.ok);
  assert.equal(r.authority, 'Example.com:8080');
  assert.equal(r.query, 'y');
});

test('an origin-form target never has an authority, even //host/x', () => {
  const r = normalizeTarget('//evil.example/admin', 'GET');
  assert.ok(r.ok);
  assert.equal(r.path, '/evil.example/admin');
  assert.equal(r.authority, undefined);
});

test('every 2-hex-digit encoding is either decoded (unreserved), kept upper-case, or refused', () => {
  const unreserved = /[A-Za-z0-9\-._~]/;
  for (let b = 0; b < 256; b++) {
    for (const hex of [b.toString(16).padStart(2, '0'), b.toString(16).padStart(2, '0').toUpperCase()]) {
      const r = normalizeTarget(`/x%${hex}y`, 'GET');
      const ch = String.fromCharCode(b);
      if (b === 0 || b === 0x2f || b === 0x5c) assert.equal(r.ok, false, hex);
      else if (unreserved.test(ch) && b < 128) {
        assert.ok(r.ok);
        // `.` between x and y is not a dot segment
        assert.equal(r.path, `/x${ch}y`);
      } else {
        assert.ok(r.ok);
        assert.equal(r.path, `/x%${hex.toUpperCase()}y`);
      }
    }
  }
});

test('normalization is idempotent', () => {
  for (const [input] of ok) {
    const r = normalizeTarget(input, 'GET');
    assert.ok(r.ok);
    const again = normalizeTarget(r.target, 'GET');
    assert.ok(again.ok);
    assert.equal(again.path, r.path, input);
  }
});
