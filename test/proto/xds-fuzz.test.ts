// A control plane's bytes can never crash the process: our xDS decoders, fed every prefix of a
// real DiscoveryResponse (encoded by the real Envoy protos) and thousands of seeded corruptions of
// it, either decode or throw ProtoError, never another error, and never hang. Every Any inside
// (resources, api_listener, typed_config) is unpacked too, so the nested decoders are exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { OWN_DIR, loadReal, ownCodecModule, ownXdsFiles } from '../helpers/xds-protos.js';
import { decodeDiscoveryResponse } from '../../src/proto/envoy/service/discovery/v3/discovery.js';
import { decodePermission, encodePermission, type Permission } from '../../src/proto/envoy/config/rbac/v3/rbac.js';
import protobuf from 'protobufjs';
import { ProtoError, MAX_DEPTH, Reader, Writer } from '../../src/proto/wire.js';

const real = loadReal();
const T = (name: string) => real.lookupType(name);
const url = (name: string) => `type.googleapis.com/${name}`;
const pack = (name: string, obj: object) => ({ type_url: url(name), value: T(name).encode(T(name).fromObject(obj)).finish() });

/** Every generated decoder, by type URL. */
const decoders = new Map<string, (b: Uint8Array) => unknown>();
for (const f of ownXdsFiles()) {
  const mod = (await import(ownCodecModule(f))) as Record<string, unknown>;
  for (const [k, v] of Object.entries(mod)) {
    const c = v as { typeUrl?: unknown; decode?: unknown };
    if (k.endsWith('Codec') && typeof c.typeUrl === 'string' && typeof c.decode === 'function') decoders.set(c.typeUrl, c.decode as (b: Uint8Array) => unknown);
  }
}

/** Decodes a DiscoveryResponse and, recursively, every Any of a type we declare. */
function decodeDeep(buf: Uint8Array): number {
  let anys = 0;
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array || v === null || typeof v !== 'object') return;
    if (v instanceof Map) return [...v.values()].forEach(walk);
    if (Array.isArray(v)) return v.forEach(walk);
    const o = v as Record<string, unknown>;
    if (typeof o.typeUrl === 'string' && o.value instanceof Uint8Array) {
      const d = decoders.get(o.typeUrl);
      if (d) (anys++, walk(d(o.value)));
      return;
    }
    Object.values(o).forEach(walk);
  };
  walk(decodeDiscoveryResponse(buf));
  return anys;
}

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const routeConfig = {
  name: 'outbound|8080||payments.default.svc.cluster.local',
  virtual_hosts: [
    {
      name: 'payments',
      domains: ['payments.default.svc.cluster.local:8080', 'payments', 'payments:8080'],
      retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 } },
      routes: [
        {
          name: 'v2',
          match: { path_separated_prefix: '/v2', headers: [{ name: 'x-canary', string_match: { exact: 'yes' } }, { name: 'x-n', range_match: { start: 1, end: 9 } }], case_sensitive: { value: false } },
          route: { weighted_clusters: { clusters: [{ name: 'outbound|8080|v1|payments.default.svc.cluster.local', weight: { value: 90 } }, { name: 'outbound|8080|v2|payments.default.svc.cluster.local', weight: { value: 10 } }] }, timeout: { seconds: 2, nanos: 500000000 }, max_stream_duration: { max_stream_duration: { seconds: 2 } } },
        },
        { match: { safe_regex: { regex: '/users/[0-9]+' } }, route: { cluster: 'outbound|8080||payments.default.svc.cluster.local', retry_policy: { retry_on: '5xx', num_retries: { value: 3 }, per_try_timeout: { seconds: 1 }, retriable_status_codes: [503, 504] } } },
        { match: { prefix: '' }, route: { cluster: 'outbound|8080||payments.default.svc.cluster.local' } },
      ],
    },
  ],
};
const RBAC_FILTER = pack('envoy.extensions.filters.http.rbac.v3.RBAC', {
  rules: {
    action: 0,
    policies: {
      allow: {
        permissions: [{ or_rules: { rules: [{ url_path: { path: { prefix: '/api/' } } }, { not_rule: { header: { name: ':method', string_match: { exact: 'DELETE' } } } }] } }],
        principals: [{ or_ids: { ids: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/orders' } } }, { not_id: { any: true } }] } }],
      },
    },
  },
});

function realResponse(): Uint8Array {
  const Res = T('envoy.service.discovery.v3.DiscoveryResponse');
  const resources = [
    pack('envoy.config.listener.v3.Listener', {
      name: 'payments.default.svc.cluster.local:8080',
      address: { socket_address: { address: '10.96.0.12', port_value: 8080 } },
      api_listener: { api_listener: pack(HCM, { route_config: routeConfig, http_filters: [{ name: 'envoy.filters.http.router', typed_config: pack('envoy.extensions.filters.http.router.v3.Router', {}) }] }) },
    }),
    pack('envoy.config.listener.v3.Listener', {
      name: 'xds.istio.io/grpc/lds/inbound/10.0.0.5:8443',
      filter_chains: [
        {
          filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: pack(HCM, { rds: { config_source: { ads: {} }, route_config_name: 'inbound' }, http_filters: [{ name: 'envoy.filters.http.rbac', typed_config: RBAC_FILTER }] }) }],
          transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: pack('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', { require_client_certificate: { value: true } }) },
        },
      ],
    }),
    pack('envoy.config.cluster.v3.Cluster', {
      name: 'outbound|8080||payments.default.svc.cluster.local',
      type: 3,
      eds_cluster_config: { eds_config: { ads: {} }, service_name: 'outbound|8080||payments.default.svc.cluster.local' },
      outlier_detection: { consecutive_5xx: { value: 5 }, interval: { seconds: 10 }, base_ejection_time: { seconds: 30 }, max_ejection_percent: { value: 50 } },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: pack('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
          common_tls_context: { combined_validation_context: { default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/payments' }] } } },
        }),
      },
    }),
    pack('envoy.config.endpoint.v3.ClusterLoadAssignment', {
      cluster_name: 'outbound|8080||payments.default.svc.cluster.local',
      endpoints: [
        { locality: { region: 'r', zone: 'z1' }, load_balancing_weight: { value: 2 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 8443 } } }, health_status: 1, load_balancing_weight: { value: 1 } }] },
        { locality: { region: 'r', zone: 'z2' }, priority: 1, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'fd00::8', port_value: 8443 } } }, health_status: 3 }] },
      ],
    }),
  ];
  return Res.encode(Res.fromObject({ version_info: '2025-01-01T00:00:00Z/7', type_url: url('envoy.config.listener.v3.Listener'), nonce: 'nonce-7', resources, control_plane: { identifier: 'istiod-abc' } })).finish();
}

/** Decodes or throws ProtoError; anything else (a TypeError, a RangeError, a stack overflow) fails. */
function survives(buf: Uint8Array, what: string): boolean {
  try {
    decodeDeep(buf);
    return true;
  } catch (e) {
    if (!(e instanceof ProtoError)) assert.fail(`${what}: ${(e as Error)?.stack ?? e}`);
    return false;
  }
}

const whole = realResponse();

test('the real response decodes whole, with every nested Any unpacked', () => {
  assert.equal(decodeDeep(whole), 10); // 4 resources, 2 HCMs, router, RBAC, 2 TLS contexts
});

test('every prefix of a real DiscoveryResponse decodes or throws ProtoError, quickly', () => {
  let refused = 0;
  const started = process.hrtime.bigint();
  for (let n = 0; n < whole.length; n++) if (!survives(whole.subarray(0, n), `prefix of ${n} bytes`)) refused++;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(refused > whole.length / 2, `most prefixes cut a field: ${refused} of ${whole.length}`);
  assert.ok(ms < 20_000, `${whole.length} prefixes took ${ms} ms`);
});

test('seeded corruptions (byte flips, insertions, deletions) decode or throw ProtoError', () => {
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  const runs = 4000;
  for (let i = 0; i < runs; i++) {
    const b = Array.from(whole);
    for (let k = 1 + rand(3); k > 0; k--) {
      const at = rand(b.length);
      const op = rand(3);
      if (op === 0) b[at] = rand(256);
      else if (op === 1) b.splice(at, 0, rand(256));
      else b.splice(at, 1);
    }
    if (!survives(Uint8Array.from(b), `corruption run ${i} (seed ${seed})`)) refused++;
  }
  assert.ok(refused > 0 && refused < runs, `both outcomes occur: ${refused} of ${runs} refused`);
});

test('hostile shapes: nesting past the limit, runaway lengths and varints, field 0, groups: ProtoError each', () => {
  let deep: Permission = { any: true };
  for (let i = 0; i < MAX_DEPTH + 10; i++) deep = { notRule: deep };
  assert.throws(() => decodePermission(encodePermission(deep)), (e: unknown) => e instanceof ProtoError && /nested deeper/.test(e.message));
  const cases: Array<[string, number[]]> = [
    ['a length far past the end', [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ['an 11-byte varint', [0x18, ...Array(10).fill(0xff), 0x01]],
    ['field number 0', [0x02, 0x00]],
    ['a start-group wire type', [0x13]],
    ['a string that is not UTF-8', [0x0a, 0x02, 0xc3, 0x28]],
    ['resources with a scalar wire type', [0x10, 0x01]],
  ];
  for (const [what, bytes] of cases) assert.throws(() => decodeDiscoveryResponse(Uint8Array.from(bytes)), ProtoError, what);
});

test('varints at every length boundary read as protobufjs writes them (the 28-bit fast path and the exact long path)', () => {
  const values = [0, 1, 127, 128, 2 ** 14 - 1, 2 ** 14, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 35, 2 ** 53 - 1, -1, -(2 ** 31)];
  for (const v of values) {
    const w = protobuf.Writer.create();
    if (v < 0) w.int64(v);
    else w.uint64(v);
    const bytes = Uint8Array.from(w.finish());
    const r = new Reader(bytes);
    assert.equal(r.varint(), v, `${v}`);
    assert.ok(r.done, `${v}: every byte read`);
    assert.deepEqual(Uint8Array.from(new Writer().varint(v).finish()), bytes, `${v}: written the same`);
  }
});
