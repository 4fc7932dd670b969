// SECURITY-CASES 8: the SPIFFE ID parser, with the neighbours of every case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeIdError } from '../../src/errors.js';
import {
  MAX_SPIFFE_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
  isSpiffeId,
  kubernetesParts,
  kubernetesSpiffeId,
  parseSpiffeId,
  parseWorkloadId,
  validatePath,
  validateTrustDomain,
} from '../../src/identity/spiffe-id.js';

const ACCEPT: Array<[string, string, string]> = [
  // [id, trust domain, path]
  ['spiffe://cluster.local/ns/default/sa/orders', 'cluster.local', '/ns/default/sa/orders'],
  ['spiffe://td/p', 'td', '/p'],
  ['spiffe://td/.a', 'td', '/.a'],
  ['spiffe://td/..a', 'td', '/..a'],
  ['spiffe://td/...', 'td', '/...'],
  ['spiffe://td/a.', 'td', '/a.'],
  ['spiffe://td/a..', 'td', '/a..'],
  ['spiffe://td/a/.b/..c/...', 'td', '/a/.b/..c/...'],
  ['spiffe://td/UPPER/Case/Path', 'td', '/UPPER/Case/Path'],
  ['spiffe://td/a-b_c.d/0123456789', 'td', '/a-b_c.d/0123456789'],
  ['spiffe://my-td_0.example.org/x', 'my-td_0.example.org', '/x'],
  ['spiffe://1.2.3.4/x', '1.2.3.4', '/x'],
  ['spiffe://a/b', 'a', '/b'],
  ['spiffe://.../x', '...', '/x'],
  ['spiffe://-/x', '-', '/x'],
  ['spiffe://_/x', '_', '/x'],
];

for (const [input, trustDomain, path] of ACCEPT) {
  test(`accepts ${input}`, () => {
    const id = parseSpiffeId(input);
    assert.deepEqual({ ...id }, { trustDomain, path, id: input });
    assert.deepEqual({ ...parseWorkloadId(input) }, { trustDomain, path, id: input });
    assert.equal(isSpiffeId(input), true);
  });
}

const REJECT: Array<[string, string, RegExp?]> = [
  // [why, input, message pattern]
  ['upper-case trust domain', 'spiffe://Cluster.local/ns/a', /lower case/],
  ['upper-case trust domain (all)', 'spiffe://TD/p', /lower case/],
  ['upper-case scheme', 'SPIFFE://td/p', /spiffe:\/\//],
  ['mixed-case scheme', 'Spiffe://td/p', /spiffe:\/\//],
  ['port', 'spiffe://td:8080/p', /port/],
  ['port without path', 'spiffe://td:443', /port/],
  ['empty port', 'spiffe://td:/p', /port/],
  ['userinfo', 'spiffe://user@td/p', /userinfo/],
  ['userinfo with password', 'spiffe://user:pw@td/p'],
  ['query', 'spiffe://td/p?x=1', /query/],
  ['query after trust domain', 'spiffe://td?x=1', /invalid character/],
  ['empty query', 'spiffe://td/p?', /query/],
  ['fragment', 'spiffe://td/p#f', /fragment/],
  ['fragment after trust domain', 'spiffe://td#f'],
  ['empty segment in the middle', 'spiffe://td/a//b', /empty segment/],
  ['empty first segment', 'spiffe://td//a', /empty segment/],
  ['only slashes', 'spiffe://td//'],
  ['dot segment', 'spiffe://td/a/./b', /"\." or "\.\."/],
  ['dot-dot segment', 'spiffe://td/a/../b', /"\." or "\.\."/],
  ['leading dot segment', 'spiffe://td/./a'],
  ['leading dot-dot segment', 'spiffe://td/../a'],
  ['final dot segment', 'spiffe://td/a/.'],
  ['final dot-dot segment', 'spiffe://td/a/..'],
  ['only dot', 'spiffe://td/.'],
  ['only dot-dot', 'spiffe://td/..'],
  ['trailing slash', 'spiffe://td/a/', /trailing/],
  ['trailing slash on trust domain', 'spiffe://td/', /trailing/],
  ['percent-encoding in path', 'spiffe://td/a%2Fb', /percent/],
  ['percent-encoded unreserved in path', 'spiffe://td/%61dmin', /percent/],
  ['percent-encoding in trust domain', 'spiffe://t%64/p', /percent/],
  ['lone percent', 'spiffe://td/%'],
  ['no trust domain', 'spiffe:///p', /no trust domain/],
  ['nothing after scheme', 'spiffe://'],
  ['http scheme', 'http://td/p'],
  ['https scheme', 'https://td/p'],
  ['urn', 'urn:spiffe:td:p'],
  ['one slash', 'spiffe:/td/p'],
  ['no slash', 'spiffe:td/p'],
  ['no colon', 'spiffe//td/p'],
  ['empty', ''],
  ['leading space', ' spiffe://td/p'],
  ['trailing space', 'spiffe://td/p '],
  ['space in path', 'spiffe://td/a b'],
  ['tab in trust domain', 'spiffe://t\td/p'],
  ['NUL in path', 'spiffe://td/a\u0000b'],
  ['NUL in trust domain', 'spiffe://td\u0000.evil/p'],
  ['CR LF in path', 'spiffe://td/a\r\nb'],
  ['comma in path', 'spiffe://td/a,URI:spiffe://td/admin'],
  ['comma and space (subjectaltname forgery)', 'spiffe://td/a, URI:spiffe://td/admin'],
  ['backslash in path', 'spiffe://td/a\\b'],
  ['colon in path', 'spiffe://td/a:b'],
  ['at sign in path', 'spiffe://td/a@b'],
  ['tilde in path', 'spiffe://td/~a'],
  ['plus in path', 'spiffe://td/a+b'],
  ['non-ASCII in path', 'spiffe://td/caf\u00e9'],
  ['non-ASCII in trust domain', 'spiffe://t\u00ebst/p'],
  ['IDN look-alike (Cyrillic a)', 'spiffe://cluster.loc\u0430l/p'],
  ['IPv6 literal trust domain', 'spiffe://[::1]/p'],
  ['scheme repeated', 'spiffe://spiffe://td/p'],
];

for (const [why, input, pattern] of REJECT) {
  test(`rejects ${why}: ${JSON.stringify(input)}`, () => {
    assert.throws(() => parseSpiffeId(input), (e: unknown) => {
      assert.ok(e instanceof SpiffeIdError, `SpiffeIdError, got ${String(e)}`);
      assert.equal(e.code, 'ERR_SIDECARLESS_SPIFFE_ID_INVALID');
      if (pattern) assert.match(e.message, pattern);
      return true;
    });
    assert.throws(() => parseWorkloadId(input), SpiffeIdError);
    assert.equal(isSpiffeId(input), false);
  });
}

test('a trust-domain ID (no path) parses as an ID but not as a workload ID (case 5 at the parser)', () => {
  assert.deepEqual({ ...parseSpiffeId('spiffe://td') }, { trustDomain: 'td', path: '', id: 'spiffe://td' });
  assert.throws(() => parseWorkloadId('spiffe://td'), (e: unknown) => e instanceof SpiffeIdError && /needs a path/.test(e.message));
  assert.throws(() => parseWorkloadId('spiffe://td/'), SpiffeIdError);
});

test('non-string input is rejected with SpiffeIdError, not a TypeError', () => {
  for (const v of [undefined, null, 42, {}, ['spiffe://td/p']]) {
    assert.throws(() => parseSpiffeId(v as unknown as string), SpiffeIdError);
    assert.equal(isSpiffeId(v as unknown as string), false);
  }
});

// ---------- length bounds ----------

function idOfLength(n: number, td = 'td'): string {
  const prefix = `spiffe://${td}/`;
  const body = n - prefix.length;
  assert.ok(body > 0);
  // Segments of 49 characters separated by '/', never an empty segment or a trailing '/'.
  const chars = Array.from({ length: body }, () => 'a');
  for (let i = 49; i < body - 1; i += 50) chars[i] = '/';
  const path = chars.join('');
  const id = prefix + path;
  assert.equal(id.length, n);
  assert.ok(!id.endsWith('/'));
  return id;
}

test(`ID length: exactly ${MAX_SPIFFE_ID_LENGTH} bytes is accepted, ${MAX_SPIFFE_ID_LENGTH + 1} rejected`, () => {
  assert.equal(MAX_SPIFFE_ID_LENGTH, 2048);
  const atBound = idOfLength(2048);
  assert.equal(Buffer.byteLength(atBound), 2048);
  assert.equal(parseSpiffeId(atBound).id, atBound);
  assert.equal(parseWorkloadId(atBound).id, atBound);
  const single = 'spiffe://td/' + 'a'.repeat(2048 - 'spiffe://td/'.length);
  assert.equal(single.length, 2048);
  assert.equal(parseSpiffeId(single).path.length, 2048 - 'spiffe://td'.length);

  const over = idOfLength(2049);
  assert.throws(() => parseSpiffeId(over), (e: unknown) => e instanceof SpiffeIdError && /2049 bytes.*2048/.test(e.message));
  assert.throws(() => parseSpiffeId(single + 'a'), SpiffeIdError);
  assert.throws(() => parseSpiffeId('spiffe://td/' + 'a'.repeat(100_000)), SpiffeIdError);
  assert.equal(isSpiffeId(over), false);
});

test(`trust domain length: exactly ${MAX_TRUST_DOMAIN_LENGTH} bytes is accepted, ${MAX_TRUST_DOMAIN_LENGTH + 1} rejected`, () => {
  assert.equal(MAX_TRUST_DOMAIN_LENGTH, 255);
  const td255 = ('a'.repeat(63) + '.').repeat(4).slice(0, 254) + 'b';
  assert.equal(td255.length, 255);
  assert.equal(validateTrustDomain(td255), td255);
  assert.equal(parseSpiffeId(`spiffe://${td255}`).trustDomain, td255);
  assert.equal(parseSpiffeId(`spiffe://${td255}/p`).trustDomain, td255);
  const td256 = td255 + 'c';
  assert.throws(() => validateTrustDomain(td256), (e: unknown) => e instanceof SpiffeIdError && /256 bytes.*255/.test(e.message));
  assert.throws(() => parseSpiffeId(`spiffe://${td256}/p`), SpiffeIdError);
  assert.throws(() => parseSpiffeId(`spiffe://${td256}`), SpiffeIdError);
  // A 255-byte trust domain and a path that brings the ID to exactly 2048 bytes: both bounds at once.
  const both = idOfLength(2048, td255);
  assert.equal(parseSpiffeId(both).trustDomain, td255);
  assert.throws(() => parseSpiffeId(idOfLength(2049, td255)), SpiffeIdError);
});

// ---------- the pieces ----------

test('validateTrustDomain: empty, invalid characters and hints', () => {
  assert.throws(() => validateTrustDomain(''), /empty/);
  assert.throws(() => validateTrustDomain('Td'), /lower case/);
  assert.throws(() => validateTrustDomain('td:1'), /port/);
  assert.throws(() => validateTrustDomain('u@td'), /userinfo/);
  assert.throws(() => validateTrustDomain('t%64'), /percent/);
  assert.throws(() => validateTrustDomain('td/p'), SpiffeIdError);
  assert.throws(() => validateTrustDomain('td\u0000'), /\\u0000/);
  assert.equal(validateTrustDomain('example.org'), 'example.org');
});

test('validatePath: must start with "/", empty is the trust-domain path', () => {
  assert.equal(validatePath(''), '');
  assert.equal(validatePath('/a'), '/a');
  assert.throws(() => validatePath('a'), /must start with/);
  assert.throws(() => validatePath('/'), /trailing/);
});

test('kubernetesSpiffeId and kubernetesParts', () => {
  assert.equal(kubernetesSpiffeId('cluster.local', 'default', 'orders'), 'spiffe://cluster.local/ns/default/sa/orders');
  assert.throws(() => kubernetesSpiffeId('cluster.local', '..', 'orders'), SpiffeIdError);
  assert.throws(() => kubernetesSpiffeId('Cluster.local', 'default', 'orders'), SpiffeIdError);
  assert.deepEqual(kubernetesParts(parseSpiffeId('spiffe://td/ns/a/sa/b')), { namespace: 'a', serviceAccount: 'b' });
  assert.deepEqual(kubernetesParts(parseSpiffeId('spiffe://td/ns/a/sa/b/x')), {});
  assert.deepEqual(kubernetesParts(parseSpiffeId('spiffe://td/ns/a/xa/b')), {});
  assert.deepEqual(kubernetesParts(parseSpiffeId('spiffe://td/x/ns/a/sa')), {});
  assert.deepEqual(kubernetesParts(parseSpiffeId('spiffe://td')), {});
});
