// OutboundPolicy → services: policies built with the generated encoders and read back by the
// decoder (the bytes the stream hands over), routes checked with the router's own matcher.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeOutboundPolicy, encodeOutboundPolicy, type OutboundPolicy, type HttpRoute } from '../../../../src/proto/linkerd/outbound.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import type { PathMatch } from '../../../../src/proto/linkerd/http_route.js';
import { translateOutbound, type OutboundTranslation } from '../../../../src/control-plane/linkerd/translate/outbound.js';
import { formatReasons } from '../../../../src/control-plane/linkerd/translate/findings.js';
import { compileRoute } from '../../../../src/outbound/routes.js';

const AUTH = 'web.default.svc.cluster.local:8080';
const ctx = { authority: AUTH, name: 'web', namespace: 'default', hostnames: ['web'], identity: 'web.default.serviceaccount.identity.linkerd.cluster.local' };
const dur = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const dst = (path: string, ewma?: { rtt: number; decay: number }) => ({
  kind: {
    kind: 'balancer' as const,
    balancer: { discovery: { kind: { kind: 'dst' as const, dst: { path } } }, ...(ewma ? { load: { kind: 'peakEwma' as const, peakEwma: { defaultRtt: dur(ewma.rtt), decay: dur(ewma.decay) } } } : {}) },
  },
  queue: { capacity: 100, failfastTimeout: dur(3000) },
});
const random = (...b: [string, number][]) => ({ kind: { kind: 'randomAvailable' as const, randomAvailable: { backends: b.map(([p, weight]) => ({ weight, backend: { backend: dst(p) } })) } } });
const first = (p: string) => ({ kind: { kind: 'firstAvailable' as const, firstAvailable: { backends: [{ backend: dst(p, { rtt: 50, decay: 7000 }) }] } } });
type Rule = NonNullable<DeepPartial<HttpRoute>['rules']>[number];
const route = (name: string, ...rules: Rule[]): DeepPartial<HttpRoute> => ({ metadata: { kind: { kind: 'resource', resource: { namespace: 'default', name, kind: 'HTTPRoute', group: 'gateway.networking.k8s.io' } } }, rules });
const http1 = (routes: DeepPartial<HttpRoute>[], accrual?: unknown): DeepPartial<OutboundPolicy> => ({ protocol: { kind: { kind: 'http1', http1: { routes, ...(accrual ? { failureAccrual: accrual } : {}) } } } as never });
const bytes = (m: DeepPartial<OutboundPolicy>) => decodeOutboundPolicy(encodeOutboundPolicy(m));
const ok = (m: DeepPartial<OutboundPolicy>, c: object = {}): OutboundTranslation => {
  const t = translateOutbound(bytes(m), { ...ctx, ...c });
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value;
};
const refused = (m: DeepPartial<OutboundPolicy>): string => {
  const t = translateOutbound(bytes(m), ctx);
  assert.equal(t.ok, false, 'expected a refusal');
  return t.ok ? '' : formatReasons(t.reasons);
};
const pathM = (kind: 'exact' | 'prefix' | 'regex', v: string) => ({ path: { kind: { kind, [kind]: v } } }) as { path: DeepPartial<PathMatch> };
/** The first route of `t` that takes the request, by name. */
function pick(t: OutboundTranslation, method: string, path: string, headers: Record<string, string> = {}): string | undefined {
  const req = { method, path, header: (n: string) => headers[n] };
  return t.service.routes.find((r) => compileRoute(r, null).matches(req))?.name;
}

test('the default route: first_available to the service itself, its EWMA, no retries, endpoints pending', () => {
  const t = ok(http1([{ metadata: { kind: { kind: 'default', default: 'http' } }, rules: [{ matches: [pathM('prefix', '/')], backends: first(AUTH) }] }]));
  assert.equal(t.protocol, 'http');
  assert.equal(t.service.name, 'web');
  assert.equal(t.service.endpoints, undefined);
  assert.deepEqual(t.watch, [{ path: AUTH, service: 'web' }]);
  assert.deepEqual(t.backends, []);
  assert.equal(t.service.settings.ewma.defaultRttMs, 50);
  assert.equal(t.service.settings.ewma.decayMs, 7000);
  assert.equal(t.service.settings.accrual, false, 'no failure_accrual: no ejection');
  assert.equal(t.service.routes.length, 1);
  assert.equal(t.service.routes[0]!.policy.retry, null);
  assert.deepEqual(t.service.routes[0]!.split, [{ service: 'web', weight: 1 }]);
  assert.deepEqual(t.service.routes[0]!.match, { path: { prefix: '/' } });
});

test('a split 90/10 with a weight-0 backend: backends as services with their Destination paths; duplicates add up', () => {
  const v2 = 'web-v2.default.svc.cluster.local:8080';
  const v3 = 'web-v3.default.svc.cluster.local:8080';
  const t = ok(http1([route('split', { backends: random([AUTH, 60], [v2, 10], [v3, 0], [AUTH, 30]) })]));
  assert.deepEqual(t.service.routes[0]!.split, [{ service: 'web', weight: 90 }, { service: v2, weight: 10 }, { service: v3, weight: 0 }]);
  assert.deepEqual(t.backends.map((b) => [b.spec.name, b.dstPath, b.spec.endpoints, b.spec.hostnames.length]), [[v2, v2, undefined, 0], [v3, v3, undefined, 0]]);
  assert.deepEqual(t.watch.map((w) => w.path), [AUTH, v2, v3]);
  assert.equal(t.service.routes[0]!.name, 'default/split');
});

test('the service not among its backends: its own endpoints are [] (never used), not pending', () => {
  const t = ok(http1([route('away', { backends: random(['other.default.svc.cluster.local:80', 1]) })]));
  assert.deepEqual(t.service.endpoints, []);
  assert.deepEqual(t.watch, [{ path: 'other.default.svc.cluster.local:80', service: 'other.default.svc.cluster.local:80' }]);
});

test('empty distributions, all weights 0, fail-over lists and missing backends are refused', () => {
  assert.match(refused(http1([route('e', { backends: { kind: { kind: 'empty', empty: {} } } })])), /names no backend/);
  assert.match(refused(http1([route('n', {})])), /names no backend/);
  assert.match(refused(http1([route('z', { backends: random([AUTH, 0]) })])), /weight 0/);
  assert.match(
    refused(http1([route('f', { backends: { kind: { kind: 'firstAvailable', firstAvailable: { backends: [{ backend: dst(AUTH) }, { backend: dst('b.default.svc.cluster.local:80') }] } } } })])),
    /fail-over/,
  );
  // The controller's answer to a backendRef naming a missing Service: no backend kind, a 500 injector.
  const missing = { kind: { kind: 'randomAvailable', randomAvailable: { backends: [{ weight: 1, backend: { backend: { queue: { capacity: 1 } }, filters: [{ kind: { kind: 'failureInjector', failureInjector: { status: 500, message: 'Service not found' } } }] } }] } } };
  const r = refused(http1([route('m', { backends: missing as never })]));
  assert.match(r, /failureInjector filter is not supported/);
  assert.match(r, /names no backend/);
});

test('rule filters, route hosts, query-parameter matches, unsafe regexes and opaque protocols are refused, naming the route', () => {
  const b = first(AUTH);
  assert.match(refused(http1([route('r', { backends: b, filters: [{ kind: { kind: 'redirect', redirect: { host: 'x', status: 301 } } }] })])), /rules\[0\]\.filters\[0\].*redirect/);
  assert.match(refused(http1([{ ...route('h', { backends: b }), hosts: [{ match: { kind: 'exact', exact: 'web.example.com' } }] }])), /route "default\/h" matches hosts/);
  assert.match(refused(http1([route('q', { backends: b, matches: [{ queryParams: [{ name: 'v', value: { kind: 'exact', exact: '1' } }] }] })])), /query_params: query-parameter matches are not supported/);
  assert.match(refused(http1([route('x', { backends: b, matches: [pathM('regex', '(a+)+')] })])), /matches\[0\]\.path\.regex/);
  assert.match(refused({ protocol: { kind: { kind: 'opaque', opaque: {} } } }), /TCP/);
  assert.match(refused({}), /names no HTTP protocol/);
  assert.match(refused(http1([])), /names no route/);
});

test('specificity: exact and regex over any prefix, the longer prefix first, then method, headers; ties keep the order given', () => {
  const b = first(AUTH);
  const t = ok(
    http1([
      route('catch-all', { backends: b }),
      route('prefix-api', { backends: b, matches: [pathM('prefix', '/api/')] }),
      route('regex-item', { backends: b, matches: [pathM('regex', '/api/items/[0-9]+')] }),
      route('prefix-api-items', { backends: b, matches: [pathM('prefix', '/api/items')] }),
      route('exact-health', { backends: b, matches: [pathM('exact', '/api/health')] }),
      route('prefix-api-post', { backends: b, matches: [{ ...pathM('prefix', '/api'), method: { type: { kind: 'registered', registered: 1 } } }] }),
      route('prefix-api-header', { backends: b, matches: [{ ...pathM('prefix', '/api'), headers: [{ name: 'X-Canary', value: { kind: 'exact', exact: new TextEncoder().encode('1') } }] }] }),
      route('prefix-api-twin', { backends: b, matches: [pathM('prefix', '/api')] }),
    ]),
  );
  // First-match over the sorted list = Linkerd's best match.
  assert.equal(pick(t, 'GET', '/api/items/42'), 'default/regex-item', 'a regex matches the whole path: above a prefix');
  assert.equal(pick(t, 'GET', '/api/items/x'), 'default/prefix-api-items', 'longer prefix');
  assert.equal(pick(t, 'GET', '/api/health'), 'default/exact-health');
  assert.equal(pick(t, 'POST', '/api/orders'), 'default/prefix-api-post', 'same prefix: a method match wins');
  assert.equal(pick(t, 'GET', '/api/orders', { 'x-canary': '1' }), 'default/prefix-api-header', 'same prefix, no method: more headers win');
  assert.equal(pick(t, 'GET', '/api/orders'), 'default/prefix-api', 'a tie: the route given first ("/api/" and "/api" are the same prefix)');
  assert.equal(pick(t, 'GET', '/apix'), 'default/catch-all', 'prefixes match whole segments');
  assert.equal(pick(t, 'GET', '/'), 'default/catch-all');
  // Where it differs from first-match as written: the catch-all was first.
  assert.equal(t.service.routes.at(-1)!.name, 'default/catch-all');
});

test('first-match as written would differ: a later, more specific route wins (the documented example)', () => {
  const b = first(AUTH);
  const t = ok(http1([route('all-api', { backends: b, matches: [pathM('prefix', '/api')] }), route('login', { backends: b, matches: [pathM('exact', '/api/login')] })]));
  assert.deepEqual(t.service.routes.map((r) => r.name), ['default/login', 'default/all-api']);
});

test('rules of one route and matches of one rule are ranked one by one', () => {
  const b = first(AUTH);
  const t = ok(http1([route('two', { backends: b, matches: [pathM('prefix', '/a'), pathM('exact', '/b/c')] }, { backends: b, matches: [pathM('prefix', '/a/b')] })]));
  assert.deepEqual(t.service.routes.map((r) => r.match.path), [{ exact: '/b/c' }, { prefix: '/a/b' }, { prefix: '/a' }]);
});

test('retry: status ranges, limit, per-try timeout, backoff, body bound; timeouts request and response', () => {
  const t = ok(
    http1([
      route('r', {
        backends: first(AUTH),
        retry: { maxRetries: 3, maxRequestBytes: 65536, timeout: dur(250), backoff: { minBackoff: dur(25), maxBackoff: dur(250), jitterRatio: 1 }, conditions: { statusRanges: [{ start: 502, end: 504 }, { start: 429, end: 429 }] } },
        timeouts: { request: dur(2000) },
      }),
      route('s', { backends: first(AUTH), matches: [pathM('prefix', '/s')], retry: { maxRetries: 1 }, timeouts: { response: dur(500), request: dur(10_000) } }),
    ]),
  );
  const [s, r] = t.service.routes;
  assert.equal(r!.name, 'default/r');
  assert.deepEqual(r!.policy.retry?.retryOnStatuses, [429, 502, 503, 504]);
  assert.equal(r!.policy.retry?.maxRetries, 3);
  assert.deepEqual(r!.policy.retry?.backoff, { baseMs: 25, maxMs: 250, multiplier: 2 });
  assert.equal(r!.policy.maxReplayBodyBytes, 65536);
  assert.deepEqual(r!.policy.timeout, { requestMs: 2000, perTryMs: 250 });
  assert.equal(s!.policy.retry?.retryOnStatuses.length, 100, 'no conditions: 500–599 as linkerd2-proxy');
  assert.deepEqual(s!.policy.timeout, { requestMs: 500 }, 'a shorter response timeout bounds the request');
  const bad = refused(http1([route('b', { backends: first(AUTH), retry: { maxRetries: 1, conditions: { statusRanges: [{ start: 600, end: 700 }] } } })]));
  assert.match(bad, /600–700 is not a range of HTTP statuses/);
  assert.match(refused(http1([route('i', { backends: first(AUTH), timeouts: { idle: dur(1000) } })])), /idle timeouts are not supported/);
  assert.equal(ok(http1([route('z', { backends: first(AUTH), retry: { maxRetries: 0 } })])).service.routes[0]!.policy.retry, null);
});

test('failure accrual: consecutive failures with its backoff; unified refused', () => {
  const accrual = { kind: { kind: 'consecutiveFailures', consecutiveFailures: { maxFailures: 5, backoff: { minBackoff: dur(2000), maxBackoff: dur(30_000), jitterRatio: 0.25 } } } };
  const t = ok(http1([route('r', { backends: first(AUTH) })], accrual));
  assert.deepEqual(t.service.settings.accrual, { consecutiveFailures: 5, minMs: 2000, maxMs: 30_000, jitterRatio: 0.25 });
  assert.match(refused(http1([route('r', { backends: first(AUTH) })], { kind: { kind: 'unified', unified: { successRateThreshold: 0.9 } } })), /unified/);
  assert.match(refused(http1([route('r', { backends: first(AUTH) })], { kind: { kind: 'consecutiveFailures', consecutiveFailures: { maxFailures: 0 } } })), /at least 1/);
});

test('PeakEwma per backend: a backend service carries its own; decay 0 refused', () => {
  const v2 = 'web-v2.default.svc.cluster.local:8080';
  const t = ok(http1([route('r', { backends: { kind: { kind: 'randomAvailable', randomAvailable: { backends: [{ weight: 1, backend: { backend: dst(v2, { rtt: 80, decay: 5000 }) } }] } } } })]));
  assert.equal(t.backends[0]!.spec.settings.ewma.defaultRttMs, 80);
  assert.equal(t.backends[0]!.spec.settings.ewma.decayMs, 5000);
  assert.match(refused(http1([route('r', { backends: { kind: { kind: 'randomAvailable', randomAvailable: { backends: [{ weight: 1, backend: { backend: dst(v2, { rtt: 80, decay: 0 }) } }] } } } })])), /decay: must be longer than 0/);
});

test('detect: http1 routes as HTTP/1.1, http2 routes when the app speaks HTTP/2; http2 and grpc kinds', () => {
  const routes = [route('r', { backends: first(AUTH) })];
  const detect = { protocol: { kind: { kind: 'detect', detect: { timeout: dur(10_000), http1: { routes }, http2: { routes: [route('h2', { backends: first(AUTH) })] } } } } } as never;
  assert.equal(ok(detect).service.routes[0]!.name, 'default/r');
  const h2 = ok(detect, { protocol: 'http2' });
  assert.equal(h2.protocol, 'http2');
  assert.equal(h2.service.routes[0]!.name, 'default/h2');
  assert.equal(ok({ protocol: { kind: { kind: 'http2', http2: { routes } } } }).service.settings.protocol, 'http2');
});

test('gRPC routes: POST to /service/method; service alone; more specific first', () => {
  const b = { kind: { kind: 'firstAvailable', firstAvailable: { backends: [{ backend: dst(AUTH) }] } } };
  const m = (service: string, method: string) => ({ rpc: { service, method } });
  const t = ok({ protocol: { kind: { kind: 'grpc', grpc: { routes: [
    { metadata: { kind: { kind: 'default', default: 'svc' } }, rules: [{ matches: [m('pkg.Svc', '')], backends: b }] },
    { metadata: { kind: { kind: 'default', default: 'get' } }, rules: [{ matches: [m('pkg.Svc', 'Get')], backends: b }] },
  ] } } } } as never);
  assert.equal(t.protocol, 'grpc');
  assert.equal(pick(t, 'POST', '/pkg.Svc/Get'), 'default:get');
  assert.equal(pick(t, 'POST', '/pkg.Svc/List'), 'default:svc');
  assert.equal(pick(t, 'GET', '/pkg.Svc/Get'), undefined);
  assert.equal(pick(t, 'POST', '/pkg.Other/Get'), undefined);
  const g = { protocol: { kind: { kind: 'grpc', grpc: { routes: [{ rules: [{ backends: b, retry: { maxRetries: 2, conditions: { unavailable: true } } }] }] } } } } as never;
  assert.match(refused(g), /gRPC status conditions \(unavailable\)/);
});

test('forward backends: one fixed endpoint with its identity; unmeshed refused', () => {
  const addr = { ip: { ip: { kind: 'ipv4', ipv4: 0x0a000005 } }, port: 9000 };
  const fwd = (tls: boolean) => ({ kind: { kind: 'randomAvailable', randomAvailable: { backends: [{ weight: 1, backend: { backend: { kind: { kind: 'forward', forward: { addr, weight: 1, ...(tls ? { tlsIdentity: { strategy: { kind: 'dnsLikeIdentity', dnsLikeIdentity: { name: 'ext.default.serviceaccount.identity.linkerd.cluster.local' } } } } : {}) } } } } }] } } });
  const t = ok(http1([route('f', { backends: fwd(true) as never })]));
  assert.equal(t.backends[0]!.spec.name, '10.0.0.5:9000');
  assert.deepEqual(t.backends[0]!.spec.endpoints?.map((e) => [e.address, e.identity]), [['10.0.0.5:9000', 'ext.default.serviceaccount.identity.linkerd.cluster.local']]);
  assert.equal(t.backends[0]!.dstPath, undefined);
  assert.match(refused(http1([route('f', { backends: fwd(false) as never })])), /not meshed/);
});
