// loadPolicy's output loads again unchanged: DESIGN.md's contract passes loadPolicy(text) as inbound.policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadPolicy, parsePolicy, compilePolicy } from '../../src/policy/index.js';

const ISTIO = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: payments, namespace: default }
spec:
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/default/sa/orders"] } }]
      to: [{ operation: { methods: ["POST"], paths: ["/charge"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: istio-system }
spec:
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-nothing, namespace: default }
spec: {}
`;

const NATIVE = `
rules:
  - name: r1
    action: allow
    from: { identities: ["spiffe://cluster.local/ns/default/sa/orders"] }
  - action: deny
    to: { paths: ["/admin"] }
    when: [{ headers: { x-debug: ["*"] } }]
servers:
  - name: web
    ports: [8080]
    routes: [{ paths: ["/api/*"] }]
    rules: [{ action: allow, from: { unauthenticated: true } }]
`;

test('loading a loaded policy is a no-op: native, Istio and Linkerd', async () => {
  const linkerd = await readFile(new URL('../fixtures/policy/linkerd-booksapp.yaml', import.meta.url), 'utf8');
  for (const [name, text] of [['native', NATIVE], ['istio', ISTIO], ['linkerd', linkerd]] as const) {
    const once = loadPolicy(text);
    assert.deepEqual(loadPolicy(once), once, `${name}: loadPolicy(loadPolicy(x))`);
    assert.deepEqual(parsePolicy(once), once, `${name}: parsePolicy(loadPolicy(x))`);
    compilePolicy(once, { trustDomain: 'cluster.local', namespace: 'default' });
  }
});

test('a hand-written policy still refuses empty lists, naming the path', () => {
  assert.throws(() => loadPolicy({ rules: [{ action: 'allow', from: [] }] }), /rules\[0\]\.from/);
});
