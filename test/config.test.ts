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
  assert.equal(issues[0]!.path, 'outbound.egres');
  assert.equal(issues[0]!.message, 'unknown option (did you mean "egress"?)');
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

/** The ConfigError's message for `input` (with `env`). */
function messageOf(input: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    resolveConfig(input as never, env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail('expected a ConfigError');
}

test('common mistakes get a message that says what to do', () => {
  const cases: Array<[unknown, NodeJS.ProcessEnv, RegExp]> = [
    [{}, {}, /^ {2}- service is required: pass \{ service: 'orders' \} or set SIDECARLESS_SERVICE$/m],
    [{ service: 'a', identity: { dir: './certs', ca: {} } }, {}, /- identity takes exactly one of dir, ca, source, workloadApi, pem, got dir and ca: keep one\. For example \{ dir: '\.\/certs\/orders' \}/],
    [{ service: 'a', identity: { dri: './certs' } }, {}, /- identity takes exactly one of dir, ca, source, workloadApi, pem, got only "dri" \(did you mean "dir"\?\)/],
    [{ service: 'a', identity: {} }, {}, /- identity takes exactly one of dir, ca, source, workloadApi, pem, got an empty object/],
    [{ service: 'a', identity: './certs' }, {}, /- identity must be an object with one of dir, ca, source, workloadApi, pem, got the string "\.\/certs"/],
    [{ service: 'a', identity: { dir: './certs', polInterval: '1s' } }, {}, /- identity\.polInterval: unknown option \(did you mean "pollInterval"\?\)/],
    [{ service: 'a' }, { SIDECARLESS_INBOUND_MODE: 'strcit' }, /- inbound\.mode \(from SIDECARLESS_INBOUND_MODE\) must be one of "strict", "permissive", got the string "strcit" \(did you mean "strict"\?\)/],
    [{ service: 'a' }, { SIDECARLESS_EGRESS: 'none' }, /- outbound\.egress \(from SIDECARLESS_EGRESS\) must be one of "allow", "deny", got the string "none"$/m],
    [{}, { SIDECARLESS_SERVICE: 'Orders' }, /- service \(from SIDECARLESS_SERVICE\) must be a DNS label/],
    [{ service: 'a' }, { SIDECARLESS_TRUST_DOMAIN: 'Bad TD' }, /- trustDomain \(from SIDECARLESS_TRUST_DOMAIN\)/],
    [{ service: 'a', inbound: { mode: 'strcit' } }, { SIDECARLESS_INBOUND_MODE: 'permissive' }, /- inbound\.mode must be one of/], // code's value: no env named
    [{ service: 'a', outbound: { services: { payments: { endpoints: '127.0.0.1:9001' } } } }, {}, /- outbound\.services\.payments\.endpoints must be a list, got the string "127\.0\.0\.1:9001" \(write a list: \["127\.0\.0\.1:9001"\]\)/],
    [{ service: 'a', outbound: { services: { payments: { endpoints: [9001] } } } }, {}, /- outbound\.services\.payments\.endpoints\.0 must be "host:port" or \{ address: "host:port", identity\?, weight\?, zone\?, labels\? \}, got the number 9001/],
    [{ service: 'a', outbound: { services: { payments: { endpoint: ['127.0.0.1:1'] } } } }, {}, /- outbound\.services\.payments\.endpoint: unknown option \(did you mean "endpoints"\?\)/],
    [{ service: 'a', outbound: { egres: 'deny' } }, {}, /- outbound\.egres: unknown option \(did you mean "egress"\?\)/],
    [{ service: 'a', servce: 'b' }, {}, /- servce: unknown option \(did you mean "service"\?\)/],
    [{ service: 'a', xyzzy: 1 }, {}, /- xyzzy: unknown option; known: service, namespace, trustDomain/],
    [{ service: 'a', outbound: { services: { Payments: {} } } }, {}, /- outbound\.services\.Payments: "Payments" is not a valid name: must be a DNS label/],
    [{ service: 'a', outbound: { services: { payments: { retry: { maxRetries: 'x' } } } } }, {}, /- outbound\.services\.payments\.retry\.maxRetries must be a number, got the string "x"/],
    [{ service: 'a', outbound: { services: { payments: { retry: 'often' } } } }, {}, /- outbound\.services\.payments\.retry must be false or an object, got the string "often"/],
    [{ service: 'a', outbound: { services: { payments: { retry: { maxRetries: 20 } } } } }, {}, /- outbound\.services\.payments\.retry\.maxRetries must be at most 10, got the number 20/],
    [{ service: 'a', outbound: { services: { payments: { timeout: '1s' } } } }, {}, /- outbound\.services\.payments\.timeout must be an object \(with request, perTry\), got the string "1s"/],
    [{ service: 'a', outbound: { services: { payments: { routes: [{ match: { path: { exakt: '/a' } } }] } } } }, {}, /routes\.0\.match\.path takes exactly one of exact, prefix, regex, got only "exakt" \(did you mean "exact"\?\)/],
    [{ service: 'a', admin: { port: '9990' } }, {}, /- admin\.port must be a number, got the string "9990"/],
    [{ service: 'a', admin: { port: 70000 } }, {}, /- admin\.port must be at most 65535, got the number 70000/],
  ];
  for (const [input, env, want] of cases) assert.match(messageOf(input, env), want, JSON.stringify(input) + ' ' + JSON.stringify(env));
});

test('one issue per mistake, each carrying its path (and the variable it came from)', () => {
  const issues = issuesOf(() => resolveConfig({ service: 'a', identity: { dir: './x', ca: {}, source: {} } } as never, {}));
  assert.equal(issues.length, 1, JSON.stringify(issues));
  assert.equal(issues[0]!.path, 'identity');
  const misspelt = issuesOf(() => resolveConfig({ service: 'a', outbound: { services: { p: { endpoints: [{ adress: '10.0.0.1:80' }] } } } } as never, {}));
  assert.deepEqual(misspelt, [{ path: 'outbound.services.p.endpoints.0.adress', message: 'unknown option (did you mean "address"?)' }], 'a misspelt required key is one mistake, not two');
  const inUnion = issuesOf(() => resolveConfig({ service: 'a', outbound: { services: { p: { retry: { retryOn: ['conect'] } } } } } as never, {}));
  assert.deepEqual(inUnion.map((i) => i.message), ['must be "connect" or "reset" or "timeout" or a number, got the string "conect" (did you mean "connect"?)']);
  const fromEnv = issuesOf(() => resolveConfig({ service: 'a' }, { SIDECARLESS_INBOUND_MODE: 'strcit' }));
  assert.deepEqual(fromEnv.map((i) => [i.path, (i as { env?: string }).env]), [['inbound.mode', 'SIDECARLESS_INBOUND_MODE']]);
});

test('an env variable for a nested option never turns a wrong type into a crash', () => {
  // inbound: 'strict' is a mistake of its own; SIDECARLESS_INBOUND_MODE must not spread a string.
  assert.match(messageOf({ service: 'a', inbound: 'strict' }, { SIDECARLESS_INBOUND_MODE: 'strict' }), /- inbound must be an object/);
  assert.match(messageOf(null), /createMesh needs an options object, e\.g\. createMesh\(\{ service: 'orders' \}\); got null/);
  assert.match(messageOf([]), /got a list of 0/);
});
