import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, parseAddress } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { parseDuration } from '../src/duration.js';

function issuesOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID');
    return [...e.issues];
  }
  assert.fail('expected a ConfigError');
}

test('defaults follow DESIGN.md', () => {
  const c = resolveConfig({ service: 'orders' }, {});
  assert.equal(c.namespace, 'default');
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.spiffeId, 'spiffe://cluster.local/ns/default/sa/orders');
  assert.equal(c.inbound.mode, 'strict');
  assert.equal(c.inbound.defaultPolicy, 'all-authenticated');
  assert.equal(c.outbound.egress, 'allow');
  assert.equal(c.outbound.connectTimeout, 10_000);
});

test('errors name every offending path, and nothing is half-applied', () => {
  const issues = issuesOf(() =>
    resolveConfig(
      {
        service: 'Orders',
        trustDomain: 'Bad.TD',
        inbound: { mode: 'loose' as never },
        outbound: { services: { payments: { endpoints: ['nohost', { address: '127.0.0.1:70000' }, { address: '1.2.3.4:5', identity: 'spiffe://x' }] } } },
      },
      {},
    ),
  );
  const paths = issues.map((i) => i.path);
  for (const p of ['service', 'trustDomain', 'inbound.mode', 'outbound.services.payments.endpoints.0', 'outbound.services.payments.endpoints.1.address', 'outbound.services.payments.endpoints.2.identity']) {
    assert.ok(paths.some((x) => x === p || x.startsWith(p)), `missing ${p} in ${paths.join(', ')}`);
  }
});

test('unknown options are errors, not silently ignored', () => {
  const issues = issuesOf(() => resolveConfig({ service: 'a', outbound: { egres: 'deny' } as never }, {}));
  assert.match(issues[0]!.message, /egres/);
  assert.equal(issues[0]!.path, 'outbound');
});

test('the message lists path: message lines a person can act on', () => {
  try {
    resolveConfig({ service: 'a', outbound: { connectTimeout: 'soon' } }, {});
    assert.fail();
  } catch (e) {
    assert.match((e as Error).message, /outbound\.connectTimeout: invalid duration "soon"/);
  }
});

test('spiffeId must be in the trust domain', () => {
  const issues = issuesOf(() => resolveConfig({ service: 'a', spiffeId: 'spiffe://other.org/x' }, {}));
  assert.equal(issues[0]!.path, 'spiffeId');
});

test('SIDECARLESS_* fill unset options; code wins', () => {
  const env = { SIDECARLESS_SERVICE: 'web', SIDECARLESS_NAMESPACE: 'prod', SIDECARLESS_IDENTITY_DIR: '/run/spiffe', SIDECARLESS_EGRESS: 'deny' };
  const c = resolveConfig({} as never, env);
  assert.equal(c.service, 'web');
  assert.equal(c.spiffeId, 'spiffe://cluster.local/ns/prod/sa/web');
  assert.deepEqual(c.identity, { dir: '/run/spiffe' });
  assert.equal(c.outbound.egress, 'deny');
  const code = resolveConfig({ service: 'api', outbound: { egress: 'allow' } }, env);
  assert.equal(code.service, 'api');
  assert.equal(code.outbound.egress, 'allow');
  assert.deepEqual(resolveConfig({ service: 'a', identity: { dir: '/mine' } }, env).identity, { dir: '/mine' });
  const bad = issuesOf(() => resolveConfig({ service: 'a' }, { SIDECARLESS_INBOUND_MODE: 'sometimes' }));
  assert.equal(bad[0]!.path, 'inbound.mode');
});

test('a missing options object gets a clear error', () => {
  assert.throws(() => resolveConfig(undefined as never, {}), /needs an options object/);
});

test('addresses: host:port and [v6]:port only', () => {
  assert.deepEqual(parseAddress('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  assert.deepEqual(parseAddress('[::1]:8443'), { host: '::1', port: 8443 });
  assert.deepEqual(parseAddress('payments.default.svc:9000'), { host: 'payments.default.svc', port: 9000 });
  for (const bad of ['127.0.0.1', ':80', '127.0.0.1:0', '127.0.0.1:65536', '::1:80', 'http://a:1', 'a b:1', '127.0.0.1:80/x']) {
    assert.equal(parseAddress(bad), undefined, bad);
  }
});

test('durations', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration(42), 42);
  for (const bad of ['10', 's', '-1s', '1y', '', '1 s0', 'NaNs']) assert.throws(() => parseDuration(bad), RangeError, bad);
  assert.throws(() => parseDuration(-1), RangeError);
});
