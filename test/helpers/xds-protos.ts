// The two descriptions of xDS a test compares: the REAL Envoy/xDS/googleapis .proto files that
// @grpc/grpc-js-xds ships in its deps/ folder (a devDependency; loaded here, at test time, by
// protobufjs, which ignores the protoc-gen-validate options those files carry and protoc cannot
// compile), and the project's own minimal .proto files in src/proto with the codecs generated
// from them. Also a generator of fully populated messages, in both shapes at once.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OWN_DIR = join(ROOT, 'src/proto');
export const REAL_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** The real files whose imports cover every message our xDS files declare. */
const REAL_ENTRIES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];

/** The real protos, as grpc-js-xds itself loads them (protobufjs's bundled google/protobuf types). */
export function loadReal(): protobuf.Root {
  const dirs = [...['envoy-api', 'googleapis', 'protoc-gen-validate', 'xds'].map((d) => join(REAL_DEPS, d)), dirname(require.resolve('protobufjs/package.json'))];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => dirs.map((d) => join(d, target)).find((p) => existsSync(p)) ?? target;
  root.loadSync(REAL_ENTRIES, { keepCase: true });
  root.resolveAll();
  return root;
}

/** Our xDS files (the Workload API, Istio CA and Linkerd files are proven against Python in conformance tests). */
export function ownXdsFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) return walk(p);
      return n.endsWith('.proto') ? [relative(OWN_DIR, p)] : [];
    });
  return walk(OWN_DIR).filter((f) => f !== 'workload.proto' && !f.startsWith('istio/') && !f.startsWith('linkerd/')).sort();
}

/** Our files, with our own google/protobuf/*.proto (protobufjs would substitute its bundled ones). */
export function loadOwn(files: string[]): protobuf.Root {
  const common = protobuf.common as unknown as Record<string, unknown>;
  const saved = Object.entries(common).filter(([k]) => k.startsWith('google/protobuf/'));
  for (const [k] of saved) delete common[k];
  try {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(OWN_DIR, target);
    root.loadSync(files, { keepCase: true });
    root.resolveAll();
    return root;
  } finally {
    for (const [k, v] of saved) common[k] = v;
  }
}

export function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.flatMap((o) => [...(o instanceof protobuf.Type ? [o] : []), ...(o instanceof protobuf.Namespace || o instanceof protobuf.Type ? allTypes(o) : [])]);
}

export function allEnums(ns: protobuf.NamespaceBase): protobuf.Enum[] {
  return ns.nestedArray.flatMap((o) => [...(o instanceof protobuf.Enum ? [o] : []), ...(o instanceof protobuf.Namespace || o instanceof protobuf.Type ? allEnums(o) : [])]);
}

/** The generator's TS name: nested names joined by `_` (Cluster_EdsClusterConfig). */
export function tsName(t: protobuf.ReflectionObject): string {
  const parts = [t.name];
  for (let p = t.parent; p instanceof protobuf.Type; p = p.parent) parts.unshift(p.name);
  return parts.join('_');
}

export interface OwnCodec {
  encode(m: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

/**
 * The URL of the generated codec of `proto` (a path under src/proto), resolved from where this
 * module runs: the source under tsx, the transpiled tree under the test runner (import.meta.url
 * names the source there; import.meta.resolve follows the module's own location).
 */
export function ownCodecModule(proto: string): string {
  return import.meta.resolve(`../../src/proto/${proto.replace(/\.proto$/, '.js')}`);
}

/** Our generated encoder and decoder of each of our messages, by full name (no leading dot). */
export async function ownCodecs(types: protobuf.Type[]): Promise<Map<string, OwnCodec>> {
  const out = new Map<string, OwnCodec>();
  for (const t of types) {
    const mod = (await import(ownCodecModule(relative(OWN_DIR, t.filename!)))) as Record<string, unknown>;
    const encode = mod[`encode${tsName(t)}`];
    const decode = mod[`decode${tsName(t)}`];
    if (typeof encode !== 'function' || typeof decode !== 'function') throw new Error(`${t.fullName}: no generated codec`);
    out.set(t.fullName.slice(1), { encode: encode as OwnCodec['encode'], decode: decode as OwnCodec['decode'] });
  }
  return out;
}

const WRAPPERS = new Set(['.google.protobuf.UInt32Value', '.google.protobuf.BoolValue']);
const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** A field's name in the real protos: ours, except protobufjs's bundled google.protobuf.Value, which is camelCase. */
export type RealName = (f: protobuf.Field) => string;

export function realNames(real: protobuf.Root): RealName {
  return (f) => {
    const r = real.lookupType(f.parent!.fullName);
    return r.fields[f.name] ? f.name : camel(f.name);
  };
}

/** A message in both shapes: `ours` for our encoder (camelCase, Maps, wrappers as scalars), `plain` as protobufjs's toObject prints it. */
export interface Sample {
  ours: Record<string, unknown>;
  plain: Record<string, unknown>;
}

/**
 * A fully populated message of our type `t`: every declared field set to a distinct non-zero value
 * (multi-byte varints, a negative int32, a 2^40 int64, UTF-8 beyond ASCII, two elements per list
 * and map). Oneofs take their `variant`-th member (modulo), so variants 0..oneofWidth(t)-1 cover
 * every member. Nested messages below `depth` 3 are filled too; deeper ones are empty.
 */
export function sample(t: protobuf.Type, name: RealName, variant = 0, depth = 0, counter = { n: 0 }): Sample {
  const ours: Record<string, unknown> = {};
  const plain: Record<string, unknown> = {};
  if (depth > 3) return { ours, plain };
  const chosen = new Set(t.oneofsArray.map((o) => o.fieldsArray[variant % o.fieldsArray.length]!));
  for (const f of t.fieldsArray) {
    if (f.partOf && !chosen.has(f)) continue;
    const one = () => value(f, name, depth, counter);
    if (f.map) {
      const entries = [0, 1].map(() => [`key-${++counter.n}`, one()] as const);
      ours[camel(f.name)] = new Map(entries.map(([k, v]) => [k, v.ours]));
      plain[name(f)] = Object.fromEntries(entries.map(([k, v]) => [k, v.plain]));
    } else if (f.repeated) {
      const items = [one(), one()];
      ours[camel(f.name)] = items.map((v) => v.ours);
      plain[name(f)] = items.map((v) => v.plain);
    } else {
      const v = one();
      ours[camel(f.name)] = v.ours;
      plain[name(f)] = v.plain;
    }
  }
  return { ours, plain };
}

function value(f: protobuf.Field, name: RealName, depth: number, counter: { n: number }): { ours: unknown; plain: unknown } {
  const n = ++counter.n;
  const r = f.resolvedType;
  if (r instanceof protobuf.Enum) {
    const values = Object.values(r.values);
    // Outside a oneof a zero is not on the wire; pick a non-zero value when there is one.
    const v = values.length > 1 ? values[1 + (n % (values.length - 1))]! : values[0]!;
    return { ours: v, plain: v };
  }
  if (r instanceof protobuf.Type && WRAPPERS.has(r.fullName)) {
    const inner = r.fields.value!.type === 'bool' ? true : 300 + n;
    return { ours: inner, plain: { value: inner } };
  }
  if (r instanceof protobuf.Type) {
    const s = sample(r, name, n, depth + 1, counter);
    return { ours: s.ours, plain: s.plain };
  }
  switch (f.type) {
    case 'string':
      return scalar(`s${n}-é✓`);
    case 'bytes': {
      const b = Uint8Array.from([n % 256, 0, 255, 128]);
      return { ours: b, plain: b64(b) };
    }
    case 'bool':
      return scalar(true);
    case 'int32':
      return scalar(-(1000 + n));
    case 'uint32':
      return scalar(300 + n);
    case 'int64':
    case 'uint64':
      return scalar(2 ** 40 + n);
    case 'double':
      return scalar(n + 0.25);
    default:
      throw new Error(`${f.fullName}: no sample for type ${f.type}`);
  }
}

const scalar = (v: unknown) => ({ ours: v, plain: v });

/** How many variants cover every oneof member of `t`. */
export function oneofWidth(t: protobuf.Type): number {
  return Math.max(1, ...t.oneofsArray.map((o) => o.fieldsArray.length));
}

/**
 * Our decoded value in protobufjs's toObject shape, read by our own field names (camelCase keys of
 * the generated interfaces): zero scalars, empty lists and maps are absent, as toObject leaves them.
 */
export function ownToPlain(t: protobuf.Type, m: Record<string, unknown>, name: RealName): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    const v = m[camel(f.name)];
    if (v === undefined) continue;
    const one = (x: unknown): unknown => {
      const r = f.resolvedType;
      if (r instanceof protobuf.Type && WRAPPERS.has(r.fullName)) return x === 0 || x === false ? {} : { value: x };
      if (r instanceof protobuf.Type) return ownToPlain(r, x as Record<string, unknown>, name);
      if (x instanceof Uint8Array) return b64(x);
      return x;
    };
    if (f.map) {
      const map = v as Map<string, unknown>;
      if (map.size > 0) out[name(f)] = Object.fromEntries([...map].map(([k, x]) => [k, one(x)]));
    } else if (f.repeated) {
      const list = v as unknown[];
      if (list.length > 0) out[name(f)] = list.map(one);
    } else if (f.partOf || f.resolvedType instanceof protobuf.Type) {
      out[name(f)] = one(v);
    } else if (!(v === '' || v === 0 || v === false || (v instanceof Uint8Array && v.length === 0))) {
      out[name(f)] = one(v);
    }
  }
  return out;
}

export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: String, defaults: false };
