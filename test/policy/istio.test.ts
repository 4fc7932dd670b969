import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, loadPolicy, type CompileOptions } from '../../src/policy/index.js';
import { OPTS, issuesOf, req } from './helpers.js';

const load = (yaml: string, o: Partial<CompileOptions> = {}) => compilePolicy(loadPolicy(yaml), { ...OPTS, ...o });
const head = (name: string, ns = 'default', api = 'security.istio.io/v1') => `apiVersion: ${api}\nkind: AuthorizationPolicy\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n`;
const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';

test('the documented httpbin example: principals or namespaces, GET /info* or POST /data', () => {
  const c = load(`${head('httpbin', 'default', 'security.istio.io/v1beta1')}spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
`);
  assert.equal(c.evaluate(req({ from: SLEEP, path: '/info/x' })).rule, 'default/httpbin#0');
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/test/sa/any', method: 'POST', path: '/data' })).allowed, true);
  assert.equal(c.evaluate(req({ from: SLEEP, method: 'POST', path: '/info' })).allowed, false);
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/default/sa/sleepy', path: '/info' })).allowed, false);
  assert.equal(c.evaluate(req({ from: null, path: '/info' })).allowed, false);
});

test('DENY is evaluated before ALLOW', () => {
  const c = load(`${head('allow-all')}spec:
  rules: [{}]
---
${head('deny-admin')}spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
`);
  assert.deepEqual([c.evaluate(req({ path: '/admin' })).allowed, c.evaluate(req({ path: '/admin' })).rule], [false, 'default/deny-admin#0']);
  assert.equal(c.evaluate(req({ path: '/x', from: null })).allowed, true, 'rules: [{}] allows all, even plaintext');
});

test('spec: {} allows nothing, and deny-by-default holds even with a permissive default', () => {
  for (const spec of ['spec: {}', 'spec:\n  action: ALLOW', 'spec:\n  rules: []', '']) {
    const c = load(`${head('allow-nothing')}${spec}\n`, { defaultPolicy: 'all-unauthenticated' });
    const d = c.evaluate(req());
    assert.deepEqual([d.allowed, d.rule], [false, 'no-allow-match'], spec);
  }
});

test('DENY and AUDIT without rules match nothing', () => {
  const c = load(`${head('d')}spec: {action: DENY}\n---\n${head('a')}spec: {action: AUDIT}\n`, { defaultPolicy: 'all-unauthenticated' });
  const d = c.evaluate(req());
  assert.deepEqual([d.allowed, d.rule, d.audit], [true, 'default:all-unauthenticated', []]);
});

test('empty from/to lists and empty sources match anything (Istio: unset)', () => {
  const c = load(`${head('x')}spec:\n  rules:\n  - from: []\n    to: []\n  - from: [{source: {}}]\n`);
  assert.equal(c.evaluate(req({ from: null })).allowed, true);
});

test('AUDIT rules are recorded, never decide', () => {
  const c = load(`${head('audit-admin')}spec:
  action: AUDIT
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`);
  const d = c.evaluate(req({ path: '/admin' }));
  assert.deepEqual([d.allowed, d.rule, d.audit], [true, 'default:all-authenticated', ['default/audit-admin#0']]);
});

test('DENY notPrincipals ["*"] denies plaintext only', () => {
  const c = load(`${head('require-mtls')}spec:\n  action: DENY\n  rules: [{from: [{source: {notPrincipals: ["*"]}}]}]\n`, { defaultPolicy: 'all-unauthenticated' });
  assert.equal(c.evaluate(req({ from: null })).allowed, false);
  assert.equal(c.evaluate(req({ from: SLEEP })).allowed, true);
});

test('principal prefix/suffix, ipBlocks, remoteIpBlocks, hosts, ports, not forms', () => {
  const c = load(`${head('p')}spec:
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/*", "*/sa/admin"]
        notNamespaces: ["blocked"]
        ipBlocks: ["10.0.0.0/8"]
        notIpBlocks: ["10.66.0.0/16"]
    to:
    - operation:
        hosts: ["*.example.com"]
        notHosts: ["secret.example.com"]
        ports: ["8443"]
        notPaths: ["/private*"]
`);
  const ok = { from: SLEEP, ip: '10.1.1.1', host: 'API.example.com:8443' };
  assert.equal(c.evaluate(req(ok)).allowed, true);
  assert.equal(c.evaluate(req({ ...ok, from: 'spiffe://x/ns/blocked/sa/admin' })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, from: 'spiffe://x/ns/other/sa/admin' })).allowed, true);
  assert.equal(c.evaluate(req({ ...ok, ip: '10.66.1.1' })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, host: 'secret.example.com' })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, port: 80 })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, path: '/private/x' })).allowed, false);
  const r = load(`${head('r')}spec:\n  rules: [{from: [{source: {remoteIpBlocks: ["192.0.2.0/24"]}}]}]\n`);
  assert.equal(r.evaluate(req({ ip: '192.0.2.9' })).allowed, true);
  assert.equal(r.evaluate(req({ ip: '192.0.3.9' })).allowed, false);
});

test('when conditions: headers, source.*, remote.ip, destination.port, connection.sni', () => {
  const c = load(`${head('w')}spec:
  rules:
  - when:
    - key: request.headers[X-Version]
      values: ["v1", "v2*"]
    - key: request.headers[x-debug]
      notValues: ["*"]
    - key: source.principal
      values: ["cluster.local/ns/default/sa/sleep"]
    - key: source.namespace
      notValues: ["evil"]
    - key: source.ip
      values: ["10.0.0.0/8"]
    - key: remote.ip
      notValues: ["10.9.9.9"]
    - key: destination.port
      values: ["8443"]
    - key: connection.sni
      values: ["*.svc"]
`);
  const ok = { from: SLEEP, headers: { 'x-version': 'v2.1' }, sni: 'a.svc' };
  assert.equal(c.evaluate(req(ok)).allowed, true);
  assert.equal(c.evaluate(req({ ...ok, headers: { 'x-version': 'v3' } })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, headers: { 'x-version': 'v1', 'x-debug': '1' } })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, ip: '10.9.9.9' })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, port: 80 })).allowed, false);
  assert.equal(c.evaluate(req({ ...ok, sni: 'a.svc.evil' })).allowed, false);
});

test('path templates {*} and {**}', () => {
  const c = load(`${head('t')}spec:\n  rules: [{to: [{operation: {paths: ["/users/{*}/orders", "/static/{**}"]}}]}]\n`);
  assert.equal(c.evaluate(req({ path: '/users/1/orders' })).allowed, true);
  assert.equal(c.evaluate(req({ path: '/users/1/2/orders' })).allowed, false);
  assert.equal(c.evaluate(req({ path: '/static/a/b/c' })).allowed, true);
  assert.equal(c.evaluate(req({ path: '/static' })).allowed, false);
});

test('root-namespace policies apply mesh-wide; others only in their namespace; selectors match labels', () => {
  const text = `${head('mesh-deny', 'istio-system')}spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/mesh-deny"]}}]}]
---
${head('ns-deny', 'prod')}spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/ns-deny"]}}]}]
---
${head('web-only', 'default')}spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/web-deny"]}}]}]
`;
  const inDefaultWeb = load(text, { labels: { app: 'web' } });
  const inProd = load(text, { namespace: 'prod', labels: { app: 'web' } });
  assert.equal(inDefaultWeb.evaluate(req({ path: '/mesh-deny' })).allowed, false);
  assert.equal(inProd.evaluate(req({ path: '/mesh-deny' })).allowed, false);
  assert.equal(inDefaultWeb.evaluate(req({ path: '/ns-deny' })).allowed, true);
  assert.equal(inProd.evaluate(req({ path: '/ns-deny' })).allowed, false);
  assert.equal(inDefaultWeb.evaluate(req({ path: '/web-deny' })).allowed, false);
  assert.equal(load(text, { labels: { app: 'db' } }).evaluate(req({ path: '/web-deny' })).allowed, true);
  assert.equal(inProd.evaluate(req({ path: '/web-deny' })).allowed, true);
  const custom = compilePolicy(loadPolicy(text, { istioRootNamespace: 'mesh-root' }), { ...OPTS, namespace: 'prod' });
  assert.equal(custom.evaluate(req({ path: '/mesh-deny' })).allowed, true);
});

test('a k8s List and JSON arrays load too', () => {
  const list = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'x', namespace: 'default' }, spec: {} }] };
  assert.equal(compilePolicy(loadPolicy(JSON.stringify(list)), OPTS).evaluate(req()).allowed, false);
  assert.equal(compilePolicy(loadPolicy([list.items[0]!]), OPTS).evaluate(req()).allowed, false);
});

test('refusals: CUSTOM, provider, requestPrincipals, request.auth, targetRef, unknown fields and keys', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['spec:\n  action: CUSTOM\n  provider: {name: ext}\n  rules: [{}]\n', 'spec.action', /CUSTOM/],
    ['spec:\n  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]\n', 'spec.rules[0].from[0].source.requestPrincipals', /JWT is not supported/],
    ['spec:\n  rules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]\n', 'spec.rules[0].from[0].source.notRequestPrincipals', /JWT/],
    ['spec:\n  rules: [{when: [{key: "request.auth.claims[iss]", values: ["x"]}]}]\n', 'spec.rules[0].when[0].key', /JWT/],
    ['spec:\n  rules: [{when: [{key: "destination.ip", values: ["1.1.1.1"]}]}]\n', 'spec.rules[0].when[0].key', /not supported/],
    ['spec:\n  targetRefs: [{kind: Gateway, name: gw}]\n', 'spec.targetRefs', /selector/],
    ['spec:\n  rules: [{to: [{operation: {pathz: ["/x"]}}]}]\n', 'spec.rules[0].to[0].operation.pathz', /unknown field/],
    ['spec:\n  rules: [{to: [{operation: {methods: ["G*"]}}]}]\n', 'spec.rules[0].to[0].operation.methods[0]', /wildcards/],
    ['spec:\n  rules: [{to: [{operation: {ports: ["http"]}}]}]\n', 'spec.rules[0].to[0].operation.ports[0]', /port/],
    ['spec:\n  rules: [{to: [{operation: {paths: ["/a/../b"]}}]}]\n', 'spec.rules[0].to[0].operation.paths[0]', /normalized/],
    ['spec:\n  rules: [{to: [{operation: {hosts: ["a.com:80"]}}]}]\n', 'spec.rules[0].to[0].operation.hosts[0]', /port/],
    ['spec:\n  rules: [{from: [{source: {ipBlocks: ["1.2.3.4/40"]}}]}]\n', 'spec.rules[0].from[0].source.ipBlocks[0]', /prefix length/],
    ['spec:\n  selector: {matchLabels: {a: b}, matchExpressions: []}\n', 'spec.selector.matchExpressions', /unknown field/],
    ['spec:\n  action: MAYBE\n', 'spec.action', /./],
  ];
  for (const [spec, path, msg] of cases) {
    const issues = issuesOf(() => loadPolicy(head('bad') + spec));
    const hit = issues.find((i) => i.path === path);
    assert.ok(hit, `${spec}: expected issue at ${path}, got ${JSON.stringify(issues)}`);
    assert.match(hit.message, msg);
  }
});

test('other Istio kinds are refused with a hint', () => {
  const issues = issuesOf(() => loadPolicy('apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: x}\n'));
  assert.equal(issues[0]!.path, 'kind');
});
