import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../../src/config.js';
import { fastConfig } from '../../src/config/fast.js';
import { ConfigError } from '../../src/errors.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID');
    return e;
  }
  assert.fail('expected a ConfigError');
}

test('controlPlane.linkerd: the defaults of a Linkerd install', () => {
  const c = resolveConfig({ service: 'web', namespace: 'emojivoto', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, { HOSTNAME: 'web-5d8f-abc' });
  assert.equal(c.controlPlane, undefined, 'no xDS control plane');
  assert.deepEqual(c.linkerd, {
    namespace: 'linkerd',
    trustDomain: 'cluster.local',
    identityDomain: 'identity.linkerd.cluster.local',
    localName: 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local',
    trustAnchors: { pem: PEM },
    token: { file: '/var/run/secrets/tokens/linkerd-identity-token' },
    identity: { address: 'linkerd-identity-headless.linkerd.svc.cluster.local:8080', serverName: 'linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local' },
    destination: { address: 'linkerd-dst-headless.linkerd.svc.cluster.local:8086', serverName: 'linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local' },
    policy: { address: 'linkerd-policy.linkerd.svc.cluster.local:8090', serverName: 'linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local' },
    workload: { namespace: 'emojivoto', pod: 'web-5d8f-abc' },
    contextToken: '{"ns":"emojivoto","pod":"web-5d8f-abc"}',
    workloadToken: '{"ns":"emojivoto","pod":"web-5d8f-abc"}',
  });
});

test('controlPlane.linkerd: another control namespace and trust domain, the service account of spiffeId', () => {
  const c = resolveConfig({ service: 'web', trustDomain: 'example.org', spiffeId: 'spiffe://example.org/ns/default/sa/web-sa', controlPlane: { linkerd: { namespace: 'l5d', trustAnchors: { file: '/anchors.pem' } } } }, {});
  assert.equal(c.linkerd!.localName, 'web-sa.default.serviceaccount.identity.l5d.example.org');
  assert.equal(c.linkerd!.identity.address, 'linkerd-identity-headless.l5d.svc.cluster.local:8080');
  assert.equal(c.linkerd!.destination.serverName, 'linkerd-destination.l5d.serviceaccount.identity.l5d.example.org');
  assert.deepEqual(c.linkerd!.trustAnchors, { file: '/anchors.pem' });
});

test("controlPlane.linkerd: linkerd2-proxy's variables fill what the code did not set", () => {
  const env = {
    LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: PEM,
    LINKERD2_PROXY_IDENTITY_TOKEN_FILE: '/t/token',
    LINKERD2_PROXY_IDENTITY_SVC_ADDR: '10.0.0.1:8080',
    LINKERD2_PROXY_IDENTITY_SVC_NAME: 'id.linkerd.serviceaccount.identity.linkerd.td.io',
    LINKERD2_PROXY_DESTINATION_SVC_ADDR: '10.0.0.2:8086',
    LINKERD2_PROXY_DESTINATION_SVC_NAME: 'dst.linkerd.serviceaccount.identity.linkerd.td.io',
    LINKERD2_PROXY_POLICY_SVC_ADDR: '10.0.0.3:8090',
    LINKERD2_PROXY_POLICY_SVC_NAME: 'pol.linkerd.serviceaccount.identity.linkerd.td.io',
    LINKERD2_PROXY_POLICY_WORKLOAD: '{"ns":"prod","pod":"web-1"}',
    LINKERD2_PROXY_DESTINATION_CONTEXT: '{"ns":"prod","nodeName":"n1","pod":"web-1"}',
    LINKERD2_PROXY_IDENTITY_LOCAL_NAME: 'web.prod.serviceaccount.identity.linkerd.td.io',
  };
  const c = resolveConfig({ service: 'web', controlPlane: { linkerd: { destination: { address: '127.0.0.1:9999' } } } }, env);
  const l = c.linkerd!;
  assert.equal(l.localName, 'web.prod.serviceaccount.identity.linkerd.td.io');
  assert.equal(l.trustDomain, 'td.io');
  assert.equal(l.identityDomain, 'identity.linkerd.td.io');
  assert.deepEqual(l.trustAnchors, { pem: PEM });
  assert.deepEqual(l.token, { file: '/t/token' });
  assert.deepEqual(l.identity, { address: '10.0.0.1:8080', serverName: 'id.linkerd.serviceaccount.identity.linkerd.td.io' });
  assert.deepEqual(l.destination, { address: '127.0.0.1:9999', serverName: 'dst.linkerd.serviceaccount.identity.linkerd.td.io' }, 'the code wins');
  assert.deepEqual(l.policy, { address: '10.0.0.3:8090', serverName: 'pol.linkerd.serviceaccount.identity.linkerd.td.io' });
  assert.deepEqual(l.workload, { namespace: 'prod', pod: 'web-1' });
  assert.equal(l.contextToken, env.LINKERD2_PROXY_DESTINATION_CONTEXT);
  assert.equal(l.workloadToken, '{"ns":"prod","pod":"web-1"}');
  assert.equal(resolveConfig({ service: 'web', controlPlane: { linkerd: {} } }, { ...env, LINKERD2_PROXY_POLICY_WORKLOAD: 'legacy:web-2' }).linkerd!.workload.pod, 'web-2');
});

test('controlPlane.linkerd: the variables never turn Linkerd on by themselves', () => {
  const c = resolveConfig({ service: 'web' }, { LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: PEM, LINKERD2_PROXY_DESTINATION_SVC_ADDR: '10.0.0.2:8086' });
  assert.equal(c.linkerd, undefined);
  assert.equal(c.controlPlane, undefined);
});

test('controlPlane.linkerd and an xDS control plane are exclusive', () => {
  const e = configError(() => resolveConfig({ service: 'web', controlPlane: { address: 'istiod:15012', root: '/r.pem', token: 't', linkerd: {} } as never }, {}));
  assert.deepEqual(e.issues.map((i) => i.path), ['controlPlane.address', 'controlPlane.root', 'controlPlane.token']);
  assert.match(e.message, /controlPlane\.address must not be set beside controlPlane\.linkerd: .*xDS control plane.*a mesh has one control plane/);
  const fromEnv = configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, { SIDECARLESS_CONTROL_PLANE: 'istiod:15012' }));
  assert.match(fromEnv.message, /controlPlane\.address \(from SIDECARLESS_CONTROL_PLANE\) must not be set beside controlPlane\.linkerd/);
});

test('controlPlane.linkerd: bad values name their path', () => {
  assert.match(configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: {} } }, {})).message, /controlPlane\.linkerd\.trustAnchors is required: pass \{ file \} or \{ pem \}.*LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS/);
  const bad = configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM }, destination: { address: 'nope' }, policy: { serverName: 'Upper.Case' }, namespace: 'Linkerd' } } } as never, {}));
  assert.deepEqual(bad.issues.map((i) => i.path).sort(), ['controlPlane.linkerd.destination.address', 'controlPlane.linkerd.namespace', 'controlPlane.linkerd.policy.serverName']);
  const extra = configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM }, identty: {} } } } as never, {}));
  assert.equal(extra.issues[0]!.path, 'controlPlane.linkerd.identty');
  const envBad = configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, { LINKERD2_PROXY_DESTINATION_SVC_ADDR: 'x' }));
  assert.deepEqual(envBad.issues[0], { path: 'controlPlane.linkerd.destination.address', message: 'must be host:port (IPv6 as [::1]:port), port 1-65535', env: 'LINKERD2_PROXY_DESTINATION_SVC_ADDR' });
  const localBad = configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, { LINKERD2_PROXY_IDENTITY_LOCAL_NAME: 'web.default.svc.cluster.local' }));
  assert.equal((localBad.issues[0] as { env?: string }).env, 'LINKERD2_PROXY_IDENTITY_LOCAL_NAME');
  assert.match(configError(() => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, { LINKERD2_PROXY_POLICY_WORKLOAD: '{bad' })).message, /LINKERD2_PROXY_POLICY_WORKLOAD/);
});

test('the fast path sends controlPlane.linkerd to zod', () => {
  assert.equal(fastConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: PEM } } } }, {}), undefined);
});
