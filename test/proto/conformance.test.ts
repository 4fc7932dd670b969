// Field numbers and wire types of the project's own .proto files, proven against a second,
// independent stack: every message is encoded by our generated codec and decoded by Python
// protobuf (Debian's, fed the same .proto by grpc_tools.protoc), and the reverse. A wrong number,
// a wrong wire type or a packed/unpacked mismatch makes a field vanish or an error on one side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ca from '../../src/proto/istio/ca.js';
import * as wl from '../../src/proto/workload.js';
import { runPython } from '../helpers/py/stack.js';

const b = (s: string) => Buffer.from(s);
const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Case {
  type: string;
  value: object;
  json: object;
  encode: (m: never) => Uint8Array;
  decode: (buf: Uint8Array) => unknown;
}

const claims = {
  fields: new Map<string, object>([
    ['sub', { stringValue: 'spiffe://example.org/payments' }],
    ['exp', { numberValue: 1767225600 }],
    ['admin', { boolValue: true }],
    ['none', { nullValue: 0 }],
    ['aud', { listValue: { values: [{ stringValue: 'a' }, { numberValue: -2.5 }] } }],
    ['nested', { structValue: { fields: new Map([['k', { stringValue: 'v' }]]) } }],
  ]),
};
const claimsJson = { sub: 'spiffe://example.org/payments', exp: 1767225600, admin: true, none: null, aud: ['a', -2.5], nested: { k: 'v' } };

const CASES: Case[] = [
  {
    type: 'X509SVIDResponse',
    value: {
      svids: [
        { spiffeId: 'spiffe://example.org/a', x509Svid: b('chain-a'), x509SvidKey: b('key-a'), bundle: b('bundle'), hint: 'internal' },
        { spiffeId: 'spiffe://example.org/b', x509Svid: b('chain-b'), x509SvidKey: b('key-b'), bundle: b('bundle'), hint: '' },
      ],
      crl: [b('crl1'), b('crl2')],
      federatedBundles: new Map([['spiffe://other.org', b('fed')], ['spiffe://third.org', b('fed3')]]),
    },
    json: {
      svids: [
        { spiffeId: 'spiffe://example.org/a', x509Svid: b64('chain-a'), x509SvidKey: b64('key-a'), bundle: b64('bundle'), hint: 'internal' },
        { spiffeId: 'spiffe://example.org/b', x509Svid: b64('chain-b'), x509SvidKey: b64('key-b'), bundle: b64('bundle') },
      ],
      crl: [b64('crl1'), b64('crl2')],
      federatedBundles: { 'spiffe://other.org': b64('fed'), 'spiffe://third.org': b64('fed3') },
    },
    encode: wl.encodeX509SVIDResponse as never,
    decode: wl.decodeX509SVIDResponse,
  },
  {
    type: 'X509BundlesResponse',
    value: { crl: [b('c')], bundles: new Map([['spiffe://example.org', b('own')]]) },
    json: { crl: [b64('c')], bundles: { 'spiffe://example.org': b64('own') } },
    encode: wl.encodeX509BundlesResponse as never,
    decode: wl.decodeX509BundlesResponse,
  },
  {
    type: 'JWTSVIDRequest',
    value: { audience: ['aud-1', 'aud-2'], spiffeId: 'spiffe://example.org/a' },
    json: { audience: ['aud-1', 'aud-2'], spiffeId: 'spiffe://example.org/a' },
    encode: wl.encodeJWTSVIDRequest as never,
    decode: wl.decodeJWTSVIDRequest,
  },
  {
    type: 'JWTSVIDResponse',
    value: { svids: [{ spiffeId: 'spiffe://example.org/a', svid: 'h.p.s', hint: 'x' }] },
    json: { svids: [{ spiffeId: 'spiffe://example.org/a', svid: 'h.p.s', hint: 'x' }] },
    encode: wl.encodeJWTSVIDResponse as never,
    decode: wl.decodeJWTSVIDResponse,
  },
  {
    type: 'JWTBundlesResponse',
    value: { bundles: new Map([['spiffe://example.org', b('{"keys":[]}')]]) },
    json: { bundles: { 'spiffe://example.org': b64('{"keys":[]}') } },
    encode: wl.encodeJWTBundlesResponse as never,
    decode: wl.decodeJWTBundlesResponse,
  },
  {
    type: 'ValidateJWTSVIDRequest',
    value: { audience: 'aud', svid: 'h.p.s' },
    json: { audience: 'aud', svid: 'h.p.s' },
    encode: wl.encodeValidateJWTSVIDRequest as never,
    decode: wl.decodeValidateJWTSVIDRequest,
  },
  {
    type: 'ValidateJWTSVIDResponse',
    value: { spiffeId: 'spiffe://example.org/a', claims },
    json: { spiffeId: 'spiffe://example.org/a', claims: claimsJson },
    encode: wl.encodeValidateJWTSVIDResponse as never,
    decode: wl.decodeValidateJWTSVIDResponse,
  },
  {
    type: 'IstioCertificateRequest',
    value: {
      csr: '-----BEGIN CERTIFICATE REQUEST-----\n…',
      validityDuration: 2 ** 40,
      metadata: { fields: new Map([['ClusterID', { stringValue: 'Kubernetes' }]]) },
    },
    json: { csr: '-----BEGIN CERTIFICATE REQUEST-----\n…', validityDuration: String(2 ** 40), metadata: { ClusterID: 'Kubernetes' } },
    encode: ca.encodeIstioCertificateRequest as never,
    decode: ca.decodeIstioCertificateRequest,
  },
  {
    type: 'IstioCertificateResponse',
    value: { certChain: ['leaf\n', 'intermediate\n', 'root\n'] },
    json: { certChain: ['leaf\n', 'intermediate\n', 'root\n'] },
    encode: ca.encodeIstioCertificateResponse as never,
    decode: ca.decodeIstioCertificateResponse,
  },
];

/** Buffers as plain bytes, so a decoded Uint8Array equals the Buffer the case was written with. */
function normal(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, normal(x)]));
  if (Array.isArray(v)) return v.map(normal);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]));
  return v;
}

async function python(requests: object[]): Promise<Array<{ b64?: string; json?: unknown; error?: string }>> {
  const out = await runPython('proto_roundtrip.py', requests.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

test('ours → Python protobuf: every field of every message arrives with its value', async () => {
  const answers = await python(CASES.map((c) => ({ op: 'decode', type: c.type, b64: Buffer.from(c.encode(c.value as never)).toString('base64') })));
  CASES.forEach((c, i) => {
    assert.equal(answers[i]!.error, undefined, `${c.type}: ${answers[i]!.error}`);
    assert.deepEqual(answers[i]!.json, c.json, c.type);
  });
});

test('Python protobuf → ours: every field decodes to the value it was given', async () => {
  const answers = await python(CASES.map((c) => ({ op: 'encode', type: c.type, json: c.json })));
  CASES.forEach((c, i) => {
    assert.equal(answers[i]!.error, undefined, `${c.type}: ${answers[i]!.error}`);
    const decoded = c.decode(Buffer.from(answers[i]!.b64!, 'base64'));
    const want = normal(c.value) as Record<string, unknown>;
    const got = normal(decoded) as Record<string, unknown>;
    // Zero values are absent on the wire; ours decodes them as zero, which the case may omit.
    for (const [k, v] of Object.entries(got)) if (!(k in want)) assert.ok(v === '' || v === 0 || (Array.isArray(v) && v.length === 0), `${c.type}.${k}`);
    for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `${c.type}.${k}`);
  });
});

test('the same bytes from both stacks where the encoding is canonical (no maps)', async () => {
  const canonical = CASES.filter((c) => !Object.values(c.value).some((v) => v instanceof Map) && c.type !== 'IstioCertificateRequest' && c.type !== 'ValidateJWTSVIDResponse');
  const answers = await python(canonical.map((c) => ({ op: 'encode', type: c.type, json: c.json })));
  canonical.forEach((c, i) => assert.equal(Buffer.from(c.encode(c.value as never)).toString('base64'), answers[i]!.b64, c.type));
});

test('the gRPC method paths are the ones Python’s generated stubs call', async () => {
  assert.equal(wl.SpiffeWorkloadAPI.FetchX509SVID.path, '/SpiffeWorkloadAPI/FetchX509SVID');
  assert.equal(wl.SpiffeWorkloadAPI.FetchJWTBundles.responseStream, true);
  assert.equal(wl.SpiffeWorkloadAPI.FetchJWTSVID.responseStream, false);
  assert.equal(ca.IstioCertificateService.CreateCertificate.path, '/istio.v1.auth.IstioCertificateService/CreateCertificate');
  const { readFileSync } = await import('node:fs');
  const { compiledProtos } = await import('../helpers/py/stack.js');
  const stubs = readFileSync(`${compiledProtos()}/workload_pb2_grpc.py`, 'utf8') + readFileSync(`${compiledProtos()}/istio/ca_pb2_grpc.py`, 'utf8');
  for (const def of [...Object.values(wl.SpiffeWorkloadAPI), ...Object.values(ca.IstioCertificateService)]) {
    assert.ok(stubs.includes(`'${def.path}'`), `${def.path} is in the Python stubs`);
  }
});
