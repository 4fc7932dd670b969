// The Node the ADS client sends, as istiod reads it: encoded with the project's codec and decoded
// with the REAL envoy.config.core.v3.Node (protobufjs over @grpc/grpc-js-xds's deps), then read as
// the JSON istiod's NodeMetadata unmarshals; plus a table of the inputs istiod would refuse.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildNode, type NodeInput } from '../../../src/control-plane/xds/node.js';
import { isLoopbackAddress, workloadIp } from '../../../src/control-plane/xds/open.js';
import { workloadOf } from '../../../src/server/registry/workload-node.js';
import { encodeNode } from '../../../src/proto/envoy/config/core/v3/base.js';
import { loadReal } from '../../helpers/xds-protos.js';

const base: NodeInput = {
  service: 'payments',
  namespace: 'shop',
  spiffeId: 'spiffe://cluster.local/ns/shop/sa/payments-sa',
  labels: { app: 'payments', version: 'v2' },
  ip: '10.4.0.17',
  pod: 'payments-7d9f-abcde',
  clusterId: 'Kubernetes',
  version: '0.1.0',
};

const real = loadReal().lookupType('envoy.config.core.v3.Node');
const asIstiodReadsIt = (input: NodeInput) => real.toObject(real.decode(encodeNode(buildNode(input))), { defaults: false }) as Record<string, unknown>;
/** google.protobuf.Struct as protobufjs decodes it, to plain JSON (what istiod's jsonpb reads). */
function structJson(s: { fields?: Record<string, Record<string, unknown>> } | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) {
    if ('stringValue' in v) out[k] = v.stringValue;
    else if ('structValue' in v) out[k] = structJson(v.structValue as never);
    else out[k] = v;
  }
  return out;
}

test('the node istiod gets: id, cluster, user agent, features and GENERATOR=grpc metadata from the mesh config', () => {
  const node = asIstiodReadsIt(base);
  assert.equal(node.id, 'sidecar~10.4.0.17~payments-7d9f-abcde.shop~shop.svc.cluster.local');
  assert.equal(node.cluster, 'payments.shop');
  assert.equal(node.user_agent_name, 'sidecarless');
  assert.equal(node.user_agent_version, '0.1.0');
  assert.deepEqual(node.client_features, ['envoy.lb.does_not_support_overprovisioning']);
  assert.deepEqual(structJson(node.metadata as never), {
    GENERATOR: 'grpc',
    NAMESPACE: 'shop',
    SERVICE_ACCOUNT: 'payments-sa',
    INSTANCE_IPS: '10.4.0.17',
    NAME: 'payments-7d9f-abcde',
    LABELS: { app: 'payments', version: 'v2' },
    CLUSTER_ID: 'Kubernetes',
  });
});

test('node table: defaults, IPv6, no cluster id', () => {
  const rows: Array<[string, Partial<NodeInput>, (n: Record<string, unknown>, md: Record<string, unknown>) => void]> = [
    ['the pod defaults to the service', { pod: undefined }, (n, md) => {
      assert.equal(n.id, 'sidecar~10.4.0.17~payments.shop~shop.svc.cluster.local');
      assert.equal(md.NAME, 'payments');
    }],
    ['an IPv6 pod IP goes in as is (istiod splits the id on ~)', { ip: 'fd00::17' }, (n, md) => {
      assert.equal(n.id, 'sidecar~fd00::17~payments-7d9f-abcde.shop~shop.svc.cluster.local');
      assert.equal(md.INSTANCE_IPS, 'fd00::17');
    }],
    ['no cluster id: no CLUSTER_ID key', { clusterId: undefined }, (_n, md) => assert.equal('CLUSTER_ID' in md, false)],
    ['no labels: an empty LABELS struct', { labels: undefined }, (_n, md) => assert.deepEqual(md.LABELS, {})],
    ['controlPlane.advertise: SIDECARLESS_ADVERTISE', { advertise: 'payments.vm.example:443' }, (_n, md) => assert.equal(md.SIDECARLESS_ADVERTISE, 'payments.vm.example:443')],
    ['no advertise: no SIDECARLESS_ADVERTISE key', {}, (_n, md) => assert.equal('SIDECARLESS_ADVERTISE' in md, false)],
  ];
  for (const [name, patch, check] of rows) {
    const node = asIstiodReadsIt({ ...base, ...patch });
    check(node, structJson(node.metadata as never));
    void name;
  }
});

test('node table: what istiod would refuse is a ConfigError naming the option and what to do', () => {
  const rows: Array<[string, Partial<NodeInput>, string, RegExp]> = [
    ['absent IP', { ip: undefined }, 'ip', /advertised IP is required.*pod's IP/],
    ['empty IP', { ip: '' }, 'ip', /advertised IP is required/],
    ['a host name for an IP', { ip: 'payments.shop.svc' }, 'ip', /must be an IPv4 or IPv6 address.*"payments\.shop\.svc"/],
    ['an IP with a port', { ip: '10.4.0.17:8080' }, 'ip', /must be an IPv4 or IPv6 address/],
    ['a ~ smuggled in the IP', { ip: '10.0.0.1~evil' }, 'ip', /must be an IPv4 or IPv6 address/],
    ['a ~ in the pod name', { pod: 'payments~x~y' }, 'pod', /must be a Kubernetes pod name.*"payments~x~y"/],
    ['an upper-case pod name', { pod: 'Payments' }, 'pod', /must be a Kubernetes pod name/],
    ['a SPIFFE ID without /ns/<ns>/sa/<sa>', { spiffeId: 'spiffe://cluster.local/payments' }, 'spiffeId', /Istio's shape/],
    ['a SPIFFE ID of another namespace', { spiffeId: 'spiffe://cluster.local/ns/other/sa/payments' }, 'spiffeId', /namespace "other".*"shop".*PermissionDenied/],
  ];
  for (const [name, patch, path, message] of rows) {
    assert.throws(() => buildNode({ ...base, ...patch }), (e: Error & { code?: string; issues?: Array<{ path: string }> }) => {
      assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID', name);
      assert.equal(e.issues?.[0]?.path, path, name);
      assert.match(e.message, message, name);
      return true;
    }, name);
  }
});

test('the embedded control plane reads back what the node says (service, namespace, IPs, labels, advertise)', () => {
  assert.deepEqual(workloadOf(buildNode({ ...base, advertise: '10.9.0.1:8443' })), {
    service: 'payments',
    namespace: 'shop',
    ips: ['10.4.0.17'],
    labels: { app: 'payments', version: 'v2' },
    advertise: ['10.9.0.1:8443'],
    name: 'payments-7d9f-abcde',
  });
});

test('the workload IP: INSTANCE_IP, else loopback when the control plane is on loopback, else a non-internal address', () => {
  assert.equal(workloadIp({ INSTANCE_IP: '10.1.2.3' }, '127.0.0.1:15012'), '10.1.2.3');
  for (const cp of ['127.0.0.1:15012', 'localhost:15012', '[::1]:15012', '127.9.9.9:1']) assert.equal(workloadIp({}, cp), '127.0.0.1', cp);
  assert.equal(isLoopbackAddress('istiod.istio-system.svc:15012'), false);
  assert.equal(isLoopbackAddress('127.0.0.1.example:15012'), false);
  assert.equal(isLoopbackAddress('10.0.0.1:15012'), false);
});
