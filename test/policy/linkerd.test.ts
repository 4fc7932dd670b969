import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compilePolicy, loadPolicy, type CompileOptions } from '../../src/policy/index.js';
import { linkerdIdentity } from '../../src/policy/import/linkerd.js';
import { issuesOf, req } from './helpers.js';

const BOOKS = readFileSync(new URL('../fixtures/policy/linkerd-booksapp.yaml', import.meta.url), 'utf8');
const MESH: CompileOptions = { trustDomain: 'cluster.local', namespace: 'booksapp', labels: { app: 'authors' }, defaultPolicy: 'all-unauthenticated' };
const books = 'spiffe://cluster.local/ns/booksapp/sa/books';
const webapp = 'spiffe://cluster.local/ns/booksapp/sa/webapp';
const P = 7001;

test('identity strings translate to SPIFFE IDs', () => {
  assert.equal(linkerdIdentity('web.emojivoto.serviceaccount.identity.linkerd.cluster.local'), 'spiffe://cluster.local/ns/emojivoto/sa/web');
  assert.equal(linkerdIdentity('*.emojivoto.serviceaccount.identity.linkerd.cluster.local'), 'spiffe://cluster.local/ns/emojivoto/sa/*');
  assert.equal(linkerdIdentity('*.identity.linkerd.example.org'), 'spiffe://example.org/*');
  assert.equal(linkerdIdentity('*'), '*');
  assert.equal(linkerdIdentity('spiffe://td/vm/1'), 'spiffe://td/vm/1');
  assert.ok(typeof linkerdIdentity('web.example.com') === 'object', 'no SPIFFE translation (linkerdIdentityPatterns admits it as a DNS-like identity)');
});

test('booksapp: route-level MeshTLS policy (identities and identityRefs)', () => {
  const c = compilePolicy(loadPolicy(BOOKS), MESH);
  for (const from of [books, webapp]) {
    const d = c.evaluate(req({ from, port: P, ip: '192.168.1.1', path: '/authors/7' }));
    assert.deepEqual([d.allowed, d.rule, d.server], [true, 'booksapp/authors-get-policy', 'booksapp/authors-server'], from);
  }
  assert.equal(c.evaluate(req({ from: books, port: P, ip: '192.168.1.1', path: '/authors.json' })).allowed, true);
  assert.equal(c.evaluate(req({ from: books, port: P, ip: '192.168.1.1', path: '/authors' })).allowed, true, 'PathPrefix /authors/ matches /authors');
  assert.equal(c.evaluate(req({ from: books, port: P, ip: '192.168.1.1', path: '/authorsx' })).rule, 'no-route');
  const post = c.evaluate(req({ from: books, port: P, ip: '192.168.1.1', path: '/authors/7', method: 'POST' }));
  assert.deepEqual([post.allowed, post.rule], [false, 'no-route']);
  const other = c.evaluate(req({ from: 'spiffe://cluster.local/ns/booksapp/sa/traffic', port: P, ip: '192.168.1.1', path: '/authors/7' }));
  assert.deepEqual([other.allowed, other.rule], [false, 'default:deny']);
  assert.equal(c.evaluate(req({ from: 'spiffe://other.td/ns/booksapp/sa/webapp', port: P, ip: '192.168.1.1', path: '/authors/7' })).allowed, false, 'identityRefs are in the mesh trust domain');
});

test('booksapp: Server-wide NetworkAuthentication (cidr/except) and an open probe route', () => {
  const c = compilePolicy(loadPolicy(BOOKS), MESH);
  const scrape = c.evaluate(req({ from: null, port: P, ip: '10.1.1.1', path: '/authors/1' }));
  assert.deepEqual([scrape.allowed, scrape.rule], [true, 'booksapp/authors-scrape']);
  assert.equal(c.evaluate(req({ from: null, port: P, ip: '10.66.1.1', path: '/authors/1' })).allowed, false);
  assert.equal(c.evaluate(req({ from: null, port: P, ip: 'fd00::1', path: '/authors/1' })).allowed, true);
  assert.equal(c.evaluate(req({ from: null, port: P, ip: '192.168.1.1', path: '/ping', headers: { 'x-probe': '1' } })).allowed, true);
  assert.equal(c.evaluate(req({ from: null, port: P, ip: '192.168.1.1', path: '/ping' })).rule, 'no-route');
});

test('the Server only applies to its port, namespace and selected pods', () => {
  const c = compilePolicy(loadPolicy(BOOKS), MESH);
  assert.equal(c.evaluate(req({ from: null, port: 9999 })).rule, 'default:all-unauthenticated');
  const otherPod = compilePolicy(loadPolicy(BOOKS), { ...MESH, labels: { app: 'books' } });
  assert.equal(otherPod.evaluate(req({ from: null, port: P })).allowed, true);
  const otherNs = compilePolicy(loadPolicy(BOOKS), { ...MESH, namespace: 'default' });
  assert.equal(otherNs.evaluate(req({ from: null, port: P })).allowed, true);
});

const server = (extra = '') => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
  port: 8080
${extra}`;
const SHOP: CompileOptions = { trustDomain: 'cluster.local', namespace: 'shop', labels: { app: 'web' }, defaultPolicy: 'all-unauthenticated' };

test('a Server with no AuthorizationPolicy denies everything', () => {
  const c = compilePolicy(loadPolicy(server()), SHOP);
  const d = c.evaluate(req({ port: 8080 }));
  assert.deepEqual([d.allowed, d.rule, d.server], [false, 'default:deny', 'shop/web']);
});

test('Server accessPolicy is the fallback, by Linkerd default-policy name', () => {
  const expect: Record<string, [boolean, boolean]> = {
    // [plaintext, authenticated]
    deny: [false, false],
    'all-authenticated': [false, true],
    'all-unauthenticated': [true, true],
    'cluster-unauthenticated': [true, true],
    'cluster-authenticated': [false, true],
    audit: [true, true],
  };
  for (const [policy, [plain, authd]] of Object.entries(expect)) {
    const c = compilePolicy(loadPolicy(server(`  accessPolicy: ${policy}\n`)), SHOP);
    assert.equal(c.evaluate(req({ port: 8080, from: null, ip: '10.0.0.1' })).allowed, plain, policy);
    assert.equal(c.evaluate(req({ port: 8080, ip: '10.0.0.1' })).allowed, authd, policy);
  }
});

test('Namespace-targeted AuthorizationPolicy with ServiceAccount and wildcard identities', () => {
  const docs = `${server()}---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ns-wide, namespace: shop}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: checkout}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: all-meshed, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: ops}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: ops, namespace: shop}
spec:
  identities: ["*.ops.serviceaccount.identity.linkerd.cluster.local"]
  identityRefs: [{kind: Namespace, name: tools}]
`;
  const c = compilePolicy(loadPolicy(docs), SHOP);
  assert.equal(c.evaluate(req({ port: 8080, from: 'spiffe://cluster.local/ns/shop/sa/checkout' })).rule, 'shop/ns-wide');
  assert.equal(c.evaluate(req({ port: 8080, from: 'spiffe://cluster.local/ns/ops/sa/anyone' })).rule, 'shop/all-meshed');
  assert.equal(c.evaluate(req({ port: 8080, from: 'spiffe://cluster.local/ns/tools/sa/x' })).rule, 'shop/all-meshed');
  assert.equal(c.evaluate(req({ port: 8080, from: 'spiffe://cluster.local/ns/shop/sa/cart' })).allowed, false);
  assert.equal(c.evaluate(req({ port: 8080, from: null })).allowed, false);
});

test('MeshTLS AND NetworkAuthentication: all required authentications must hold', () => {
  const docs = `${server()}---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: both, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs:
  - {kind: MeshTLSAuthentication, name: any-meshed}
  - {kind: NetworkAuthentication, name: local}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: any-meshed, namespace: shop}
spec: {identities: ["*"]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: local, namespace: shop}
spec: {networks: [{cidr: 10.0.0.0/8}]}
`;
  const c = compilePolicy(loadPolicy(docs), SHOP);
  assert.equal(c.evaluate(req({ port: 8080, ip: '10.0.0.1' })).allowed, true);
  assert.equal(c.evaluate(req({ port: 8080, ip: '11.0.0.1' })).allowed, false);
  assert.equal(c.evaluate(req({ port: 8080, ip: '10.0.0.1', from: null })).allowed, false);
});

test('refusals name their paths', () => {
  const route = (rule: string) => `${server()}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{kind: Server, group: policy.linkerd.io, name: web}]
  rules:
  - ${rule}
`;
  const cases: Array<[string, string, RegExp]> = [
    [route('matches: [{path: {type: RegularExpression, value: "/a.*"}}]'), '[1].spec.rules[0].matches[0].path.type', /RegularExpression/],
    [route('matches: [{queryParams: [{name: a, value: b}]}]'), '[1].spec.rules[0].matches[0].queryParams', /query/],
    [route('matches: [{headers: [{type: RegularExpression, name: a, value: b}]}]'), '[1].spec.rules[0].matches[0].headers[0].type', /Exact/],
    [route('backendRefs: [{name: svc, port: 80}]'), '[1].spec.rules[0].backendRefs', /not authorization/],
    [route('filters: []'), '[1].spec.rules[0].filters', /not authorization/],
    [route('matches: [{pathz: {}}]'), '[1].spec.rules[0].matches[0].pathz', /unknown field/],
    [server().replace('port: 8080', 'port: http'), 'spec.port', /port number/],
    [server('  bogus: 1\n'), 'spec.bogus', /unknown field/],
    [
      `${server()}---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: x, namespace: shop}\nspec: {}\n`,
      '[1].kind',
      /AuthorizationPolicy/,
    ],
    [
      `${server()}---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: shop}\nspec:\n  targetRef: {kind: Server, name: missing}\n  requiredAuthenticationRefs: []\n`,
      '[1].spec.targetRef',
      /not among the loaded documents/,
    ],
    [
      `${server()}---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: shop}\nspec:\n  targetRef: {kind: Server, name: web}\n  requiredAuthenticationRefs: [{kind: MeshTLSAuthentication, name: gone}]\n`,
      '[1].spec.requiredAuthenticationRefs[0]',
      /gone/,
    ],
    [
      `${server()}---\napiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m, namespace: shop}\nspec: {identities: ["Web.example.com"]}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: shop}\nspec:\n  targetRef: {kind: Server, name: web}\n  requiredAuthenticationRefs: [{kind: MeshTLSAuthentication, name: m}]\n`,
      '[1].spec.identities[0]',
      /Linkerd identity/,
    ],
  ];
  for (const [text, path, msg] of cases) {
    const issues = issuesOf(() => loadPolicy(text));
    const hit = issues.find((i) => i.path === path);
    assert.ok(hit, `expected issue at ${path}, got ${JSON.stringify(issues)}`);
    assert.match(hit.message, msg);
  }
});
