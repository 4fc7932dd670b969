// Linkerd server sections rendered into the inbound Listener of ONE port (src/server/xds/rbac-render.ts):
// a differential test. For each Linkerd document of the corpus, on each port (covered by its Server
// or not), every request of the table is judged (a) by the native evaluator on the loaded policy and
// (b) by the native evaluator on what our own client reads back from the rendered Listener
// (translateInbound); both must agree on every cell, also with a router's alike spellings. Then the
// bytes are judged by grpc-js-xds's own A41 RBAC engine, and what stays refused.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { decodeListener } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import { translateInbound } from '../../../src/control-plane/xds/translate/inbound.js';
import { formatReasons } from '../../../src/control-plane/xds/translate/result.js';
import { type DefaultPolicy, type Policy, type PolicyInput, type PolicyRequest, compilePolicy, loadPolicy, parsePolicy } from '../../../src/policy/index.js';
import { ANY_ROUTING, alikeOf } from '../../../src/policy/router-semantics.js';
import { InboundRenderError, renderRbac } from '../../../src/server/xds/rbac-render.js';
import { RBAC_FILTER_NAMES, renderInboundListener } from '../../../src/server/xds/inbound-listener.js';
import { entriesDisjoint } from '../../../src/server/xds/route-overlap.js';
import { NARROW_ALLOW, WIDEN_DENY, compileClause, matchClause, newScratch } from '../../../src/policy/match.js';
import type { ServerRoute } from '../../../src/policy/model.js';
import { linkerdAuthz, linkerdRoute, linkerdServer } from '../../helpers/linkerd-docs.js';
import { loadReal } from '../../helpers/xds-protos.js';
import { req } from '../../policy/helpers.js';

const TD = 'cluster.local';
const BOOKS = readFileSync(new URL('../../fixtures/policy/linkerd-booksapp.yaml', import.meta.url), 'utf8');

const shopServer = (extra = '') => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
  port: 8080
${extra}`;
const shopAuthz = `---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ns-wide, namespace: shop}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: checkout}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: both, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web}
  requiredAuthenticationRefs:
  - {kind: MeshTLSAuthentication, name: ops}
  - {kind: NetworkAuthentication, name: local}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: ops, namespace: shop}
spec:
  identities: ["*.ops.serviceaccount.identity.linkerd.cluster.local"]
  identityRefs: [{kind: Namespace, name: tools}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: local, namespace: shop}
spec: {networks: [{cidr: 10.0.0.0/8, except: [10.66.0.0/16]}]}
`;
const prefixRoute = (name: string, prefix: string, method?: string) =>
  linkerdRoute(name, `  rules:\n    - matches: [{ path: { type: PathPrefix, value: ${prefix} }${method ? `, method: ${method}` : ''} }]\n`);

/** The payments Server with disjoint per-route policies: /admin for admins, /orders (GET) and /ping (open). */
const PAYMENTS =
  linkerdServer(8443) +
  prefixRoute('admin', '/admin') + linkerdAuthz('admin', 'admins') +
  prefixRoute('orders', '/orders', 'GET') + linkerdAuthz('orders', 'meshed') +
  linkerdRoute('probe', '  rules:\n    - matches: [{ path: { type: Exact, value: /ping }, headers: [{ name: X-Probe, value: "1" }] }]\n') +
  `---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: probe-open, namespace: default }
spec:
  targetRef: { group: policy.linkerd.io, kind: HTTPRoute, name: probe }
  requiredAuthenticationRefs: []
`;

interface Case {
  readonly name: string;
  readonly policy: Policy;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly ports: readonly number[];
}

/** Top-level rules beside a Server: its deny and audit rules apply on every port, its allow rules only where no Server decides. */
const withTop = (p: Policy, rules: PolicyInput['rules']): Policy => parsePolicy({ rules: [...parsePolicy({ rules }).rules], servers: p.servers });

const TOP: PolicyInput['rules'] = [
  { name: 'top-deny-prod', action: 'deny', from: { namespaces: ['prod'] } },
  { name: 'top-allow-any', action: 'allow', from: { identities: ['*'] } },
  { name: 'top-watch', action: 'audit', to: { methods: ['POST'] } },
];

const CASES: Case[] = [
  { name: 'booksapp', policy: loadPolicy(BOOKS), namespace: 'booksapp', labels: { app: 'authors' }, ports: [7001, 8080] },
  { name: 'booksapp, another pod (the Server selects none)', policy: loadPolicy(BOOKS), namespace: 'booksapp', labels: { app: 'books' }, ports: [7001] },
  { name: 'booksapp, another namespace', policy: loadPolicy(BOOKS), namespace: 'default', labels: { app: 'authors' }, ports: [7001] },
  { name: 'booksapp + top-level rules', policy: withTop(loadPolicy(BOOKS), TOP), namespace: 'booksapp', labels: { app: 'authors' }, ports: [7001, 8080] },
  ...(['deny', 'all-authenticated', 'all-unauthenticated', 'cluster-authenticated', 'cluster-unauthenticated', 'audit'] as const).map((a) => ({
    name: `shop accessPolicy ${a}`, policy: loadPolicy(shopServer(`  accessPolicy: ${a}\n`)), namespace: 'shop', labels: { app: 'web' }, ports: a === 'deny' ? [8080, 9000] : [8080],
  })),
  { name: 'shop: namespace-wide ServiceAccount, MeshTLS AND Network', policy: loadPolicy(shopServer() + shopAuthz), namespace: 'shop', labels: { app: 'api' }, ports: [8080, 9000] },
  { name: 'shop + top-level rules', policy: withTop(loadPolicy(shopServer('  accessPolicy: all-authenticated\n') + shopAuthz), TOP), namespace: 'shop', labels: { app: 'web' }, ports: [8080, 9000] },
  {
    // DNS-like (Linkerd) patterns judge DNS-like peers only; every workload here holds a SPIFFE ID: they are rendered as matching no one.
    name: 'DNS-like identity patterns beside SPIFFE ones',
    policy: parsePolicy({ rules: [
      { action: 'allow', from: [{ identities: ['web.default.serviceaccount.identity.linkerd.cluster.local'] }] },
      { action: 'allow', from: [{ identities: ['*.shop.serviceaccount.identity.linkerd.cluster.local', `spiffe://${TD}/ns/shop/*`] }] },
      { action: 'deny', from: [{ notIdentities: ['*.ops.serviceaccount.identity.linkerd.cluster.local'] }], to: [{ paths: ['/admin*'] }] },
    ] }),
    namespace: 'default', labels: { app: 'x' }, ports: [8080],
  },
  { name: 'payments: disjoint per-route policies', policy: loadPolicy(PAYMENTS), namespace: 'default', labels: { app: 'payments' }, ports: [8443, 9000] },
  {
    name: 'overlapping ranked routes without routed rules (classification cannot matter)',
    policy: loadPolicy(linkerdServer(8443) + prefixRoute('admin', '/admin') + prefixRoute('all', '/') + `---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: server-wide, namespace: default }
spec:
  targetRef: { group: policy.linkerd.io, kind: Server, name: payments }
  requiredAuthenticationRefs: [{ name: admins, kind: MeshTLSAuthentication, group: policy.linkerd.io }]
`),
    namespace: 'default', labels: { app: 'payments' }, ports: [8443],
  },
  {
    name: 'native server: unnamed routes, deny and audit rules, cluster-authenticated',
    policy: parsePolicy({
      rules: [{ name: 'allow-get', action: 'allow', to: { methods: ['GET'] } }],
      servers: [{
        name: 'api', ports: [8443, 8444], accessPolicy: 'cluster-authenticated',
        routes: [{ paths: ['/orders*', '/admin*'] }, { methods: ['GET'], paths: ['/'] }],
        rules: [
          { name: 'no-deletes', action: 'deny', to: { methods: ['DELETE'] } },
          { name: 'api:watch', action: 'audit', from: { unauthenticated: true } },
          { name: 'plain-ping', action: 'allow', from: { unauthenticated: true, ipBlocks: ['10.0.0.0/8'] }, to: { paths: ['/orders/ping'] } },
        ],
      }],
    }),
    namespace: 'default', labels: {}, ports: [8443, 8444, 9000],
  },
];

const PEERS = [
  `spiffe://${TD}/ns/booksapp/sa/books`, `spiffe://${TD}/ns/booksapp/sa/webapp`, `spiffe://${TD}/ns/default/sa/admin`, `spiffe://${TD}/ns/default/sa/web`,
  `spiffe://${TD}/ns/shop/sa/checkout`, `spiffe://${TD}/ns/ops/sa/x`, `spiffe://${TD}/ns/tools/sa/y`, `spiffe://${TD}/ns/prod/sa/db`,
  'spiffe://east.td/ns/default/sa/admin', null,
];
const IPS = ['10.1.2.3', '10.66.1.1', '8.8.8.8', 'fd00::5'];
const METHODS = ['GET', 'HEAD', 'POST', 'DELETE'];
const PATHS = ['/authors.json', '/authors/1', '/AUTHORS/1', '/ping', '/ping/', '/admin', '/admin/x', '/Admin/x', '/orders', '/orders/ping', '/'];
const HEADERS: Array<Record<string, string>> = [{}, { 'x-probe': '1' }];

type Judge = ReturnType<typeof compilePolicy>;

/** Our client's reading of the Listener rendered for `port`: the policy it enforces there. */
function readBack(c: Case, port: number): Policy {
  const bytes = renderInboundListener({ ip: '10.0.0.7', port, mode: 'permissive', policy: c.policy, trustDomain: TD, namespace: c.namespace, labels: c.labels });
  const t = translateInbound(decodeListener(bytes));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.notes, [], `${c.name}: no note (nothing unknown, nothing without effect)`);
  return t.value.policy;
}

const ALIKE = new Map(METHODS.flatMap((m) => PATHS.map((p) => [`${m} ${p}`, alikeOf(p, m, ANY_ROUTING)] as const)));

/** The request table on `port` (headers vary only where a route looks at them), as sent or with a router's alike spellings. */
const TABLES = new Map<string, PolicyRequest[]>();
function requests(port: number, alike: boolean): PolicyRequest[] {
  const key = `${port}:${alike}`;
  const cached = TABLES.get(key);
  if (cached !== undefined) return cached;
  const out: PolicyRequest[] = [];
  TABLES.set(key, out);
  for (const from of PEERS) for (const ip of IPS) for (const method of METHODS) for (const path of PATHS) {
    for (const headers of path.startsWith('/ping') ? HEADERS : HEADERS.slice(0, 1)) {
      const r = req({ from, ip, method, path, port, host: 'svc.local', headers: { ...headers, host: 'svc.local' } });
      const a = alike ? ALIKE.get(`${method} ${path}`) : undefined;
      out.push(a === undefined ? r : { ...r, alike: a });
    }
  }
  return out;
}

test('differential: for every Linkerd case and port, the native evaluator judges the loaded policy and our client\'s reading of the Listener alike', () => {
  let cells = 0;
  const outcomes = new Map<string, Set<boolean>>();
  for (const c of CASES) {
    for (const port of c.ports) {
      const back = readBack(c, port);
      const seen = new Set<boolean>();
      outcomes.set(`${c.name}:${port}`, seen);
      const tables = [requests(port, false), requests(port, true)];
      for (const defaultPolicy of ['all-unauthenticated', 'deny'] as DefaultPolicy[]) {
        const opts = { trustDomain: TD, namespace: c.namespace, labels: c.labels, defaultPolicy };
        const want: Judge = compilePolicy(c.policy, opts);
        const got: Judge = compilePolicy(back, opts);
        // The mesh default only matters as sent; alike spellings only matter to the routes and rules.
        for (const alike of defaultPolicy === 'deny' ? [false] : [false, true]) {
          for (const r of tables[alike ? 1 : 0]!) {
            const a = want.evaluate(r);
            const b = got.evaluate(r);
            const where = () => `${c.name} :${port} (${defaultPolicy}${alike ? ', alike' : ''}) ${r.peer?.spiffeId ?? 'plaintext'} from ${r.sourceIp} ${r.method} ${r.path} x-probe=${r.header('x-probe')}: loaded ${a.allowed}/${a.rule}, read back ${b.allowed}/${b.rule}`;
            if (b.allowed !== a.allowed) assert.fail(where());
            if (b.audit.length === 0 && a.audit.some((x) => x !== 'default:audit')) assert.fail(`audit not recorded — ${where()}`);
            seen.add(a.allowed);
            cells++;
          }
        }
      }
    }
  }
  assert.ok(cells > 50_000, `${cells} cells`);
  // Not vacuous: where a Server decides, the table reaches both outcomes (except a deny-all Server).
  for (const k of ['booksapp:7001', 'booksapp + top-level rules:7001', 'shop: namespace-wide ServiceAccount, MeshTLS AND Network:8080', 'payments: disjoint per-route policies:8443', 'shop accessPolicy cluster-authenticated:8080', 'shop accessPolicy cluster-unauthenticated:8080']) {
    assert.deepEqual([...outcomes.get(k)!].sort(), [false, true], k);
  }
});

test('the Server decides on its port: the top-level allow rules do not apply there, the deny rules do; other ports are the mesh default\'s', () => {
  const c = CASES.find((x) => x.name === 'booksapp + top-level rules')!;
  const opts = { trustDomain: TD, namespace: c.namespace, labels: c.labels, defaultPolicy: 'deny' as const };
  const at = (port: number) => compilePolicy(readBack(c, port), opts);
  const web = `spiffe://${TD}/ns/default/sa/web`;
  assert.equal(at(7001).evaluate(req({ from: web, path: '/orders', port: 7001 })).allowed, false, 'top-allow-any does not admit on the Server\'s port');
  assert.equal(at(8080).evaluate(req({ from: web, path: '/orders', port: 8080 })).allowed, true, 'top-allow-any admits elsewhere');
  const books = `spiffe://${TD}/ns/booksapp/sa/books`;
  assert.equal(at(7001).evaluate(req({ from: books, path: '/authors/1', port: 7001 })).rule, 'booksapp/authors-get-policy');
  assert.equal(at(7001).evaluate(req({ from: `spiffe://${TD}/ns/prod/sa/db`, ip: '10.1.2.3', path: '/ping', port: 7001, headers: { 'x-probe': '1' } })).rule, 'top-deny-prod');
  assert.equal(at(7001).evaluate(req({ from: null, path: '/ping', port: 7001, headers: { 'x-probe': '1' } })).rule, 'booksapp/authors-probe-policy');
  assert.equal(at(7001).evaluate(req({ from: books, path: '/nowhere', port: 7001 })).allowed, false, 'no route: denied');
  // The accessPolicy as the ALLOW filter's last word.
  const shop = (a: string, port: number) => compilePolicy(readBack(CASES.find((x) => x.name === `shop accessPolicy ${a}`)!, port), { trustDomain: TD, namespace: 'shop', labels: { app: 'web' } });
  const denyAll = readBack(CASES.find((x) => x.name === 'shop accessPolicy deny')!, 8080);
  assert.deepEqual(denyAll.rules.map((r) => [r.action, r.matchNothing]), [['allow', true]], 'accessPolicy deny, no allow rule: an ALLOW filter without policies');
  assert.equal(shop('all-authenticated', 8080).evaluate(req({ port: 8080 })).rule, 'shop/web:default:all-authenticated');
  assert.equal(shop('cluster-authenticated', 8080).evaluate(req({ port: 8080, from: 'spiffe://east.td/ns/a/sa/b' })).allowed, false);
});

test('cluster-* access policies with the cluster networks given: rendered as compilePolicy judges them with the same networks', () => {
  const clusterNetworks = ['10.0.0.0/8', 'fd00::/8'];
  for (const a of ['cluster-authenticated', 'cluster-unauthenticated'] as const) {
    const policy = loadPolicy(shopServer(`  accessPolicy: ${a}\n`));
    const workload = { trustDomain: TD, namespace: 'shop', labels: { app: 'web' }, clusterNetworks };
    const t = translateInbound(decodeListener(renderInboundListener({ ip: '10.0.0.7', port: 8080, mode: 'strict', policy, ...workload })));
    assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
    const want = compilePolicy(policy, workload);
    const got = compilePolicy(t.value.policy, workload);
    const seen = new Set<boolean>();
    for (const r of requests(8080, false)) {
      assert.equal(got.evaluate(r).allowed, want.evaluate(r).allowed, `${a} ${r.peer?.spiffeId} from ${r.sourceIp}`);
      seen.add(want.evaluate(r).allowed);
    }
    assert.equal(seen.size, 2, a);
    // 192.168.1.9 is a default cluster network, not one of these: refused by both.
    assert.equal(got.evaluate(req({ port: 8080, ip: '192.168.1.9' })).allowed, false, a);
  }
});

test('refused, never approximated: overlapping routes with their own rules, a section without a port, two sections on one port', () => {
  const refuses = (p: Policy, port: number | undefined, re: RegExp, workload = { namespace: 'default', labels: { app: 'payments' } }) => {
    assert.throws(() => renderRbac(p, { trustDomain: TD, ...workload, ...(port !== undefined && { port }) }), (e: unknown) => {
      assert.ok(e instanceof InboundRenderError, String(e));
      assert.equal(e.code, 'ERR_SIDECARLESS_XDS_INBOUND_UNRENDERABLE');
      assert.match(e.message, re);
      return true;
    });
  };
  // The attack-routers document: /admin for admins inside a catch-all for any meshed client.
  const overlapping = loadPolicy(linkerdServer(8443) + prefixRoute('admin', '/admin') + prefixRoute('everything-else', '/') + linkerdAuthz('admin', 'admins') + linkerdAuthz('everything-else', 'meshed'));
  refuses(overlapping, 8443, /servers\[0\] "default\/payments"\.routes\[\d\]: may match the same request as routes\[\d\][^]*RBAC has no route precedence/);
  // Alike spellings overlap too: /Admin and /admin are one route to a case-insensitive router; HEAD is GET.
  refuses(loadPolicy(linkerdServer(8443) + prefixRoute('a', '/admin') + prefixRoute('b', '/ADMIN/x') + linkerdAuthz('a', 'admins')), 8443, /may match the same request/);
  refuses(loadPolicy(linkerdServer(8443) + prefixRoute('a', '/x', 'GET') + linkerdRoute('b', '  rules:\n    - matches: [{ path: { type: PathPrefix, value: /x }, method: HEAD }]\n') + linkerdAuthz('b', 'admins')), 8443, /may match the same request/);
  // ... while the same document renders for another port or another pod (the Server does not decide there).
  assert.doesNotThrow(() => renderRbac(overlapping, { trustDomain: TD, namespace: 'default', labels: { app: 'payments' }, port: 9000 }));
  assert.doesNotThrow(() => renderRbac(overlapping, { trustDomain: TD, namespace: 'default', labels: { app: 'other' }, port: 8443 }));
  refuses(loadPolicy(PAYMENTS), undefined, /servers: Linkerd server sections are rendered per port/);
  refuses(parsePolicy({ servers: [{ name: 'a', ports: [1] }, { name: 'b', ports: [1, 2] }] }), 1, /servers\[1\] "b": port 1 is already covered by server "a"/);
  // A field of a server rule or route with no RBAC form is named with its section.
  refuses(parsePolicy({ servers: [{ name: 's', ports: [1], routes: [{ paths: ['/u/{id}'] }], rules: [{ name: 'r', action: 'allow', to: { sni: ['x'] } }] }] }), 1, /servers\[0\] "s"\.routes\[0\]\.paths\[0\][^]*servers\[0\] "s"\.rules\[0\] "r"\.to\[0\]\.sni/);
});

test('route disjointness is proven only where no request, nor any alike spelling of it, matches both entries', () => {
  const table: Array<[ServerRoute, ServerRoute, boolean]> = [
    [{ paths: ['/authors', '/authors/*'] }, { paths: ['/ping'] }, true],
    [{ paths: ['/admin*'] }, { paths: ['/orders*'] }, true],
    [{ methods: ['GET'], paths: ['/*'] }, { methods: ['POST', 'DELETE'] }, true],
    [{ ports: [1] }, { ports: [2] }, true],
    [{ paths: ['/admin*'] }, { paths: ['/*'] }, false],
    [{ paths: ['/admin'] }, { paths: ['/ADMIN/x'] }, false],
    [{ paths: ['/a/'] }, { paths: ['/a'] }, false],
    [{ paths: ['/a;b'] }, { paths: ['/a'] }, false],
    [{ paths: ['/a;b'] }, { paths: ['/c'] }, false],
    [{ paths: ['/x%41'] }, { paths: ['/y'] }, false],
    [{ paths: ['*.json'] }, { paths: ['/a'] }, false],
    [{ methods: ['HEAD'] }, { methods: ['GET'] }, false],
    [{ methods: ['*'] }, { methods: ['GET'] }, false],
    [{ paths: ['/a'] }, { methods: ['GET'] }, false],
  ];
  const paths = ['/', '/a', '/a/', '/A', '/a;b', '/a;x', '/c', '/admin', '/Admin/', '/admin/x', '/ADMIN/x', '/orders', '/authors', '/authors/1', '/ping', '/x%41', '/xA', '/y', '/b.json'];
  for (const [a, b, disjoint] of table) {
    assert.equal(entriesDisjoint(a, b), disjoint, `${JSON.stringify(a)} / ${JSON.stringify(b)}`);
    assert.equal(entriesDisjoint(b, a), disjoint, 'symmetric');
    if (!disjoint) continue;
    // Claimed disjoint: no request matching one (as sent) has a spelling matching the other.
    const [x, y] = [compileClause(a), compileClause(b)];
    for (const path of paths) for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) for (const port of [1, 2]) {
      const alike = alikeOf(path, method, ANY_ROUTING);
      const r = { ...req({ path, method, port }), ...(alike && { alike }) };
      const s0 = newScratch();
      s0.req = r;
      for (const [p, q] of [[x, y], [y, x]] as const) {
        assert.ok(!(matchClause(p, r, s0, TD, NARROW_ALLOW) && matchClause(q, r, s0, TD, WIDEN_DENY)), `${method} ${path} :${port} in both ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
      }
    }
  }
});

// ------------------------------------------------------------------------------------------------
// The rendered bytes judged by grpc-js-xds's own A41 RBAC engine (real RE2), in-process as in
// inbound-listener.test.ts: a second, independent reading of what the control plane sends.

const require = createRequire(import.meta.url);
interface GroupLike { apply(info: unknown): boolean }
const xdsRbac = require('@grpc/grpc-js-xds/build/src/rbac.js') as { parseConfig(rbac: unknown): GroupLike };
const { Metadata } = require('@grpc/grpc-js') as { Metadata: new () => { set(k: string, v: string): void } };

const INFOS = new Map<number, unknown[]>();
/** The request table as grpc-js-xds's RBAC engine takes a request (headers, addresses, the peer's certificate). */
function infosOf(port: number): unknown[] {
  const cached = INFOS.get(port);
  if (cached !== undefined) return cached;
  const out = requests(port, false).map((r) => {
    const headers = new Metadata();
    headers.set(':method', r.method);
    headers.set(':authority', r.host);
    headers.set(':path', r.path);
    const probe = r.header('x-probe');
    if (probe !== undefined) headers.set('x-probe', probe);
    const from = r.peer?.spiffeId ?? null;
    return { headers, urlPath: r.path, destinationIp: '10.0.0.7', destinationPort: port, sourceIp: r.sourceIp, tls: from !== null, peerCertificate: from === null ? null : { subjectaltname: `URI:${from}`, subject: {} } };
  });
  INFOS.set(port, out);
  return out;
}

test('grpc-js-xds\'s A41 RBAC engine, on the rendered bytes, judges the table as the native evaluator does on the loaded policy', () => {
  const real = loadReal();
  const L = real.lookupType('envoy.config.listener.v3.Listener');
  const H = real.lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const R = real.lookupType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const obj = { longs: String, enums: String, defaults: true, oneofs: true };
  let compared = 0;
  for (const c of CASES) for (const port of c.ports) {
    const bytes = renderInboundListener({ ip: '10.0.0.7', port, mode: 'strict', policy: c.policy, trustDomain: TD, namespace: c.namespace, labels: c.labels });
    const l = L.decode(bytes) as unknown as { filter_chains: Array<{ filters: Array<{ typed_config: { value: Uint8Array } }> }> };
    const hcm = H.decode(l.filter_chains[0]!.filters[0]!.typed_config.value) as unknown as { http_filters: Array<{ name: string; typed_config: { value: Uint8Array } }> };
    const engines = hcm.http_filters
      .filter((f) => f.name === RBAC_FILTER_NAMES.deny || f.name === RBAC_FILTER_NAMES.allow)
      .map((f) => xdsRbac.parseConfig(R.toObject(R.decode(f.typed_config.value), obj).rules));
    // No ALLOW filter: the mesh default decides (grpc-js-xds admits); compare under all-unauthenticated.
    const want = compilePolicy(c.policy, { trustDomain: TD, namespace: c.namespace, labels: c.labels, defaultPolicy: 'all-unauthenticated' });
    const infos = infosOf(port);
    requests(port, false).forEach((r, i) => {
      const info = infos[i]!;
      if (engines.every((e) => e.apply(info)) !== want.evaluate(r).allowed) assert.fail(`${c.name} :${port} ${r.peer?.spiffeId} from ${r.sourceIp} ${r.method} ${r.path} x-probe=${r.header('x-probe')}: loaded ${want.evaluate(r).allowed}`);
      compared++;
    });
  }
  assert.ok(compared > 10_000, `${compared}`);
});
