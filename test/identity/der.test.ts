// The strict DER reader (src/identity/der.ts) against hostile input: a peer chooses these bytes.
// Every malformed input must end in a DerError (never another exception, never a hang or a stack
// overflow), and name types other than URI must never be read as URIs.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseCertificate } from '../../src/identity/certificate.js';
import {
  DerError,
  parseCertificateDer,
  readBasicConstraints,
  readExtKeyUsage,
  readKeyUsage,
  readOid,
  readSubjectAltNames,
  readTime,
  readTlv,
} from '../../src/identity/der.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { pemToCertDers } from '../../src/identity/pem.js';
import { seededRandom } from '../../src/random.js';

// ---- a tiny DER writer for building inputs ----
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...p: Buffer[]) => tlv(0x30, ...p);
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const oid = (dotted: string): Buffer => {
  const arcs = dotted.split('.').map(BigInt);
  const out: number[] = [];
  const push = (v: bigint) => {
    const b: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) b.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...b);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
};
const ia5 = (tag: number, s: string) => tlv(tag, Buffer.from(s, 'latin1'));
const name = (cn: string) => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const ext = (id: string, value: Buffer, critical = false) => seq(oid(id), ...(critical ? [hex('0101ff')] : []), tlv(0x04, value));
const utc = (s: string) => tlv(0x17, Buffer.from(s, 'latin1'));
const gen = (s: string) => tlv(0x18, Buffer.from(s, 'latin1'));

/** A syntactically complete (unsigned) certificate around the given extensions. */
function cert(o: { extensions?: Buffer[]; version?: Buffer | null; validity?: Buffer; serial?: Buffer; trailing?: Buffer } = {}): Buffer {
  const tbs = seq(
    ...(o.version === null ? [] : [o.version ?? tlv(0xa0, hex('020102'))]),
    o.serial ?? hex('020101'),
    seq(oid('1.2.840.10045.4.3.2')),
    name('issuer'),
    o.validity ?? seq(utc('250101000000Z'), gen('20500101000000Z')),
    name('subject'),
    seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), tlv(0x03, hex('0004'))),
    ...(o.extensions ? [tlv(0xa3, seq(...o.extensions))] : []),
  );
  return Buffer.concat([seq(tbs, seq(oid('1.2.840.10045.4.3.2')), tlv(0x03, hex('00'))), o.trailing ?? Buffer.alloc(0)]);
}

const SPIFFE = 'spiffe://cluster.local/ns/default/sa/orders';

function assertDerError(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DerError, `expected a DerError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    if (re) assert.match(e.message, re);
    return true;
  });
}

const rng = seededRandom;

describe('well-formed input', () => {
  test('a synthetic certificate: every field the SVID rules read', () => {
    const der = cert({
      serial: hex('020900d2c3b4a5968778ff'),
      extensions: [
        ext('2.5.29.19', seq(hex('0101ff'), hex('020103')), true),
        ext('2.5.29.15', hex('03020186'), true),
        ext('2.5.29.37', seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'), oid('2.25.329800735698586629295641978511506172918'))),
        ext('2.5.29.17', seq(ia5(0x82, 'a.example'), ia5(0x86, SPIFFE), ia5(0x82, 'b.example'))),
      ],
    });
    const f = parseCertificateDer(der);
    assert.equal(f.version, 2);
    assert.equal(f.serialNumber, 'd2c3b4a5968778ff');
    assert.equal(f.subject, 'CN=subject');
    assert.equal(f.issuer, 'CN=issuer');
    assert.equal(f.notBefore, Date.UTC(2025, 0, 1));
    assert.equal(f.notAfter, Date.UTC(2050, 0, 1));
    assert.deepEqual(f.publicKey, { algorithm: '1.2.840.10045.2.1', curve: '1.2.840.10045.3.1.7' });
    assert.deepEqual(f.uris, [SPIFFE]);
    assert.deepEqual(f.dnsNames, ['a.example', 'b.example']);
    assert.equal(f.isCa, true);
    assert.equal(f.pathLength, 3);
    assert.equal(f.keyUsage, 1 | 32 | 64);
    assert.deepEqual(f.extKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '2.25.329800735698586629295641978511506172918']);
  });

  test('serial numbers: the DER sign byte is not shown', () => {
    assert.equal(parseCertificateDer(cert({ serial: hex('020500ffeeddcc') })).serialNumber, 'ffeeddcc');
    assert.equal(parseCertificateDer(cert({ serial: hex('020100') })).serialNumber, '00');
    assertDerError(() => parseCertificateDer(cert({ serial: hex('0200') })), /INTEGER/);
    assertDerError(() => parseCertificateDer(cert({ serial: hex('0202007f') })), /non-minimal/);
  });

  test('a v1 certificate (no version, no extensions) parses; extensions in v1 or v2 do not', () => {
    const f = parseCertificateDer(cert({ version: null }));
    assert.equal(f.version, 0);
    assert.equal(f.keyUsage, undefined);
    assert.equal(f.extKeyUsage, undefined);
    assert.deepEqual(f.uris, []);
    assertDerError(() => parseCertificateDer(cert({ version: null, extensions: [ext('2.5.29.15', hex('03020780'))] })), /not v3/);
    assertDerError(() => parseCertificateDer(cert({ version: tlv(0xa0, hex('020103')) })), /version/);
  });
});

describe('malformed structure → DerError', () => {
  test('empty input, lone tag, wrong outer tag', () => {
    assertDerError(() => parseCertificateDer(Buffer.alloc(0)));
    assertDerError(() => parseCertificateDer(hex('30')));
    assertDerError(() => parseCertificateDer(tlv(0x31, hex('00'))), /Certificate/);
    assertDerError(() => parseCertificateDer(hex('0400')), /Certificate/);
  });

  test('trailing bytes after the certificate, and inside it', () => {
    assertDerError(() => parseCertificateDer(cert({ trailing: hex('00') })), /trailing/);
    assertDerError(() => parseCertificateDer(cert({ trailing: cert() })), /trailing/);
    const inner = cert({ validity: seq(utc('250101000000Z'), utc('260101000000Z'), hex('0500')) });
    assertDerError(() => parseCertificateDer(inner), /trailing bytes after validity/);
  });

  test('lengths: indefinite, overlong, non-minimal, too many length bytes, beyond the buffer', () => {
    assertDerError(() => readTlv(hex('3080 0000'), 0, 4), /indefinite/);
    assertDerError(() => readTlv(hex('3084ffffffff'), 0, 6), /too large/);
    assertDerError(() => readTlv(hex('30847fffffff'), 0, 6), /runs past/);
    assertDerError(() => readTlv(hex('3085 0100000000'), 0, 7), /length of 5 bytes/);
    assertDerError(() => readTlv(hex('308105 0000000000'), 0, 8), /non-minimal/);
    assertDerError(() => readTlv(hex('30820005 0000000000'), 0, 9), /non-minimal/);
    assertDerError(() => readTlv(hex('3082'), 0, 2), /truncated/);
    assertDerError(() => readTlv(hex('3005 0000'), 0, 4), /runs past/);
    // A length that fits the buffer but not the enclosing element.
    const der = cert();
    const lying = Buffer.from(der);
    const tbsLenOffset = 1 + (der[1]! & 0x80 ? (der[1]! & 0x7f) + 1 : 1) + 1;
    lying[tbsLenOffset] = 0x82; // claim a longer tbsCertificate than the Certificate holds
    assertDerError(() => parseCertificateDer(lying));
  });

  test('high tag numbers are refused', () => {
    assertDerError(() => readTlv(hex('1f 81 00 00'), 0, 4), /high tag/);
  });

  test('every truncation of a real certificate is a DerError', async () => {
    const ca = await createDevCa({});
    const s = await ca.issue({ spiffeId: SPIFFE, dnsNames: ['orders.default.svc'] });
    const der = pemToCertDers(s.certChainPem)[0]!;
    parseCertificateDer(der);
    for (let n = 0; n < der.length; n++) assertDerError(() => parseCertificateDer(der.subarray(0, n)));
  });

  test('nesting bombs: deep nesting is refused without recursion, a huge SAN is bounded by its bytes', () => {
    // 200,000 nested SEQUENCE headers (each claiming the rest): refused at the first inconsistency.
    const depth = 200_000;
    const bomb = Buffer.alloc(depth * 6);
    for (let i = 0; i < depth; i++) {
      const remaining = bomb.length - (i + 1) * 6;
      bomb[i * 6] = 0x30;
      bomb[i * 6 + 1] = 0x84;
      bomb.writeUInt32BE(remaining, i * 6 + 2);
    }
    assertDerError(() => parseCertificateDer(bomb));
    // The same bomb inside an otherName of a SAN: skipped whole by its length, never descended into.
    const inner = Buffer.alloc(10_000 * 2);
    for (let i = 0; i < 10_000; i++) {
      inner[i * 2] = 0xa0;
      inner[i * 2 + 1] = 0x00;
    }
    const san = readSubjectAltNames(seq(tlv(0xa0, inner), ia5(0x86, SPIFFE)));
    assert.deepEqual(san.uris, [SPIFFE]);
    // 20,000 DNS names: linear, no recursion.
    const many = readSubjectAltNames(seq(...Array.from({ length: 20_000 }, (_, i) => ia5(0x82, `n${i}.example`))));
    assert.equal(many.dnsNames.length, 20_000);
  });

  test('random mutations of a real certificate: parse or DerError, never another exception', async () => {
    const ca = await createDevCa({ intermediates: 1 });
    const s = await ca.issue({ spiffeId: SPIFFE, dnsNames: ['a.example'] });
    const ders = pemToCertDers(s.certChainPem);
    const rand = rng(42);
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const der = Buffer.from(ders[i % ders.length]!);
      const flips = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < flips; k++) der[Math.floor(rand() * der.length)] = Math.floor(rand() * 256);
      try {
        parseCertificateDer(der);
      } catch (e) {
        assert.ok(e instanceof DerError, `mutation ${i}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        rejected++;
      }
      // The full parse (node:crypto too) may refuse it in its own words, but only by throwing.
      try {
        parseCertificate(der);
      } catch (e) {
        assert.ok(e instanceof Error);
      }
    }
    assert.ok(rejected > 100, `most mutations are refused (${rejected})`);
  });
});

describe('subjectAltName', () => {
  test('otherName, rfc822Name, x400, directoryName, ediParty, iPAddress, registeredID are skipped whole; URIs after them are read', () => {
    // An otherName whose value holds the bytes of a URI GeneralName: never taken for one.
    const otherName = tlv(0xa0, oid('1.3.6.1.4.1.311.20.2.3'), tlv(0xa0, ia5(0x86, 'spiffe://evil/ns/x/sa/admin')));
    const names = readSubjectAltNames(
      seq(
        otherName,
        ia5(0x81, 'a@b.c'),
        tlv(0xa3, seq()),
        tlv(0xa4, name('dir')),
        tlv(0xa5, seq()),
        tlv(0x87, hex('0a000001')),
        tlv(0x88, hex('2a03')),
        ia5(0x86, SPIFFE),
      ),
    );
    assert.deepEqual(names.uris, [SPIFFE]);
    assert.deepEqual(names.dnsNames, []);
  });

  test('a NUL byte or ", URI:…" inside a URI stays one name, verbatim', () => {
    const names = readSubjectAltNames(seq(ia5(0x86, `${SPIFFE}\0, URI:spiffe://cluster.local/ns/default/sa/admin`)));
    assert.deepEqual(names.uris, [`${SPIFFE}\0, URI:spiffe://cluster.local/ns/default/sa/admin`]);
  });

  test('tags that are no GeneralName, constructed URIs, non-ASCII bytes, trailing bytes → DerError', () => {
    assertDerError(() => readSubjectAltNames(seq(tlv(0x89, hex('00')))), /not a GeneralName/);
    assertDerError(() => readSubjectAltNames(seq(tlv(0xa6, ia5(0x16, SPIFFE)))), /not a GeneralName/);
    assertDerError(() => readSubjectAltNames(seq(tlv(0x16, Buffer.from(SPIFFE)))), /not a GeneralName/);
    assertDerError(() => readSubjectAltNames(seq(tlv(0x86, Buffer.from('spiffe://td/ä', 'utf8')))), /IA5String/);
    assertDerError(() => readSubjectAltNames(Buffer.concat([seq(ia5(0x86, SPIFFE)), hex('00')])), /trailing/);
    assertDerError(() => readSubjectAltNames(tlv(0x31, ia5(0x86, SPIFFE))), /subjectAltName/);
    assertDerError(() => readSubjectAltNames(seq(hex('8605414243'))), /runs past/);
  });

  test('two SAN extensions in one certificate → DerError (a second one cannot hide or add a URI)', () => {
    const san = ext('2.5.29.17', seq(ia5(0x86, SPIFFE)));
    assertDerError(() => parseCertificateDer(cert({ extensions: [san, ext('2.5.29.17', seq(ia5(0x86, 'spiffe://cluster.local/ns/x/sa/y')))] })), /twice/);
    assertDerError(() => parseCertificateDer(cert({ extensions: [ext('2.5.29.15', hex('03020780')), ext('2.5.29.15', hex('03020780'))] })), /twice/);
  });
});

describe('keyUsage, basicConstraints, extKeyUsage', () => {
  test('keyUsage bits: bit n → 1 << n', () => {
    assert.equal(readKeyUsage(hex('03020780')), 1); // digitalSignature
    assert.equal(readKeyUsage(hex('03020106')), 32 | 64); // keyCertSign, cRLSign
    assert.equal(readKeyUsage(hex('0303078080')), 1 | 256); // + decipherOnly
    assert.equal(readKeyUsage(hex('030100')), 0);
    assertDerError(() => readKeyUsage(hex('0300')), /empty/);
    assertDerError(() => readKeyUsage(hex('030107')), /unused-bits/);
    assertDerError(() => readKeyUsage(hex('03020881')), /unused-bits/);
    assertDerError(() => readKeyUsage(hex('03020181')), /not zero/);
    assertDerError(() => readKeyUsage(hex('0302078001')), /trailing|runs past/);
    assertDerError(() => readKeyUsage(hex('030500ffffffff')), /longer/);
    assertDerError(() => readKeyUsage(hex('04020780')), /keyUsage/);
  });

  test('basicConstraints: defaults, pathLen, strict BOOLEAN, no negatives, no trailing', () => {
    assert.deepEqual(readBasicConstraints(hex('3000')), { isCa: false, pathLength: undefined });
    assert.deepEqual(readBasicConstraints(hex('30030101ff')), { isCa: true, pathLength: undefined });
    assert.deepEqual(readBasicConstraints(hex('3003010100')), { isCa: false, pathLength: undefined });
    assert.deepEqual(readBasicConstraints(hex('30060101ff020100')), { isCa: true, pathLength: 0 });
    assertDerError(() => readBasicConstraints(hex('3003010101')), /BOOLEAN/);
    assertDerError(() => readBasicConstraints(hex('30040102ffff')), /BOOLEAN/);
    assertDerError(() => readBasicConstraints(hex('30060101ff0201ff')), /negative/);
    assertDerError(() => readBasicConstraints(hex('30050101ff0500')), /trailing/);
    assertDerError(() => readBasicConstraints(hex('30060201000101ff')), /trailing/); // wrong order
  });

  test('extKeyUsage and OIDs: big arcs, truncation, non-minimal arcs, empty', () => {
    assert.deepEqual(readExtKeyUsage(seq(oid('1.3.6.1.5.5.7.3.1'))), ['1.3.6.1.5.5.7.3.1']);
    assert.equal(readOid(oid('2.999.18446744073709551616'), readTlv(oid('2.999.18446744073709551616'), 0, oid('2.999.18446744073709551616').length)), '2.999.18446744073709551616');
    assertDerError(() => readExtKeyUsage(seq()), /empty/);
    assertDerError(() => readExtKeyUsage(seq(tlv(0x06, hex('2b0681')))), /truncated/);
    assertDerError(() => readExtKeyUsage(seq(tlv(0x06, hex('2b800601')))), /non-minimal/);
    assertDerError(() => readExtKeyUsage(seq(tlv(0x06, Buffer.alloc(0)))), /empty/);
    assertDerError(() => readExtKeyUsage(seq(tlv(0x04, hex('2b06')))), /KeyPurposeId/);
  });
});

describe('validity times', () => {
  const t = (b: Buffer) => readTime(b, readTlv(b, 0, b.length), 'time');
  test('UTCTime years 50–99 are 19xx, 00–49 are 20xx; GeneralizedTime as written', () => {
    assert.equal(t(utc('491231235959Z')), Date.UTC(2049, 11, 31, 23, 59, 59));
    assert.equal(t(utc('500101000000Z')), Date.UTC(1950, 0, 1));
    assert.equal(t(gen('99991231235959Z')), Date.UTC(9999, 11, 31, 23, 59, 59));
    assert.equal(t(utc('240229120000Z')), Date.UTC(2024, 1, 29, 12));
  });
  test('impossible dates, fractions, offsets, missing Z, wrong tags → DerError', () => {
    for (const bad of ['230229000000Z', '251301000000Z', '250100000000Z', '250101240000Z', '250101006000Z', '250101000060Z', '2501010000Z', '250101000000', '250101000000+0100', '25010100000aZ']) {
      assertDerError(() => t(utc(bad)), /UTCTime|invalid date/);
    }
    assertDerError(() => t(gen('20250101000000.5Z')), /GeneralizedTime/);
    assertDerError(() => t(tlv(0x0c, Buffer.from('250101000000Z'))), /UTCTime or GeneralizedTime/);
  });
});

describe('agrees with the certificates the dev CA issues', () => {
  let ders: Buffer[];
  before(async () => {
    const ca = await createDevCa({ intermediates: 2 });
    const s = await ca.issue({ spiffeId: SPIFFE, dnsNames: ['x.example'] });
    ders = [...pemToCertDers(s.certChainPem), ...pemToCertDers(s.bundlePem)];
  });
  test('leaf, intermediates and root', () => {
    const [leaf, i1, i2, root] = ders.map((d) => parseCertificateDer(d));
    assert.deepEqual(leaf!.uris, [SPIFFE]);
    assert.deepEqual(leaf!.dnsNames, ['x.example']);
    assert.equal(leaf!.isCa, false);
    assert.equal(leaf!.keyUsage, 1);
    for (const c of [i1!, i2!, root!]) {
      assert.equal(c.isCa, true);
      assert.equal(c.keyUsage, 32 | 64);
      assert.deepEqual(c.uris, ['spiffe://cluster.local']);
    }
    assert.equal(leaf!.issuer, i1!.subject);
    assert.equal(i2!.issuer, root!.subject);
  });
});
