// The key-strength floor at the pure level (SECURITY-CASES 37): what der.ts reads from
// subjectPublicKeyInfo for every key type node:crypto makes, hostile SPKI bytes, and
// verifySvidChain refusing weak keys wherever they sit on the path (chains made by the openssl CLI).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SvidError } from '../../src/errors.js';
import { bundlesFromPem } from '../../src/identity/bundle.js';
import { parseCertificate } from '../../src/identity/certificate.js';
import { DerError, type PublicKeyInfo, Tag, readSubjectPublicKeyInfo, readWhole } from '../../src/identity/der.js';
import { KEY_STRENGTH_RULE, describeKey, isStrongKey, weakKeyReason } from '../../src/identity/key-strength.js';
import { pemToCertDers } from '../../src/identity/pem.js';
import { verifySvidChain } from '../../src/identity/svid.js';
import { TD, idOf, tempDir } from '../helpers/certs.js';
import { OpensslCa } from '../helpers/openssl-ca.js';

function spki(type: string, options: object): PublicKeyInfo {
  const { publicKey } = generateKeyPairSync(type as 'rsa', options as { modulusLength: number });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return readSubjectPublicKeyInfo(der, readWhole(der, Tag.SEQUENCE, 'spki'));
}

function spkiBytes(hex: string): PublicKeyInfo {
  const der = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  return readSubjectPublicKeyInfo(der, readWhole(der, Tag.SEQUENCE, 'spki'));
}

describe('what the DER reader sees of a public key', () => {
  const cases: Array<[string, string, object, string, boolean]> = [
    ['RSA 1024', 'rsa', { modulusLength: 1024 }, 'RSA 1024 bits', false],
    ['RSA 2047 (one bit short)', 'rsa', { modulusLength: 2047 }, 'RSA 2047 bits', false],
    ['RSA 2048', 'rsa', { modulusLength: 2048 }, 'RSA 2048 bits', true],
    ['RSA 3072', 'rsa', { modulusLength: 3072 }, 'RSA 3072 bits', true],
    ['RSA-PSS 1024', 'rsa-pss', { modulusLength: 1024 }, 'RSA-PSS 1024 bits', false],
    ['RSA-PSS 2048', 'rsa-pss', { modulusLength: 2048 }, 'RSA-PSS 2048 bits', true],
    ['DSA 2048', 'dsa', { modulusLength: 2048, divisorLength: 256 }, 'DSA 2048 bits', false],
    ['DSA 1024', 'dsa', { modulusLength: 1024, divisorLength: 160 }, 'DSA 1024 bits', false],
    ['ECDSA P-256', 'ec', { namedCurve: 'P-256' }, 'ECDSA P-256', true],
    ['ECDSA P-384', 'ec', { namedCurve: 'P-384' }, 'ECDSA P-384', true],
    ['ECDSA P-521 (not in the allowed list)', 'ec', { namedCurve: 'P-521' }, 'ECDSA P-521', false],
    ['ECDSA P-224', 'ec', { namedCurve: 'P-224' }, 'ECDSA P-224', false],
    ['ECDSA P-192', 'ec', { namedCurve: 'prime192v1' }, 'ECDSA P-192', false],
    ['ECDSA secp256k1', 'ec', { namedCurve: 'secp256k1' }, 'ECDSA secp256k1', false],
    ['ECDSA brainpoolP256r1 (an unnamed curve OID)', 'ec', { namedCurve: 'brainpoolP256r1' }, 'ECDSA on curve 1.3.36.3.3.2.8.1.1.7', false],
    ['ECDSA P-256 with explicit parameters (CVE-2020-0601)', 'ec', { namedCurve: 'P-256', paramEncoding: 'explicit' }, 'ECDSA with explicit (or missing) curve parameters', false],
    ['Ed25519', 'ed25519', {}, 'Ed25519', true],
    ['Ed448', 'ed448', {}, 'Ed448', false],
  ];
  for (const [name, type, options, words, strong] of cases) {
    test(`${name}: "${words}", ${strong ? 'allowed' : 'refused'}`, () => {
      const k = spki(type, options);
      assert.equal(describeKey(k), words);
      assert.equal(isStrongKey(k), strong);
      const why = weakKeyReason(k, 'the leaf certificate');
      if (strong) assert.equal(why, undefined);
      else assert.equal(why, `the leaf certificate has a weak or unsupported key (${words}); sidecarless requires ${KEY_STRENGTH_RULE} (DSA and RSA below 2048 bits are refused, in leaves and CAs alike)`);
    });
  }

  test('an algorithm nobody listed (X25519, a key-agreement key) is refused, naming its OID', () => {
    const k = spki('x25519', {});
    assert.equal(k.algorithm, '1.3.101.110');
    assert.equal(isStrongKey(k), false);
    assert.match(weakKeyReason(k, 'x')!, /unknown algorithm 1\.3\.101\.110/);
  });

  test('RSA public exponents: odd and at least 65537, else refused with the exponent named (e = 1 makes every signature forgeable)', async () => {
    const { createPublicKey } = await import('node:crypto');
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const withE = (e: bigint) => {
      const hex = e.toString(16);
      const der = createPublicKey({ key: { ...jwk, e: Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url') }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
      return readSubjectPublicKeyInfo(der, readWhole(der, Tag.SEQUENCE, 'spki'));
    };
    for (const [e, ok] of [[1n, false], [3n, false], [17n, false], [65535n, false], [65536n, false], [65537n, true], [2n ** 32n + 1n, true], [2n ** 32n + 2n, false]] as const) {
      const k = withE(e);
      assert.equal(k.exponent, e);
      assert.equal(isStrongKey(k), ok, `e = ${e}`);
      const why = weakKeyReason(k, 'the root CA "x"');
      if (ok) assert.equal(why, undefined);
      else assert.equal(why, `the root CA "x" has an RSA key whose public exponent is ${e}; sidecarless requires an odd exponent of at least 65537 (with 1 anyone can forge its signatures; small or even ones are weak or broken)`);
    }
    // A 1024-bit key with a bad exponent is refused for its size first.
    assert.match(weakKeyReason(spki('rsa', { modulusLength: 1024, publicExponent: 3 }), 'k')!, /RSA 1024 bits/);
  });

  test('the rule reads as the docs say', () => {
    assert.equal(KEY_STRENGTH_RULE, 'RSA ≥ 2048 bits, ECDSA P-256/P-384 or Ed25519');
  });
});

describe('hostile subjectPublicKeyInfo bytes', () => {
  // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 00, RSAPublicKey } }
  const RSA_ALG = '300d06092a864886f70d0101010500';
  const bitString = (body: string) => {
    const b = Buffer.from(body, 'hex');
    return '03' + (b.length + 1).toString(16).padStart(2, '0') + '00' + body;
  };
  const seq = (body: string) => '30' + (body.length / 2).toString(16).padStart(2, '0') + body;

  test('a tiny well-formed RSA key reads its true size (a 0x00 sign byte is not counted)', () => {
    // modulus 0x00ff (8 bits, positive), exponent 3
    assert.equal(spkiBytes(seq(RSA_ALG + bitString(seq('020200ff' + '020103')))).bits, 8);
    assert.equal(spkiBytes(seq(RSA_ALG + bitString(seq('02017f' + '020103')))).bits, 7);
  });

  test('malformed RSA keys are DerErrors, never a wrong size', () => {
    const bad: Array<[string, RegExp]> = [
      [seq(RSA_ALG + bitString(seq('0201ff' + '020103'))), /RSA modulus is negative/],
      [seq(RSA_ALG + bitString(seq('0202007f' + '020103'))), /non-minimal INTEGER/],
      [seq(RSA_ALG + bitString(seq('020200ff'))), /RSA public exponent/],
      [seq(RSA_ALG + bitString(seq('020200ff' + '020103' + '020101'))), /trailing bytes/],
      [seq(RSA_ALG + bitString(seq('020200ff' + '020103') + '00')), /trailing bytes after RSAPublicKey/],
      [seq(RSA_ALG + '030a' + '01' + seq('020200ff' + '020103')), /unused bits/],
      [seq(RSA_ALG + '0300'), /empty BIT STRING/],
      [seq(RSA_ALG), /subjectPublicKey/],
      [seq('300b06092a864886f70d010101' + '0500'), /public key AlgorithmIdentifier|expected/],
    ];
    for (const [hex, re] of bad) {
      assert.throws(() => spkiBytes(hex), (e: unknown) => e instanceof DerError && re.test(e.message), `${hex}: ${re}`);
    }
  });

  test('an EC key without parameters is malformed (RFC 5480: a named curve or explicit parameters), DSA without parameters has no size (refused)', () => {
    const ecNoParams = seq(seq('06072a8648ce3d0201') + '03020000');
    assert.throws(() => spkiBytes(ecNoParams), /EC public key: the parameters must name a curve/);
    const dsaNoParams = seq(seq('06072a8648ce380401') + '03020000');
    assert.equal(describeKey(spkiBytes(dsaNoParams)), 'DSA');
    assert.equal(isStrongKey(spkiBytes(dsaNoParams)), false);
  });
});

describe('verifySvidChain refuses weak keys wherever they sit (openssl-made chains)', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  const made: Record<string, { chainPem: string; bundlePem: string }> = {};
  before(async () => {
    work = await tempDir('sidecarless-keys-');
    try {
      const root = await OpensslCa.root(work.dir, TD, 'ec-P-256');
      const weakRoot = await OpensslCa.root(work.dir, TD, 'rsa-1024');
      const rsaInt = await root.intermediate('rsa-1024');
      const dsaInt = await root.intermediate('dsa-2048');
      const goodInt = await root.intermediate('rsa-2048');
      const put = (k: string, x: { certChainPem: string; bundlePem: string }) => (made[k] = { chainPem: x.certChainPem, bundlePem: x.bundlePem });
      put('rsa1024 leaf', await root.leaf(idOf('weak'), 'rsa-1024'));
      put('dsa leaf', await root.leaf(idOf('weak'), 'dsa-2048'));
      put('p224 leaf', await root.leaf(idOf('weak'), 'ec-P-224'));
      put('via rsa1024', await rsaInt.leaf(idOf('weak')));
      put('via dsa', await dsaInt.leaf(idOf('weak')));
      put('under rsa1024 root', await weakRoot.leaf(idOf('weak')));
      put('rsa2048 leaf', await root.leaf(idOf('ok'), 'rsa-2048'));
      put('rsa e=3 leaf', await root.leaf(idOf('weak'), 'rsa-2048-e3'));
      put('via rsa e=3', await (await root.intermediate('rsa-2048-e3')).leaf(idOf('weak')));
      put('ed25519 leaf', await root.leaf(idOf('ok'), 'ed25519'));
      put('p384 leaf via rsa2048', await goodInt.leaf(idOf('ok'), 'ec-P-384'));
    } finally {
      await work.remove(); // no CA key is left on disk
    }
  });
  after(() => work?.remove());

  const verify = (k: string) => {
    const m = made[k]!;
    return verifySvidChain(pemToCertDers(m.chainPem).map((d) => parseCertificate(d)), bundlesFromPem(m.bundlePem, TD), Date.now());
  };
  const refused = (k: string, re: RegExp) =>
    assert.throws(() => verify(k), (e: unknown) => e instanceof SvidError && e.code === 'ERR_SIDECARLESS_SVID_INVALID' && re.test(e.message), k);

  test('an RSA key with public exponent 3, as the leaf or as an intermediate: refused, the exponent named', () => {
    refused('rsa e=3 leaf', /^the leaf certificate of spiffe:\/\/cluster\.local\/ns\/default\/sa\/weak has an RSA key whose public exponent is 3; sidecarless requires an odd exponent of at least 65537/);
    refused('via rsa e=3', /intermediate CA .* has an RSA key whose public exponent is 3/);
  });

  test('a weak leaf: RSA 1024, DSA, ECDSA P-224', () => {
    refused('rsa1024 leaf', /^the leaf certificate of spiffe:\/\/cluster\.local\/ns\/default\/sa\/weak has a weak or unsupported key \(RSA 1024 bits\); sidecarless requires RSA ≥ 2048 bits, ECDSA P-256\/P-384 or Ed25519/);
    refused('dsa leaf', /leaf certificate of .*sa\/weak has a weak or unsupported key \(DSA 2048 bits\)/);
    refused('p224 leaf', /\(ECDSA P-224\)/);
  });

  test('a weak intermediate (RSA 1024, DSA) under a strong root, with a strong leaf', () => {
    refused('via rsa1024', /^the intermediate CA "O=openssl test intermediate \d+ \(rsa-1024\)" in the chain of spiffe:\/\/cluster\.local\/ns\/default\/sa\/weak has a weak or unsupported key \(RSA 1024 bits\)/);
    refused('via dsa', /intermediate CA .* has a weak or unsupported key \(DSA 2048 bits\)/);
  });

  test('a weak root in the bundle', () => {
    refused('under rsa1024 root', /^the root CA "O=openssl test root \d+ \(rsa-1024\)" of trust domain "cluster\.local" has a weak or unsupported key \(RSA 1024 bits\)/);
  });

  test('the floor itself: RSA 2048, Ed25519, P-384 under an RSA 2048 intermediate verify', () => {
    for (const k of ['rsa2048 leaf', 'ed25519 leaf', 'p384 leaf via rsa2048']) assert.equal(verify(k).spiffeId.id, idOf('ok'), k);
  });
});
