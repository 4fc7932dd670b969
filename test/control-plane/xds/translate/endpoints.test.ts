// ClusterLoadAssignment → ServiceEndpoint[]: health, priorities, locality and endpoint weights,
// address forms; built by the generated encoders and once by the real Envoy protos.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ClusterLoadAssignment, decodeClusterLoadAssignment, encodeClusterLoadAssignment } from '../../../../src/proto/envoy/config/endpoint/v3/endpoint.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { translateEndpoints } from '../../../../src/control-plane/xds/translate/endpoints.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { loadReal } from '../../../helpers/xds-protos.js';

const ID = 'spiffe://cluster.local/ns/default/sa/payments';
const ep = (address: string, port = 8080, extra: object = {}) => ({ endpoint: { address: { socketAddress: { address, portValue: port } } }, ...extra });
const cla = (endpoints: object[]) => decodeClusterLoadAssignment(encodeClusterLoadAssignment({ clusterName: 'c', endpoints } as DeepPartial<ClusterLoadAssignment>));
const ok = (endpoints: object[]) => {
  const t = translateEndpoints(cla(endpoints), ID);
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value;
};
const reasons = (endpoints: object[]) => {
  const t = translateEndpoints(cla(endpoints), ID);
  assert.ok(!t.ok, 'was accepted');
  return formatReasons(t.reasons);
};

test('endpoints: address:port ([v6]:port), weight (default 1), zone from the locality, the cluster identity', () => {
  assert.deepEqual(ok([{ locality: { region: 'eu', zone: 'eu-1a' }, lbEndpoints: [ep('10.0.0.1'), ep('fd00::2', 9090, { loadBalancingWeight: 3 })] }]), [
    { address: '10.0.0.1:8080', identity: ID, weight: 1, zone: 'eu-1a' },
    { address: '[fd00::2]:9090', identity: ID, weight: 3, zone: 'eu-1a' },
  ]);
  assert.deepEqual(ok([]), [], 'delivered, none');
});

test('health: only HEALTHY and UNKNOWN are used', () => {
  const list = ok([{ lbEndpoints: [0, 1, 2, 3, 4, 5, 9].map((h, i) => ep(`10.0.0.${i + 1}`, 80, { healthStatus: h })) }]);
  assert.deepEqual(list.map((e) => e.address), ['10.0.0.1:80', '10.0.0.2:80']);
  assert.deepEqual(ok([{ lbEndpoints: [ep('10.0.0.1', 80, { healthStatus: 2 })] }]), []);
});

test('priorities: the lowest with a usable endpoint is used whole; gaps are refused', () => {
  const p = (p0Health: number) => ok([
    { priority: 1, lbEndpoints: [ep('10.0.1.1')] },
    { priority: 0, lbEndpoints: [ep('10.0.0.1', 8080, { healthStatus: p0Health })] },
    { priority: 2, lbEndpoints: [ep('10.0.2.1')] },
  ]).map((e) => e.address);
  assert.deepEqual(p(1), ['10.0.0.1:8080']);
  assert.deepEqual(p(2), ['10.0.1.1:8080'], 'priority 0 has no healthy endpoint: failover to 1');
  assert.match(reasons([{ priority: 0, lbEndpoints: [ep('10.0.0.1')] }, { priority: 2, lbEndpoints: [ep('10.0.0.2')] }]), /priorities must run 0, 1, 2 … without gaps; got 0, 2/);
  assert.match(reasons([{ priority: 1, lbEndpoints: [ep('10.0.0.1')] }]), /got 1/);
});

test('locality weights: istiod\'s (sum of endpoint weights) leave weights as they are; others give each locality its share', () => {
  const istio = ok([{ locality: { zone: 'a' }, loadBalancingWeight: 3, lbEndpoints: [ep('10.0.0.1', 80, { loadBalancingWeight: 2 }), ep('10.0.0.2')] }, { locality: { zone: 'b' }, loadBalancingWeight: 1, lbEndpoints: [ep('10.0.0.3')] }]);
  assert.deepEqual(istio.map((e) => e.weight), [2, 1, 1]);
  const shares = ok([{ locality: { zone: 'a' }, loadBalancingWeight: 1, lbEndpoints: [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')] }, { locality: { zone: 'b' }, loadBalancingWeight: 1, lbEndpoints: [ep('10.0.1.1')] }]);
  const w = shares.map((e) => e.weight);
  assert.ok(w.every(Number.isInteger));
  const total = w.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs((w[0]! + w[1]! + w[2]!) / total - 0.5) < 1e-5 && Math.abs(w[3]! / total - 0.5) < 1e-5, `locality shares: ${w}`);
  assert.deepEqual(ok([{ locality: { zone: 'a' }, loadBalancingWeight: 0, lbEndpoints: [ep('10.0.0.1')] }, { locality: { zone: 'b' }, loadBalancingWeight: 5, lbEndpoints: [ep('10.0.1.1')] }]).map((e) => e.address), ['10.0.1.1:80'.replace(':80', ':8080')], 'a locality of weight 0 gets nothing');
  assert.deepEqual(ok([{ priority: 0, loadBalancingWeight: 0, lbEndpoints: [ep('10.0.0.1')] }, { priority: 1, lbEndpoints: [ep('10.0.1.1')] }]).map((e) => e.address), ['10.0.1.1:8080'], 'a priority whose localities all weigh 0 is skipped');
  assert.match(reasons([{ locality: { zone: 'a' }, loadBalancingWeight: 1, lbEndpoints: [ep('10.0.0.1')] }, { locality: { zone: 'b' }, lbEndpoints: [ep('10.0.1.1')] }]), /some localities of the priority in use carry load_balancing_weight/);
});

test('refusals name the endpoint: weight 0, hostnames, named ports, UDP, resolvers, bad ports, duplicates, no socket address', () => {
  const one = (e: object) => reasons([{ lbEndpoints: [e] }]);
  assert.match(one(ep('10.0.0.1', 80, { loadBalancingWeight: 0 })), /^ClusterLoadAssignment "c" endpoints\[0\]\.lb_endpoints\[0\]\.load_balancing_weight: must be at least 1/);
  assert.match(one(ep('payments.default.svc')), /socket_address\.address: "payments\.default\.svc" is not an IP literal/);
  assert.match(one(ep('fe80::1%eth0')), /no zone index/);
  assert.match(one(ep('0.0.0.0')), /unspecified address/);
  assert.match(one(ep('::')), /unspecified address/);
  assert.match(one(ep('10.0.0.1', 0)), /port_value: unset is not a port|port_value: 0 is not a port/);
  assert.match(one({ endpoint: { address: { socketAddress: { address: '10.0.0.1', namedPort: 'http' } } } }), /named_port: named ports/);
  assert.match(one({ endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 53, protocol: 1 } } } }), /protocol: only TCP/);
  assert.match(one({ endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 53, resolverName: 'dns' } } } }), /resolver_name/);
  assert.match(one({ endpoint: {} }), /endpoint\.address\.socket_address: is required/);
  assert.match(one({ healthStatus: 1 }), /socket_address: is required/);
  assert.match(reasons([{ lbEndpoints: [ep('10.0.0.1')] }, { lbEndpoints: [ep('10.0.0.1', 8080, { healthStatus: 3 })] }]), /endpoints\[1\]\.lb_endpoints\[0\]\.endpoint\.address: 10\.0\.0\.1:8080 is also endpoints\[0\]\.lb_endpoints\[0\]/);
});

test('a ClusterLoadAssignment encoded by the real Envoy protos, as istiod builds it', () => {
  const real = loadReal();
  const T = real.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment');
  const bytes = T.encode(T.fromObject({
    cluster_name: 'outbound|8080||payments.default.svc.cluster.local',
    endpoints: [{
      locality: { region: 'us', zone: 'us-1a', sub_zone: '' },
      load_balancing_weight: { value: 2 },
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '10.1.0.7', port_value: 8080 } }, health_check_config: { port_value: 15021 } }, health_status: 1, load_balancing_weight: { value: 1 }, metadata: { filter_metadata: { istio: { fields: { workload: { string_value: 'payments-v1' } } } } } },
        { endpoint: { address: { socket_address: { address: '10.1.0.8', port_value: 8080 } } }, health_status: 3, load_balancing_weight: { value: 1 } },
        { endpoint: { address: { socket_address: { address: '10.1.0.9', port_value: 8080 } } }, load_balancing_weight: { value: 1 } },
      ],
    }],
    policy: { overprovisioning_factor: { value: 140 } },
  })).finish();
  const t = translateEndpoints(decodeClusterLoadAssignment(bytes), ID);
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.value, [
    { address: '10.1.0.7:8080', identity: ID, weight: 1, zone: 'us-1a' },
    { address: '10.1.0.9:8080', identity: ID, weight: 1, zone: 'us-1a' },
  ]);
});

test('a locality listed twice at one priority is refused (gRPC does too); the same locality at two priorities is fine', () => {
  const loc = { region: 'eu', zone: 'eu-1a' };
  assert.match(reasons([{ locality: loc, lbEndpoints: [ep('10.0.0.1')] }, { locality: loc, lbEndpoints: [ep('10.0.0.2')] }]), /endpoints\[1\]\.locality: is the same locality and priority as endpoints\[0\]/);
  assert.equal(ok([{ locality: loc, lbEndpoints: [ep('10.0.0.1')] }, { locality: loc, priority: 1, lbEndpoints: [ep('10.0.0.2')] }]).length, 1);
});
