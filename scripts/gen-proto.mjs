#!/usr/bin/env node
// Compiles the project's own .proto files (src/proto/**/*.proto) to static TypeScript codecs next
// to them (src/proto/**/<name>.ts) over src/proto/wire.ts, and a gRPC service definition per
// service in the shape grpc-js takes (path, streaming flags, serialize/deserialize). A decoded
// message records the numbers of the fields it skipped (not declared here) under UNKNOWN_FIELDS
// (wire.ts), so a translator can refuse what it would otherwise silently not honour. protobufjs is
// used here, at build time only, to parse the .proto text; the generated code depends on nothing.
//
//   node scripts/gen-proto.mjs          regenerate
//   node scripts/gen-proto.mjs --check  exit 1 when a generated file is not what the .proto says
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PROTO_DIR = join(ROOT, 'src/proto');

// Our own google/protobuf/*.proto, not protobufjs's bundled copies.
for (const k of Object.keys(protobuf.common)) if (k.startsWith('google/protobuf/')) delete protobuf.common[k];

function protoFiles(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return protoFiles(p);
    return n.endsWith('.proto') ? [p] : [];
  });
}

const SCALARS = {
  string: { ts: 'string', wire: 'WireType.LengthDelimited', read: 'r.string()', write: (v) => `w.string(${v})`, zero: "''", isZero: (v) => `${v} === ''` },
  bytes: { ts: 'Uint8Array', wire: 'WireType.LengthDelimited', read: 'r.bytes()', write: (v) => `w.bytes(${v})`, zero: 'new Uint8Array(0)', isZero: (v) => `${v}.length === 0` },
  bool: { ts: 'boolean', wire: 'WireType.Varint', read: 'r.bool()', write: (v) => `w.bool(${v})`, zero: 'false', isZero: (v) => `${v} === false` },
  float: { ts: 'number', wire: 'WireType.Fixed32', read: 'r.float()', write: (v) => `w.float(${v})`, zero: '0', isZero: (v) => `${v} === 0 && !Object.is(${v}, -0)` },
  fixed32: { ts: 'number', wire: 'WireType.Fixed32', read: 'r.fixed32()', write: (v) => `w.fixed32(${v})`, zero: '0', isZero: (v) => `${v} === 0` },
  fixed64: { ts: 'bigint', wire: 'WireType.Fixed64', read: 'r.fixed64()', write: (v) => `w.fixed64(${v})`, zero: '0n', isZero: (v) => `${v} === 0n` },
  double: { ts: 'number', wire: 'WireType.Fixed64', read: 'r.double()', write: (v) => `w.double(${v})`, zero: '0', isZero: (v) => `${v} === 0 && !Object.is(${v}, -0)` },
  int32: { ts: 'number', wire: 'WireType.Varint', read: 'r.int32()', write: (v) => `w.varint(${v})`, zero: '0', isZero: (v) => `${v} === 0` },
  uint32: { ts: 'number', wire: 'WireType.Varint', read: 'r.uint32()', write: (v) => `w.varint(${v})`, zero: '0', isZero: (v) => `${v} === 0` },
  int64: { ts: 'number', wire: 'WireType.Varint', read: 'r.varint()', write: (v) => `w.varint(${v})`, zero: '0', isZero: (v) => `${v} === 0` },
  uint64: { ts: 'number', wire: 'WireType.Varint', read: 'r.varint()', write: (v) => `w.varint(${v})`, zero: '0', isZero: (v) => `${v} === 0` },
};
const ENUM = { ts: 'number', wire: 'WireType.Varint', read: 'r.int32()', write: (v) => `w.varint(${v})`, zero: '0', isZero: (v) => `${v} === 0` };

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
/**
 * TS name of a message or enum: its name, prefixed by the messages it is nested in, joined by `_`
 * (Value, X509SVID, Cluster_EdsClusterConfig, Permission_Set), so nested names never collide.
 */
function tsName(type) {
  const parts = [type.name];
  for (let p = type.parent; p instanceof protobuf.Type; p = p.parent) parts.unshift(p.name);
  return parts.join('_');
}

/** google.protobuf wrapper messages: a field of one is an optional scalar in TS (weight?: number). */
const WRAPPERS = {
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.BytesValue': 'bytes',
};

/**
 * How the generated code of one file names the messages it uses: its own by tsName, another file's
 * by tsName too unless that collides (two packages' RBAC), then by an alias qualified with the
 * package (envoy_config_rbac_v3_RBAC). `ref(t)` gives the type name; encode/decode names follow it.
 */
function namer(own, foreignTypes) {
  const taken = new Set(own.map(tsName));
  const alias = new Map();
  for (const t of foreignTypes) {
    let n = tsName(t);
    if (taken.has(n)) n = `${t.fullName.slice(1, -t.name.length - 1).replace(/\./g, '_')}_${n}`;
    taken.add(n);
    alias.set(t, n);
  }
  return (t) => alias.get(t) ?? tsName(t);
}

function kindOf(field) {
  if (field.resolvedType instanceof protobuf.Enum) return { ...ENUM, enum: true };
  const wrapped = field.resolvedType && WRAPPERS[field.resolvedType.fullName];
  if (wrapped) {
    if (field.repeated || field.map) throw new Error(`${field.fullName}: a repeated or map wrapper is not supported by this generator`);
    return { ...SCALARS[wrapped], wrapper: field.resolvedType };
  }
  if (field.resolvedType instanceof protobuf.Type) return { message: field.resolvedType };
  const s = SCALARS[field.type];
  if (!s) throw new Error(`${field.fullName}: type ${field.type} is not supported by this generator`);
  return s;
}

let ref = tsName;
/**
 * Whether the file being generated decodes its oneofs as tagged unions (`{ kind: 'add', add }`
 * under the oneof's name) rather than as flat optional members: the Linkerd files do (their
 * translators switch on the kind); the older files keep flat members, which their code reads.
 */
let tagged = false;
const taggedOneof = (f) => (tagged && f.partOf ? f.partOf : undefined);
function unionTs(oneof) {
  return oneof.fieldsArray.map((f) => `{ kind: '${camel(f.name)}'; ${camel(f.name)}: ${valueTs(kindOf(f))} }`).join(' | ');
}
function emitOneofEncode(oneof) {
  const lines = [`  { const o = m.${camel(oneof.name)}; if (o !== undefined) switch (o.kind) {`];
  for (const f of oneof.fieldsArray) {
    const k = kindOf(f);
    const v = `o.${camel(f.name)}`;
    const write = k.message ? `w.tag(${f.id}, WireType.LengthDelimited).bytes(encode${ref(k.message)}(${v}))` : `{ w.tag(${f.id}, ${k.wire}); ${k.write(v)}; }`;
    lines.push(`    case '${camel(f.name)}': if (${v} !== undefined) ${write}; break;`);
  }
  lines.push('  } }');
  return lines;
}
function valueTs(kind) {
  return kind.message ? ref(kind.message) : kind.ts;
}

function emitInterface(type) {
  const lines = [`/** ${type.fullName.slice(1)} */`, `export interface ${tsName(type)} {`];
  for (const f of type.fieldsArray) {
    const k = kindOf(f);
    const name = camel(f.name);
    const o = taggedOneof(f);
    if (o) {
      if (o.fieldsArray[0] === f) lines.push(`  ${camel(o.name)}?: ${unionTs(o)};`);
      continue;
    }
    if (f.map) lines.push(`  ${name}: Map<${SCALARS[f.keyType].ts}, ${valueTs(k)}>;`);
    else if (f.repeated) lines.push(`  ${name}: ${valueTs(k)}[];`);
    else if (k.message || k.wrapper || f.partOf) lines.push(`  ${name}?: ${valueTs(k)};`);
    else lines.push(`  ${name}: ${k.ts};`);
  }
  lines.push('}');
  return lines.join('\n');
}

function emitEncode(type) {
  const n = tsName(type);
  const body = [];
  for (const f of type.fieldsArray) {
    const k = kindOf(f);
    const name = `m.${camel(f.name)}`;
    const id = f.id;
    const o = taggedOneof(f);
    if (o) {
      if (o.fieldsArray[0] === f) body.push(...emitOneofEncode(o));
      continue;
    }
    if (f.map) {
      const key = SCALARS[f.keyType];
      const val = k.message ? `w2.tag(2, WireType.LengthDelimited).bytes(encode${ref(k.message)}(v))` : `w2.tag(2, ${k.wire}); ${k.write('v').replace(/^w\./, 'w2.')}`;
      body.push(`  if (${name}) for (const [key, v] of ${name}) {`, `    const w2 = new Writer();`, `    w2.tag(1, ${key.wire}); ${key.write('key').replace(/^w\./, 'w2.')};`, `    ${val};`, `    w.tag(${id}, WireType.LengthDelimited).bytes(w2.finish());`, '  }');
    } else if (f.repeated) {
      if (k.message) body.push(`  if (${name}) for (const v of ${name}) w.tag(${id}, WireType.LengthDelimited).bytes(encode${ref(k.message)}(v));`);
      else if (k.wire === 'WireType.LengthDelimited') body.push(`  if (${name}) for (const v of ${name}) { w.tag(${id}, WireType.LengthDelimited); ${k.write('v')}; }`);
      else body.push(`  if (${name} && ${name}.length > 0) {`, `    const p = new Writer();`, `    for (const v of ${name}) ${k.write('v').replace(/^w\./, 'p.')};`, `    w.tag(${id}, WireType.LengthDelimited).bytes(p.finish());`, '  }');
    } else if (k.message) {
      body.push(`  if (${name} !== undefined) w.tag(${id}, WireType.LengthDelimited).bytes(encode${ref(k.message)}(${name}));`);
    } else if (k.wrapper) {
      body.push(`  if (${name} !== undefined) w.tag(${id}, WireType.LengthDelimited).bytes(encode${ref(k.wrapper)}({ value: ${name} }));`);
    } else if (f.partOf) {
      body.push(`  if (${name} !== undefined) { w.tag(${id}, ${k.wire}); ${k.write(name)}; }`);
    } else {
      body.push(`  if (${name} !== undefined && !(${k.isZero(name)})) { w.tag(${id}, ${k.wire}); ${k.write(name)}; }`);
    }
  }
  return [
    `/** Encodes ${type.fullName.slice(1)}; fields left out are their zero value. */`,
    `export function encode${n}(m: DeepPartial<${n}>): Uint8Array {`,
    '  const w = new Writer();',
    ...body,
    '  return w.finish();',
    '}',
  ].join('\n');
}

function emitDecode(type) {
  const n = tsName(type);
  const init = [];
  const cases = [];
  for (const f of type.fieldsArray) {
    const k = kindOf(f);
    const name = camel(f.name);
    const read = k.message ? `decode${ref(k.message)}From(r.sub())` : k.wrapper ? `decode${ref(k.wrapper)}From(r.sub()).value` : k.read;
    const check = (want) => `expectWire('${type.fullName.slice(1)}', '${f.name}', wire, ${want});`;
    const o = taggedOneof(f);
    if (o) {
      cases.push(`      case ${f.id}: ${check(k.message ? 'WireType.LengthDelimited' : k.wire)} m.${camel(o.name)} = { kind: '${name}', ${name}: ${read} }; break;`);
      continue;
    }
    if (f.map) {
      const key = SCALARS[f.keyType];
      const valRead = k.message ? `decode${ref(k.message)}From(e.sub())` : k.read.replace(/^r\./, 'e.');
      init.push(`${name}: new Map()`);
      cases.push(
        `      case ${f.id}: {`,
        `        ${check('WireType.LengthDelimited')}`,
        `        const e = r.sub();`,
        `        let key: ${key.ts} = ${key.zero};`,
        `        let value: ${valueTs(k)} | undefined;`,
        `        while (!e.done) {`,
        `          const [ef, ew] = e.tag();`,
        `          if (ef === 1) { expectWire('${type.fullName.slice(1)}', '${f.name}.key', ew, ${key.wire}); key = ${key.read.replace(/^r\./, 'e.')}; }`,
        `          else if (ef === 2) { expectWire('${type.fullName.slice(1)}', '${f.name}.value', ew, ${k.message ? 'WireType.LengthDelimited' : k.wire}); value = ${valRead}; }`,
        `          else e.skip(ew);`,
        '        }',
        `        m.${name}.set(key, value ?? ${k.message ? `decode${ref(k.message)}From(new Reader(new Uint8Array(0)))` : k.zero});`,
        '        break;',
        '      }',
      );
    } else if (f.repeated) {
      init.push(`${name}: []`);
      if (k.message || k.wire === 'WireType.LengthDelimited') cases.push(`      case ${f.id}: ${check('WireType.LengthDelimited')} m.${name}.push(${read}); break;`);
      else cases.push(`      case ${f.id}: readRepeated(r, wire, ${k.wire}, (r) => ${k.read}, m.${name}); break;`);
    } else {
      if (!k.message && !k.wrapper && !f.partOf) init.push(`${name}: ${k.zero}`);
      const clear = f.partOf ? f.partOf.fieldsArray.filter((o) => o !== f).map((o) => ` delete m.${camel(o.name)};`).join('') : '';
      cases.push(`      case ${f.id}: ${check(k.message || k.wrapper ? 'WireType.LengthDelimited' : k.wire)}${clear} m.${name} = ${read}; break;`);
    }
  }
  const loop = [
    '  while (!r.done) {',
    '    const [field, wire] = r.tag();',
    ...(tagged ? ['    at = field;'] : []),
    '    switch (field) {',
    ...cases,
    '      default: skipUnknown(r, m, field, wire);',
    '    }',
    '  }',
  ];
  // Tagged (Linkerd) files name the message and field a malformed message broke in, level by level.
  const names = `{ ${type.fieldsArray.map((f) => `${f.id}: '${f.name}'`).join(', ')} }`;
  const body = tagged ? ['  let at = 0;', '  try {', ...loop.map((l) => `  ${l}`), '  } catch (e) {', `    throw fieldError(e, '${type.fullName.slice(1)}', at, ${names});`, '  }'] : loop;
  return [
    `export function decode${n}From(r: Reader): ${n} {`,
    `  const m: ${n} = { ${init.join(', ')} };`,
    ...body,
    '  return m;',
    '}',
    '',
    `/** Decodes ${type.fullName.slice(1)}; throws ProtoError on bytes that are not one. */`,
    `export function decode${n}(buf: Uint8Array): ${n} {`,
    `  return decode${n}From(new Reader(buf));`,
    '}',
  ].join('\n');
}

/** The message's type URL with its codec, for packing into and unpacking from an Any (src/proto/any-pack.ts). */
function emitCodec(type) {
  const n = tsName(type);
  return [
    `/** ${type.fullName.slice(1)}: its type URL (as an Any carries it) and its codec. */`,
    `export const ${n}Codec = {`,
    `  typeUrl: 'type.googleapis.com/${type.fullName.slice(1)}',`,
    `  encode: encode${n},`,
    `  decode: decode${n},`,
    '} as const;',
  ].join('\n');
}

function emitService(service) {
  const full = service.fullName.slice(1);
  const lines = [`/** gRPC service ${full}, in the shape grpc-js's Client and Server take. */`, `export const ${service.name} = {`];
  for (const m of service.methodsArray) {
    const req = tsName(m.resolvedRequestType);
    const res = tsName(m.resolvedResponseType);
    lines.push(
      `  ${m.name}: {`,
      `    path: '/${full}/${m.name}',`,
      `    requestStream: ${Boolean(m.requestStream)},`,
      `    responseStream: ${Boolean(m.responseStream)},`,
      `    requestSerialize: (v: DeepPartial<${req}>): Buffer => Buffer.from(encode${req}(v)),`,
      `    requestDeserialize: (b: Buffer): ${req} => decode${req}(b),`,
      `    responseSerialize: (v: DeepPartial<${res}>): Buffer => Buffer.from(encode${res}(v)),`,
      `    responseDeserialize: (b: Buffer): ${res} => decode${res}(b),`,
      `    originalName: '${m.name}',`,
      '  },',
    );
  }
  lines.push('} as const;');
  return lines.join('\n');
}

function allOf(ns, pred) {
  const out = [];
  for (const o of ns.nestedArray ?? []) {
    if (pred(o)) out.push(o);
    if (o.nestedArray) out.push(...allOf(o, pred));
  }
  return out;
}

function generate(file) {
  const rel = relative(PROTO_DIR, file);
  tagged = rel.startsWith('linkerd/');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
  root.loadSync(rel, { keepCase: true });
  root.resolveAll();
  const mine = (o) => o.filename === join(PROTO_DIR, rel);
  const types = allOf(root, (o) => o instanceof protobuf.Type && mine(o));
  const enums = allOf(root, (o) => o instanceof protobuf.Enum && mine(o));
  const services = allOf(root, (o) => o instanceof protobuf.Service && mine(o));
  const names = new Set();
  for (const t of [...types, ...enums, ...services]) {
    if (names.has(tsName(t))) throw new Error(`${rel}: two declarations named ${tsName(t)}; this generator needs unique names per file`);
    names.add(tsName(t));
  }
  // Other files' messages this one uses, and what of each: the type, or only the codec (wrappers).
  const foreign = new Map();
  const use = (r, asType) => {
    if (!(r instanceof protobuf.Type) || mine(r)) return;
    const u = foreign.get(r) ?? { type: false };
    u.type ||= asType;
    foreign.set(r, u);
  };
  for (const t of types) for (const f of t.fieldsArray) use(f.resolvedType, !WRAPPERS[f.resolvedType?.fullName]);
  for (const s of services) for (const m of s.methodsArray) (use(m.resolvedRequestType, true), use(m.resolvedResponseType, true));
  ref = namer([...types, ...enums, ...services], [...foreign.keys()]);
  const imports = new Map();
  for (const [r, u] of foreign) {
    const from = relative(dirname(file), r.filename.replace(/\.proto$/, '.js'));
    const spec = from.startsWith('.') ? from : `./${from}`;
    const set = imports.get(spec) ?? [];
    const as = (name, local) => (name === local ? name : `${name} as ${local}`);
    if (u.type) set.push(`type ${as(tsName(r), ref(r))}`);
    set.push(as(`decode${tsName(r)}From`, `decode${ref(r)}From`), as(`encode${tsName(r)}`, `encode${ref(r)}`));
    imports.set(spec, set);
  }
  const wire = relative(dirname(file), join(PROTO_DIR, 'wire.js'));
  const out = [
    `// Generated by scripts/gen-proto.mjs from ${rel}. Do not edit: change the .proto and run \`node scripts/gen-proto.mjs\`.`,
    '/* eslint-disable */',
    `import { type DeepPartial, Reader, Writer, WireType, expectWire, ${tagged ? 'fieldError, ' : ''}readRepeated, skipUnknown } from '${wire.startsWith('.') ? wire : `./${wire}`}';`,
    ...[...imports].map(([spec, set]) => `import { ${set.join(', ')} } from '${spec}';`),
    '',
    'void readRepeated;',
    'void expectWire;',
    '',
  ];
  for (const e of enums) {
    out.push(`/** ${e.fullName.slice(1)} */`, `export const ${tsName(e)} = {`, ...Object.entries(e.values).map(([k, v]) => `  ${k}: ${v},`), '} as const;', '');
  }
  for (const t of types) out.push(emitInterface(t), '', emitEncode(t), '', emitDecode(t), '', emitCodec(t), '');
  for (const s of services) out.push(emitService(s), '');
  return { path: file.replace(/\.proto$/, '.ts'), text: out.join('\n') };
}

const check = process.argv.includes('--check');
let stale = 0;
for (const file of protoFiles(PROTO_DIR)) {
  const { path, text } = generate(file);
  let old = '';
  try {
    old = readFileSync(path, 'utf8');
  } catch {}
  if (old === text) continue;
  if (check) {
    console.error(`${relative(ROOT, path)} is not what ${relative(ROOT, file)} generates: run node scripts/gen-proto.mjs`);
    stale++;
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${relative(ROOT, path)}`);
  }
}
process.exit(stale ? 1 : 0);
