// Policy identities for DNS-like (Linkerd) peers: DNS patterns judge DNS peers only (exact, or a
// label-wise `*.` suffix), SPIFFE patterns SPIFFE peers only, `*` both; namespaces, service
// accounts and trust domains from the parsed Linkerd parts; MeshTLSAuthentication identities and
// suffixes admit DNS peers label-wise and keep their SPIFFE translation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, loadPolicy, type CompileOptions } from '../../src/policy/index.js';
import { linkerdIdentityPatterns } from '../../src/policy/import/linkerd.js';
import { issuesOf, req } from './helpers.js';

const OPTS: CompileOptions = { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: 'deny' };
const D = 'identity.linkerd.cluster.local';
const WEB = `web.default.serviceaccount.${D}`;
const allow = (from: Record<string, unknown>) => compilePolicy({ rules: [{ name: 'r', action: 'allow', from }] }, OPTS);
const allowed = (c: ReturnType<typeof allow>, from: string) => c.evaluate(req({ from })).allowed;

test('an exact DNS identity admits that DNS peer only', () => {
  const c = allow({ identities: [WEB] });
  assert.equal(allowed(c, WEB), true);
  for (const other of [`xweb.default.serviceaccount.${D}`, `db.default.serviceaccount.${D}`, `web.default.serviceaccount.identity.linkerd.other.local`, 'spiffe://cluster.local/ns/default/sa/web']) {
    assert.equal(allowed(c, other), false, other);
  }
});

test('a *. suffix is label-wise; string tricks and SPIFFE peers are refused', () => {
  const c = allow({ identities: [`*.default.serviceaccount.${D}`] });
  assert.equal(allowed(c, WEB), true);
  for (const other of [
    `web.xdefault.serviceaccount.${D}`, // xdefault.serviceaccount… vs the suffix default.serviceaccount…
    `web.default.serviceaccount.identity.linkerd.cluster.localx.io`,
    // SPIFFE peers whose ID ends in the suffix, by path or by trust domain
    `spiffe://evil.example/a.default.serviceaccount.${D}`,
    `spiffe://x.default.serviceaccount.${D}/ns/default/sa/web`,
  ]) {
    assert.equal(allowed(c, other), false, other);
  }
});

test('SPIFFE patterns never admit DNS peers; * admits both kinds (never unauthenticated)', () => {
  const spiffe = allow({ identities: ['spiffe://cluster.local/*', '*/sa/web', '*web'] });
  assert.equal(allowed(spiffe, 'spiffe://cluster.local/ns/default/sa/web'), true);
  assert.equal(allowed(spiffe, WEB), false);
  const any = allow({ identities: ['*'] });
  assert.equal(allowed(any, WEB), true);
  assert.equal(allowed(any, 'spiffe://cluster.local/ns/a/sa/b'), true);
  assert.equal(any.evaluate(req({ from: null })).allowed, false);
});

test('notIdentities with DNS patterns', () => {
  const c = compilePolicy({ rules: [{ name: 'r', action: 'allow', from: { identities: ['*'], notIdentities: [`*.ops.serviceaccount.${D}`] } }] }, OPTS);
  assert.equal(allowed(c, WEB), true);
  assert.equal(allowed(c, `admin.ops.serviceaccount.${D}`), false);
  assert.equal(allowed(c, 'spiffe://cluster.local/ns/ops/sa/admin'), true, 'a DNS pattern does not judge a SPIFFE peer');
});

test('namespaces, serviceAccounts and trustDomains use the parsed Linkerd parts', () => {
  assert.equal(allowed(allow({ namespaces: ['default'] }), WEB), true);
  assert.equal(allowed(allow({ namespaces: ['ops'] }), WEB), false);
  assert.equal(allowed(allow({ serviceAccounts: ['default/web'] }), WEB), true);
  assert.equal(allowed(allow({ serviceAccounts: ['default/db'] }), WEB), false);
  assert.equal(allowed(allow({ serviceAccounts: ['default/web'] }), 'web.default.serviceaccount.identity.linkerd.other.local'), false, 'another trust domain');
  assert.equal(allowed(allow({ trustDomains: ['cluster.local'] }), WEB), true);
  assert.equal(allowed(allow({ namespaces: ['default'] }), 'payments.example.com'), false, 'a DNS name without the Linkerd shape has no namespace');
});

test('the schema takes DNS patterns and refuses malformed ones, naming the path', () => {
  for (const bad of ['Web.default.serviceaccount.identity.linkerd.cluster.local', `${WEB}.`, '*.', '*.-x.local', 'web..default', 'localhost']) {
    const issues = issuesOf(() => loadPolicy({ rules: [{ name: 'r', action: 'allow', from: { identities: [bad] } }] }));
    assert.ok(issues.some((i) => i.path === 'rules[0].from[0].identities[0]'), `${bad}: ${JSON.stringify(issues)}`);
  }
});

test('Linkerd MeshTLSAuthentication: DNS pattern and SPIFFE translation side by side', () => {
  assert.deepEqual(linkerdIdentityPatterns(WEB), ['spiffe://cluster.local/ns/default/sa/web', WEB]);
  assert.deepEqual(linkerdIdentityPatterns(`*.default.serviceaccount.${D}`), ['spiffe://cluster.local/ns/default/sa/*', `*.default.serviceaccount.${D}`]);
  assert.deepEqual(linkerdIdentityPatterns(`*.${D}`), ['spiffe://cluster.local/*', `*.${D}`]);
  assert.deepEqual(linkerdIdentityPatterns('web.default.serviceaccount.identity.l5d.example.org'), ['web.default.serviceaccount.identity.l5d.example.org']);
  assert.deepEqual(linkerdIdentityPatterns('*'), ['*']);
  assert.deepEqual(linkerdIdentityPatterns('spiffe://td/vm/1'), ['spiffe://td/vm/1']);
  assert.ok(!Array.isArray(linkerdIdentityPatterns('Web.Example.com')));
  const docs = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: { name: api, namespace: default }
spec: { podSelector: { matchLabels: { app: api } }, port: 8443 }
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: api-authz, namespace: default }
spec:
  targetRef: { group: policy.linkerd.io, kind: Server, name: api }
  requiredAuthenticationRefs: [{ group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-only }]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: { name: web-only, namespace: default }
spec:
  identities: ["web.default.serviceaccount.identity.linkerd.cluster.local", "*.ops.serviceaccount.identity.linkerd.cluster.local"]
`;
  const c = compilePolicy(loadPolicy(docs), { ...OPTS, labels: { app: 'api' } });
  const judge = (from: string) => c.evaluate(req({ from, port: 8443 })).allowed;
  assert.equal(judge(WEB), true);
  assert.equal(judge(`admin.ops.serviceaccount.${D}`), true);
  assert.equal(judge('spiffe://cluster.local/ns/default/sa/web'), true, 'the SPIFFE translation still holds');
  assert.equal(judge(`db.default.serviceaccount.${D}`), false);
  assert.equal(judge(`web.xops.serviceaccount.${D}`), false);
  assert.equal(judge(`admin.ops.serviceaccount.${D}.attacker.io`), false);
});
