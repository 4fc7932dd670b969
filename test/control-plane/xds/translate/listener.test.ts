// Client Listener → RDS name or inline routes: built by the generated encoders (HCM packed in an
// Any, as istiod sends it) and once by the real Envoy protos.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Listener, decodeListener, encodeListener } from '../../../../src/proto/envoy/config/listener/v3/listener.js';
import { type HttpConnectionManager, HttpConnectionManagerCodec } from '../../../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RouterCodec } from '../../../../src/proto/envoy/extensions/filters/http/router/v3/router.js';
import { RBACCodec } from '../../../../src/proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { packAny } from '../../../../src/proto/any-pack.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { translateListener } from '../../../../src/control-plane/xds/translate/listener.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { loadReal } from '../../../helpers/xds-protos.js';

const FAULT_URL = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const router = { name: 'envoy.filters.http.router', typedConfig: packAny(RouterCodec, {}) };
const fault = { name: 'envoy.filters.http.fault', typedConfig: { typeUrl: FAULT_URL, value: new Uint8Array() } };
const rds = { configSource: { ads: {} }, routeConfigName: 'outbound|8080||payments.default.svc.cluster.local' };
const listener = (hcm: DeepPartial<HttpConnectionManager>, extra: DeepPartial<Listener> = {}) =>
  decodeListener(encodeListener({ name: 'payments.default.svc.cluster.local:8080', apiListener: { apiListener: packAny(HttpConnectionManagerCodec, hcm) }, ...extra }));
const reasons = (l: Listener) => {
  const t = translateListener(l);
  assert.ok(!t.ok, 'was accepted');
  return formatReasons(t.reasons);
};

test('istiod\'s outbound listener: api_listener → HCM → RDS name over ADS, [fault, router] filters', () => {
  const t = translateListener(listener({ statPrefix: 'x', rds, httpFilters: [fault, router] }, { address: { socketAddress: { address: '10.96.0.5', portValue: 8080 } } }));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.value, { name: 'payments.default.svc.cluster.local:8080', routes: { rds: 'outbound|8080||payments.default.svc.cluster.local' } });
  assert.deepEqual(t.notes, []);
  const self = translateListener(listener({ rds: { ...rds, configSource: { self: {}, resourceApiVersion: 2 } }, httpFilters: [router] }));
  assert.ok(self.ok);
});

test('inline route_config is translated, its reasons named under the Listener; the HCM default timeout applies to it', () => {
  const routeConfig = { name: 'inline', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] };
  const t = translateListener(listener({ routeConfig, httpFilters: [router], commonHttpProtocolOptions: { maxStreamDuration: { seconds: 4 }, idleTimeout: { seconds: 60 } } }));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.equal(t.value.defaultTimeoutMs, 4000);
  assert.ok('inline' in t.value.routes);
  assert.deepEqual(t.value.routes.inline.virtualHosts[0]!.routes[0]!.policy.timeout, { requestMs: 4000 });
  assert.match(t.notes[0]!.field, /common_http_protocol_options\.idle_timeout/);
  const bad = reasons(listener({ routeConfig: { ...routeConfig, virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn: 'bogus' } } }] }] }, httpFilters: [router] }));
  assert.match(bad, /^Listener "payments\.default\.svc\.cluster\.local:8080" api_listener\.api_listener\.route_config\.virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy\.retry_on: "bogus"/);
});

test('refusals: not an API listener, another type, sockets, filters, config sources, trusted hops, no route specifier', () => {
  assert.match(reasons(decodeListener(encodeListener({ name: 'l' }))), /api_listener: a client listener must be an API listener/);
  assert.match(reasons(decodeListener(encodeListener({ name: 'l', apiListener: { apiListener: packAny(RouterCodec, {}) } }))), /holds "type\.googleapis\.com\/envoy\.extensions\.filters\.http\.router\.v3\.Router", not an HttpConnectionManager/);
  assert.match(reasons(decodeListener(encodeListener({ name: 'l', apiListener: { apiListener: { typeUrl: HttpConnectionManagerCodec.typeUrl, value: new Uint8Array([0x1a, 0x05, 1]) } } }))), /is not a valid HttpConnectionManager/);
  assert.match(reasons(listener({ rds, httpFilters: [router] }, { filterChains: [{ name: 'fc' }] })), /filter_chains: a client API listener/);
  assert.match(reasons(listener({ rds, httpFilters: [router] }, { listenerFilters: [{ name: 'tls_inspector' }] })), /listener_filters/);
  assert.match(reasons(listener({ rds, httpFilters: [router] }, { useOriginalDst: true })), /use_original_dst/);
  assert.match(reasons(listener({ rds, httpFilters: [] })), /http_filters: the last HTTP filter must be the router/);
  assert.match(reasons(listener({ rds, httpFilters: [router, fault] })), /the router must be the last filter|last HTTP filter must be the router/);
  assert.match(reasons(listener({ rds, httpFilters: [{ name: 'rbac', typedConfig: packAny(RBACCodec, {}) }, router] })), /http_filters\[0\]: filter "rbac" \("envoy\.extensions\.filters\.http\.rbac\.v3\.RBAC"\) is not supported on a client listener/);
  assert.match(reasons(listener({ rds, httpFilters: [{ ...fault, typedConfig: { typeUrl: FAULT_URL, value: new Uint8Array([0x22, 0]) } }, router] })), /filter "envoy\.filters\.http\.fault"/);
  assert.match(reasons(listener({ rds, httpFilters: [{ name: 'x' }, router] })), /http_filters\[0\]\.typed_config: filter "x" has no typed_config/);
  assert.match(reasons(listener({ rds: { routeConfigName: 'r' }, httpFilters: [router] })), /rds\.config_source: is required/);
  assert.match(reasons(listener({ rds: { configSource: { resourceApiVersion: 2 }, routeConfigName: 'r' }, httpFilters: [router] })), /rds\.config_source: must be ads or self/);
  assert.match(reasons(listener({ rds: { configSource: { ads: {}, resourceApiVersion: 1 }, routeConfigName: 'r' }, httpFilters: [router] })), /xDS v2 is not supported/);
  assert.match(reasons(listener({ rds: { configSource: { ads: {} } }, httpFilters: [router] })), /rds\.route_config_name: is empty/);
  assert.match(reasons(listener({ rds, httpFilters: [router], xffNumTrustedHops: 1 })), /xff_num_trusted_hops: must be 0/);
  assert.match(reasons(listener({ httpFilters: [router] })), /route_specifier: neither rds nor route_config/);
});

test('optional or disabled unknown filters are skipped with a note; router options are noted', () => {
  const t = translateListener(listener({ rds, httpFilters: [{ name: 'ext', typedConfig: { typeUrl: 'type.googleapis.com/x.Y', value: new Uint8Array([1]) }, isOptional: true }, { name: 'off', typedConfig: packAny(RBACCodec, {}), disabled: true }, { ...router, typedConfig: { ...router.typedConfig, value: new Uint8Array([8, 1]) } }] }));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.notes.map((n) => n.field), ['api_listener.api_listener.http_filters[0]', 'api_listener.api_listener.http_filters[1]', 'api_listener.api_listener.http_filters[2].typed_config']);
});

test('a Listener encoded by the real Envoy protos, as istiod\'s grpcgen builds it', () => {
  const real = loadReal();
  const L = real.lookupType('envoy.config.listener.v3.Listener');
  const H = real.lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const R = real.lookupType('envoy.extensions.filters.http.router.v3.Router');
  const hcm = H.encode(H.fromObject({
    rds: { config_source: { ads: {}, resource_api_version: 2 }, route_config_name: 'outbound|8080||payments.default.svc.cluster.local' },
    http_filters: [{ name: 'envoy.filters.http.fault', typed_config: { type_url: FAULT_URL, value: Buffer.alloc(0) } }, { name: 'envoy.filters.http.router', typed_config: { type_url: RouterCodec.typeUrl, value: R.encode(R.fromObject({})).finish() } }],
    use_remote_address: { value: true },
  })).finish();
  const bytes = L.encode(L.fromObject({ name: 'payments.default.svc.cluster.local:8080', address: { socket_address: { address: '10.96.0.5', port_value: 8080 } }, api_listener: { api_listener: { type_url: HttpConnectionManagerCodec.typeUrl, value: hcm } } })).finish();
  const t = translateListener(decodeListener(bytes));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.value.routes, { rds: 'outbound|8080||payments.default.svc.cluster.local' });
});
