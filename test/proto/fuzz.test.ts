// The generated decoders against a hostile peer's bytes: every prefix of real messages, random
// mutations, random bytes, deep nesting and over-long varints. Each decode returns a value or throws
// ProtoError — never another error type, never a hang, never a stack overflow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import * as st from '../../src/proto/google/protobuf/struct.js';
import * as ca from '../../src/proto/istio/ca.js';
import { MAX_DEPTH, ProtoError } from '../../src/proto/wire.js';
import * as wl from '../../src/proto/workload.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { pemDers } from '../helpers/certs.js';

type Decode = (b: Uint8Array) => unknown;
const DECODERS: Array<[string, Decode]> = [wl, ca, st].flatMap((mod) =>
  Object.entries(mod).filter(([k, v]) => /^decode[A-Z]/.test(k) && !k.endsWith('From') && typeof v === 'function') as Array<[string, Decode]>,
);

/** Decodes with every decoder; returns the names that threw something else than ProtoError. */
function strays(buf: Uint8Array): string[] {
  const out: string[] = [];
  for (const [name, decode] of DECODERS) {
    try {
      decode(buf);
    } catch (e) {
      if (!(e instanceof ProtoError)) out.push(`${name}: ${(e as Error)?.constructor?.name} ${(e as Error)?.message}`);
    }
  }
  return out;
}

let seed = 11;
const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
const varint = (n: number) => {
  const o: number[] = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) o.push((n % 128) | 0x80);
  o.push(n);
  return Buffer.from(o);
};
const field = (tag: number, body: Uint8Array) => Buffer.concat([varint(tag), varint(body.length), body]);

async function realMessages(): Promise<Array<[string, Uint8Array, Decode]>> {
  const dev = await createDevCa({ trustDomain: 'example.org', intermediates: 1 });
  const svid = await dev.issue({ spiffeId: 'spiffe://example.org/ns/default/sa/orders' });
  const key = createPrivateKey(svid.keyPem).export({ type: 'pkcs8', format: 'der' });
  const claims: st.Struct = {
    fields: new Map<string, st.Value>([
      ['sub', { stringValue: svid.spiffeId }],
      ['exp', { numberValue: 1767225600.5 }],
      ['aud', { listValue: { values: [{ stringValue: 'a' }, { boolValue: true }, { nullValue: 0 }] } }],
      ['nested', { structValue: { fields: new Map([['k', { listValue: { values: [{ structValue: { fields: new Map() } }] } }]]) } }],
    ]),
  };
  return [
    ['X509SVIDResponse', wl.encodeX509SVIDResponse({
      svids: [{ spiffeId: svid.spiffeId, x509Svid: Buffer.concat(pemDers(svid.certChainPem)), x509SvidKey: key, bundle: Buffer.concat(pemDers(svid.bundlePem)), hint: 'internal' }],
      crl: [Buffer.from('crl')],
      federatedBundles: new Map([['spiffe://partner.org', Buffer.concat(pemDers(dev.bundlePem))]]),
    }), wl.decodeX509SVIDResponse],
    ['JWTSVIDResponse', wl.encodeJWTSVIDResponse({ svids: [{ spiffeId: svid.spiffeId, svid: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln', hint: 'h' }] }), wl.decodeJWTSVIDResponse],
    ['JWTBundlesResponse', wl.encodeJWTBundlesResponse({ bundles: new Map([['spiffe://example.org', Buffer.from('{"keys":[]}')]]) }), wl.decodeJWTBundlesResponse],
    ['ValidateJWTSVIDResponse', wl.encodeValidateJWTSVIDResponse({ spiffeId: svid.spiffeId, claims }), wl.decodeValidateJWTSVIDResponse],
    ['IstioCertificateRequest', ca.encodeIstioCertificateRequest({ csr: 'csr', validityDuration: 86400, metadata: claims }), ca.decodeIstioCertificateRequest],
    ['IstioCertificateResponse', ca.encodeIstioCertificateResponse({ certChain: [svid.certChainPem, svid.bundlePem] }), ca.decodeIstioCertificateResponse],
  ];
}

test('every prefix of real messages: a value or ProtoError from every decoder; cut inside the last field, its own decoder throws', async () => {
  for (const [name, bytes, decode] of await realMessages()) {
    assert.doesNotThrow(() => decode(bytes), name);
    for (let i = 0; i < bytes.length; i++) {
      const cut = bytes.subarray(0, i);
      assert.deepEqual(strays(cut), [], `${name} cut at ${i}`);
    }
    // One byte short always cuts the last field: it must be refused, not read as a shorter message.
    assert.throws(() => decode(bytes.subarray(0, bytes.length - 1)), ProtoError, name);
  }
});

test('random mutations of real messages and random bytes: only ProtoError', async () => {
  const found: string[] = [];
  for (const [name, bytes] of await realMessages()) {
    for (let k = 0; k < 400; k++) {
      const b = Buffer.from(bytes);
      for (let f = 1 + rnd(4); f > 0; f--) b[rnd(b.length)] = rnd(256);
      found.push(...strays(b).map((s) => `${name} mutated: ${s}`));
    }
  }
  for (let k = 0; k < 3000; k++) {
    const b = Buffer.alloc(rnd(48));
    for (let i = 0; i < b.length; i++) b[i] = rnd(256);
    found.push(...strays(b));
  }
  assert.deepEqual(found, []);
});

test('hostile shapes: nesting far past the limit, over-long and 10-byte varints, lengths past the end, group and reserved wire types', () => {
  // ListValue { values: Value { list_value: ListValue { … } } }, 5 000 deep: refused at MAX_DEPTH, no stack overflow.
  let deep: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 5_000; i++) deep = field(i % 2 ? 0x0a : 0x32, deep);
  assert.throws(() => st.decodeListValue(deep), (e: unknown) => e instanceof ProtoError && new RegExp(`deeper than ${MAX_DEPTH}`).test(e.message));
  assert.deepEqual(strays(deep), []);
  const shapes = [
    Buffer.from([0x0a, ...Array(11).fill(0xff), 0x01]), // an 11-byte length varint
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // length 2^64 − 1
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), // length 2^32 − 1, one byte there
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // a tag of 2^64 − 1: negative field number
    Buffer.from([0x0b, 0x0c]), // group start and end
    Buffer.from([0x0e]), // wire type 6
    Buffer.from([0x0f]), // wire type 7
    Buffer.from([0x00, 0x00]), // field number 0
    Buffer.from([0x09, 1, 2, 3]), // fixed64 cut short
    Buffer.from([0x0d, 1, 2]), // fixed32 cut short
  ];
  for (const s of shapes) assert.deepEqual(strays(s), [], s.toString('hex'));
  // A map entry whose value is cut mid-way, inside a message that is itself whole.
  assert.throws(() => wl.decodeX509SVIDResponse(field(0x1a, Buffer.concat([field(0x0a, Buffer.from('spiffe://a')), Buffer.from([0x12, 0x05, 0x30])]))), ProtoError);
});
