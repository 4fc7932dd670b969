// A Linkerd control plane's bytes can never crash the process: each of our Linkerd decoders, fed
// prefixes of a fully populated message (built by Python protobuf) and thousands of seeded
// corruptions of it, either decodes or throws ProtoError naming where it broke, never another error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPython } from '../helpers/py/stack.js';
import { loadLinkerd, linkerdTypes } from '../helpers/linkerd-protos.js';
import { ownCodecs } from '../helpers/xds-protos.js';
import { ProtoError } from '../../src/proto/wire.js';
import { decodeUpdate } from '../../src/proto/linkerd/destination.js';
import { decodeServer } from '../../src/proto/linkerd/inbound.js';
import { decodeOutboundPolicy } from '../../src/proto/linkerd/outbound.js';

const root = loadLinkerd();
const TOP = ['io.linkerd.proxy.destination.Update', 'io.linkerd.proxy.outbound.OutboundPolicy', 'io.linkerd.proxy.inbound.Server'];
const codecs = await ownCodecs(linkerdTypes(root).filter((t) => TOP.includes(t.fullName.slice(1))));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function mustBeProtoErrorOrValue(decode: (b: Uint8Array) => unknown, b: Uint8Array, what: string): boolean {
  try {
    decode(b);
    return true;
  } catch (e) {
    assert.ok(e instanceof ProtoError, `${what}: ${(e as Error).name}: ${(e as Error).message}`);
    return false;
  }
}

test('truncations and corruptions of full Update, OutboundPolicy and Server messages only ever throw ProtoError', async () => {
  const out = await runPython('linkerd_wire.py', TOP.flatMap((type) => [0, 1].map((variant) => JSON.stringify({ op: 'sample', type, variant }))).join('\n') + '\n');
  const samples = out.trim().split('\n').map((l) => JSON.parse(l) as { b64: string });
  const next = rng(16);
  let errors = 0;
  let runs = 0;
  samples.forEach((s, i) => {
    const type = TOP[Math.floor(i / 2)]!;
    const decode = codecs.get(type)!.decode;
    const full = Buffer.from(s.b64, 'base64');
    assert.ok(mustBeProtoErrorOrValue(decode, full, type), `${type}: the sample itself decodes`);
    const step = Math.max(1, Math.floor(full.length / 300));
    for (let n = 0; n < full.length; n += step, runs++) if (!mustBeProtoErrorOrValue(decode, full.subarray(0, n), `${type} prefix ${n}`)) errors++;
    for (let k = 0; k < 200; k++, runs++) {
      const b = Buffer.from(full);
      for (let j = 0; j < 1 + Math.floor(next() * 4); j++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      if (!mustBeProtoErrorOrValue(decode, b, `${type} corruption ${k}`)) errors++;
    }
  });
  assert.ok(errors > runs / 10, `corruptions were mostly refused (${errors} of ${runs})`);
});

test('random bytes only ever throw ProtoError', () => {
  const next = rng(7);
  for (const decode of [decodeUpdate, decodeOutboundPolicy, decodeServer]) {
    for (let k = 0; k < 2000; k++) {
      const b = Uint8Array.from({ length: Math.floor(next() * 64) }, () => Math.floor(next() * 256));
      mustBeProtoErrorOrValue(decode, b, 'random');
    }
  }
});

test('a malformed message names the path to the field it broke in', () => {
  // Update.add (1) → WeightedAddrSet.addrs (1) → WeightedAddr.weight (3): a truncated varint.
  const weightedAddr = Uint8Array.from([3 << 3, 0x80]);
  const set = Uint8Array.from([(1 << 3) | 2, weightedAddr.length, ...weightedAddr]);
  const update = Uint8Array.from([(1 << 3) | 2, set.length, ...set]);
  assert.throws(() => decodeUpdate(update), (e: Error) => {
    assert.ok(e instanceof ProtoError);
    assert.match(e.message, /Update field 1 \(add\): .*WeightedAddrSet field 1 \(addrs\): .*WeightedAddr field 3 \(weight\): truncated varint/);
    return true;
  });
  // A declared field with the wrong wire type is named too.
  assert.throws(() => decodeUpdate(Uint8Array.from([(3 << 3) | 0, 1])), /Update field 3 \(no_endpoints\): .*no_endpoints: wire type 0/);
});
