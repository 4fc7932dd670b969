// RouteConfiguration → route table: resources built by the generated encoders (bytes, then our
// decoder, as the ADS session hands them over) and a few by the real Envoy protos. Matches are
// checked by compiling them with the router's own matcher, so "plain prefix" means what it does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RouteConfiguration, decodeRouteConfiguration, encodeRouteConfiguration } from '../../../../src/proto/envoy/config/route/v3/route.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { type RouteTable, translateRouteConfiguration } from '../../../../src/control-plane/xds/translate/route.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { compileRoute } from '../../../../src/outbound/routes.js';
import type { RouteSpec } from '../../../../src/outbound/settings.js';
import { loadReal } from '../../../helpers/xds-protos.js';

const bytes = (m: DeepPartial<RouteConfiguration>) => decodeRouteConfiguration(encodeRouteConfiguration(m));
const ok = (m: DeepPartial<RouteConfiguration>, ctx = {}): RouteTable => {
  const t = translateRouteConfiguration(bytes(m), ctx);
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value;
};
const reasons = (m: DeepPartial<RouteConfiguration>): string => {
  const t = translateRouteConfiguration(bytes(m));
  assert.ok(!t.ok, 'was accepted');
  return formatReasons(t.reasons);
};
const one = (route: object, vh: object = {}) => ({ name: 'rc', virtualHosts: [{ name: 'vh', domains: ['*'], ...vh, routes: [{ route: { cluster: 'c' }, ...route }] }] });
const routeOf = (route: object, vh: object = {}): RouteSpec => ok(one(route, vh)).virtualHosts[0]!.routes[0]!;
const matcher = (match: object) => {
  const r = compileRoute(routeOf({ match }), null);
  return (path: string, headers: Record<string, string> = {}, method = 'GET') => r.matches({ method, path, header: (n) => headers[n] });
};

test('virtual hosts keep their domains (lower-cased): exact, *.suffix, prefix.*, *, VIPs', () => {
  const t = ok({
    name: 'outbound|8080||payments.default.svc.cluster.local',
    virtualHosts: [
      { name: 'a', domains: ['Payments.default.svc.cluster.local:8080', 'payments', '10.96.0.5:8080', '[fd00::5]:8080'], routes: [{ match: { prefix: '' }, route: { cluster: 'c' } }] },
      { name: 'b', domains: ['*.example.com', 'api.*'], routes: [] },
      { name: 'c', domains: ['*'], routes: [] },
    ],
  });
  assert.equal(t.name, 'outbound|8080||payments.default.svc.cluster.local');
  assert.deepEqual(t.virtualHosts.map((v) => v.domains), [['payments.default.svc.cluster.local:8080', 'payments', '10.96.0.5:8080', '[fd00::5]:8080'], ['*.example.com', 'api.*'], ['*']]);
  assert.match(reasons({ name: 'r', virtualHosts: [{ name: 'a', domains: ['x'] }, { name: 'b', domains: ['X'] }] }), /virtual_hosts\[1\]\.domains\[0\]: "X" is also a domain of virtual host "a"/);
  assert.match(reasons({ name: 'r', virtualHosts: [{ name: 'a', domains: ['a.*.com'] }] }), /domains\[0\]: "a\.\*\.com" is not a domain/);
  assert.match(reasons({ name: 'r', virtualHosts: [{ name: 'a', domains: [] }] }), /virtual_hosts\[0\]\.domains: a virtual host needs at least one domain/);
  assert.match(reasons({ name: 'r', virtualHosts: [{ name: 'a', domains: ['api-*'] }] }), /"api-\*" is not a domain sidecarless routes/);
  assert.match(reasons({ name: 'r', virtualHosts: [{ name: 'a', domains: ['shop.*:8080'] }] }), /"shop\.\*:8080" is not a domain/);
  assert.deepEqual(ok({ name: 'r', virtualHosts: [{ name: 'a', domains: ['*-bar.foo.com'] }] }).virtualHosts[0]!.domains, ['*-bar.foo.com']);
});

test('path: xDS prefix is a plain string prefix, path_separated_prefix is by segment, path exact, safe_regex full', () => {
  const plain = matcher({ prefix: '/api' });
  assert.deepEqual(routeOf({ match: { prefix: '/api' } }).match, { path: { stringPrefix: '/api' } });
  assert.ok(plain('/api') && plain('/apix') && plain('/api/v1?q=1') && !plain('/ap'));
  const seg = matcher({ pathSeparatedPrefix: '/api' });
  assert.ok(seg('/api') && seg('/api/v1') && !seg('/apix'));
  const exact = matcher({ path: '/a' });
  assert.ok(exact('/a?x') && !exact('/a/'));
  const re = matcher({ safeRegex: { regex: '/users/[0-9]+' } });
  assert.ok(re('/users/12?x=1') && !re('/users/12/x'));
  assert.ok(matcher({ prefix: '' })('/anything'), 'an empty prefix (present on the wire) matches all');
});

test('case_sensitive: false folds ASCII case for exact and prefixes, and is ignored for regexes (Envoy)', () => {
  const p = matcher({ prefix: '/Api', caseSensitive: false });
  assert.ok(p('/api') && p('/APIX/y') && !p('/ap'));
  const s = matcher({ pathSeparatedPrefix: '/Api', caseSensitive: false });
  assert.ok(s('/API') && s('/api/x') && !s('/apix'));
  const e = matcher({ path: '/A.b', caseSensitive: false });
  assert.ok(e('/a.B') && !e('/axb'));
  const r = matcher({ safeRegex: { regex: '/A' }, caseSensitive: false });
  assert.ok(r('/A') && !r('/a'));
  assert.ok(!matcher({ prefix: '/Api', caseSensitive: true })('/api'));
});

test('path refusals: no specifier, "?" in a prefix, a bad path_separated_prefix, a non-RE2-compatible regex', () => {
  assert.match(reasons(one({ match: {} })), /routes\[0\]\.match\.path_specifier: none of prefix/);
  assert.match(reasons(one({ match: { prefix: '/a?b' } })), /match\.prefix: "\/a\?b" holds "\?"/);
  assert.match(reasons(one({ match: { pathSeparatedPrefix: '/a/' } })), /path_separated_prefix: "\/a\/" must start with "\/" and not end/);
  assert.match(reasons(one({ match: { safeRegex: { regex: '/a(?=b)' } } })), /match\.safe_regex\.regex: .*lookarounds/);
  assert.match(reasons(one({})), /routes\[0\]\.match: a route needs a match/);
});

test('headers: exact, prefix, suffix, contains, regex, ignore_case, presence and its inverse, :method', () => {
  const m = matcher({
    prefix: '/',
    headers: [
      { name: 'X-Exact', exactMatch: 'a.b' },
      { name: 'x-sm', stringMatch: { prefix: 'Pre', ignoreCase: true } },
      { name: 'x-suffix', suffixMatch: '.v2' },
      { name: 'x-contains', containsMatch: '(x)' },
      { name: 'x-re', safeRegexMatch: { regex: 'u[0-9]+' } },
      { name: 'x-present', presentMatch: true },
      { name: 'x-absent', presentMatch: true, invertMatch: true },
      { name: ':method', exactMatch: 'POST' },
    ],
  });
  const good = { 'x-exact': 'a.b', 'x-sm': 'prefix', 'x-suffix': 'app.v2', 'x-contains': 'a(x)b', 'x-re': 'u12', 'x-present': '' };
  assert.ok(m('/', good, 'POST'));
  assert.ok(!m('/', good, 'GET'), ':method became the route\'s methods');
  for (const [k, bad] of Object.entries({ 'x-exact': 'axb', 'x-sm': 'xpre', 'x-suffix': 'v2', 'x-contains': 'axb', 'x-re': 'u1x' })) {
    assert.ok(!m('/', { ...good, [k]: bad }, 'POST'), k);
  }
  assert.ok(!m('/', { ...good, 'x-absent': '1' }, 'POST'));
  const sm = (s: object) => matcher({ prefix: '/', headers: [{ name: 'h', stringMatch: s }] });
  assert.ok(sm({ exact: 'Ab', ignoreCase: true })('/', { h: 'aB' }) && sm({ suffix: 'z' })('/', { h: 'xyz' }) && sm({ contains: 'y' })('/', { h: 'xyz' }));
  assert.ok(sm({ safeRegex: { regex: 'a|b' } })('/', { h: 'b' }) && !sm({ exact: 'a' })('/', {}));
});

test('header refusals name the matcher and the form', () => {
  const h = (x: object) => reasons(one({ match: { prefix: '/', headers: [{ name: 'x', ...x }] } }));
  assert.match(h({ rangeMatch: { start: 1, end: 5 } }), /headers\[0\]\.range_match: range matches are not supported/);
  assert.match(h({ exactMatch: 'a', invertMatch: true }), /headers\[0\]\.invert_match/);
  assert.match(h({ exactMatch: 'a', treatMissingHeaderAsEmpty: true }), /treat_missing_header_as_empty/);
  assert.match(h({}), /headers\[0\]\.header_match_specifier: no match form/);
  assert.match(h({ stringMatch: {} }), /string_match\.match_pattern/);
  assert.match(h({ stringMatch: { safeRegex: { regex: 'a' }, ignoreCase: true } }), /string_match\.ignore_case/);
  assert.match(h({ safeRegexMatch: { regex: '\\pL' } }), /safe_regex_match\.regex/);
  assert.match(h({ name: ':authority', exactMatch: 'a' }), /":authority": of the pseudo-headers only ":method"/);
  assert.match(h({ name: ':method', prefixMatch: 'P' }), /only ":method" with an exact/);
  assert.match(h({ name: 'bad name', exactMatch: 'a' }), /is not a header name/);
  assert.match(reasons(one({ match: { prefix: '/', headers: [{ name: ':method', exactMatch: 'GET' }, { name: ':method', exactMatch: 'POST' }] } })), /two different ":method"/);
});

test('query parameters and fractional matches are refused; a 100 % runtime fraction is accepted with a note', () => {
  assert.match(reasons(one({ match: { prefix: '/', queryParameters: [{ name: 'q', presentMatch: true }] } })), /match\.query_parameters/);
  assert.match(reasons(one({ match: { prefix: '/', runtimeFraction: { defaultValue: { numerator: 50, denominator: 0 } } } })), /runtime_fraction: a route matching a fraction/);
  const t = translateRouteConfiguration(bytes(one({ match: { prefix: '/', runtimeFraction: { defaultValue: { numerator: 1_000_000, denominator: 2 }, runtimeKey: 'k' } } })));
  assert.ok(t.ok);
  assert.match(t.notes[0]!.field, /runtime_fraction\.runtime_key/);
});

test('actions: a cluster is a split of one; weighted clusters keep their weights; the rest is refused', () => {
  assert.deepEqual(routeOf({ match: { prefix: '/' } }).split, [{ service: 'c', weight: 1 }]);
  const w = routeOf({ match: { prefix: '/' }, route: { weightedClusters: { clusters: [{ name: 'outbound|8080|v1|p', weight: 90 }, { name: 'outbound|8080|v2|p', weight: 10 }, { name: 'z', weight: 0 }] } } });
  assert.deepEqual(w.split, [{ service: 'outbound|8080|v1|p', weight: 90 }, { service: 'outbound|8080|v2|p', weight: 10 }, { service: 'z', weight: 0 }]);
  assert.equal(routeOf({ name: 'named', match: { prefix: '/' } }).name, 'named');
  assert.equal(routeOf({ match: { prefix: '/' } }).name, '#0');
  const wc = (clusters: object[]) => reasons(one({ match: { prefix: '/' }, route: { weightedClusters: { clusters } } }));
  assert.match(wc([{ name: 'a', weight: 0 }]), /weighted_clusters: needs at least one cluster with a weight > 0/);
  assert.match(wc([]), /needs at least one cluster/);
  assert.match(wc([{ name: 'a', weight: 1 }, { name: 'a', weight: 1 }]), /clusters\[1\]\.name: "a" is listed twice/);
  assert.match(wc([{ name: '', weight: 1 }]), /clusters\[0\]\.name: is empty/);
  assert.match(wc([{ name: 'a', weight: 0xffffffff }, { name: 'b', weight: 1 }]), /more than 2\^32 - 1/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: {} })), /route\.cluster_specifier: neither cluster nor weighted_clusters/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: { cluster: '' } })), /route\.cluster: is empty/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: undefined, nonForwardingAction: {} })), /non_forwarding_action: is for server-side/);
});

test('timeout: max_stream_duration first (istiod for proxyless), then timeout, then the HCM default; 0 is none', () => {
  const t = (route: object, ctx = {}) => ok(one({ match: { prefix: '/' }, route: { cluster: 'c', ...route } }), ctx).virtualHosts[0]!.routes[0]!.policy.timeout;
  assert.deepEqual(t({ timeout: { seconds: 3 }, maxStreamDuration: { maxStreamDuration: { seconds: 2, nanos: 500_000_000 } } }), { requestMs: 2500 });
  assert.deepEqual(t({ timeout: { seconds: 3 } }), { requestMs: 3000 });
  assert.deepEqual(t({ timeout: { nanos: 1 } }), { requestMs: 1 }, 'a positive duration never rounds to "none"');
  assert.deepEqual(t({}, { defaultTimeoutMs: 7000 }), { requestMs: 7000 });
  assert.deepEqual(t({ timeout: {} }, { defaultTimeoutMs: 7000 }), {}, 'an explicit 0 turns the default off');
  assert.deepEqual(t({}), {}, 'no implicit 15 s');
  assert.match(reasons(one({ match: { prefix: '/' }, route: { cluster: 'c', timeout: { seconds: -1 } } })), /route\.timeout: must not be negative/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: { cluster: 'c', timeout: { seconds: 1, nanos: -5 } } })), /route\.timeout: is not a valid Duration/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: { cluster: 'c', timeout: { seconds: 1e9 } } })), /longer than the 31 days/);
  assert.match(reasons(one({ match: { prefix: '/' }, route: { cluster: 'c', maxStreamDuration: { grpcTimeoutHeaderMax: { seconds: 1 } } } })), /grpc_timeout_header_max: not supported/);
});

test('retry_on: Envoy HTTP conditions map to our failures and statuses', () => {
  const r = (retryOn: string, extra: object = {}) => routeOf({ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn, ...extra } } }).policy.retry;
  const five = r('5xx')!;
  assert.deepEqual(five.retryOnFailures, ['connect', 'reset', 'timeout']);
  assert.equal(five.retryOnStatuses.length, 100);
  assert.ok(five.retryOnStatuses.includes(500) && five.retryOnStatuses.includes(599));
  assert.equal(five.maxRetries, 1, 'num_retries unset is 1 (Envoy)');
  assert.deepEqual(r('gateway-error')!.retryOnStatuses, [502, 503, 504]);
  assert.deepEqual(r('gateway-error')!.retryOnFailures, ['connect', 'reset', 'timeout']);
  assert.deepEqual(r('reset')!.retryOnFailures, ['connect', 'reset', 'timeout']);
  assert.deepEqual(r('reset')!.retryOnStatuses, []);
  assert.deepEqual(r('connect-failure')!.retryOnFailures, ['connect']);
  assert.deepEqual(r('refused-stream')!.retryOnFailures, ['reset']);
  assert.deepEqual(r('retriable-4xx')!.retryOnStatuses, [409]);
  assert.deepEqual(r('retriable-status-codes', { retriableStatusCodes: [503, 429] })!.retryOnStatuses, [429, 503]);
  const istio = r(' connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', { numRetries: 2, retriableStatusCodes: [503] })!;
  assert.deepEqual([istio.retryOnFailures, istio.retryOnStatuses, istio.maxRetries], [['connect', 'reset'], [503], 2]);
  assert.deepEqual(istio.retryableMethods, ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'], 'stricter than Envoy: idempotent methods only');
  const b = r('5xx', { numRetries: 3, retryBackOff: { baseInterval: { nanos: 100_000_000 } }, perTryTimeout: { seconds: 1 } })!;
  assert.deepEqual([b.maxRetries, b.backoff.baseMs, b.backoff.maxMs], [3, 100, 1000], 'max_interval defaults to 10 × base');
  assert.equal(r('unavailable'), null, 'only gRPC conditions: nothing to retry on HTTP');
  assert.equal(r('5xx', { numRetries: 0 }), null);
  assert.equal(r(''), null);
});

test('retry policy: per_try_timeout, vhost policy inherited, a route policy replaces it; refusals', () => {
  const vh = { retryPolicy: { retryOn: 'connect-failure', numRetries: 4 } };
  const inherited = routeOf({ match: { prefix: '/' } }, vh).policy;
  assert.deepEqual([inherited.retry!.retryOnFailures, inherited.retry!.maxRetries], [['connect'], 4]);
  const own = routeOf({ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn: 'reset', perTryTimeout: { seconds: 2 } } } }, vh).policy;
  assert.deepEqual([own.retry!.retryOnFailures, own.retry!.maxRetries, own.timeout], [['connect', 'reset', 'timeout'], 1, { perTryMs: 2000 }]);
  assert.equal(routeOf({ match: { prefix: '/' } }).policy.retry, null, 'no retry policy: no retries (Envoy)');
  const rp = (p: object, vhost = false) => reasons(vhost ? one({ match: { prefix: '/' } }, { retryPolicy: p }) : one({ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: p } }));
  assert.match(rp({ retryOn: '5xx,envoy-ratelimited' }), /route\.retry_policy\.retry_on: "envoy-ratelimited" is not supported/);
  assert.match(rp({ retryOn: 'retriable-headers' }, true), /virtual_hosts\[0\]\.retry_policy\.retry_on: "retriable-headers"/);
  assert.match(rp({ retryOn: 'retriable-status-codes', retriableStatusCodes: [99] }), /retriable_status_codes\[0\]: 99 is not an HTTP status/);
  assert.match(rp({ retryOn: '5xx', numRetries: 11 }), /num_retries: 11 is more than the 10/);
  assert.match(rp({ retryOn: '5xx', retryBackOff: { maxInterval: { seconds: 1 } } }), /base_interval: is required/);
  assert.match(rp({ retryOn: '5xx', retryBackOff: { baseInterval: { seconds: 2 }, maxInterval: { seconds: 1 } } }), /max_interval: must not be shorter/);
  const noted = translateRouteConfiguration(bytes(one({ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn: '5xx,cancelled', retriableStatusCodes: [409] } } })));
  assert.ok(noted.ok);
  assert.deepEqual(noted.notes.map((n) => n.message.slice(0, 20)), ['"cancelled" is a gRP', 'unused: retry_on doe']);
});

test('a hostile resource gets a bounded list of reasons', () => {
  const t = translateRouteConfiguration(bytes(one({ match: { prefix: '/' }, route: { cluster: 'c', retryPolicy: { retryOn: Array.from({ length: 10_000 }, (_, i) => `x${i}`).join(',') } } })));
  assert.ok(!t.ok);
  assert.equal(t.reasons.length, 51);
  assert.equal(t.reasons[50]!.message, 'more reasons left out');
});

test('resources encoded by the real Envoy protos: istiod\'s shape translates; forms we do not declare are refused, not ignored', () => {
  const real = loadReal();
  const RC = real.lookupType('envoy.config.route.v3.RouteConfiguration');
  const enc = (o: object) => decodeRouteConfiguration(RC.encode(RC.fromObject(o)).finish());
  const istio = translateRouteConfiguration(
    enc({
      name: 'outbound|8080||payments.default.svc.cluster.local',
      virtual_hosts: [
        {
          name: 'payments.default.svc.cluster.local:8080',
          domains: ['payments.default.svc.cluster.local', 'payments.default.svc.cluster.local:8080', 'payments', 'payments:8080'],
          routes: [
            {
              name: 'canary',
              match: { prefix: '/api', case_sensitive: { value: true }, headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
              route: {
                weighted_clusters: { clusters: [{ name: 'outbound|8080|v2|payments.default.svc.cluster.local', weight: { value: 100 } }] },
                timeout: { seconds: 0 },
                max_stream_duration: { max_stream_duration: { seconds: 5 } },
                retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 }, retriable_status_codes: [503], host_selection_retry_max_attempts: 5 },
              },
              decorator: { operation: 'payments:8080/*' },
            },
            { name: 'default', match: { prefix: '/' }, route: { cluster: 'outbound|8080||payments.default.svc.cluster.local', timeout: { seconds: 0 } } },
          ],
          include_request_attempt_count: true,
        },
      ],
      validate_clusters: { value: false },
    }),
  );
  assert.ok(istio.ok, istio.ok ? '' : formatReasons(istio.reasons));
  const [canary, dflt] = istio.value.virtualHosts[0]!.routes;
  assert.deepEqual(canary!.match, { path: { stringPrefix: '/api' }, headers: [{ name: 'end-user', exact: 'jason' }] });
  assert.deepEqual([canary!.policy.timeout, canary!.split, canary!.policy.retry!.maxRetries], [{ requestMs: 5000 }, [{ service: 'outbound|8080|v2|payments.default.svc.cluster.local', weight: 100 }], 2]);
  assert.deepEqual(dflt!.policy, { retry: null, maxReplayBodyBytes: dflt!.policy.maxReplayBodyBytes, timeout: {} });
  const redirect = translateRouteConfiguration(enc({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, redirect: { host_redirect: 'x' } }] }] }));
  assert.ok(!redirect.ok);
  assert.match(formatReasons(redirect.reasons), /^RouteConfiguration "r" virtual_hosts\[0\]\.routes\[0\]\.action: no route action is set/);
  const connect = translateRouteConfiguration(enc({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { connect_matcher: {} }, route: { cluster: 'c' } }] }] }));
  assert.ok(!connect.ok);
  assert.match(formatReasons(connect.reasons), /match\.path_specifier: none of/);
  const header = translateRouteConfiguration(enc({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } }] }] }));
  assert.ok(!header.ok);
  assert.match(formatReasons(header.reasons), /cluster_specifier/);
});
