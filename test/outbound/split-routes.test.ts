import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveConfig, serviceSchema } from '../../src/config.js';
import { serviceFromConfig } from '../../src/control-plane/from-options.js';
import { checkOptionsSnapshot, snapshotFromOptions } from '../../src/control-plane/static.js';
import { loadPolicy } from '../../src/policy/index.js';
import { compileRoute } from '../../src/outbound/routes.js';
import { Split } from '../../src/outbound/split.js';

describe('Split (smooth weighted round robin)', () => {
  test('90/10 gives exactly 9 in 10, interleaved', () => {
    const s = new Split([{ service: 'v1', weight: 90 }, { service: 'v2', weight: 10 }]);
    const picks = Array.from({ length: 1000 }, () => s.pick());
    assert.equal(picks.filter((p) => p === 'v2').length, 100);
    // never more than one canary request in any 10 consecutive ones
    for (let i = 0; i + 10 <= picks.length; i++) assert.ok(picks.slice(i, i + 10).filter((p) => p === 'v2').length <= 1);
    assert.deepEqual(s.stats(), [{ service: 'v1', weight: 90, requests: 900 }, { service: 'v2', weight: 10, requests: 100 }]);
  });
  test('weight 0 gets nothing; new weights apply at once; all zero gives undefined', () => {
    const s = new Split([{ service: 'a', weight: 0 }, { service: 'b', weight: 3 }]);
    assert.deepEqual(new Set(Array.from({ length: 30 }, () => s.pick())), new Set(['b']));
    s.set([{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }]);
    const picks = Array.from({ length: 10 }, () => s.pick());
    assert.equal(picks.filter((p) => p === 'a').length, 5);
    s.set([{ service: 'a', weight: 0 }]);
    assert.equal(s.pick(), undefined);
  });
});

describe('routes', () => {
  const req = (method: string, path: string, headers: Record<string, string> = {}) => ({ method, path, header: (n: string) => headers[n] });
  const ctx = { trustDomain: 'cluster.local', namespace: 'default' };
  const route = (match: object) => compileRoute(serviceFromConfig('p', serviceSchema.parse({ routes: [{ match }] }), ctx).routes[0]!, null);
  test('path exact, prefix by segment, regex (query ignored)', () => {
    assert.ok(route({ path: { exact: '/a' } }).matches(req('GET', '/a?x=1')));
    assert.ok(!route({ path: { exact: '/a' } }).matches(req('GET', '/a/')));
    const p = route({ path: { prefix: '/api' } });
    assert.ok(p.matches(req('GET', '/api')) && p.matches(req('GET', '/api/v1')) && p.matches(req('GET', '/api?q')));
    assert.ok(!p.matches(req('GET', '/apix')));
    assert.ok(route({ path: { prefix: '/api/' } }).matches(req('GET', '/api')));
    assert.ok(route({ path: { prefix: '/' } }).matches(req('GET', '/anything')));
    const r = route({ path: { regex: '/users/[0-9]+' } });
    assert.ok(r.matches(req('GET', '/users/12')) && !r.matches(req('GET', '/users/12/x')));
  });
  test('a plain string prefix (xDS RouteMatch.prefix) matches inside a segment, the query ignored', () => {
    const m = compileRoute({ name: 's', match: { path: { stringPrefix: '/api' } } }, null);
    assert.ok(m.matches(req('GET', '/api')) && m.matches(req('GET', '/apix')) && m.matches(req('GET', '/api/v1?q')));
    assert.ok(!m.matches(req('GET', '/ap')) && !m.matches(req('GET', '/API')) && !m.matches(req('GET', '/x/api')));
    assert.ok(!compileRoute({ name: 'q', match: { path: { stringPrefix: '/a?x' } } }, null).matches(req('GET', '/a?x=1')));
    assert.ok(compileRoute({ name: 'e', match: { path: { stringPrefix: '' } } }, null).matches(req('GET', '/anything')));
  });
  test('method and headers', () => {
    assert.ok(route({ method: 'post' }).matches(req('POST', '/')));
    assert.ok(route({ method: ['GET', 'HEAD'] }).matches(req('HEAD', '/')));
    assert.ok(!route({ method: 'GET' }).matches(req('POST', '/')));
    assert.ok(route({ headers: { 'X-Canary': '1' } }).matches(req('GET', '/', { 'x-canary': '1' })));
    assert.ok(!route({ headers: { 'x-canary': '1' } }).matches(req('GET', '/', { 'x-canary': '2' })));
    assert.ok(route({ headers: { 'x-user': { regex: 'u[0-9]' } } }).matches(req('GET', '/', { 'x-user': 'u7' })));
    assert.ok(route({ headers: { 'x-debug': { present: false } } }).matches(req('GET', '/')));
    assert.ok(!route({ headers: { 'x-debug': { present: true } } }).matches(req('GET', '/')));
  });
});

describe('outbound service options', () => {
  const base = { service: 'orders' };
  const issues = (services: object) => {
    try {
      checkOptionsSnapshot(snapshotFromOptions(resolveConfig({ ...base, outbound: { services } } as never, {}), loadPolicy({})));
      return [];
    } catch (e) {
      return (e as { issues: Array<{ path: string }> }).issues.map((i) => i.path);
    }
  };
  test('the full set parses, durations in ms', () => {
    const c = resolveConfig(
      {
        ...base,
        outbound: {
          services: {
            payments: {
              endpoints: ['127.0.0.1:9001'],
              balancer: 'least-request',
              ewma: { defaultRtt: '30ms', decay: '10s' },
              failureAccrual: { consecutiveFailures: 5, minPenalty: '1s', maxPenalty: '1m' },
              retry: { maxRetries: 1, retryOn: ['connect', 503], backoff: { base: '10ms' }, budget: { retryRatio: 0.1, minRetriesPerSecond: 5, window: '10s' } },
              timeout: { request: '5s', perTry: '1s' },
              connections: { maxPerEndpoint: 8, keepAliveTimeout: '4s' },
              routes: [{ name: 'charge', match: { path: { prefix: '/charge' }, method: 'POST' }, timeout: { request: '2s' }, retry: false }],
            },
            'payments-v2': { endpoints: ['127.0.0.1:9002'] },
            checkout: { split: [{ service: 'payments', weight: 9 }, { service: 'payments-v2', weight: 1 }] },
          },
        },
      },
      {},
    );
    const p = c.outbound.services.payments!;
    assert.deepEqual(p.timeout, { request: 5000, perTry: 1000 });
    assert.equal(p.retry && p.retry.budget?.window, 10_000);
    assert.equal(p.connections?.keepAliveTimeout, 4000);
  });
  test('errors name their paths', () => {
    assert.deepEqual(issues({ p: { balancer: 'fastest' } }), ['outbound.services.p.balancer']);
    assert.deepEqual(issues({ p: { retry: { retryOn: [200] } } }), ['outbound.services.p.retry.retryOn.0']);
    assert.deepEqual(issues({ p: { retry: { budget: { ratio: 0.2 } } } }), ['outbound.services.p.retry.budget.ratio'], 'an unknown key is named itself');
    assert.deepEqual(issues({ p: { timeout: { perTry: 'soon' } } }), ['outbound.services.p.timeout.perTry']);
    assert.deepEqual(issues({ p: { split: [{ service: 'q', weight: 1 }] } }), ['outbound.services.p.split.0.service']);
    assert.deepEqual(issues({ p: { split: [{ service: 'p', weight: 0 }] } }), ['outbound.services.p.split']);
    assert.deepEqual(issues({ p: { routes: [{ match: { path: { regex: '(' } } }] } }), ['outbound.services.p.routes.0.match.path.regex']);
    assert.deepEqual(issues({ p: { routes: [{ retry: { budget: {} } }] } }), ['outbound.services.p.routes.0.retry.budget']);
    assert.deepEqual(
      issues({ a: { split: [{ service: 'b', weight: 1 }] }, b: { split: [{ service: 'c', weight: 1 }] }, c: {} }),
      ['outbound.services.a.split.0.service'],
    );
  });
});
