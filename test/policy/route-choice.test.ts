// One route per request (Gateway API precedence, as Linkerd picks one HTTPRoute): only the chosen
// route's allow rules and the server's unrouted ones apply. Pure, over the native form and Linkerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, loadPolicy } from '../../src/policy/index.js';
import { alikeOf, EXPRESS_ROUTING } from '../../src/policy/router-semantics.js';
import { matchRank } from '../../src/policy/import/linkerd.js';
import { OPTS, issuesOf, req } from './helpers.js';

const WEB = 'spiffe://cluster.local/ns/default/sa/web';
const ADMIN = 'spiffe://cluster.local/ns/default/sa/admin';

const NATIVE = {
  servers: [
    {
      name: 's',
      ports: [8443],
      routes: [
        { route: 'all', rank: 1, paths: ['/*'] },
        { route: 'admin', rank: 10, paths: ['/admin', '/admin/*'] },
        { route: 'login', rank: 100, paths: ['/admin/login'] },
      ],
      rules: [
        { name: 'any', action: 'allow', route: 'all', from: { identities: ['*'] } },
        { name: 'admins', action: 'allow', route: 'admin', from: { identities: [ADMIN] } },
        { name: 'login-open', action: 'allow', route: 'login' },
        { name: 'probe', action: 'allow', to: { paths: ['/healthz'] } },
      ],
    },
  ],
};

test('the highest-ranked matching route decides; unrouted rules apply to every route', () => {
  const c = compilePolicy(loadPolicy(NATIVE), OPTS);
  const d = (from: string | null, path: string) => {
    const x = c.evaluate(req({ from, path }));
    return `${x.result}:${x.rule}`;
  };
  assert.equal(d(WEB, '/orders'), 'allow:any');
  assert.equal(d(WEB, '/admin/users'), 'deny:default:deny', 'the catch-all route does not admit into /admin');
  assert.equal(d(ADMIN, '/admin/users'), 'allow:admins');
  assert.equal(d(null, '/admin/login'), 'allow:login-open', 'the most specific route wins');
  assert.equal(d(null, '/healthz'), 'allow:probe', 'an unrouted rule applies within any route');
});

test('on a router that serves alike spellings alike, every spelling’s route must admit the request', () => {
  const c = compilePolicy(loadPolicy(NATIVE), OPTS);
  const judge = (from: string, path: string) => {
    const alike = alikeOf(path, 'GET', EXPRESS_ROUTING);
    return c.evaluate({ ...req({ from, path }), ...(alike && { alike }) }).allowed;
  };
  assert.equal(judge(WEB, '/ADMIN/users'), false, '/ADMIN/users is the admin route’s for Express');
  assert.equal(judge(WEB, '/orders'), true);
  assert.equal(judge(ADMIN, '/admin/users'), true);
});

test('a route name that names no route, or a routed deny rule, is refused with its path', () => {
  const bad = structuredClone(NATIVE) as { servers: Array<{ rules: Array<Record<string, unknown>> }> };
  bad.servers[0]!.rules.push({ name: 'x', action: 'allow', route: 'nope' }, { name: 'y', action: 'deny', route: 'all' });
  const issues = issuesOf(() => loadPolicy(bad as never));
  assert.deepEqual(issues.map((i) => i.path), ['servers[0].rules[4].route', 'servers[0].rules[5].route']);
  assert.ok(issuesOf(() => loadPolicy({ rules: [{ action: 'allow', route: 'all' }] } as never)).some((i) => /route/.test(i.path)), 'top-level rules have no route');
});

test('Gateway API precedence: Exact over any prefix, then the longer prefix, then a method, then more headers', () => {
  const ranks = [
    matchRank({ path: { type: 'Exact', value: '/a' } }),
    matchRank({ path: { type: 'PathPrefix', value: '/a/b/c' } }),
    matchRank({ path: { type: 'PathPrefix', value: '/a/b' }, method: 'GET' }),
    matchRank({ path: { type: 'PathPrefix', value: '/a/b' }, headers: [{ name: 'x', value: '1' }, { name: 'y', value: '2' }] }),
    matchRank({ path: { type: 'PathPrefix', value: '/a/b' }, headers: [{ name: 'x', value: '1' }] }),
    matchRank({}),
  ];
  assert.deepEqual([...ranks].sort((a, b) => b - a), ranks);
});
