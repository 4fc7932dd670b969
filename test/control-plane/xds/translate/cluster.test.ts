// Cluster → EDS name, balancer, failure accrual, expected SPIFFE IDs: built by the generated
// encoders (UpstreamTlsContext packed in an Any) and once by the real Envoy protos (istiod's
// ISTIO_MUTUAL shape).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cluster, decodeCluster, encodeCluster } from '../../../../src/proto/envoy/config/cluster/v3/cluster.js';
import { type UpstreamTlsContext, UpstreamTlsContextCodec } from '../../../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { packAny } from '../../../../src/proto/any-pack.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { translateCluster } from '../../../../src/control-plane/xds/translate/cluster.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { DEFAULT_SERVICE_SETTINGS } from '../../../../src/outbound/settings.js';
import { loadReal } from '../../../helpers/xds-protos.js';

const NAME = 'outbound|8080||payments.default.svc.cluster.local';
const SA = 'spiffe://cluster.local/ns/default/sa/payments';
const eds = { type: 3, edsClusterConfig: { edsConfig: { ads: {} }, serviceName: NAME } };
const cluster = (m: DeepPartial<Cluster>) => decodeCluster(encodeCluster({ name: NAME, ...eds, ...m }));
const tls = (m: DeepPartial<UpstreamTlsContext>) => ({ name: 'envoy.transport_sockets.tls', typedConfig: packAny(UpstreamTlsContextCodec, m) });
const sans = (list: object[], typed = false) => tls({ commonTlsContext: { combinedValidationContext: { defaultValidationContext: typed ? { matchTypedSubjectAltNames: list } : { matchSubjectAltNames: list } } } });
const ok = (m: DeepPartial<Cluster>) => {
  const t = translateCluster(cluster(m));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t;
};
const reasons = (m: DeepPartial<Cluster>) => {
  const t = translateCluster(cluster(m));
  assert.ok(!t.ok, 'was accepted');
  return formatReasons(t.reasons);
};

test('an EDS cluster: its EDS name (service_name, else the cluster name), balancer by lb_policy, the base kept otherwise', () => {
  const t = ok({});
  assert.equal(t.value.edsName, NAME);
  assert.equal(t.value.settings.balancer, 'round-robin', 'ROUND_ROBIN is 0, the proto3 default');
  assert.equal(t.value.settings.accrual, DEFAULT_SERVICE_SETTINGS.accrual, 'no outlier_detection: the mesh keeps its own');
  assert.deepEqual(t.value.identities, []);
  assert.equal(ok({ edsClusterConfig: { edsConfig: { ads: {} } } }).value.edsName, NAME);
  assert.equal(ok({ lbPolicy: 1 }).value.settings.balancer, 'least-request');
  assert.equal(ok({ lbPolicy: 3 }).value.settings.balancer, 'random');
  const base = { ...DEFAULT_SERVICE_SETTINGS, connections: { maxPerEndpoint: 4, keepAliveTimeoutMs: 1 } };
  const t2 = translateCluster(cluster({ lbPolicy: 1 }), base);
  assert.ok(t2.ok);
  assert.equal(t2.value.settings.connections, base.connections);
  const noted = ok({ connectTimeout: { seconds: 10 } });
  assert.deepEqual(noted.notes.map((n) => n.field), ['connect_timeout']);
});

test('refused: other discovery types, no type, other LB policies, non-ADS EDS, circuit breakers, an empty name', () => {
  assert.match(reasons({ type: 1 }), /^Cluster ".*" type: STRICT_DNS is not supported: must be EDS/);
  assert.match(reasons({ type: 0 }), /type: STATIC is not supported/);
  assert.match(reasons({ type: undefined }), /type: not set \(a cluster_type extension/);
  assert.match(reasons({ lbPolicy: 2 }), /lb_policy: RING_HASH is not supported/);
  assert.match(reasons({ lbPolicy: 5 }), /lb_policy: MAGLEV/);
  assert.match(reasons({ lbPolicy: 42 }), /lb_policy: 42 is not supported/);
  assert.match(reasons({ edsClusterConfig: { serviceName: 'x' } }), /eds_cluster_config\.eds_config: is required/);
  assert.match(reasons({ edsClusterConfig: { edsConfig: {} } }), /eds_config: must be ads or self/);
  assert.match(reasons({ circuitBreakers: { thresholds: [{ maxRequests: 1024 }] } }), /circuit_breakers\.thresholds\[0\]: circuit breaking is not supported/);
  assert.match(reasons({ name: '' }), /name: is empty/);
});

test('outlier_detection → failure accrual: consecutive 5xx, base and max ejection time, Envoy defaults', () => {
  const a = (o: object) => ok({ outlierDetection: { enforcingSuccessRate: 0, ...o } }).value.settings.accrual;
  assert.deepEqual(a({}), { consecutiveFailures: 5, minMs: 30_000, maxMs: 300_000, jitterRatio: 0.5 });
  assert.deepEqual(a({ consecutive5xx: 3, baseEjectionTime: { seconds: 2 }, maxEjectionTime: { seconds: 20 }, maxEjectionPercent: 100, enforcingConsecutive5xx: 100 }), { consecutiveFailures: 3, minMs: 2000, maxMs: 20_000, jitterRatio: 0.5 });
  assert.deepEqual(a({ baseEjectionTime: { seconds: 400 } }), { consecutiveFailures: 5, minMs: 400_000, maxMs: 400_000, jitterRatio: 0.5 });
  assert.equal(a({ enforcingConsecutive5xx: 0 }), false, 'enforcing 0: nothing ejects');
  assert.equal(a({ enforcingFailurePercentage: 0 }) !== false, true, 'an explicit 0 for other detectors is "off", accepted');
  const notes = ok({ outlierDetection: { interval: { seconds: 10 } } }).notes.map((n) => n.field);
  assert.deepEqual(notes, ['outlier_detection.enforcing_success_rate', 'outlier_detection.interval']);
});

test('outlier_detection refusals: other detectors, partial enforcement, ejection percent, bad times', () => {
  const o = (x: object) => reasons({ outlierDetection: x });
  assert.match(o({ enforcingSuccessRate: 100 }), /enforcing_success_rate: only consecutive-failure ejection/);
  assert.match(o({ successRateStdevFactor: 1900 }), /success_rate_stdev_factor/);
  assert.match(o({ failurePercentageThreshold: 85 }), /failure_percentage_threshold/);
  assert.match(o({ consecutiveGatewayFailure: 5 }), /consecutive_gateway_failure/);
  assert.match(o({ enforcingConsecutive5xx: 50 }), /enforcing_consecutive_5xx: only 0 \(off\) or 100/);
  assert.match(o({ maxEjectionPercent: 10 }), /max_ejection_percent: only 100/);
  assert.match(o({ consecutive5xx: 0 }), /consecutive_5xx: must be at least 1/);
  assert.match(o({ baseEjectionTime: { seconds: 10 }, maxEjectionTime: { seconds: 5 } }), /max_ejection_time: must not be shorter/);
  assert.match(o({ baseEjectionTime: { seconds: -1 } }), /base_ejection_time: must not be negative/);
});

test('UpstreamTlsContext: exact SPIFFE SANs (plain or typed URI) are the expected identities; provider instances accepted', () => {
  const t = ok({ transportSocket: tls({
    sni: 'outbound_.8080_._.payments.default.svc.cluster.local',
    commonTlsContext: {
      tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
      tlsCertificateCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
      combinedValidationContext: {
        defaultValidationContext: { caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' }, matchSubjectAltNames: [{ exact: SA }, { exact: `${SA}-v2` }, { exact: SA }] },
        validationContextCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' },
      },
    },
  }) });
  assert.deepEqual(t.value.identities, [SA, `${SA}-v2`]);
  assert.deepEqual(t.notes.map((n) => n.field), ['transport_socket.typed_config.sni']);
  assert.deepEqual(ok({ transportSocket: sans([{ sanType: 3, matcher: { exact: SA } }], true) }).value.identities, [SA]);
  assert.deepEqual(ok({ transportSocket: tls({ commonTlsContext: { validationContext: { matchSubjectAltNames: [{ exact: SA }] } } }) }).value.identities, [SA]);
});

test('UpstreamTlsContext refusals: what would change peer verification, and a context naming no identity', () => {
  const r = (ts: object) => reasons({ transportSocket: ts });
  assert.match(r(sans([{ prefix: 'spiffe://cluster.local/' }])), /match_subject_alt_names\[0\]: only an exact, case-sensitive SPIFFE ID/);
  assert.match(r(sans([{ exact: SA, ignoreCase: true }])), /only an exact, case-sensitive/);
  assert.match(r(sans([{ exact: 'payments.default.svc' }])), /match_subject_alt_names\[0\]\.exact: "payments\.default\.svc" is not a SPIFFE ID/);
  assert.match(r(sans([{ exact: 'spiffe://Bad Domain/x' }])), /is not a SPIFFE ID/);
  assert.match(r(sans([{ sanType: 2, matcher: { exact: 'a.b' } }], true)), /match_typed_subject_alt_names\[0\]\.san_type: only URI SANs/);
  assert.match(r(sans([])), /names no expected SPIFFE ID/);
  assert.match(r(tls({ commonTlsContext: {} })), /validation_context_type: no validation context/);
  assert.match(r(tls({})), /common_tls_context: is required/);
  const v = (x: object) => r(tls({ commonTlsContext: { validationContext: { matchSubjectAltNames: [{ exact: SA }], ...x } } }));
  assert.match(v({ trustedCa: { filename: '/etc/ca.pem' } }), /validation_context\.trusted_ca: trust comes from the mesh/);
  assert.match(v({ verifyCertificateHash: ['ab'] }), /verify_certificate_hash/);
  assert.match(v({ verifyCertificateSpki: ['ab'] }), /verify_certificate_spki/);
  assert.match(v({ requireSignedCertificateTimestamp: true }), /require_signed_certificate_timestamp/);
  assert.match(v({ crl: { inlineString: 'x' } }), /crl: CRLs/);
  assert.match(v({ customValidatorConfig: { name: 'envoy.tls.cert_validator.spiffe' } }), /custom_validator_config/);
  const c = (x: object) => r(tls({ commonTlsContext: { validationContext: { matchSubjectAltNames: [{ exact: SA }] }, ...x } }));
  assert.match(c({ tlsParams: { tlsMinimumProtocolVersion: 3 } }), /tls_params/);
  assert.match(c({ customHandshaker: { name: 'x' } }), /custom_handshaker/);
  assert.match(c({ alpnProtocols: ['h2'] }), /alpn_protocols/);
  assert.match(r({ name: 'envoy.transport_sockets.raw_buffer' }), /transport socket "envoy\.transport_sockets\.raw_buffer" must hold an UpstreamTlsContext/);
  assert.match(r({ name: 'tls', typedConfig: { typeUrl: UpstreamTlsContextCodec.typeUrl, value: new Uint8Array([0x0a, 0x09]) } }), /is not a valid UpstreamTlsContext/);
});

test('istiod\'s ISTIO_MUTUAL cluster encoded by the real Envoy protos', () => {
  const real = loadReal();
  const C = real.lookupType('envoy.config.cluster.v3.Cluster');
  const T = real.lookupType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  const tlsBytes = T.encode(T.fromObject({
    common_tls_context: {
      tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
      combined_validation_context: {
        default_validation_context: { ca_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' }, match_subject_alt_names: [{ exact: SA }] },
      },
    },
  })).finish();
  const bytes = C.encode(C.fromObject({
    name: NAME, type: 3, lb_policy: 1,
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 2 }, service_name: NAME },
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { type_url: UpstreamTlsContextCodec.typeUrl, value: tlsBytes } },
  })).finish();
  const t = translateCluster(decodeCluster(bytes));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual([t.value.edsName, t.value.settings.balancer, t.value.identities], [NAME, 'least-request', [SA]]);
});

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const h2Options = (o: object = { explicit_http_config: { http2_protocol_options: {} } }, key = HPO, type = HPO) => {
  const T = loadReal().lookupType(type);
  return new Map([[key, { typeUrl: `type.googleapis.com/${type}`, value: T.encode(T.fromObject(o)).finish() }]]);
};

test('typed_extension_protocol_options with explicit HTTP/2 (istiod\'s grpc/http2 ports, real protos) → protocol http2; none → the base\'s', () => {
  assert.equal(ok({}).value.settings.protocol, 'http');
  const t = ok({ typedExtensionProtocolOptions: h2Options() });
  assert.equal(t.value.settings.protocol, 'http2');
  assert.deepEqual(t.notes, []);
  const grpc = translateCluster(cluster({ typedExtensionProtocolOptions: h2Options() }), { ...DEFAULT_SERVICE_SETTINGS, protocol: 'grpc' });
  assert.ok(grpc.ok);
  assert.equal(grpc.value.settings.protocol, 'grpc', 'a base that says gRPC stays gRPC (h2 either way)');
  const codec = ok({ typedExtensionProtocolOptions: h2Options({ explicit_http_config: { http2_protocol_options: { use_oghttp2_codec: { value: true } } } }) });
  assert.equal(codec.value.settings.protocol, 'http2');
  assert.match(codec.notes[0]!.message, /no effect: Envoy's choice of HTTP\/2 codec/);
});

test('typed_extension_protocol_options refusals: every other shape (auto, downstream, HTTP/1, HTTP/3, settings, other keys, other types)', () => {
  const at = /typed_extension_protocol_options\["envoy\.extensions\.upstreams\.http\.v3\.HttpProtocolOptions"\]/;
  const cases: Array<[object, RegExp]> = [
    [{ auto_config: { http2_protocol_options: {} } }, /auto_config: protocol auto-detection is not supported/],
    [{ use_downstream_protocol_config: { http2_protocol_options: {} } }, /use_downstream_protocol_config: a client has no downstream protocol/],
    [{ explicit_http_config: { http_protocol_options: {} } }, /explicit_http_config\.http_protocol_options: HTTP\/1 options are not supported/],
    [{ explicit_http_config: { http3_protocol_options: {} } }, /explicit_http_config\.http3_protocol_options: HTTP\/3 upstreams are not supported/],
    [{ explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 10 } } } }, /http2_protocol_options\.max_concurrent_streams: HTTP\/2 settings of the upstream connection are the mesh's own/],
    [{ explicit_http_config: { http2_protocol_options: { allow_connect: true } } }, /allow_connect: CONNECT over HTTP\/2 is not supported/],
    [{ explicit_http_config: { http2_protocol_options: {} }, common_http_protocol_options: { idle_timeout: { seconds: 5 } } }, /common_http_protocol_options: upstream HTTP protocol options \(DestinationRule connectionPool\.http/],
    [{}, /says no protocol: only explicit_http_config\.http2_protocol_options \(HTTP\/2\) is supported/],
    [{ explicit_http_config: {} }, /says no protocol/],
  ];
  for (const [o, re] of cases) {
    const r = reasons({ typedExtensionProtocolOptions: h2Options(o) });
    assert.match(r, at, JSON.stringify(o));
    assert.match(r, re, JSON.stringify(o));
  }
  assert.match(reasons({ typedExtensionProtocolOptions: h2Options(undefined, 'envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions') }), /protocol options for "envoy\.extensions\.upstreams\.tcp\.v3\.TcpProtocolOptions" are not supported/);
  assert.match(reasons({ typedExtensionProtocolOptions: h2Options({}, HPO, 'envoy.config.core.v3.Http2ProtocolOptions') }), /must hold an envoy\.extensions\.upstreams\.http\.v3\.HttpProtocolOptions, holds "envoy\.config\.core\.v3\.Http2ProtocolOptions"/);
  assert.match(reasons({ typedExtensionProtocolOptions: new Map([[HPO, { typeUrl: `type.googleapis.com/${HPO}`, value: Uint8Array.from([0x1a, 0x05]) }]]) }), /is not a valid HttpProtocolOptions/);
});
