// The project's own Linkerd .proto files (src/proto/linkerd) as protobufjs reads them, and our
// decoded TS shape of a message (camelCase, tagged-union oneofs, Maps, bigint fixed64) turned into
// the "plain" form test/helpers/py/linkerd_wire.py prints: the fields present by .proto name,
// 64-bit integers as strings, bytes in base64, maps as objects.
import protobuf from 'protobufjs';
import { loadOwn, allTypes } from './xds-protos.js';

export const LINKERD_FILES = ['net', 'meta', 'http_types', 'http_route', 'grpc_route', 'destination', 'outbound', 'inbound'].map((f) => `linkerd/${f}.proto`);

export function loadLinkerd(): protobuf.Root {
  return loadOwn(LINKERD_FILES);
}

/** Every message our Linkerd files declare (not google.protobuf's). */
export function linkerdTypes(root: protobuf.Root): protobuf.Type[] {
  return allTypes(root).filter((t) => t.fullName.startsWith('.io.linkerd.'));
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const LONGS = new Set(['int64', 'uint64', 'fixed64', 'sint64', 'sfixed64']);

/** The value of field `f` in decoded message `m`, undefined when absent (a oneof member not chosen). */
function fieldValue(f: protobuf.Field, m: Record<string, unknown>): unknown {
  if (!f.partOf) return m[camel(f.name)];
  const o = m[camel(f.partOf.name)] as Record<string, unknown> | undefined;
  return o?.kind === camel(f.name) ? o[camel(f.name)] : undefined;
}

function one(f: protobuf.Field, v: unknown): unknown {
  if (f.resolvedType instanceof protobuf.Type) return toPlain(f.resolvedType, v as Record<string, unknown>);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (LONGS.has(f.type)) return String(v);
  return v;
}

export function toPlain(t: protobuf.Type, m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    const v = fieldValue(f, m);
    if (v === undefined) continue;
    if (f.map) {
      const map = v as Map<string, unknown>;
      if (map.size > 0) out[f.name] = Object.fromEntries([...map].map(([k, x]) => [k, one(f, x)]));
    } else if (f.repeated) {
      const list = v as unknown[];
      if (list.length > 0) out[f.name] = list.map((x) => one(f, x));
    } else if (f.partOf || f.resolvedType instanceof protobuf.Type) {
      out[f.name] = one(f, v);
    } else if (!(v === '' || v === 0 || v === 0n || v === false || (v instanceof Uint8Array && v.length === 0))) {
      out[f.name] = one(f, v);
    }
  }
  return out;
}

/** How many variants choose every member of every oneof of `t` at least once. */
export function oneofWidth(t: protobuf.Type): number {
  return Math.max(1, ...t.oneofsArray.map((o) => o.fieldsArray.length));
}
