// Our decoders record the numbers of the fields our .proto files do not declare (wire.ts
// skipUnknown / unknownFields), proven with messages encoded by the REAL Envoy protos: a fuller
// Cluster lists exactly the real numbers of its undeclared fields, per nested message; a message
// with declared fields only lists nothing, anywhere; the list is invisible to encoders, spreads,
// JSON and deepEqual; bounded for a hostile message; and bad bytes fail as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TO_OBJECT, allTypes, loadOwn, loadReal, oneofWidth, ownCodecs, ownXdsFiles, realNames, sample } from '../helpers/xds-protos.js';
import { decodeCluster, encodeCluster } from '../../src/proto/envoy/config/cluster/v3/cluster.js';
import { UpstreamTlsContextCodec } from '../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { decodeDuration, encodeDuration } from '../../src/proto/google/protobuf/duration.js';
import { unpackAny } from '../../src/proto/any-pack.js';
import { MAX_UNKNOWN_FIELDS, ProtoError, UNKNOWN_FIELDS, WireType, Writer, unknownFields } from '../../src/proto/wire.js';

const real = loadReal();
const own = loadOwn(ownXdsFiles());
const ownTypes = allTypes(own);
const codecs = await ownCodecs(ownTypes);
const realName = realNames(real);
const T = (n: string) => real.lookupType(n);
const declared = (name: string) => new Set(own.lookupType(name).fieldsArray.map((f) => f.id));

/** The real numbers of the fields set in `obj` (a protobufjs object of real type `name`) that ours does not declare. */
function undeclaredIn(name: string, obj: Record<string, unknown>): number[] {
  const r = T(name);
  const mine = declared(name);
  return Object.keys(obj).map((k) => r.fields[k]!.id).filter((id) => !mine.has(id));
}

const CLUSTER = {
  name: 'outbound|8080||payments.default.svc.cluster.local',
  alt_stat_name: 'payments',
  type: 3,
  eds_cluster_config: { eds_config: { ads: {} }, service_name: 'x' },
  lb_policy: 1,
  circuit_breakers: { thresholds: [{ max_requests: { value: 1024 }, track_remaining: true, retry_budget: { budget_percent: { value: 20 } } }] },
  dns_lookup_family: 1,
  common_lb_config: { healthy_panic_threshold: { value: 50 } },
  health_checks: [{ timeout: { seconds: 1 }, interval: { seconds: 5 }, http_health_check: { path: '/healthz' } }, { timeout: { seconds: 2 }, interval: { seconds: 5 }, tcp_health_check: {} }],
  lb_subset_config: { fallback_policy: 1 },
  upstream_connection_options: { tcp_keepalive: { keepalive_time: { value: 60 } } },
  metadata: { filter_metadata: { istio: { fields: {} } } },
};
const TLS = {
  common_tls_context: {
    combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/payments' }], trust_chain_verification: 1, max_verify_depth: { value: 4 } } },
    key_log: { path: '/tmp/keys' },
  },
  sni: 'payments.default.svc.cluster.local',
  allow_renegotiation: true,
};

function realCluster(): Uint8Array {
  const tls = T('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  const tlsBytes = tls.encode(tls.fromObject(TLS)).finish();
  const C = T('envoy.config.cluster.v3.Cluster');
  return C.encode(C.fromObject({ ...CLUSTER, transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { type_url: UpstreamTlsContextCodec.typeUrl, value: tlsBytes } } })).finish();
}

test('a real Cluster with fields ours does not declare: each decoded message lists their real numbers, once each', () => {
  const c = decodeCluster(realCluster());
  const expected = undeclaredIn('envoy.config.cluster.v3.Cluster', CLUSTER);
  assert.ok(expected.length >= 6, `${expected}`);
  assert.deepEqual([...unknownFields(c)!].sort((a, b) => a - b), expected.sort((a, b) => a - b), 'health_checks twice is listed once');
  assert.ok(unknownFields(c)!.includes(27) && unknownFields(c)!.includes(8) && unknownFields(c)!.includes(22) && unknownFields(c)!.includes(30), 'common_lb_config, health_checks, lb_subset_config, upstream_connection_options');
  assert.deepEqual(unknownFields(c.circuitBreakers!.thresholds[0]!), undeclaredIn('envoy.config.cluster.v3.CircuitBreakers.Thresholds', CLUSTER.circuit_breakers.thresholds[0]!));
  assert.equal(unknownFields(c.circuitBreakers!), undefined, 'declared only');
  assert.equal(unknownFields(c.edsClusterConfig!), undefined);
  const tls = unpackAny(c.transportSocket!.typedConfig!, UpstreamTlsContextCodec);
  assert.deepEqual(unknownFields(tls), [3], 'allow_renegotiation');
  assert.equal(tls.sni, TLS.sni, 'sni is declared');
  assert.deepEqual(unknownFields(tls.commonTlsContext!), [15], 'key_log');
  const v = tls.commonTlsContext!.combinedValidationContext!.defaultValidationContext!;
  assert.deepEqual(unknownFields(v), undeclaredIn('envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext', TLS.common_tls_context.combined_validation_context.default_validation_context));
});

/** Every object in a decoded tree that lists unknown fields, with its path. */
function withUnknown(v: unknown, at = ''): string[] {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return [];
  if (v instanceof Map) return [...v].flatMap(([k, x]) => withUnknown(x, `${at}[${String(k)}]`));
  if (Array.isArray(v)) return v.flatMap((x, i) => withUnknown(x, `${at}[${i}]`));
  const own = unknownFields(v) ? [`${at}: ${unknownFields(v)}`] : [];
  return [...own, ...Object.entries(v).flatMap(([k, x]) => withUnknown(x, `${at}.${k}`))];
}

test('declared fields only (every field of every message we declare, by the real protos): no list anywhere', () => {
  let checked = 0;
  for (const t of ownTypes) {
    const r = T(t.fullName);
    const codec = codecs.get(t.fullName.slice(1))!;
    for (let v = 0; v < oneofWidth(t); v++) {
      const s = sample(t, realName, v);
      const decoded = codec.decode(r.encode(r.fromObject(s.plain)).finish());
      assert.deepEqual(withUnknown(decoded), [], t.fullName);
      checked++;
    }
  }
  assert.ok(checked > ownTypes.length);
});

test('the list is invisible: not a key, not in JSON or a spread, ignored by encoders and by deepEqual', () => {
  const bytes = realCluster();
  const c = decodeCluster(bytes);
  assert.ok(unknownFields(c));
  assert.ok(!Object.keys(c).includes(String(UNKNOWN_FIELDS)) && Object.getOwnPropertySymbols(c).every((s) => !Object.prototype.propertyIsEnumerable.call(c, s)));
  assert.equal(unknownFields({ ...c }), undefined);
  assert.ok(!JSON.stringify(c).includes('unknown'));
  const again = decodeCluster(encodeCluster(c));
  assert.equal(unknownFields(again), undefined, 'what ours re-encodes holds declared fields only');
  assert.deepEqual(again, c, 'equal but for the list');
  const Real = T('envoy.config.cluster.v3.Cluster');
  const back = Real.toObject(Real.decode(encodeCluster(c)), TO_OBJECT) as Record<string, unknown>;
  assert.equal(back.alt_stat_name, undefined, 'undeclared fields are not re-encoded');
  assert.equal(back.name, CLUSTER.name);
});

test('bounded for a hostile message: a field repeated 100,000 times is one entry; past the cap a final 0', () => {
  const w = new Writer();
  w.tag(1, WireType.Varint).varint(7);
  for (let i = 0; i < 100_000; i++) w.tag(9, WireType.Varint).varint(i);
  const d = decodeDuration(w.finish());
  assert.equal(d.seconds, 7);
  assert.deepEqual(unknownFields(d), [9]);
  const w2 = new Writer();
  for (let i = 0; i < 10_000; i++) w2.tag(100 + i, WireType.Fixed32).varint(0).varint(0).varint(0).varint(0);
  const many = unknownFields(decodeDuration(w2.finish()))!;
  assert.equal(many.length, MAX_UNKNOWN_FIELDS + 1);
  assert.deepEqual(many.slice(0, 3), [100, 101, 102]);
  assert.equal(many.at(-1), 0, '0 says "and more"');
});

test('bad bytes fail as before: a truncated or group-typed undeclared field is a ProtoError; a complete one is recorded', () => {
  const ok = encodeDuration({ seconds: 1 });
  const truncated = Buffer.concat([ok, new Writer().tag(9, WireType.LengthDelimited).varint(10).finish()]);
  assert.throws(() => decodeDuration(truncated), ProtoError);
  assert.throws(() => decodeDuration(Buffer.concat([ok, new Writer().tag(9, 3 as WireType).finish()])), (e: unknown) => e instanceof ProtoError && /groups are not supported/.test(e.message));
  assert.throws(() => decodeDuration(Buffer.concat([ok, new Writer().tag(9, WireType.Fixed64).finish(), Buffer.alloc(3)])), ProtoError);
  const withEight = Buffer.concat([ok, new Writer().tag(9, WireType.Fixed64).finish(), Buffer.alloc(8)]);
  assert.deepEqual(unknownFields(decodeDuration(withEight)), [9]);
});

test('seeded corruptions of a real Cluster: decoded or ProtoError, and every list bounded, of undeclared numbers only', () => {
  const bytes = realCluster();
  let seed = 12;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const mine = declared('envoy.config.cluster.v3.Cluster');
  let decoded = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(bytes);
    for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    try {
      const c = decodeCluster(b);
      decoded++;
      const list = unknownFields(c) ?? [];
      assert.ok(list.length <= MAX_UNKNOWN_FIELDS + 1);
      list.forEach((n, j) => assert.ok((n === 0 && j === MAX_UNKNOWN_FIELDS) || (Number.isSafeInteger(n) && n >= 1 && !mine.has(n)), `${n}`));
    } catch (e) {
      assert.ok(e instanceof ProtoError, String(e));
    }
  }
  assert.ok(decoded > 100, `only ${decoded} decoded`);
});
