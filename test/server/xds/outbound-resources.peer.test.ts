// A real peer reads the generator's resources: @grpc/grpc-js-xds (two children, one per target, so
// every resource is subscribed by one of them) served by the SotW test server ACKs every type at
// the version served, and NACKs nothing. Its bootstrap defines the certificate provider `default`
// (as istio-agent's does), so the Clusters' ISTIO_MUTUAL TLS contexts resolve; portableLbPolicy,
// since grpc-js-xds 1.14 takes no lb_policy but ROUND_ROBIN.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateOutboundResources } from '../../../src/server/xds/outbound-resources.js';
import { DEFAULT_SERVICE_SETTINGS, type ServiceSpec } from '../../../src/outbound/settings.js';
import { retryPolicySettings } from '../../../src/outbound/retry/policy.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from '../../../src/outbound/retry/replay-body.js';
import { startXdsServer } from '../../helpers/xds/xds-server.js';
import type { XdsResource } from '../../helpers/xds/resources.js';
import { runGrpcXdsClient } from '../../helpers/xds/grpc-xds-child.js';
import { craftLeaf, idOf } from '../../helpers/certs.js';
import { tempDirFor } from '../../helpers/tmp.js';
import { devCa } from '../../outbound/e2e/replicas.js';

const policy = { retry: null, maxReplayBodyBytes: DEFAULT_MAX_REPLAY_BODY_BYTES, timeout: { requestMs: 2000 } };
const spec = (name: string, o: Partial<ServiceSpec>): ServiceSpec => ({ name, namespace: 'default', hostnames: [], identity: idOf(name), settings: DEFAULT_SERVICE_SETTINGS, routes: [], endpoints: [], ...o });

test('grpc-js-xds ACKs every generated resource (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment), NACKs none', async (t) => {
  const retry = retryPolicySettings({ maxRetries: 2, retryOnFailures: ['connect', 'reset', 'timeout'], retryOnStatuses: [503, 504, 502] });
  const generated = generateOutboundResources([
    {
      port: 8080,
      spec: spec('payments', {
        settings: { ...DEFAULT_SERVICE_SETTINGS, balancer: 'round-robin' },
        routes: [
          { name: 'exact', match: { path: { exact: '/x.Y/Z' }, methods: ['POST'] }, policy },
          { name: 'segment', match: { path: { prefix: '/x.Y' }, headers: [{ name: 'x-canary', exact: 'yes' }, { name: 'x-debug', present: true }] }, policy: { ...policy, retry }, split: [{ service: 'payments-v2', weight: 90 }, { service: 'payments', weight: 10 }] },
          { name: 'regex', match: { path: { regex: '/x\\.[A-Z]/[a-z]+' }, headers: [{ name: 'x-tenant', regex: 'a(b|c)' }] }, policy: { ...policy, timeout: { perTryMs: 300 } } },
          { name: 'plain', match: { path: { stringPrefix: '/st' } }, policy },
        ],
        endpoints: [
          { address: '127.0.0.1:9', identity: idOf('payments'), weight: 2, zone: 'us-central1-a' },
          { address: '127.0.0.2:9', identity: idOf('payments'), weight: 1, zone: 'us-central1-b' },
        ],
      }),
    },
    // protocol grpc: the Cluster carries istiod's explicit HTTP/2 typed_extension_protocol_options.
    { port: 9090, spec: spec('payments-v2', { settings: { ...DEFAULT_SERVICE_SETTINGS, balancer: 'random', accrual: false, protocol: 'grpc' }, endpoints: [{ address: '127.0.0.3:9', identity: idOf('payments-v2'), weight: 1 }] }) },
  ], { portableLbPolicy: true }); // grpc-js-xds takes no lb_policy but ROUND_ROBIN (it NACKs RANDOM, LEAST_REQUEST)
  const resources: XdsResource[] = [...generated].flatMap(([typeUrl, m]) => [...m].map(([name, value]) => ({ typeUrl, name, any: { typeUrl, value } })));
  const dir = tempDirFor(t);
  const ca = await devCa();
  const leaf = await craftLeaf(ca, { uris: [idOf('grpc-client')] });
  writeFileSync(join(dir, 'cert-chain.pem'), leaf.certChainPem);
  writeFileSync(join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'root-cert.pem'), ca.bundlePem);
  const certificateProviders = {
    default: { plugin_name: 'file_watcher', config: { certificate_file: join(dir, 'cert-chain.pem'), private_key_file: join(dir, 'key.pem'), ca_certificate_file: join(dir, 'root-cert.pem'), refresh_interval: '600s' } },
  };
  const server = await startXdsServer(t, { resources });
  const runs = ['payments.default.svc.cluster.local:8080', 'payments-v2.default.svc.cluster.local:9090'].map((target, i) =>
    runGrpcXdsClient(t, { server: server.plaintextAddress, pod: `gen-peer-${i}`, target: `xds:///${target}`, phases: [[{ method: '/x.Y/Z', n: 1 }], []], deadlineMs: 1_000, certificateProviders }),
  );
  try {
    // Every resource name is requested by one of the children, and each child's last answer per type is an ACK of the version served.
    const served = new Map([...generated].map(([type, m]) => [type, new Set(m.keys())]));
    await server.waitFor('both children to ACK every type at the served version', () => {
      const clients = runs.map((r) => server.clients.find((c) => c.nodeId === r.nodeId));
      if (clients.some((c) => c === undefined)) return false;
      for (const [type, names] of served) {
        const requested = new Set(clients.flatMap((c) => c!.requests.filter((q) => q.typeUrl === type).flatMap((q) => q.resourceNames)));
        if (![...names].every((n) => requested.has(n))) return false;
        for (const c of clients) {
          const last = c!.events.filter((e) => e.typeUrl === type && (e.kind === 'ack' || e.kind === 'nack')).at(-1);
          if (last?.kind !== 'ack' || last.version !== server.version(type)) return false;
        }
      }
      return true;
    }, 15_000);
    const nacks = server.clients.flatMap((c) => c.events.filter((e) => e.kind === 'nack').map((e) => `${e.typeUrl}: ${e.error?.message}`));
    assert.deepEqual(nacks, []);
  } catch (e) {
    const nacks = server.clients.flatMap((c) => c.events.filter((x) => x.kind === 'nack').map((x) => `${x.typeUrl}: ${x.error?.message}`));
    throw new Error(`${(e as Error).message}; NACKs: ${JSON.stringify(nacks)}; stderr: ${runs.map((r) => r.stderr()).join(' | ')}`);
  } finally {
    await Promise.all(runs.map((r) => r.stop()));
  }
});
