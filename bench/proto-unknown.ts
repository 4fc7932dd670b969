/**
 * What recording undeclared fields costs the generated decoders (scripts/gen-proto.mjs, wire.ts
 * skipUnknown): a ClusterLoadAssignment of 10,000 endpoints decoded by today's codecs and by the
 * previous generator's output (the same files with `default: r.skip(wire)`, made in a temp folder
 * in this run), alternating round by round; the best round of each and their ratio (the least
 * disturbed by other load), and the ratio of medians. Two payloads: declared fields
 * only (the common case: nothing is recorded), and every LbEndpoint carrying an undeclared
 * `endpoint_name = 5` (10,000 recordings). Both sides are copies of src/proto in temp folders.
 *
 *   node --import tsx bench/proto-unknown.ts [--quick] [--swap]   (--swap: load the new copy first; the
 *   first-loaded copy runs faster here, so compare both orders)
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeClusterLoadAssignment, encodeLbEndpoint } from '../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { encodeLocality } from '../src/proto/envoy/config/core/v3/base.js';
import { WireType, Writer, unknownFields } from '../src/proto/wire.js';

const QUICK = process.argv.includes('--quick');
const ENDPOINTS = 10_000;
const ROUNDS = QUICK ? 7 : 41;
const PER_ROUND = QUICK ? 3 : 5;

function lbEndpoint(i: number): Uint8Array {
  return encodeLbEndpoint({
    endpoint: { address: { socketAddress: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, portValue: 8080 } } },
    healthStatus: 1,
    loadBalancingWeight: 1,
  });
}

/** A CLA of ENDPOINTS endpoints in 10 localities; `extra` appends an undeclared field to each endpoint. */
function cla(extra: boolean): Uint8Array {
  const w = new Writer();
  w.tag(1, WireType.LengthDelimited).string('outbound|8080||payments.default.svc.cluster.local');
  const per = ENDPOINTS / 10;
  for (let l = 0; l < 10; l++) {
    const lw = new Writer();
    lw.tag(1, WireType.LengthDelimited).bytes(encodeLocality({ region: 'r', zone: `z${l}` }));
    for (let j = 0; j < per; j++) {
      const e = lbEndpoint(l * per + j);
      const x = extra ? new Writer().tag(5, WireType.LengthDelimited).string(`payments-${l}-${j}`).finish() : new Uint8Array(0);
      lw.tag(2, WireType.LengthDelimited).bytes(Buffer.concat([e, x]));
    }
    lw.tag(3, WireType.LengthDelimited).bytes(new Writer().tag(1, WireType.Varint).varint(per).finish());
    w.tag(2, WireType.LengthDelimited).bytes(lw.finish());
  }
  return w.finish();
}

/**
 * A copy of today's codecs in a temp folder, loaded the same way for both sides (so neither is
 * favoured by where it was loaded from or what warmed it); `old` undoes the recording default
 * branch, which is the previous generator's output.
 */
async function copiedDecoder(old: boolean): Promise<{ decode: typeof decodeClusterLoadAssignment; cleanup: () => void }> {
  const src = fileURLToPath(new URL('../src/proto', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-proto-old-'));
  cpSync(src, dir, { recursive: true });
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  let changed = 0;
  for (const f of old ? walk(dir) : []) {
    const t = readFileSync(f, 'utf8');
    const u = t.replaceAll('default: skipUnknown(r, m, field, wire);', 'default: r.skip(wire);');
    if (u !== t) (writeFileSync(f, u), changed++);
  }
  if (old && changed === 0) throw new Error('no generated decoder has the recording default branch: this bench is out of date');
  const mod = (await import(pathToFileURL(join(dir, 'envoy/config/endpoint/v3/endpoint.ts')).href)) as { decodeClusterLoadAssignment: typeof decodeClusterLoadAssignment };
  return { decode: mod.decodeClusterLoadAssignment, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** The fastest round: the least disturbed by other load on a shared machine. */
const best = (xs: number[]) => Math.min(...xs);

function time(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PER_ROUND; i++) decode(bytes);
  return Number(process.hrtime.bigint() - t0) / 1e6 / PER_ROUND;
}

export async function benchProtoUnknown(): Promise<Record<string, { newMs: number; oldMs: number; ratio: number; medianRatio: number }>> {
  const swap = process.argv.includes('--swap');
  const first = await copiedDecoder(!swap);
  const second = await copiedDecoder(swap);
  const [old, cur] = swap ? [second, first] : [first, second];
  try {
    const out: Record<string, { newMs: number; oldMs: number; ratio: number; medianRatio: number }> = {};
    for (const [label, extra] of [['declared only', false], ['undeclared endpoint_name on every endpoint', true]] as const) {
      const bytes = cla(extra);
      const decoded = decodeClusterLoadAssignment(bytes);
      const lb = decoded.endpoints[0]!.lbEndpoints[0]!;
      if (decoded.endpoints.reduce((s, l) => s + l.lbEndpoints.length, 0) !== ENDPOINTS) throw new Error('wrong endpoint count');
      if (extra !== (unknownFields(lb)?.[0] === 5)) throw new Error('unknown fields not recorded as expected');
      if (extra !== (unknownFields(cur.decode(bytes).endpoints[0]!.lbEndpoints[0]!)?.[0] === 5) || unknownFields(old.decode(bytes).endpoints[0]!.lbEndpoints[0]!) !== undefined) throw new Error('the copies are not what they should be');
      for (let i = 0; i < 3; i++) (time(cur.decode, bytes), time(old.decode, bytes));
      const a: number[] = [];
      const b: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        if (r % 2 === 0) (a.push(time(cur.decode, bytes)), b.push(time(old.decode, bytes)));
        else (b.push(time(old.decode, bytes)), a.push(time(cur.decode, bytes)));
      }
      const r2 = (x: number) => +x.toFixed(2);
      out[`${label} (${(bytes.length / 1024).toFixed(0)} KiB)`] = {
        newMs: r2(best(a)),
        oldMs: r2(best(b)),
        ratio: +(best(a) / best(b)).toFixed(3),
        medianRatio: +(median(a) / median(b)).toFixed(3),
      };
    }
    return out;
  } finally {
    old.cleanup();
    cur.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchProtoUnknown();
  for (const [k, v] of Object.entries(r)) console.log(`CLA of ${ENDPOINTS} endpoints, ${k}: best round new ${v.newMs} ms, old ${v.oldMs} ms, ratio ${v.ratio} (of medians ${v.medianRatio})`);
}
