// createMesh's zod-free path for common options (src/config/fast.ts, cold start: issue 14) is held
// to config.ts's schema: whatever it takes, it builds exactly what resolveConfig (zod) returns, and
// whatever it is unsure of — a bad value, an unknown key, an option it does not know, environment
// variables — it leaves to zod, so every error keeps its wording. Pure: milliseconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig as zodResolve } from '../../src/config.js';
import { fastConfig, resolveConfig } from '../../src/config/fast.js';

const logger = { info() {}, warn() {}, error() {} };
const TOKEN_JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

/** Options the fast path must take (what serverless functions and the bench pass). */
const TAKEN: Array<Record<string, unknown>> = [
  { service: 'orders' },
  { service: 'orders', identity: { dir: '/certs/orders' }, logger },
  { service: 'orders', identity: { dir: '/certs' }, outbound: { services: { payments: { endpoints: ['127.0.0.1:8443', '[::1]:9443', 'payments.internal:443'] } } } },
  { service: 'orders', namespace: 'shop', trustDomain: 'example.org', labels: { app: 'orders', tier: 'web' }, inbound: { mode: 'permissive' } },
  { service: 'orders', spiffeId: 'spiffe://cluster.local/custom/orders', inbound: { policy: { rules: [] } }, outbound: { egress: 'deny', services: {} } },
  { service: 'orders', outbound: { services: { payments: { endpoints: [], namespace: 'billing', identity: 'spiffe://cluster.local/ns/billing/sa/pay' }, ledger: {} } } },
  { service: 'orders', controlPlane: { address: '127.0.0.1:15012', root: '/cp/root-cert.pem', token: { file: '/var/run/secrets/tokens/istio-token' } } },
  { service: 'orders', controlPlane: { address: 'istiod.istio-system.svc:15012', root: '/cp/root.pem', token: 'secret', clusterId: 'Kubernetes' }, inbound: {} },
  { service: 'orders', telemetry: { dialect: 'linkerd' } },
  { service: 'orders', telemetry: { dialect: 'istio', cluster: 'east-1.k8s' } },
  { service: 'orders', telemetry: {} },
];

/** Values that are wrong somewhere, or right but outside what the fast path knows. */
const ODD: unknown[] = [undefined, null, 0, 1.5, -1, '', 'Bad_Name', 'x:0', '127.0.0.1:99999', TOKEN_JWT, [], ['a'], {}, { extra: 1 }, true, () => {}, 'spiffe://cluster.local', 'spiffe://other.org/ns/x/sa/y'];

/** Every path of `v` that holds a value (objects and arrays included), as key lists. */
function paths(v: unknown, at: string[] = []): string[][] {
  if (typeof v !== 'object' || v === null) return [at];
  const out: string[][] = at.length ? [at] : [];
  for (const k of Object.keys(v)) out.push(...paths((v as Record<string, unknown>)[k], [...at, k]));
  return out;
}

function withValue(base: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy: Record<string, unknown> = Array.isArray(base) ? ([...base] as never) : { ...(base as object) };
  copy[path[0]!] = withValue((base as Record<string, unknown>)[path[0]!], path.slice(1), value);
  return copy;
}

/** fastConfig either declines, or agrees with zod exactly (and zod accepts). */
function agrees(input: unknown, env: NodeJS.ProcessEnv = {}): boolean {
  const fast = fastConfig(input, env);
  if (fast === undefined) return false;
  assert.deepStrictEqual(fast, zodResolve(input as never, env), `fast path differs from zod for ${JSON.stringify(input)}`);
  return true;
}

test('the common options take the fast path, and it builds what zod builds', () => {
  for (const input of TAKEN) assert.ok(agrees(input), `not taken: ${JSON.stringify(input)}`);
});

test('every value put anywhere in those options: the fast path declines it, or zod builds the same', () => {
  let declined = 0;
  let checked = 0;
  for (const base of TAKEN) {
    for (const path of paths(base)) {
      for (const value of ODD) {
        checked++;
        if (!agrees(withValue(base, path, value))) declined++;
      }
      // A key added next to any value: zod refuses it in a strict object (then the fast path must
      // decline, or zodResolve throws here) and takes it in a record, a logger or a policy.
      checked++;
      if (!agrees(withValue(base, [...path.slice(0, -1), 'colour'], 'blue'))) declined++;
    }
  }
  assert.ok(declined > 0 && checked > declined, `${declined} of ${checked} declined: the check exercises both sides`);
});

test('anything it does not know goes to zod: other options, object endpoints, non-plain objects, the environment', () => {
  const base = { service: 'orders', identity: { dir: '/certs' } };
  const declined: unknown[] = [
    { ...base, identity: { dir: '/certs', pollInterval: '1s' } },
    { ...base, outbound: { services: { p: { endpoints: [{ address: '127.0.0.1:1' }] } } } },
    { ...base, outbound: { connectTimeout: 500 } },
    { ...base, inbound: { identityHeaders: ['x-user'] } },
    { ...base, admin: { port: 0 } },
    { ...base, telemetry: { dialect: 'envoy' } },
    { ...base, telemetry: { dialect: 'linkerd', cluster: 'x'.repeat(254) } },
    { ...base, trustDomain: 'example.org', spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' },
    Object.assign(Object.create({ inherited: true }), base),
    { ...base, [Symbol('x')]: 1 },
  ];
  for (const input of declined) assert.equal(fastConfig(input, {}), undefined, JSON.stringify(input));
  for (const env of [{ SIDECARLESS_IDENTITY_DIR: '/other' }, { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/agent.sock' }, { SIDECARLESS_CONTROL_PLANE: 'cp:15012' }]) {
    assert.equal(fastConfig(base, env), undefined, JSON.stringify(env));
  }
  assert.ok(fastConfig(base, { SIDECARLESS_IDENTITY_DIR: '', HOME: '/root' }), 'empty and unrelated variables change nothing');
});

test('resolveConfig: the fast result when it applies, zod and its own error messages otherwise', () => {
  assert.deepStrictEqual(resolveConfig({ service: 'orders' }, {}), zodResolve({ service: 'orders' }, {}));
  const env = { SIDECARLESS_IDENTITY_DIR: '/from-env' };
  assert.deepStrictEqual(resolveConfig({ service: 'orders' }, env), zodResolve({ service: 'orders' }, env));
  for (const bad of [{ service: 'Orders' }, { service: 'orders', identity: { dir: '' } }, { service: 'orders', outbound: { services: { p: { endpoints: ['nope'] } } } }]) {
    const mine = (() => { try { resolveConfig(bad as never, {}); } catch (e) { return e as Error & { code?: string }; } })();
    const theirs = (() => { try { zodResolve(bad as never, {}); } catch (e) { return e as Error & { code?: string }; } })();
    assert.ok(mine && theirs, JSON.stringify(bad));
    assert.equal(mine.message, theirs.message);
    assert.equal(mine.code, theirs.code);
  }
});

test('fast-check: generated options (one option beside service, strings near the edges of each grammar) — declined, or what zod builds', async () => {
  const fc = (await import('fast-check')).default;
  const edge = fc.oneof(
    fc.constantFrom('', ' ', 'a', 'orders', 'Orders', '-a', 'a.b', 'x'.repeat(64), '127.0.0.1:1', 'h:0', 'h:65535', 'h:65536', 'h:08443', '[::1]:1', '::1:1', 'H:1', 'a..b:1', ' h:1', 'h:+1', '999.1.1.1:1', 'http://h:1', 'spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/x/', 'spiffe://Cluster.local/x', 'spiffe://other.org/x', 'EXAMPLE.org', 'cluster.local.', 'certs', './certs', TOKEN_JWT, 'a b', '__proto__'),
    fc.string({ maxLength: 6 }),
  );
  const val = fc.oneof(edge, fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}));
  const service = fc.record({ endpoints: fc.oneof(fc.array(edge, { maxLength: 3 }), val), namespace: val, identity: val }, { requiredKeys: [] });
  const option = fc.oneof(
    fc.record({ namespace: val }),
    fc.record({ trustDomain: val }),
    fc.record({ spiffeId: val }),
    fc.record({ identity: fc.oneof(fc.record({ dir: val }, { requiredKeys: [] }), val) }),
    fc.record({ controlPlane: fc.record({ address: val, root: val, token: fc.oneof(val, fc.record({ file: val }, { requiredKeys: [] })), clusterId: val }, { requiredKeys: [] }) }),
    fc.record({ inbound: fc.record({ mode: fc.oneof(fc.constantFrom('strict', 'permissive', 'STRICT'), val), policy: fc.oneof(fc.constant({ rules: [] }), val) }, { requiredKeys: [] }) }),
    fc.record({ outbound: fc.record({ egress: fc.oneof(fc.constantFrom('allow', 'deny'), val), services: fc.oneof(fc.dictionary(edge, service, { maxKeys: 2 }), val) }, { requiredKeys: [] }) }),
    fc.record({ labels: fc.dictionary(edge, val, { maxKeys: 2 }) }),
  );
  const input = fc.tuple(fc.oneof(fc.constant('orders'), edge), option).map(([s, o]) => ({ service: s, ...o }));
  let taken = 0;
  fc.assert(fc.property(input, (i) => void (agrees(i) && taken++)), { numRuns: 2000, seed: 14 });
  assert.ok(taken > 100, `only ${taken} taken: the generator no longer reaches the fast path`);
});
