// parseMeshFile, pure (policy files from a map): the model a good file gives (services typed as
// createMesh types them, identities, the generator's input with static ∪ registered endpoints,
// the policy for one workload as namespaces and selectors decide, a content version), and that a
// bad file is refused whole with every issue at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { parseMeshFile, MeshFileError, type MeshModel } from '../../../src/server/mesh-file/index.js';
import { serviceFromConfig } from '../../../src/control-plane/from-options.js';
import { serviceSchema } from '../../../src/config.js';
import { generateOutboundResources, TYPE_URLS } from '../../../src/server/xds/outbound-resources.js';
import { compilePolicy } from '../../../src/policy/index.js';
import { renderInboundListener } from '../../../src/server/xds/inbound-listener.js';

const FILE = '/etc/mesh/mesh.yaml';

function parse(text: string, policies: Record<string, string> = {}): MeshModel {
  return parseMeshFile(text, {
    file: FILE,
    readPolicy: (rel) => {
      const t = policies[rel];
      if (t === undefined) throw Object.assign(new Error(`ENOENT: no such file ${rel}`), { code: 'ENOENT' });
      return t;
    },
    policyFileName: (rel) => `/etc/mesh/${rel}`,
  });
}

function refused(fn: () => unknown): MeshFileError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MeshFileError, String(e));
    assert.equal(e.code, 'ERR_SIDECARLESS_MESH_FILE');
    return e;
  }
  assert.fail('accepted');
}

const MESH = `trustDomain: example.org
services:
  - name: payments
    port: 8443
    endpoints: [10.0.0.1:9001]
    split: [{ service: payments, weight: 90 }, { service: payments-v2, weight: 10 }]
    retry: { maxRetries: 2 }
    timeout: { request: 3s }
  - name: payments-v2
    port: 8443
  - name: ledger
    namespace: billing
    port: 9000
    protocol: grpc
policies:
  - file: policies/payments.yaml
  - file: policies/billing.yaml
`;

const PAYMENTS = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-orders, namespace: default }
spec:
  selector: { matchLabels: { app: payments } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [example.org/ns/default/sa/orders] } }] }]
`;
const BILLING = `rules:
  - action: deny
    namespace: billing
    to: [{ paths: [/admin/*] }]
  - action: allow
    namespace: nowhere
`;

test('a good file: services typed as createMesh types the same keys, with identities and defaults', () => {
  const m = parse(MESH, { 'policies/payments.yaml': PAYMENTS, 'policies/billing.yaml': BILLING });
  assert.equal(m.trustDomain, 'example.org');
  assert.equal(m.file, FILE);
  const [p, v2, ledger] = m.services;
  assert.deepEqual([p!.key, p!.namespace, p!.port, p!.protocol], ['payments.default', 'default', 8443, 'http']);
  assert.equal(p!.identity, 'spiffe://example.org/ns/default/sa/payments');
  assert.deepEqual(p!.split, [{ service: 'payments', weight: 90 }, { service: 'payments-v2', weight: 10 }]);
  assert.deepEqual(p!.endpoints.map((e) => e.address), ['10.0.0.1:9001']);
  assert.deepEqual(v2!.endpoints, []);
  assert.equal(ledger!.identity, 'spiffe://example.org/ns/billing/sa/ledger');
  assert.equal(ledger!.protocol, 'grpc');
  assert.equal(ledger!.spec.settings.protocol, 'grpc', 'the typed settings carry it: the generator emits HTTP/2 for it');
  // The spec is exactly what createMesh's outbound.services.payments would give for the same traffic keys.
  const same = serviceFromConfig('payments', serviceSchema.parse({ endpoints: ['10.0.0.1:9001'], split: p!.split, retry: { maxRetries: 2 }, timeout: { request: '3s' } }), { trustDomain: 'example.org', namespace: 'default' });
  assert.deepEqual(p!.spec, same);
  assert.equal(p!.spec.settings.timeout.requestMs, 3000);
  assert.ok(Object.isFrozen(m) && Object.isFrozen(m.services) && Object.isFrozen(p));
});

test('outbound(): static ∪ registered endpoints, and the generator serves it', () => {
  const m = parse(MESH, { 'policies/payments.yaml': PAYMENTS, 'policies/billing.yaml': BILLING });
  const id = 'spiffe://example.org/ns/default/sa/payments';
  const registered = { 'payments.default': [{ address: '10.0.0.1:9001', identity: id, weight: 5 }, { address: '10.0.0.2:9001', identity: id, weight: 1 }] } as Record<string, { address: string; identity: string; weight: number }[]>;
  const out = m.outbound((s) => registered[s.key]);
  assert.deepEqual(out.map((o) => [o.spec.name, o.port, o.spec.endpoints!.map((e) => `${e.address}/${e.weight}`)]), [
    ['payments', 8443, ['10.0.0.1:9001/1', '10.0.0.2:9001/1']], // the static one wins its address
    ['payments-v2', 8443, []],
    ['ledger', 9000, []],
  ]);
  const res = generateOutboundResources(out);
  assert.deepEqual([...res.get(TYPE_URLS.listener)!.keys()], ['ledger.billing.svc.cluster.local:9000', 'payments-v2.default.svc.cluster.local:8443', 'payments.default.svc.cluster.local:8443']);
  // The model is not changed by a call.
  assert.deepEqual(m.services[0]!.endpoints.map((e) => e.address), ['10.0.0.1:9001']);
  assert.equal(m.outbound()[0]!.spec.endpoints!.length, 1);
});

test('policyFor(): the rules whose namespace and selector match the workload; a policy selecting nothing is fine', () => {
  const m = parse(MESH, { 'policies/payments.yaml': PAYMENTS, 'policies/billing.yaml': BILLING });
  const names = (w: { namespace: string; service: string; labels: Record<string, string> }) => m.policyFor(w).rules.map((r) => r.name);
  assert.deepEqual(names({ namespace: 'default', service: 'payments', labels: { app: 'payments' } }), ['default/allow-orders#0']);
  assert.deepEqual(names({ namespace: 'default', service: 'payments-v2', labels: { app: 'payments-v2' } }), []);
  assert.deepEqual(names({ namespace: 'billing', service: 'ledger', labels: { app: 'ledger' } }), ['rule-0']);
  // What policyFor gives is what compilePolicy would keep for that workload, and it renders.
  const w = { namespace: 'default', service: 'payments', labels: { app: 'payments' } };
  const c = compilePolicy(m.policyFor(w), { trustDomain: m.trustDomain, ...w });
  assert.equal(c.ruleCount, compilePolicy(m.policy, { trustDomain: m.trustDomain, ...w }).ruleCount);
  assert.ok(renderInboundListener({ ip: '10.0.0.1', port: 9001, mode: 'strict', policy: m.policyFor(w), trustDomain: m.trustDomain, ...w }).length > 0);
});

test('rule names stay unique across policy files (two native files both have rule-0)', () => {
  const text = 'services: []\npolicies: [{ file: a.yaml }, { file: b.yaml }]\n';
  const m = parse(text, { 'a.yaml': 'rules: [{ action: allow }]\n', 'b.yaml': 'rules: [{ action: deny, to: [{ paths: [/x] }] }]\n' });
  assert.deepEqual(m.policy.rules.map((r) => [r.name, r.action]), [['rule-0', 'allow'], ['b.yaml:rule-0', 'deny']]);
});

test('a Linkerd policy set loads as the SDK loads it', () => {
  const linkerd = readFileSync(new URL('../../fixtures/policy/linkerd-booksapp.yaml', import.meta.url), 'utf8');
  const m = parse('services: [{ name: authors, namespace: booksapp, port: 7001 }]\npolicies: [{ file: linkerd.yaml }]\n', { 'linkerd.yaml': linkerd });
  assert.ok(m.policy.servers.length > 0);
  assert.equal(m.policyFor({ namespace: 'booksapp', service: 'authors', labels: { app: 'authors' } }).servers.length, m.policy.servers.length);
  assert.equal(m.policyFor({ namespace: 'booksapp', service: 'books', labels: { app: 'books' } }).servers.length, 0);
});

test('version: a content hash of the mesh file and its policy files', () => {
  const policies = { 'policies/payments.yaml': PAYMENTS, 'policies/billing.yaml': BILLING };
  const a = parse(MESH, policies).version;
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.equal(parse(MESH, { ...policies }).version, a);
  assert.notEqual(parse(MESH.replace('weight: 90', 'weight: 80'), policies).version, a);
  assert.notEqual(parse(MESH, { ...policies, 'policies/billing.yaml': `${BILLING}  - action: audit\n` }).version, a);
});

test('defaults: trustDomain cluster.local, namespace default, protocol http; services and policies may be absent', () => {
  const m = parse('services: [{ name: web, port: 80 }]\n');
  assert.equal(m.trustDomain, 'cluster.local');
  assert.deepEqual([m.services[0]!.namespace, m.services[0]!.protocol, m.services[0]!.identity], ['default', 'http', 'spiffe://cluster.local/ns/default/sa/web']);
  assert.deepEqual(m.policy, { rules: [], servers: [] });
  assert.equal(parse('trustDomain: cluster.local\n').services.length, 0);
});

test('every issue at once, each at its line; nothing is half-accepted', () => {
  const text = [
    'services:', //                                   1
    '  - name: a', //                                 2
    '    port: 0', //                                 3
    '  - name: B', //                                 4
    '    port: 80', //                                5
    '    protocl: grpc', //                           6
    'policies:', //                                   7
    '  - file: nope.yaml', //                         8
    '    mode: strict', //                            9
  ].join('\n');
  const e = refused(() => parse(text));
  assert.deepEqual(e.issues.map((i) => [i.line, i.path]), [
    [3, 'services[0].port'],
    [4, 'services[1].name'],
    [6, 'services[1].protocl'],
    [9, 'policies[0].mode'],
  ]);
  assert.ok(e.issues.every((i) => i.file === FILE));
  assert.match(e.message, /^mesh file \/etc\/mesh\/mesh.yaml rejected whole/);
  assert.match(e.message, /\/etc\/mesh\/mesh.yaml:6:5 services\[1\]\.protocl: unknown field \(did you mean "protocol"\?\)/);
});

test('a policy file issue names the policy file and its line, and the mesh-file line that names it', () => {
  const e = refused(() => parse('services: []\npolicies:\n  - file: p.yaml\n', { 'p.yaml': 'rules:\n  - action: allow\n    from: [{ identites: [x] }]\n' }));
  assert.equal(e.issues.length, 1);
  const i = e.issues[0]!;
  assert.deepEqual([i.file, i.line], ['/etc/mesh/p.yaml', 3]);
  assert.match(i.message, /unknown field.*\(policy file named at \/etc\/mesh\/mesh.yaml:3\)/);
  // An empty policy file (a writer between truncate and write) is refused, never read as "no rules".
  const empty = refused(() => parse('services: []\npolicies:\n  - file: p.yaml\n', { 'p.yaml': '# nothing yet\n' }));
  assert.deepEqual([empty.issues[0]!.file, empty.issues[0]!.line], ['/etc/mesh/p.yaml', 1]);
  assert.match(empty.issues[0]!.message, /is empty.*rules: \[\]/);
});

test('hostile input: a huge unknown key and an alias bomb are refused with a line, quickly', () => {
  const started = Date.now();
  const e1 = refused(() => parse(`${'x'.repeat(100_000)}: 1\n`));
  assert.equal(e1.issues[0]!.line, 1);
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n');
  const e2 = refused(() => parse(bomb));
  assert.ok(e2.issues[0]!.line !== undefined);
  assert.ok(Date.now() - started < 1000);
});

test('outbound(): a registered endpoint the Cluster could not serve is left out and reported; the rest is served', () => {
  const m = parse(MESH, { 'policies/payments.yaml': PAYMENTS, 'policies/billing.yaml': BILLING });
  const id = 'spiffe://example.org/ns/default/sa/payments';
  const refused: string[] = [];
  const out = m.outbound(
    (s) => (s.name === 'payments' ? [
      { address: '10.0.0.3:9001', identity: 'spiffe://example.org/ns/default/sa/intruder', weight: 1 },
      { address: '10.0.0.4:9001', identity: id, weight: 0 },
      { address: '10.0.0.5:9001', identity: id, identities: [id, 'spiffe://example.org/ns/default/sa/other'], weight: 1 },
      { address: '10.0.0.6:9001', identity: id, weight: 2 },
      { address: 'payments.internal:9001', identity: id, weight: 1 },
      { address: '0.0.0.0:9001', identity: id, weight: 1 },
      { address: '[::1]:9001', identity: id, weight: 1 },
    ] : undefined),
    (s, e, why) => refused.push(`${s.key} ${e.address} ${why.split(':')[0]}`),
  );
  assert.deepEqual(out[0]!.spec.endpoints!.map((e) => e.address), ['10.0.0.1:9001', '10.0.0.6:9001', '[::1]:9001']);
  assert.deepEqual(refused.map((r) => r.split(' ').slice(0, 2).join(' ')), ['payments.default 10.0.0.3:9001', 'payments.default 10.0.0.4:9001', 'payments.default 10.0.0.5:9001', 'payments.default payments.internal:9001', 'payments.default 0.0.0.0:9001']);
  // What is left always generates: one bad registration never takes the other services down.
  assert.ok(generateOutboundResources(out).get(TYPE_URLS.endpoints)!.size >= 1);
});
