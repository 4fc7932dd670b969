// Pure validation of JWT-SVIDs: every algorithm of the spec verifies, everything else is refused
// with the reason that names the failed check, and hostile input only ever throws JwtSvidError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { JwtSvidError } from '../../src/errors.js';
import { CLOCK_SKEW_MS, MAX_JWT_SVID_LENGTH, duplicateKey, validateJwtSvid } from '../../src/identity/jwt-svid.js';
import { type Alg, b64, bundleOf, makeKey, rawSign, signWith } from './jwt-helpers.js';

const NOW = Date.UTC(2030, 0, 1);
const SEC = NOW / 1000;
const SUB = 'spiffe://example.org/ns/default/sa/orders';
const AUD = 'spiffe://example.org/ns/default/sa/payments';
const claims = (over: Record<string, unknown> = {}) => ({ sub: SUB, aud: [AUD], exp: SEC + 300, iat: SEC - 1, ...over });

const es = makeKey('es-1', 'ES256');
const bundles = new Map([['example.org', bundleOf('example.org', es)]]);
const validate = (token: unknown, o: { audience?: string; now?: number; set?: typeof bundles } = {}) =>
  validateJwtSvid(token, { audience: o.audience ?? AUD, bundles: o.set ?? bundles, now: o.now ?? NOW });

function refused(fn: () => unknown, reason: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof JwtSvidError, `not a JwtSvidError: ${String(e)}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_JWT_SVID_INVALID');
    assert.equal(e.reason, reason, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('every JWT-SVID algorithm verifies, with the key type it needs', () => {
  for (const alg of ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as Alg[]) {
    const key = makeKey(`k-${alg}`, alg);
    const set = new Map([['example.org', bundleOf('example.org', key)]]);
    const v = validate(signWith(key, claims()), { set });
    assert.equal(v.spiffeId, SUB, alg);
    assert.equal(v.algorithm, alg);
    assert.equal(v.keyId, `k-${alg}`);
    assert.deepEqual(v.audience, [AUD]);
    assert.equal(v.expiresAt, (SEC + 300) * 1000);
    assert.equal(v.trustDomain, 'example.org');
  }
});

test('a valid token: claims as sent, aud as a string, typ JOSE or absent', () => {
  const v = validate(signWith(es, claims({ aud: AUD, extra: { nested: [1, 2] } })));
  assert.deepEqual(v.audience, [AUD]);
  assert.deepEqual(v.claims.extra, { nested: [1, 2] });
  assert.equal(v.issuedAt, (SEC - 1) * 1000);
  validate(signWith(es, claims(), { alg: 'ES256', kid: 'es-1', typ: 'JOSE' }));
  validate(signWith(es, claims(), { alg: 'ES256', kid: 'es-1' }));
  refused(() => validate(signWith(es, claims(), { alg: 'ES256', kid: 'es-1', typ: 'at+jwt' })), 'header', /typ/);
});

test('alg none, HS256 with the public key as the secret, and other algorithms are refused before any key is used', () => {
  const none = `${b64({ alg: 'none', kid: 'es-1' })}.${b64(claims())}.`;
  refused(() => validate(none), 'algorithm', /"none".*unsigned/);
  for (const secret of [JSON.stringify(es.jwk), es.publicKey.export({ type: 'spki', format: 'pem' }) as string]) {
    const input = `${b64({ alg: 'HS256', kid: 'es-1', typ: 'JWT' })}.${b64(claims())}`;
    const hs = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    refused(() => validate(hs), 'algorithm', /HS256.*shared-secret/);
  }
  for (const alg of ['EdDSA', 'ES256K', 'RS1', 'es256', 'NONE', '', 42, null]) {
    refused(() => validate(`${b64({ alg, kid: 'es-1' })}.${b64(claims())}.AAAA`), 'algorithm');
  }
  refused(() => validate(`${b64({ kid: 'es-1' })}.${b64(claims())}.AAAA`), 'algorithm', /missing/);
});

test('an alg that does not fit the key is refused (RS256 on an EC key, ES384 on a P-256 key)', () => {
  const rs = makeKey('rs-1', 'RS256');
  const mixed = new Map([['example.org', bundleOf('example.org', es, rs)]]);
  const input = `${b64({ alg: 'RS256', kid: 'es-1' })}.${b64(claims())}`;
  refused(() => validate(`${input}.${rawSign(rs, input).toString('base64url')}`, { set: mixed }), 'algorithm', /RSA key; key "es-1" is EC P-256/);
  const input2 = `${b64({ alg: 'ES384', kid: 'es-1' })}.${b64(claims())}`;
  refused(() => validate(`${input2}.${rawSign(es, input2).toString('base64url')}`, { set: mixed }), 'algorithm', /EC P-384 key/);
  const input3 = `${b64({ alg: 'ES256', kid: 'rs-1' })}.${b64(claims())}`;
  refused(() => validate(`${input3}.${rawSign(es, input3).toString('base64url')}`, { set: mixed }), 'algorithm', /EC P-256 key; key "rs-1" is RSA 2048 bits/);
});

test('header: kid required, only alg/kid/typ allowed (jku, jwk, x5u, crit never honoured)', () => {
  refused(() => validate(signWith(es, claims(), { alg: 'ES256' })), 'header', /no kid/);
  refused(() => validate(signWith(es, claims(), { alg: 'ES256', kid: '' })), 'header', /no kid/);
  refused(() => validate(signWith(es, claims(), { alg: 'ES256', kid: 7 })), 'header', /no kid/);
  for (const extra of ['jku', 'jwk', 'x5u', 'x5c', 'crit', 'b64', 'cty']) {
    refused(() => validate(signWith(es, claims(), { alg: 'ES256', kid: 'es-1', [extra]: 'x' })), 'header', new RegExp(`"${extra}"`));
  }
});

test('audience: the validator must be one of aud; aud required, strings only', () => {
  refused(() => validate(signWith(es, claims()), { audience: 'spiffe://example.org/other' }), 'audience', /not for "spiffe:\/\/example.org\/other"/);
  refused(() => validate(signWith(es, claims({ aud: undefined }))), 'audience', /aud must be/);
  refused(() => validate(signWith(es, claims({ aud: [] }))), 'audience');
  refused(() => validate(signWith(es, claims({ aud: [AUD, 5] }))), 'audience');
  refused(() => validate(signWith(es, claims({ aud: '' }))), 'audience');
  refused(() => validate(signWith(es, claims({ aud: { 0: AUD } }))), 'audience');
  // A prefix or a case variant is another audience.
  refused(() => validate(signWith(es, claims({ aud: [`${AUD}x`] }))), 'audience');
  refused(() => validate(signWith(es, claims({ aud: [AUD.toUpperCase()] }))), 'audience');
  assert.deepEqual(validate(signWith(es, claims({ aud: ['other', AUD] }))).audience, ['other', AUD]);
});

test('exp: required, a number, refused at exp exactly and after (no leeway); nbf and iat within the skew', () => {
  refused(() => validate(signWith(es, claims({ exp: undefined }))), 'expired', /no exp/);
  refused(() => validate(signWith(es, claims({ exp: String(SEC + 300) }))), 'expired', /NumericDate/);
  refused(() => validate(signWith(es, claims({ exp: 1e300 }))), 'expired', /NumericDate/);
  refused(() => validate(signWith(es, claims({ exp: -1 }))), 'expired');
  const t = signWith(es, claims({ exp: SEC + 10 }));
  validate(t, { now: NOW + 9_999 });
  refused(() => validate(t, { now: NOW + 10_000 }), 'expired', /expired at 2030-01-01T00:00:10.000Z/);
  refused(() => validate(t, { now: NOW + 10_001 }), 'expired');
  // Fractional NumericDates are allowed by RFC 7519.
  validate(signWith(es, claims({ exp: SEC + 0.5 })), { now: NOW + 499 });
  refused(() => validate(signWith(es, claims({ exp: SEC + 0.5 })), { now: NOW + 500 }), 'expired');
  const skew = CLOCK_SKEW_MS / 1000;
  validate(signWith(es, claims({ nbf: SEC + skew })));
  refused(() => validate(signWith(es, claims({ nbf: SEC + skew + 1 }))), 'not-yet-valid', /nbf/);
  validate(signWith(es, claims({ iat: SEC + skew })));
  refused(() => validate(signWith(es, claims({ iat: SEC + skew + 1 }))), 'not-yet-valid', /iat/);
  refused(() => validate(signWith(es, claims({ iat: 'yesterday' }))), 'not-yet-valid', /NumericDate/);
});

test('sub: a workload SPIFFE ID (not a trust domain, not another scheme)', () => {
  for (const sub of [undefined, 5, '', 'spiffe://example.org', 'spiffe://example.org/', 'https://example.org/a', 'spiffe://EXAMPLE.org/a', 'spiffe://example.org/a/../b', 'spiffe://example.org/%61']) {
    refused(() => validate(signWith(es, claims({ sub }))), 'subject');
  }
});

test('keys come only from the bundle of the subject\'s trust domain', () => {
  const other = makeKey('es-1', 'ES256'); // the same kid in another trust domain
  const two = new Map([
    ['example.org', bundleOf('example.org', es)],
    ['other.org', bundleOf('other.org', other)],
  ]);
  // A token for other.org signed with example.org's key: other.org's bundle has kid es-1, but another key.
  refused(() => validate(signWith(es, claims({ sub: 'spiffe://other.org/ns/x/sa/y' })), { set: two }), 'signature');
  // No bundle for the subject's trust domain at all: refused, whoever signed.
  refused(() => validate(signWith(es, claims({ sub: 'spiffe://third.org/a' })), { set: two }), 'trust-domain', /third\.org/);
  // The token of other.org validates with other.org's key, and not with example.org's.
  assert.equal(validate(signWith(other, claims({ sub: 'spiffe://other.org/a' })), { set: two }).trustDomain, 'other.org');
  refused(() => validate(signWith(other, claims()), { set: two }), 'signature');
});

test('unknown kid, wrong signer, tampered payload or header, truncated signature', () => {
  refused(() => validate(signWith(makeKey('es-2'), claims()), {}), 'key', /no key with kid "es-2"/);
  const impostor = makeKey('es-1'); // claims the kid of the real key
  refused(() => validate(signWith(impostor, claims())), 'signature', /does not verify/);
  const good = signWith(es, claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  refused(() => validate(`${h}.${b64(claims({ sub: 'spiffe://example.org/ns/default/sa/admin' }))}.${s}`), 'signature');
  refused(() => validate(`${b64({ alg: 'ES256', kid: 'es-1' })}.${p}.${s}`), 'signature');
  refused(() => validate(`${h}.${p}.${Buffer.from(s, 'base64url').subarray(0, -3).toString('base64url')}`), 'signature', /64 bytes, this one is 61/);
  // The DER form of an ECDSA signature is not the JWS form.
  const der = Buffer.concat([Buffer.from([0x30, 0x44, 0x02, 0x20]), Buffer.from(s, 'base64url').subarray(0, 32), Buffer.from([0x02, 0x20]), Buffer.from(s, 'base64url').subarray(32)]);
  refused(() => validate(`${h}.${p}.${der.toString('base64url')}`), 'signature');
  // r = s = 0 (the "psychic signature" of CVE-2022-21449), and r = s = n - 1 style garbage.
  refused(() => validate(`${h}.${p}.${Buffer.alloc(64).toString('base64url')}`), 'signature');
  refused(() => validate(`${h}.${p}.${Buffer.alloc(64, 0xff).toString('base64url')}`), 'signature');
  const sig = Buffer.from(s, 'base64url');
  sig[10]! ^= 1;
  refused(() => validate(`${h}.${p}.${sig.toString('base64url')}`), 'signature');
  // An RSA signature one byte short.
  const rs = makeKey('rs-1', 'RS256');
  const rt = signWith(rs, claims()).split('.');
  refused(() => validate(`${rt[0]}.${rt[1]}.${Buffer.from(rt[2]!, 'base64url').subarray(1).toString('base64url')}`, { set: new Map([['example.org', bundleOf('example.org', rs)]]) }), 'signature');
});

test('a forged RS256 signature that would verify under e = 1 never gets that far: the bundle refuses such a key', async () => {
  const { createHash } = await import('node:crypto');
  const { parseJwtBundle } = await import('../../src/identity/jwt-bundle.js');
  const rs = makeKey('rs-1', 'RS256');
  const input = `${b64({ alg: 'RS256', kid: 'rs-1' })}.${b64(claims())}`;
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()]);
  const em = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(256 - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo]);
  assert.throws(() => parseJwtBundle('example.org', JSON.stringify({ keys: [{ ...rs.jwk, e: 'AQ' }] })), /public exponent 1 /);
  // With the real exponent, the forgery is just a bad signature.
  refused(() => validate(`${input}.${em.toString('base64url')}`, { set: new Map([['example.org', bundleOf('example.org', rs)]]) }), 'signature');
});

test('malformed: parts, base64url, JSON, objects, duplicates, size — only JwtSvidError, whatever the input', () => {
  const good = signWith(es, claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  const cases: unknown[] = [
    undefined, null, 42, {}, ['a'], '', '.', '..', '...', 'a.b', 'a.b.c.d', 'a.b.c.d.e', `${h}.${p}`, `${h}.${p}.${s}.`,
    `${h}=.${p}.${s}`, `${h}.${p}+.${s}`, `${h} .${p}.${s}`, `${h}.${p}.${s}\n`, `${h}.${p}./${s}`,
    `${b64('[1]')}.${p}.${s}`, `${b64('null')}.${p}.${s}`, `${b64('"x"')}.${p}.${s}`, `${b64('{')}.${p}.${s}`,
    `${h}.${b64('[]')}.${s}`, `${h}.${b64('7')}.${s}`, `${h}.${b64('{"sub":')}.${s}`, `${h}.${Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url')}.${s}`,
    'x'.repeat(MAX_JWT_SVID_LENGTH + 1), `${h}.${'A'.repeat(MAX_JWT_SVID_LENGTH)}.${s}`,
  ];
  for (const c of cases) {
    assert.throws(() => validate(c), (e: unknown) => e instanceof JwtSvidError && e.code === 'ERR_SIDECARLESS_JWT_SVID_INVALID', `input ${String(c).slice(0, 60)}`);
  }
  // Non-canonical base64url: the same bytes, another spelling (trailing bits set).
  const last = s.at(-1)!;
  const alt = 'AEIMQUYcgkosw048'.includes(last) ? String.fromCharCode(last.charCodeAt(0) + 1) : last;
  if (alt !== last) refused(() => validate(`${h}.${p}.${s.slice(0, -1)}${alt}`), 'malformed', /canonical/);
  refused(() => validate(`${b64('{"alg":"ES256","kid":"es-1","kid":"es-2"}')}.${p}.${s}`), 'malformed', /"kid" twice/);
  const dupSub = `${b64({ alg: 'ES256', kid: 'es-1' })}.${b64(`{"sub":"${SUB}","aud":["${AUD}"],"exp":${SEC + 300},"sub":"spiffe://example.org/admin"}`)}`;
  refused(() => validate(`${dupSub}.${rawSign(es, dupSub).toString('base64url')}`), 'malformed', /"sub" twice/);
  // An escape spelling of the same name is the same name.
  const dupEsc = `${b64({ alg: 'ES256', kid: 'es-1' })}.${b64(`{"sub":"${SUB}","aud":["${AUD}"],"exp":${SEC + 300},"s\\u0075b":"spiffe://example.org/admin"}`)}`;
  refused(() => validate(`${dupEsc}.${rawSign(es, dupEsc).toString('base64url')}`), 'malformed', /"sub" twice/);
});

test('random mutations of a good token never throw anything but JwtSvidError', () => {
  const good = signWith(es, claims());
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \u00e9\u0000';
  for (let i = 0; i < 3000; i++) {
    const chars = [...good];
    for (let k = 1 + rnd(4); k > 0; k--) {
      const at = rnd(chars.length);
      const op = rnd(3);
      if (op === 0) chars[at] = alphabet[rnd(alphabet.length)]!;
      else if (op === 1) chars.splice(at, 1);
      else chars.splice(at, 0, alphabet[rnd(alphabet.length)]!);
    }
    const t = rnd(10) === 0 ? chars.join('').slice(0, rnd(chars.length)) : chars.join('');
    try {
      validate(t);
    } catch (e) {
      assert.ok(e instanceof JwtSvidError, `${String(e)} for ${t}`);
    }
  }
});

test('duplicateKey finds repeated members at any depth, and nothing in arrays or values', () => {
  assert.equal(duplicateKey('{"a":1,"b":{"c":1,"c":2}}'), 'c');
  assert.equal(duplicateKey('{"a":{"x":1},"a":2}'), 'a');
  assert.equal(duplicateKey('{"a":["a","a"],"b":"a"}'), undefined);
  assert.equal(duplicateKey('{"a":[{"k":1},{"k":1}]}'), undefined);
  assert.equal(duplicateKey('{"a\\"b":1,"a\\"b":2}'), 'a"b');
  assert.equal(duplicateKey('{"x":{},"y":[],"z":{"x":1}}'), undefined);
});

test('a token\'s own strings (kid, member names, sub) reach the message with control characters escaped: no forged log lines, no terminal sequences', () => {
  const evil = 'x\n\u001b[31mFORGED 2030-01-01 INFO accepted\u009b0m\u2028';
  const clean = (e: unknown) => {
    assert.ok(e instanceof JwtSvidError, String(e));
    assert.doesNotMatch(e.message, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, JSON.stringify(e.message));
    assert.match(e.message, /x\\u000a\\u001b\[31mFORGED/, 'the characters are shown, escaped');
    return true;
  };
  assert.throws(() => validate(signWith(es, claims(), { alg: 'ES256', kid: evil })), clean);
  assert.throws(() => validate(signWith(es, claims(), { alg: 'ES256', kid: 'es-1', [evil]: 1 })), clean);
  assert.throws(() => validate(signWith(es, claims({ sub: `spiffe://example.org/${evil}` }))), clean);
  assert.throws(() => validate(signWith(es, claims({ sub: `spiffe://${evil}/a` }))), clean);
  const dup = `${b64({ alg: 'ES256', kid: 'es-1' })}.${b64(`{"${JSON.stringify(evil).slice(1, -1)}":1,"${JSON.stringify(evil).slice(1, -1)}":2}`)}`;
  assert.throws(() => validate(`${dup}.${rawSign(es, dup).toString('base64url')}`), clean);
});
