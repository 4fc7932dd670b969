// Field numbers, wire types and names of the project's own xDS .proto files, proven against the
// REAL Envoy/xDS/googleapis protos that @grpc/grpc-js-xds ships (node_modules/@grpc/grpc-js-xds/deps,
// loaded here at test time, never copied): every message we declare is built fully populated,
// encoded by our generated codec and decoded by protobufjs over the real files, compared field by
// field; and the reverse. A wrong number or wire type makes a field vanish, change or fail on one side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TO_OBJECT, allEnums, allTypes, loadOwn, loadReal, oneofWidth, ownCodecs, ownToPlain, ownXdsFiles, realNames, sample } from '../helpers/xds-protos.js';
import { type Cluster, ClusterCodec, decodeCluster } from '../../src/proto/envoy/config/cluster/v3/cluster.js';
import { ListenerCodec } from '../../src/proto/envoy/config/listener/v3/listener.js';
import { HttpConnectionManagerCodec } from '../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { UpstreamTlsContextCodec } from '../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { RBACCodec as HttpRbacCodec } from '../../src/proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { DiscoveryRequestCodec, decodeDiscoveryResponse, AggregatedDiscoveryService } from '../../src/proto/envoy/service/discovery/v3/discovery.js';
import { ClusterLoadAssignmentCodec, encodeClusterLoadAssignment } from '../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import { isAny, packAny, unpackAny } from '../../src/proto/any-pack.js';
import { ProtoError } from '../../src/proto/wire.js';

const real = loadReal();
const own = loadOwn(ownXdsFiles());
const ownTypes = allTypes(own);
const codecs = await ownCodecs(ownTypes);
const realType = (name: string) => real.lookupType(name);
const realName = realNames(real);

test('our xDS files declare the messages the research names, each with a real counterpart', () => {
  assert.ok(ownTypes.length >= 60, `only ${ownTypes.length} messages`);
  for (const name of [
    'envoy.service.discovery.v3.DiscoveryRequest',
    'envoy.config.core.v3.Node',
    'envoy.config.listener.v3.Listener',
    'envoy.config.route.v3.RouteConfiguration',
    'envoy.config.cluster.v3.Cluster',
    'envoy.config.endpoint.v3.ClusterLoadAssignment',
    'envoy.config.rbac.v3.Principal',
    'envoy.extensions.filters.http.rbac.v3.RBAC',
    'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    'google.rpc.Status',
  ]) {
    assert.ok(codecs.has(name), name);
  }
  for (const t of ownTypes) assert.doesNotThrow(() => realType(t.fullName), t.fullName);
});

test('every declared field has the real field’s number, type, cardinality and oneof; every enum value its number', () => {
  for (const t of ownTypes) {
    const r = realType(t.fullName);
    for (const f of t.fieldsArray) {
      const rf = r.fields[realName(f)];
      assert.ok(rf, `${f.fullName} does not exist in the real ${r.fullName}`);
      assert.equal(f.id, rf.id, `${f.fullName}: number`);
      assert.equal(f.resolvedType?.fullName ?? f.type, rf.resolvedType?.fullName ?? rf.type, `${f.fullName}: type`);
      assert.equal(f.repeated, rf.repeated, `${f.fullName}: repeated`);
      assert.equal(f.map, rf.map, `${f.fullName}: map`);
      assert.equal(f.partOf?.name, rf.partOf?.name, `${f.fullName}: oneof`);
      assert.equal(f.options?.packed, rf.options?.packed, `${f.fullName}: packed option`);
    }
  }
  for (const e of allEnums(own)) {
    const r = real.lookupEnum(e.fullName);
    for (const [k, v] of Object.entries(e.values)) assert.equal(r.values[k], v, `${e.fullName}.${k}`);
  }
});

test('ours → real: every field of every message, each oneof member in turn, decodes to its value', () => {
  let checked = 0;
  for (const t of ownTypes) {
    const r = realType(t.fullName);
    const codec = codecs.get(t.fullName.slice(1))!;
    for (let v = 0; v < oneofWidth(t); v++) {
      const s = sample(t, realName, v);
      const decoded = r.toObject(r.decode(codec.encode(s.ours)), TO_OBJECT);
      assert.deepEqual(decoded, s.plain, `${t.fullName} variant ${v}`);
      checked++;
    }
  }
  assert.ok(checked > ownTypes.length, 'oneof variants were exercised');
});

test('real → ours: every field of every message, each oneof member in turn, decodes to its value', () => {
  for (const t of ownTypes) {
    const r = realType(t.fullName);
    const codec = codecs.get(t.fullName.slice(1))!;
    for (let v = 0; v < oneofWidth(t); v++) {
      const s = sample(t, realName, v);
      const bytes = r.encode(r.fromObject(s.plain)).finish();
      const decoded = codec.decode(bytes) as Record<string, unknown>;
      assert.deepEqual(ownToPlain(t, decoded, realName), s.plain, `${t.fullName} variant ${v}`);
    }
  }
});

/** A Cluster as istiod sends a proxyless client, plus fields we do not declare, encoded by the real protos. */
function fullerCluster(): Uint8Array {
  const Cluster = realType('envoy.config.cluster.v3.Cluster');
  const tls = realType('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  const tlsBytes = tls
    .encode(
      tls.fromObject({
        common_tls_context: {
          tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
          tls_certificate_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
          combined_validation_context: {
            default_validation_context: {
              ca_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' },
              match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/payments' }],
              allow_expired_certificate: false,
              trust_chain_verification: 1,
              max_verify_depth: { value: 4 },
            },
            validation_context_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' },
          },
          alpn_protocols: ['h2'],
          key_log: { path: '/tmp/keys' },
        },
        sni: 'outbound_.8080_._.payments.default.svc.cluster.local',
        allow_renegotiation: true,
        max_session_keys: { value: 3 },
      }),
    )
    .finish();
  return Cluster.encode(
    Cluster.fromObject({
      name: 'outbound|8080||payments.default.svc.cluster.local',
      alt_stat_name: 'payments',
      type: 3,
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 2 }, service_name: 'outbound|8080||payments.default.svc.cluster.local' },
      connect_timeout: { seconds: 10 },
      lb_policy: 1,
      circuit_breakers: { thresholds: [{ max_requests: { value: 1024 }, track_remaining: true, retry_budget: { budget_percent: { value: 20 } } }] },
      dns_lookup_family: 1,
      respect_dns_ttl: true,
      typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { type_url: 'type.googleapis.com/x', value: Buffer.from([8, 1]) } },
      common_lb_config: { healthy_panic_threshold: { value: 50 } },
      health_checks: [{ timeout: { seconds: 1 }, interval: { seconds: 5 }, http_health_check: { path: '/healthz' } }],
      metadata: { filter_metadata: { istio: { fields: { services: { list_value: { values: [{ string_value: 'payments' }] } } } } } },
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { type_url: UpstreamTlsContextCodec.typeUrl, value: tlsBytes } },
      ring_hash_lb_config: { minimum_ring_size: { value: 1024 } },
      track_cluster_stats: { timeout_budgets: true },
      lrs_server: { self: {} },
    }),
  ).finish();
}

test('a real, fuller Cluster decodes with ours: undeclared fields skipped, the declared ones right to the expected SPIFFE ID', () => {
  const c: Cluster = decodeCluster(fullerCluster());
  assert.equal(c.name, 'outbound|8080||payments.default.svc.cluster.local');
  assert.equal(c.type, 3);
  assert.equal(c.lbPolicy, 1);
  assert.deepEqual(c.connectTimeout, { seconds: 10, nanos: 0 });
  assert.equal(c.edsClusterConfig?.serviceName, 'outbound|8080||payments.default.svc.cluster.local');
  assert.ok(c.edsClusterConfig?.edsConfig?.ads, 'ads config source');
  assert.equal(c.circuitBreakers?.thresholds[0]?.maxRequests, 1024);
  assert.equal(c.transportSocket?.name, 'envoy.transport_sockets.tls');
  const tls = unpackAny(c.transportSocket!.typedConfig!, UpstreamTlsContextCodec);
  assert.equal(tls.sni, 'outbound_.8080_._.payments.default.svc.cluster.local');
  const validation = tls.commonTlsContext?.combinedValidationContext?.defaultValidationContext;
  assert.deepEqual(validation?.matchSubjectAltNames, [{ exact: 'spiffe://cluster.local/ns/default/sa/payments', ignoreCase: false }]);
  assert.equal(validation?.caCertificateProviderInstance?.certificateName, 'ROOTCA');
  assert.deepEqual(tls.commonTlsContext?.alpnProtocols, ['h2']);
});

test('a real, fuller Listener with its HCM and RBAC filter decodes with ours, undeclared fields skipped', () => {
  const Listener = realType('envoy.config.listener.v3.Listener');
  const Hcm = realType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const Rbac = realType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const rbac = Rbac.encode(
    Rbac.fromObject({
      rules: {
        action: 1,
        policies: {
          'ns[default]-policy[deny-admin]-rule[0]': {
            permissions: [{ and_rules: { rules: [{ or_rules: { rules: [{ url_path: { path: { prefix: '/admin' } } }] } }] } }],
            principals: [{ and_ids: { ids: [{ or_ids: { ids: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/test/.*' } } } }] } }] } }],
          },
        },
        audit_logging_options: { audit_condition: 1 },
      },
      shadow_rules_stat_prefix: 'istio_dry_run_',
      track_per_rule_stats: true,
    }),
  ).finish();
  const hcm = Hcm.encode(
    Hcm.fromObject({
      stat_prefix: 'inbound',
      codec_type: 1,
      route_config: { name: 'inbound|8443', virtual_hosts: [{ domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {}, decorator: { operation: 'x' } }], require_tls: 2 }], validate_clusters: { value: false } },
      http_filters: [
        { name: 'envoy.filters.http.rbac.DENY', typed_config: { type_url: HttpRbacCodec.typeUrl, value: rbac } },
        { name: 'envoy.filters.http.router', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', value: Buffer.alloc(0) } },
      ],
      use_remote_address: { value: true },
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      stream_idle_timeout: { seconds: 300 },
    }),
  ).finish();
  const bytes = Listener.encode(
    Listener.fromObject({
      name: 'xds.istio.io/grpc/lds/inbound/10.0.0.5:8443',
      address: { socket_address: { address: '10.0.0.5', port_value: 8443 } },
      stat_prefix: 'inbound',
      drain_type: 1,
      per_connection_buffer_limit_bytes: { value: 32768 },
      listener_filters_timeout: { seconds: 1 },
      traffic_direction: 1,
      socket_options: [{ level: 1, name: 2, int_value: 3 }],
      filter_chains: [
        {
          name: 'inbound-mtls',
          metadata: { filter_metadata: { x: { fields: {} } } },
          filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { type_url: HttpConnectionManagerCodec.typeUrl, value: hcm } }],
          transport_socket_connect_timeout: { seconds: 2 },
        },
      ],
    }),
  ).finish();
  const l = ListenerCodec.decode(bytes);
  assert.equal(l.name, 'xds.istio.io/grpc/lds/inbound/10.0.0.5:8443');
  assert.equal(l.address?.socketAddress?.portValue, 8443);
  assert.equal(l.filterChains.length, 1);
  const h = unpackAny(l.filterChains[0]!.filters[0]!.typedConfig!, HttpConnectionManagerCodec);
  assert.equal(h.statPrefix, 'inbound');
  assert.ok(h.routeConfig?.virtualHosts[0]?.routes[0]?.nonForwardingAction, 'non_forwarding_action');
  assert.deepEqual(h.httpFilters.map((f) => f.name), ['envoy.filters.http.rbac.DENY', 'envoy.filters.http.router']);
  const r = unpackAny(h.httpFilters[0]!.typedConfig!, HttpRbacCodec);
  assert.equal(r.rules?.action, 1);
  const policy = r.rules?.policies.get('ns[default]-policy[deny-admin]-rule[0]');
  const principal = policy?.principals[0]?.andIds?.ids[0]?.orIds?.ids[0];
  assert.equal(principal?.authenticated?.principalName?.safeRegex?.regex, '.*/ns/test/.*');
  assert.equal(policy?.permissions[0]?.andRules?.rules[0]?.orRules?.rules[0]?.urlPath?.path?.prefix, '/admin');
  assert.equal(policy?.condition, undefined);
});

test('a wrapper set to zero is present, not absent (a locality weight of 0 is not an unset one)', () => {
  const Cla = realType('envoy.config.endpoint.v3.ClusterLoadAssignment');
  const bytes = encodeClusterLoadAssignment({ clusterName: 'c', endpoints: [{ loadBalancingWeight: 0, lbEndpoints: [] }, { lbEndpoints: [] }] });
  const decoded = Cla.toObject(Cla.decode(bytes), TO_OBJECT) as { endpoints: Array<Record<string, unknown>> };
  assert.deepEqual(decoded.endpoints, [{ load_balancing_weight: {} }, {}]);
  const back = ClusterLoadAssignmentCodec.decode(Cla.encode(Cla.fromObject({ cluster_name: 'c', endpoints: [{ load_balancing_weight: {} }, {}] })).finish());
  assert.equal(back.endpoints[0]!.loadBalancingWeight, 0);
  assert.equal(back.endpoints[1]!.loadBalancingWeight, undefined);
});

test('Any: packed by ours, read by the real protos by type URL, and unpacked by ours; another type is a ProtoError', () => {
  const any = packAny(ClusterCodec, { name: 'payments', type: 3 });
  assert.equal(any.typeUrl, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
  const Any = realType('google.protobuf.Any');
  const json = Any.toObject(Any.decode(realType('google.protobuf.Any').encode(Any.fromObject({ type_url: any.typeUrl, value: Buffer.from(any.value) })).finish()), { json: true }) as Record<string, unknown>;
  assert.equal(json['@type'], any.typeUrl);
  assert.equal(json.name, 'payments');
  assert.equal(unpackAny(any, ClusterCodec).name, 'payments');
  assert.ok(isAny({ typeUrl: 'example.com/custom/envoy.config.cluster.v3.Cluster', value: any.value }, ClusterCodec), 'any host before the last /');
  assert.throws(() => unpackAny(any, ListenerCodec), (e: unknown) => e instanceof ProtoError && /expected a envoy\.config\.listener\.v3\.Listener/.test(e.message));
  assert.throws(() => unpackAny({ typeUrl: 'envoy.config.cluster.v3.Cluster', value: any.value }, ClusterCodec), ProtoError, 'a type URL without a /');
});

test('the ADS service has the path and streaming the real ads.proto declares', () => {
  const svc = real.lookupService('envoy.service.discovery.v3.AggregatedDiscoveryService');
  const m = svc.methods.StreamAggregatedResources!;
  const ours = AggregatedDiscoveryService.StreamAggregatedResources;
  assert.equal(ours.path, `/${svc.fullName.slice(1)}/${m.name}`);
  assert.equal(ours.requestStream, Boolean(m.requestStream));
  assert.equal(ours.responseStream, Boolean(m.responseStream));
  assert.equal(DiscoveryRequestCodec.typeUrl, `type.googleapis.com/${m.resolvedRequestType!.fullName.slice(1)}`);
  // A response of the real protos, as a server built on them sends it, decodes with ours.
  const Res = realType('envoy.service.discovery.v3.DiscoveryResponse');
  const res = decodeDiscoveryResponse(Res.encode(Res.fromObject({ version_info: '7', type_url: ClusterCodec.typeUrl, nonce: 'n7', resources: [{ type_url: ClusterCodec.typeUrl, value: fullerCluster() }] })).finish());
  assert.equal(res.nonce, 'n7');
  assert.equal(unpackAny(res.resources[0]!, ClusterCodec).name, 'outbound|8080||payments.default.svc.cluster.local');
});

