// Router semantics (SECURITY-CASES 35): the spellings a router serves from one handler widen DENY
// rules and narrow ALLOW rules' exclusions — never the other way — so an ALLOW judges the spelling
// sent and a DENY cannot be bypassed by case, a trailing slash, `;`, Unicode folding or HEAD.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EXACT_ROUTING,
  EXPRESS_ROUTING,
  type RouterSemantics,
  alikeOf,
  coversRouting,
  routerDecode,
  trailingSlashTwin,
  unionRouting,
} from '../../src/policy/router-semantics.js';
import { compilePolicy, loadPolicy } from '../../src/policy/index.js';
import { type PolicyRequest } from '../../src/policy/model.js';

const FASTIFY_DEFAULT: RouterSemantics = { caseInsensitive: false, ignoreTrailingSlash: true, semicolonDelimiter: false, decodesPath: true, headAsGet: true, emptyParam: true };
const FASTIFY_LOOSE: RouterSemantics = { caseInsensitive: true, ignoreTrailingSlash: true, semicolonDelimiter: true, decodesPath: true, headAsGet: true, emptyParam: true };
const peer = { id: 'spiffe://cluster.local/ns/default/sa/web', kind: 'spiffe' as const, spiffeId: 'spiffe://cluster.local/ns/default/sa/web', trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'web' };

function judge(policy: unknown, method: string, path: string, routing: RouterSemantics): string {
  const compiled = compilePolicy(loadPolicy(policy as never), { trustDomain: 'cluster.local', namespace: 'default' });
  const alike = alikeOf(path, method, routing);
  const req: PolicyRequest = { peer, sourceIp: '127.0.0.1', method, path, host: 'payments', port: 8443, header: () => undefined, ...(alike && { alike }) };
  const d = compiled.evaluate(req);
  return `${d.result}:${d.rule}`;
}

describe('alikeOf', () => {
  test('exact routing has no alike spellings; `*` and "" never do', () => {
    assert.equal(alikeOf('/admin', 'GET', EXACT_ROUTING), undefined);
    assert.equal(alikeOf('*', 'OPTIONS', EXPRESS_ROUTING), undefined);
    assert.equal(alikeOf('', 'CONNECT', EXPRESS_ROUTING), undefined);
  });
  test('Express: the trailing-slash twin, lower-cased spellings, HEAD → GET', () => {
    assert.deepEqual(alikeOf('/Admin', 'HEAD', EXPRESS_ROUTING), { paths: ['/Admin', '/Admin/'], folded: ['/admin', '/admin/'], methods: ['HEAD', 'GET'] });
    assert.deepEqual(alikeOf('/admin', 'GET', EXPRESS_ROUTING)?.folded, ['/admin', '/admin/'], 'a lower-case path still needs folding: patterns may be upper-case');
    assert.deepEqual(alikeOf('/', 'GET', EXPRESS_ROUTING), { paths: ['/'], folded: ['/'], methods: ['GET'] });
  });
  test('Fastify: `;` ends the path, the path is decoded (reserved characters and %25 stay), Unicode folds', () => {
    const a = alikeOf('/admin;jsessionid=1', 'GET', FASTIFY_LOOSE)!;
    assert.ok(a.paths.includes('/admin') && a.paths.includes('/admin/'), JSON.stringify(a));
    const k = alikeOf('/%E2%84%AAelvin', 'GET', FASTIFY_LOOSE)!;
    assert.ok(k.paths.includes('/\u212Aelvin'), 'decoded as find-my-way does');
    assert.ok(k.folded.includes('/kelvin'), 'the Kelvin sign lower-cases to k');
    assert.equal(routerDecode('/a%3Bb%25c%C3%AF'), '/a%3Bb%25cï');
    assert.equal(routerDecode('/bad%C3'), undefined, 'not UTF-8: the router answers 400, no handler');
    assert.equal(alikeOf('/x;y', 'GET', FASTIFY_DEFAULT)?.paths.includes('/x'), false, 'without useSemicolonDelimiter ; is an ordinary character');
  });
  test('twins, cover and union', () => {
    assert.equal(trailingSlashTwin('/a'), '/a/');
    assert.equal(trailingSlashTwin('/a/'), '/a');
    assert.equal(trailingSlashTwin('/'), undefined);
    assert.ok(coversRouting(EXPRESS_ROUTING, EXACT_ROUTING));
    assert.ok(!coversRouting(EXACT_ROUTING, EXPRESS_ROUTING));
    assert.ok(coversRouting(unionRouting(EXPRESS_ROUTING, FASTIFY_LOOSE), FASTIFY_LOOSE));
  });
});

describe('ALLOW judges the spelling sent (the Express exact-path bug)', () => {
  const cases: Array<[string, unknown]> = [
    ['native exact', { rules: [{ name: 'charge', action: 'allow', to: { methods: ['POST'], paths: ['/charge'] } }] }],
    ['native template', { rules: [{ name: 'charge', action: 'allow', to: { methods: ['POST'], paths: ['/orders/{id}/charge'] } }] }],
  ];
  for (const [what, policy] of cases) {
    for (const routing of [EXACT_ROUTING, EXPRESS_ROUTING, FASTIFY_DEFAULT, FASTIFY_LOOSE]) {
      test(`${what}: the named path is allowed under ${JSON.stringify(routing)}`, () => {
        const path = what.includes('template') ? '/orders/7/charge' : '/charge';
        assert.equal(judge(policy, 'POST', path, routing), 'allow:charge');
        assert.equal(judge(policy, 'POST', `${path}/`, routing), 'deny:no-allow-match', 'the twin is not named: not admitted');
        assert.equal(judge(policy, 'POST', path.toUpperCase(), routing), 'deny:no-allow-match', 'another case is not named');
      });
    }
  }
});

describe('DENY judges every spelling the router serves alike', () => {
  const deny = { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/kelvin', '/users/{id}/keys'] } }] };
  test('Express: case and trailing slash', () => {
    for (const p of ['/admin', '/ADMIN', '/Admin/', '/admin/', '/users/1/KEYS', '/users/1/keys/']) assert.equal(judge(deny, 'GET', p, EXPRESS_ROUTING), 'deny:no-admin', p);
    assert.equal(judge(deny, 'GET', '/ADMIN', EXACT_ROUTING), 'allow:default:all-authenticated', 'node:http routes /ADMIN elsewhere');
  });
  test('Fastify: trailing slash always (prefixTrailingSlash), case and Unicode folding and `;` when configured', () => {
    assert.equal(judge(deny, 'GET', '/admin/', FASTIFY_DEFAULT), 'deny:no-admin');
    assert.equal(judge(deny, 'GET', '/ADMIN', FASTIFY_DEFAULT), 'allow:default:all-authenticated', 'case-sensitive by default');
    for (const p of ['/ADMIN', '/admin;x=1', '/%E2%84%AAelvin', '/%E2%84%AAELVIN/', '/ad%6Din']) assert.equal(judge(deny, 'GET', p, FASTIFY_LOOSE), 'deny:no-admin', p);
  });
  test('Fastify serves `/orders/` from `/orders/:id` (id ""): a DENY on /orders/{id} denies it there, not on Express (found by fuzzing against find-my-way)', () => {
    const orders = { rules: [{ name: 'no-orders', action: 'deny', to: { paths: ['/orders/{id}'] } }] };
    assert.equal(judge(orders, 'GET', '/orders/', FASTIFY_DEFAULT), 'deny:no-orders');
    assert.equal(judge(orders, 'GET', '/orders/', EXPRESS_ROUTING), 'allow:default:all-authenticated', 'Express routes /orders/ to no parameter route');
    assert.equal(judge({ rules: [{ name: 'exact', action: 'deny', to: { paths: ['/orders/7'] } }] }, 'GET', '/orders/', FASTIFY_DEFAULT), 'allow:default:all-authenticated', 'an exact path never matches the empty parameter');
    assert.equal(judge({ rules: [{ name: 'ok', action: 'allow', to: { paths: ['/orders/{id}'] } }] }, 'GET', '/orders/', FASTIFY_DEFAULT), 'deny:no-allow-match', 'an ALLOW still admits only what it names');
  });
  test('HEAD runs GET handlers: a DENY on GET also denies HEAD there (Express, Fastify), not on node:http', () => {
    const noGet = { rules: [{ name: 'no-get', action: 'deny', to: { methods: ['GET'], paths: ['/report'] } }] };
    assert.equal(judge(noGet, 'HEAD', '/report', EXPRESS_ROUTING), 'deny:no-get');
    assert.equal(judge(noGet, 'HEAD', '/report', FASTIFY_DEFAULT), 'deny:no-get');
    assert.equal(judge(noGet, 'HEAD', '/report', EXACT_ROUTING), 'allow:default:all-authenticated');
    assert.equal(judge(noGet, 'POST', '/report', EXPRESS_ROUTING), 'allow:default:all-authenticated');
  });
});

describe('negative conditions: only the fail-closed direction', () => {
  test('DENY unless /healthz: /healthz itself is exempt on every router (its twin does not drag it in)', () => {
    const p = { rules: [{ name: 'only-health', action: 'deny', to: { notPaths: ['/healthz'] } }] };
    for (const r of [EXACT_ROUTING, EXPRESS_ROUTING, FASTIFY_LOOSE]) {
      assert.equal(judge(p, 'GET', '/healthz', r), 'allow:default:all-authenticated', JSON.stringify(r));
      assert.equal(judge(p, 'GET', '/other', r), 'deny:only-health');
    }
    assert.equal(judge(p, 'GET', '/HEALTHZ', EXPRESS_ROUTING), 'deny:only-health', 'another spelling is not the exempt one: denied (fail closed)');
  });
  test('ALLOW all but /admin: no spelling that reaches /admin is allowed', () => {
    const p = { rules: [{ name: 'not-admin', action: 'allow', to: { notPaths: ['/admin'], notMethods: ['GET'] } }] };
    for (const path of ['/ADMIN', '/admin/', '/Admin/']) assert.equal(judge(p, 'POST', path, EXPRESS_ROUTING), 'deny:no-allow-match', path);
    assert.equal(judge(p, 'POST', '/ADMIN', EXACT_ROUTING), 'allow:not-admin', 'node:http: /ADMIN is another path');
    assert.equal(judge(p, 'HEAD', '/x', EXPRESS_ROUTING), 'deny:no-allow-match', 'HEAD runs the excluded GET');
    assert.equal(judge(p, 'POST', '/x', EXPRESS_ROUTING), 'allow:not-admin');
  });
  test('Istio paths behind Express: the named paths are served', () => {
    const istio = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: charge, namespace: default }
spec:
  action: ALLOW
  rules:
    - to: [{ operation: { methods: ["POST"], paths: ["/charge", "/orders/*"] } }]
`;
    assert.equal(judge(istio, 'POST', '/charge', EXPRESS_ROUTING), 'allow:default/charge#0');
    assert.equal(judge(istio, 'POST', '/orders/1', EXPRESS_ROUTING), 'allow:default/charge#0');
  });
});

describe('usesAlike: the gate computes alike spellings only when they can change a decision', () => {
  const uses = (policy: unknown) => compilePolicy(loadPolicy(policy as never), { trustDomain: 'cluster.local', namespace: 'default' }).usesAlike;
  test('allow rules that name paths and methods, and deny rules on identities only: no', () => {
    assert.equal(uses({ rules: [{ action: 'allow', to: { methods: ['GET'], paths: ['/x', '/y/*'] } }, { action: 'deny', from: { identities: ['spiffe://cluster.local/ns/x/sa/y'] } }] }), false);
    assert.equal(uses({}), false);
  });
  test('a deny or audit rule with paths or methods, an allow rule with notPaths/notMethods, named routes: yes', () => {
    assert.equal(uses({ rules: [{ action: 'deny', to: { paths: ['/admin'] } }] }), true);
    assert.equal(uses({ rules: [{ action: 'audit', to: { methods: ['GET'] } }] }), true);
    assert.equal(uses({ rules: [{ action: 'allow', to: { notPaths: ['/admin'] } }] }), true);
    assert.equal(uses({ rules: [{ action: 'deny', when: [{ paths: ['/a'] }] }] }), true);
    assert.equal(uses({ servers: [{ name: 's', ports: [1], routes: [{ route: 'r', paths: ['/*'] }], rules: [{ action: 'allow', route: 'r' }] }] }), true);
  });
});
