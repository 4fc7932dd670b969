import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, normalizeTarget, type CompileOptions, type PolicyInput } from '../../src/policy/index.js';
import { OPTS, req } from './helpers.js';

const compile = (p: PolicyInput, o: Partial<CompileOptions> = {}) => compilePolicy(p, { ...OPTS, ...o });
const A = 'spiffe://cluster.local/ns/a/sa/b';

test('any deny match → deny, even when an allow rule matches too', () => {
  const c = compile({ rules: [{ name: 'ok', action: 'allow' }, { name: 'no', action: 'deny', to: { paths: ['/admin'] } }] });
  assert.deepEqual(c.evaluate(req({ path: '/admin' })), { allowed: false, result: 'deny', rule: 'no', action: 'deny', audit: [] });
  assert.deepEqual(c.evaluate(req({ path: '/x' })), { allowed: true, result: 'allow', rule: 'ok', action: 'allow', audit: [] });
});

test('allow rules exist but none matched → deny no-allow-match', () => {
  const c = compile({ rules: [{ action: 'allow', to: { paths: ['/public/*'] } }] });
  const d = c.evaluate(req({ path: '/admin' }));
  assert.equal(d.allowed, false);
  assert.equal(d.rule, 'no-allow-match');
  assert.equal(d.action, 'default');
});

test('case 14: /public/../admin is judged as /admin', () => {
  const c = compile({ rules: [{ action: 'allow', to: { paths: ['/public/*'] } }] });
  const t = normalizeTarget('/public/../admin');
  assert.ok(t.ok);
  assert.equal(c.evaluate(req({ path: t.path })).allowed, false);
});

test('no allow rules → default policy', () => {
  const plain = req({ from: null, ip: '203.0.113.9' });
  const plainInCluster = req({ from: null, ip: '10.0.0.7' });
  const foreign = req({ from: 'spiffe://other.td/ns/a/sa/b', ip: '10.0.0.7' });
  const own = req({ from: A, ip: '10.0.0.7' });
  const ownOutside = req({ from: A, ip: '203.0.113.9' });
  const table: Array<[CompileOptions['defaultPolicy'], boolean[], string[]?]> = [
    // plain, plainInCluster, foreign, own, ownOutside
    ['all-authenticated', [false, false, true, true, true]],
    [undefined, [false, false, true, true, true]],
    ['deny', [false, false, false, false, false]],
    ['all-unauthenticated', [true, true, true, true, true]],
    ['cluster-authenticated', [false, false, false, true, true]],
    ['cluster-unauthenticated', [false, true, true, true, false]],
    ['audit', [true, true, true, true, true]],
  ];
  for (const [dp, expected] of table) {
    const c = compile({ rules: [{ action: 'deny', to: { paths: ['/never'] } }] }, dp ? { defaultPolicy: dp } : {});
    const got = [plain, plainInCluster, foreign, own, ownOutside].map((r) => c.evaluate(r));
    assert.deepEqual(got.map((d) => d.allowed), expected, String(dp));
    assert.ok(got.every((d) => d.rule === `default:${dp ?? 'all-authenticated'}` && d.action === 'default'));
    if (dp === 'audit') assert.ok(got.every((d) => d.audit.includes('default:audit')));
  }
});

test('cluster-authenticated with clusterNetworks also requires the source IP inside them', () => {
  const c = compile({}, { defaultPolicy: 'cluster-authenticated', clusterNetworks: ['10.0.0.0/8'] });
  assert.equal(c.evaluate(req({ from: A, ip: '10.0.0.7' })).allowed, true);
  assert.equal(c.evaluate(req({ from: A, ip: '192.168.1.1' })).allowed, false);
});

test('audit rules never decide and are all recorded', () => {
  const c = compile({
    rules: [
      { name: 'watch-admin', action: 'audit', to: { paths: ['/admin*'] } },
      { name: 'watch-all', action: 'audit' },
      { name: 'ok', action: 'allow', to: { paths: ['/admin'] } },
    ],
  });
  const d = c.evaluate(req({ path: '/admin' }));
  assert.deepEqual(d, { allowed: true, result: 'allow', rule: 'ok', action: 'allow', audit: ['watch-admin', 'watch-all'] });
  const e = c.evaluate(req({ path: '/x' }));
  assert.deepEqual([e.allowed, e.rule, e.audit], [false, 'no-allow-match', ['watch-all']]);
  const only = compile({ rules: [{ action: 'audit' }] }, { defaultPolicy: 'deny' });
  assert.deepEqual([only.evaluate(req()).allowed, only.evaluate(req()).rule], [false, 'default:deny']);
});

test('case 22: a plaintext peer never matches an identity rule, not even *', () => {
  for (const f of [{ identities: ['*'] }, { identities: ['*/sa/b'] }, { trustDomains: ['cluster.local'] }, { namespaces: ['*'] }, { serviceAccounts: ['a/*'] }, { unauthenticated: false }]) {
    const c = compile({ rules: [{ action: 'allow', from: f }] });
    assert.equal(c.evaluate(req({ from: null })).allowed, false, JSON.stringify(f));
    assert.equal(c.evaluate(req({ from: A })).allowed, true, JSON.stringify(f));
  }
});

test('not* identity fields do match a plaintext peer (Istio: DENY notPrincipals ["*"] denies plaintext)', () => {
  const c = compile({ rules: [{ action: 'deny', from: { notIdentities: ['*'] } }] }, { defaultPolicy: 'all-unauthenticated' });
  assert.equal(c.evaluate(req({ from: null })).allowed, false);
  assert.equal(c.evaluate(req({ from: A })).allowed, true);
  const u = compile({ rules: [{ action: 'allow', from: { unauthenticated: true } }] });
  assert.equal(u.evaluate(req({ from: null })).allowed, true);
  assert.equal(u.evaluate(req({ from: A })).allowed, false);
});

test('case 21: exact principals do not match neighbours', () => {
  const c = compile({ rules: [{ action: 'allow', from: { identities: [A] } }] });
  assert.equal(c.evaluate(req({ from: A })).allowed, true);
  for (const other of [`${A}b`, `${A}/x`, 'spiffe://cluster.local2/ns/a/sa/b', 'spiffe://other/ns/a/sa/b', 'spiffe://cluster.local/ns/a/sa/B', 'spiffe://cluster.local/ns/aa/sa/b']) {
    assert.equal(c.evaluate(req({ from: other })).allowed, false, other);
  }
});

test('identity prefix and suffix patterns', () => {
  const c = compile({ rules: [{ action: 'allow', from: { identities: ['spiffe://cluster.local/ns/a/sa/*', '*/sa/admin'] } }] });
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/a/sa/x' })).allowed, true);
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/ab/sa/x' })).allowed, false);
  assert.equal(c.evaluate(req({ from: 'spiffe://td2/ns/z/sa/admin' })).allowed, true);
  assert.equal(c.evaluate(req({ from: 'spiffe://td2/ns/z/sa/admins' })).allowed, false);
});

test('serviceAccounts are in the mesh trust domain only; namespaces and trust domains', () => {
  const c = compile({ rules: [{ action: 'allow', from: { serviceAccounts: ['a/b', 'x/*'] } }] });
  assert.equal(c.evaluate(req({ from: A })).allowed, true);
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/x/sa/anything' })).allowed, true);
  assert.equal(c.evaluate(req({ from: 'spiffe://other.td/ns/a/sa/b' })).allowed, false);
  assert.equal(c.evaluate(req({ from: 'spiffe://cluster.local/ns/a/sa/c' })).allowed, false);
  const n = compile({ rules: [{ action: 'allow', from: { namespaces: ['prod-*'], notTrustDomains: ['evil.td'] } }] });
  assert.equal(n.evaluate(req({ from: 'spiffe://cluster.local/ns/prod-1/sa/x' })).allowed, true);
  assert.equal(n.evaluate(req({ from: 'spiffe://evil.td/ns/prod-1/sa/x' })).allowed, false);
  assert.equal(n.evaluate(req({ from: 'spiffe://cluster.local/vm/prod-1' })).allowed, false);
});

test('case 20: paths are case-sensitive, methods exact as sent', () => {
  const c = compile({ rules: [{ action: 'allow', to: { methods: ['GET'], paths: ['/admin'] } }] });
  assert.equal(c.evaluate(req({ method: 'GET', path: '/admin' })).allowed, true);
  assert.equal(c.evaluate(req({ method: 'get', path: '/admin' })).allowed, false);
  assert.equal(c.evaluate(req({ method: 'Get', path: '/admin' })).allowed, false);
  assert.equal(c.evaluate(req({ method: 'GETX', path: '/admin' })).allowed, false);
  assert.equal(c.evaluate(req({ method: 'GET', path: '/Admin' })).allowed, false);
  assert.equal(c.evaluate(req({ method: 'GET', path: '/admin/' })).allowed, false);
});

test('case 19: the query never reaches path matching', () => {
  const c = compile({ rules: [{ action: 'allow', to: { paths: ['/a'] } }] });
  for (const t of ['/a?x=1', '/a?/admin', '/a?x=/../b']) {
    const n = normalizeTarget(t);
    assert.ok(n.ok);
    assert.equal(c.evaluate(req({ path: n.path })).allowed, true, t);
  }
  const n = normalizeTarget('/b?/a');
  assert.ok(n.ok);
  assert.equal(c.evaluate(req({ path: n.path })).allowed, false);
});

test('path patterns: exact, prefix, suffix, *, templates', () => {
  const c = compile({ rules: [{ action: 'allow', to: { paths: ['/exact', '/pre/*', '*.json', '/users/{id}/orders', '/files/{**}', '/v/{*}'] } }] });
  const yes = ['/exact', '/pre/', '/pre/x/y', '/a/b.json', '/users/7/orders', '/files/a', '/files/a/b/', '/v/1'];
  const no = ['/exact/', '/pre', '/a/b.jsonx', '/users//orders', '/users/7/8/orders', '/users/7/orders/', '/files/', '/files', '/v/1/2', '/v/'];
  for (const p of yes) assert.equal(c.evaluate(req({ path: p })).allowed, true, p);
  for (const p of no) assert.equal(c.evaluate(req({ path: p })).allowed, false, p);
  const any = compile({ rules: [{ action: 'allow', to: { paths: ['*'] } }] });
  assert.equal(any.evaluate(req({ path: '*', method: 'OPTIONS' })).allowed, true);
});

test('hosts: case-insensitive, port and trailing dot ignored, wildcards', () => {
  const c = compile({ rules: [{ action: 'allow', to: { hosts: ['api.example.com', '*.internal', '[::1]'] } }] });
  for (const h of ['api.example.com', 'API.Example.COM', 'api.example.com:8443', 'api.example.com.', 'x.internal', 'a.b.internal:80', '[::1]:8443']) {
    assert.equal(c.evaluate(req({ host: h })).allowed, true, h);
  }
  for (const h of ['example.com', 'api.example.com.evil', 'internal', 'xinternal', '']) {
    assert.equal(c.evaluate(req({ host: h })).allowed, false, h);
  }
});

test('ports, headers, sni and their not forms', () => {
  const c = compile({
    rules: [
      {
        action: 'allow',
        to: { ports: [8443], notMethods: ['DELETE'] },
        when: [{ headers: { 'X-Tenant': ['acme', 'beta-*'] } }, { notHeaders: { 'x-debug': ['*'] } }, { sni: ['*.example'] }],
      },
    ],
  });
  const base = { headers: { 'x-tenant': 'acme' }, sni: 'svc.example' };
  assert.equal(c.evaluate(req(base)).allowed, true);
  assert.equal(c.evaluate(req({ ...base, headers: { 'x-tenant': 'beta-2' } })).allowed, true);
  assert.equal(c.evaluate(req({ ...base, port: 9000 })).allowed, false);
  assert.equal(c.evaluate(req({ ...base, method: 'DELETE' })).allowed, false);
  assert.equal(c.evaluate(req({ ...base, headers: { 'x-tenant': 'ACME' } })).allowed, false);
  assert.equal(c.evaluate(req({ ...base, headers: {} })).allowed, false);
  assert.equal(c.evaluate(req({ ...base, headers: { 'x-tenant': 'acme', 'x-debug': '' } })).allowed, false);
  assert.equal(c.evaluate(req({ headers: base.headers })).allowed, false, 'no SNI');
});

test('IPv4 and IPv6 source blocks, IPv4-mapped addresses', () => {
  const c = compile({ rules: [{ action: 'allow', from: { ipBlocks: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1'], notIpBlocks: ['10.9.0.0/16'] } }] });
  const yes = ['10.1.2.3', '::ffff:10.1.2.3', '::FFFF:10.1.2.3', '2001:db8::1', '2001:DB8:0:0:0:0:0:ffff', '192.0.2.1', 'fe80::1%eth0'.replace('fe80::1', '2001:db8::5')];
  const no = ['11.0.0.1', '10.9.1.1', '::ffff:10.9.0.1', '2001:db9::1', '192.0.2.2', 'garbage', '', '010.1.2.3', '::1'];
  for (const ip of yes) assert.equal(c.evaluate(req({ ip })).allowed, true, ip);
  for (const ip of no) assert.equal(c.evaluate(req({ ip })).allowed, false, ip);
  const mapped = compile({ rules: [{ action: 'allow', from: { ipBlocks: ['::ffff:10.0.0.0/104'] } }] });
  assert.equal(mapped.evaluate(req({ ip: '10.3.3.3' })).allowed, true);
});

test('from entries OR, fields AND; to entries OR; when entries AND', () => {
  const c = compile({
    rules: [
      {
        action: 'allow',
        from: [{ identities: [A], ipBlocks: ['10.0.0.0/8'] }, { unauthenticated: true, ipBlocks: ['127.0.0.1'] }],
        to: [{ methods: ['GET'] }, { methods: ['POST'], paths: ['/submit'] }],
      },
    ],
  });
  assert.equal(c.evaluate(req({ from: A, ip: '10.0.0.1' })).allowed, true);
  assert.equal(c.evaluate(req({ from: A, ip: '11.0.0.1' })).allowed, false);
  assert.equal(c.evaluate(req({ from: null, ip: '127.0.0.1' })).allowed, true);
  assert.equal(c.evaluate(req({ from: A, ip: '10.0.0.1', method: 'POST', path: '/x' })).allowed, false);
  assert.equal(c.evaluate(req({ from: A, ip: '10.0.0.1', method: 'POST', path: '/submit' })).allowed, true);
});

test('matchNothing allow rules make the workload deny-by-default', () => {
  const c = compile({ rules: [{ name: 'nothing', action: 'allow', matchNothing: true }] }, { defaultPolicy: 'all-unauthenticated' });
  assert.equal(c.evaluate(req()).rule, 'no-allow-match');
});

test('namespace and selector scoping drop rules at compile time', () => {
  const p: PolicyInput = {
    rules: [
      { name: 'other-ns', action: 'deny', namespace: 'other' },
      { name: 'wrong-labels', action: 'deny', selector: { matchLabels: { app: 'db' } } },
      { name: 'expr', action: 'audit', selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }, { key: 'canary', operator: 'DoesNotExist' }] } },
      { name: 'mine', action: 'allow', namespace: 'default', selector: { matchLabels: { app: 'web' } } },
    ],
  };
  const c = compile(p, { labels: { app: 'web', tier: 'web' }, defaultPolicy: 'deny' });
  assert.equal(c.ruleCount, 2);
  assert.deepEqual(c.evaluate(req()), { allowed: true, result: 'allow', rule: 'mine', action: 'allow', audit: ['expr'] });
  const other = compile(p, { namespace: 'other', labels: {}, defaultPolicy: 'all-unauthenticated' });
  assert.equal(other.evaluate(req()).rule, 'other-ns');
});

test('server sections: accessPolicy fallback, routes, top-level denies still apply', () => {
  const c = compile(
    {
      rules: [{ name: 'global-deny', action: 'deny', to: { paths: ['/forbidden'] } }, { name: 'top-allow', action: 'allow' }],
      servers: [
        { name: 'ns/api', ports: [8443], rules: [{ name: 'api-get', action: 'allow', to: { methods: ['GET'] } }], routes: [{ paths: ['/api/*'] }, { paths: ['/forbidden'] }] },
        { name: 'ns/metrics', ports: [9090], accessPolicy: 'audit' },
      ],
    },
    { defaultPolicy: 'deny' },
  );
  assert.deepEqual(c.evaluate(req({ path: '/api/x' })), { allowed: true, result: 'allow', rule: 'api-get', action: 'allow', audit: [], server: 'ns/api' });
  assert.deepEqual([c.evaluate(req({ path: '/api/x', method: 'POST' })).rule, c.evaluate(req({ path: '/api/x', method: 'POST' })).allowed], ['default:deny', false]);
  assert.equal(c.evaluate(req({ path: '/other' })).rule, 'no-route');
  assert.equal(c.evaluate(req({ path: '/forbidden' })).rule, 'global-deny');
  const m = c.evaluate(req({ port: 9090, from: null }));
  assert.deepEqual([m.allowed, m.rule, m.audit, m.server], [true, 'default:audit', ['default:audit'], 'ns/metrics']);
  assert.equal(c.evaluate(req({ port: 1234 })).rule, 'top-allow');
});

test('overlapping servers are refused', () => {
  assert.throws(() => compile({ servers: [{ name: 'a', ports: [1] }, { name: 'b', ports: [1] }] }), /already covered/);
});

test('decisions are precomputed: no allocation per request without audit matches', () => {
  const c = compile({ rules: [{ name: 'ok', action: 'allow', to: { paths: ['/a'] } }] });
  assert.equal(c.evaluate(req({ path: '/a' })), c.evaluate(req({ path: '/a' })));
  assert.equal(c.evaluate(req({ path: '/b' })), c.evaluate(req({ path: '/b' })));
  assert.ok(Object.isFrozen(c.evaluate(req({ path: '/a' }))));
});

test('compilePolicy validates its input too (hand-written objects)', () => {
  assert.throws(() => compilePolicy({ rules: [{ action: 'allow', from: { identities: ['bad'] } }] }, OPTS), /rules\[0\]\.from\[0\]\.identities\[0\]/);
  assert.throws(() => compilePolicy({}, { ...OPTS, clusterNetworks: ['nope'] }), /clusterNetworks/);
});
