// Every generated decoder (xDS, the Workload API, the Istio CA, Linkerd, google.protobuf) fed bytes shaped
// like protobuf — random fields of the four wire types, nested messages, varints of every length,
// lengths that lie — and plain random bytes. Oracles: only ProtoError; and a round trip — what
// decodes, re-encoded, decodes to the same value, and encoding that again gives the same bytes
// (our encoding is canonical, so a control plane's message means one thing).
import { deepStrictEqual } from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { ProtoError } from '../../../src/proto/wire.js';
import { type FuzzTarget, onlyThrows } from '../harness.js';

interface Codec {
  readonly typeUrl: string;
  encode(m: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

async function codecs(): Promise<Codec[]> {
  const dir = new URL('../../../src/proto/', import.meta.url).pathname;
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.proto') ? [relative(dir, join(d, n))] : []));
  const out: Codec[] = [];
  for (const f of walk(dir).sort()) {
    const mod = (await import(import.meta.resolve(`../../../src/proto/${f.replace(/\.proto$/, '.js')}`))) as Record<string, unknown>;
    for (const [k, v] of Object.entries(mod)) if (k.endsWith('Codec') && typeof (v as Codec).decode === 'function') out.push(v as Codec);
  }
  return out;
}

const varint = (n: bigint): number[] => {
  const o: number[] = [];
  for (; n > 0x7fn; n >>= 7n) o.push(Number(n & 0x7fn) | 0x80);
  o.push(Number(n));
  return o;
};

/** Protobuf-shaped bytes: fields 1…20 (and a few far ones), every wire type, nested messages. */
const FIELDS: fc.Arbitrary<number[]> = fc.letrec((tie) => ({
  fields: fc.array(tie('field'), { maxLength: 6 }).map((fs) => (fs as number[][]).flat()),
  field: fc.oneof(
    { depthSize: 'small' },
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([f, v]) => [...varint(BigInt(f << 3)), ...varint(v)]),
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.uint8Array({ minLength: 8, maxLength: 8 })).map(([f, b]) => [...varint(BigInt((f << 3) | 1)), ...b]),
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([f, b]) => [...varint(BigInt((f << 3) | 5)), ...b]),
    fc.tuple(fc.integer({ min: 1, max: 20 }), fc.oneof(fc.uint8Array({ maxLength: 12 }).map((b) => [...b]), fc.stringMatching(/^[a-z.:/]{0,12}$/).map((s) => [...Buffer.from(s)]), tie('fields') as fc.Arbitrary<number[]>)).map(([f, body]) => [...varint(BigInt((f << 3) | 2)), ...varint(BigInt(body.length)), ...body]),
    fc.tuple(fc.constantFrom(0, 1000, 536870911), fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 6 })).map(([f, wt, b]) => [...varint(BigInt((f << 3) | wt)), ...b]),
  ),
})).fields as fc.Arbitrary<number[]>;

/** Bytes as plain Uint8Array (a decoder may hand back a Buffer view or a fresh empty Uint8Array: the same bytes). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, plain(x)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

export const protoDecoders: FuzzTarget = {
  name: 'proto-decoders',
  oracle: 'every generated decoder: only ProtoError; decode → encode → decode gives the same value and the same bytes again',
  shortRuns: 150,
  // A varint of 2^53 was read rounded (a number) and then refused by the encoder: now a ProtoError.
  regressions: [[Uint8Array.from([8, 128, 128, 128, 128, 128, 128, 128, 16])]],
  property: async () => {
    const all = await codecs();
    return fc.property(fc.oneof({ weight: 4, arbitrary: FIELDS.map((b) => Uint8Array.from(b)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }) }), (bytes) => {
      for (const c of all) {
        let value: unknown;
        if (onlyThrows([ProtoError], () => (value = c.decode(bytes)))) continue;
        const again = c.encode(value);
        const back = c.decode(again);
        try {
          deepStrictEqual(plain(back), plain(value));
        } catch (e) {
          throw new Error(`${c.typeUrl}: decode → encode → decode changed the value: ${(e as Error).message.slice(0, 400)}`);
        }
        if (Buffer.compare(Buffer.from(c.encode(back)), Buffer.from(again)) !== 0) throw new Error(`${c.typeUrl}: encoding is not canonical`);
      }
      return true;
    });
  },
};
