// Field numbers and wire types of src/proto/linkerd/identity.proto, proven against Python protobuf
// (Debian's, fed the same .proto by grpc_tools.protoc): encoded by our codec and decoded there, and
// the reverse, and the method path against the generated Python stub. A wrong number or wire type
// makes a field vanish or an error on one side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as id from '../../src/proto/linkerd/identity.js';
import { compiledProtos, runPython } from '../helpers/py/stack.js';

const b = (s: string) => Buffer.from(s);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const NAME = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';

const CASES = [
  {
    type: 'CertifyRequest',
    value: { identity: NAME, token: b('eyJhbGciOi.payload.sig'), certificateSigningRequest: b('\x30\x82DER csr') },
    json: { identity: NAME, token: b64('eyJhbGciOi.payload.sig'), certificateSigningRequest: b64('\x30\x82DER csr') },
    encode: id.encodeCertifyRequest as (m: never) => Uint8Array,
    decode: id.decodeCertifyRequest as (buf: Uint8Array) => unknown,
  },
  {
    type: 'CertifyResponse',
    value: { leafCertificate: b('leaf-der'), intermediateCertificates: [b('issuer-der'), b('second')], validUntil: { seconds: 1_796_169_600, nanos: 123_000_000 } },
    json: { leafCertificate: b64('leaf-der'), intermediateCertificates: [b64('issuer-der'), b64('second')], validUntil: '2026-12-02T00:00:00.123Z' },
    encode: id.encodeCertifyResponse as (m: never) => Uint8Array,
    decode: id.decodeCertifyResponse as (buf: Uint8Array) => unknown,
  },
];

function normal(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(normal);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]));
  return v;
}

async function python(requests: object[]): Promise<Array<{ b64?: string; json?: unknown; error?: string }>> {
  const out = await runPython('proto_roundtrip.py', requests.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

test('Linkerd identity: ours → Python protobuf, every field arrives with its value', async () => {
  const answers = await python(CASES.map((c) => ({ op: 'decode', type: c.type, b64: Buffer.from(c.encode(c.value as never)).toString('base64') })));
  CASES.forEach((c, i) => {
    assert.equal(answers[i]!.error, undefined, `${c.type}: ${answers[i]!.error}`);
    assert.deepEqual(answers[i]!.json, c.json, c.type);
  });
});

test('Linkerd identity: Python protobuf → ours, every field decodes to the value it was given', async () => {
  const answers = await python(CASES.map((c) => ({ op: 'encode', type: c.type, json: c.json })));
  CASES.forEach((c, i) => {
    assert.equal(answers[i]!.error, undefined, `${c.type}: ${answers[i]!.error}`);
    assert.deepEqual(normal(c.decode(Buffer.from(answers[i]!.b64!, 'base64'))), normal(c.value), c.type);
    // Canonical encoding (no maps): the same bytes from both stacks.
    assert.equal(Buffer.from(c.encode(c.value as never)).toString('base64'), answers[i]!.b64, `${c.type} bytes`);
  });
});

test('Linkerd identity: the Certify path is the one Python’s generated stub calls', () => {
  assert.equal(id.Identity.Certify.path, '/io.linkerd.proxy.identity.Identity/Certify');
  const stubs = readFileSync(`${compiledProtos()}/linkerd/identity_pb2_grpc.py`, 'utf8');
  assert.ok(stubs.includes(`'${id.Identity.Certify.path}'`), stubs);
});
