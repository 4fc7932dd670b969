// Server (WatchPort) → native policy, judged by the policy evaluator itself (what
// `sidecarless policy check` runs): every Authn kind, networks and except, routes with their own
// authorizations, no authorizations = deny. Servers are built by the generated encoders and read
// back by the decoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDnsIdentity } from '../../../../src/identity/dns-id.js';
import { compilePolicy } from '../../../../src/policy/index.js';
import type { PolicyRequest } from '../../../../src/policy/model.js';
import { decodeServer, encodeServer, type Server } from '../../../../src/proto/linkerd/inbound.js';
import { ipFromString } from '../../../../src/proto/linkerd/net-addr.js';
import type { DeepPartial } from '../../../../src/proto/wire.js';
import { translateInbound } from '../../../../src/control-plane/linkerd/translate/inbound.js';
import { formatReasons } from '../../../../src/control-plane/linkerd/translate/findings.js';

const PORT = 8080;
const net = (cidr: string, ...except: string[]) => {
  const n = (c: string) => ({ ip: ipFromString(c.split('/')[0]!), prefixLen: Number(c.split('/')[1]) });
  return { net: n(cidr), except: except.map(n) };
};
const ALL = [net('0.0.0.0/0'), net('::/0')];
const unauth = { permit: { kind: 'unauthenticated', unauthenticated: {} } } as const;
const tlsAny = { permit: { kind: 'meshTLS', meshTLS: { clients: { kind: 'unauthenticated', unauthenticated: {} } } } } as const;
const ids = (identities: string[], suffixes: string[][] = []) => ({
  permit: { kind: 'meshTLS', meshTLS: { clients: { kind: 'identities', identities: { identities: identities.map((name) => ({ name })), suffixes: suffixes.map((parts) => ({ parts })) } } } },
}) as const;
type Authz = NonNullable<DeepPartial<Server>['authorizations']>[number];
const authz = (authentication: Authz['authentication'], networks: Authz['networks'] = ALL): Authz => ({ networks, authentication });
const detect = (authorizations: Authz[], httpRoutes: unknown[] = []): DeepPartial<Server> => ({
  protocol: { kind: { kind: 'detect', detect: { timeout: { seconds: 10, nanos: 0 }, httpRoutes } } } as never,
  authorizations,
});
const compile = (s: DeepPartial<Server>) => {
  const t = translateInbound(decodeServer(encodeServer(s)), { port: PORT });
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return compilePolicy(t.value.policy, { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: 'all-authenticated' });
};
const refused = (s: DeepPartial<Server>): string => {
  const t = translateInbound(decodeServer(encodeServer(s)), { port: PORT });
  assert.equal(t.ok, false);
  return t.ok ? '' : formatReasons(t.reasons);
};
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/web';
function req(o: { from?: string | null; ip?: string; method?: string; path?: string; host?: string; headers?: Record<string, string>; port?: number } = {}): PolicyRequest {
  const from = o.from === undefined ? SPIFFE : o.from;
  let peer: PolicyRequest['peer'] = null;
  if (from !== null && from.startsWith('spiffe://')) {
    const [, td, , ns, , sa] = from.slice('spiffe://'.length).match(/^([^/]+)\/(ns)\/([^/]+)\/(sa)\/([^/]+)$/) ?? [];
    peer = { id: from, kind: 'spiffe', spiffeId: from, trustDomain: td!, namespace: ns!, serviceAccount: sa! };
  } else if (from !== null) {
    const d = parseDnsIdentity(from);
    peer = { id: from, kind: 'dns', dnsName: from, ...(d.trustDomain ? { trustDomain: d.trustDomain } : {}), ...(d.namespace ? { namespace: d.namespace } : {}), ...(d.serviceAccount ? { serviceAccount: d.serviceAccount } : {}) };
  }
  const h = o.headers ?? {};
  return { peer, sourceIp: o.ip ?? '10.1.2.3', method: o.method ?? 'GET', path: o.path ?? '/', host: o.host ?? 'web.default.svc.cluster.local', port: o.port ?? PORT, header: (n) => h[n] };
}
const allowed = (p: ReturnType<typeof compile>, r: PolicyRequest) => p.evaluate(r).allowed;

test('no authorizations: nothing is permitted (not even the mesh default)', () => {
  const p = compile(detect([]));
  assert.equal(allowed(p, req()), false);
  assert.equal(allowed(p, req({ from: null })), false);
  assert.equal(p.evaluate(req()).rule, 'default:deny');
});

test('unauthenticated: any client, plaintext included; meshTLS unauthenticated: any authenticated client only', () => {
  const u = compile(detect([authz(unauth)]));
  assert.equal(allowed(u, req({ from: null })), true);
  assert.equal(allowed(u, req()), true);
  const t = compile(detect([authz(tlsAny)]));
  assert.equal(allowed(t, req({ from: null })), false);
  assert.equal(allowed(t, req()), true);
});

test('meshTLS identities: exact SPIFFE IDs match only themselves; suffix [] any authenticated', () => {
  const p = compile(detect([authz(ids([SPIFFE]))]));
  assert.equal(allowed(p, req()), true);
  assert.equal(allowed(p, req({ from: 'spiffe://cluster.local/ns/default/sa/other' })), false);
  assert.equal(allowed(p, req({ from: null })), false);
  const any = compile(detect([authz(ids([], [[]]))]));
  assert.equal(allowed(any, req({ from: 'spiffe://cluster.local/ns/x/sa/y' })), true);
  assert.equal(allowed(any, req({ from: null })), false);
});

test('names that are not identities ("*", upper case, empty labels) are dropped, never turned into patterns', () => {
  const t = translateInbound(decodeServer(encodeServer(detect([authz(ids(['*', 'Web.Default', 'spiffe://cluster.local/*'], [['', 'x'], ['*']]))]))), { port: PORT });
  assert.ok(t.ok);
  assert.equal(t.value.policy.servers[0]!.rules.length, 0, 'the authorization admits nobody');
  assert.equal(t.notes.length, 5);
  const p = compilePolicy(t.value.policy, { trustDomain: 'cluster.local', namespace: 'default' });
  assert.equal(allowed(p, req()), false);
});

test('networks and except: the client address must be inside a network and outside its exceptions', () => {
  const p = compile(detect([authz(unauth, [net('10.0.0.0/8', '10.9.0.0/16'), net('fd00::/8')])]));
  assert.equal(allowed(p, req({ ip: '10.1.2.3', from: null })), true);
  assert.equal(allowed(p, req({ ip: '10.9.1.1', from: null })), false);
  assert.equal(allowed(p, req({ ip: '192.168.1.1', from: null })), false);
  assert.equal(allowed(p, req({ ip: 'fd00::5', from: null })), true);
  assert.equal(allowed(p, req({ ip: '::ffff:10.1.2.3', from: null })), true, 'IPv4-mapped IPv6 is IPv4');
  const both = compile(detect([authz(tlsAny, [net('10.0.0.0/8')])]));
  assert.equal(allowed(both, req({ ip: '10.1.1.1', from: null })), false, 'network AND authentication');
  assert.equal(allowed(both, req({ ip: '11.1.1.1' })), false);
  assert.equal(allowed(both, req({ ip: '10.1.1.1' })), true);
});

test('invalid authorizations are refused whole (Linkerd refuses them too): no networks, no authentication', () => {
  assert.match(refused(detect([authz(unauth, [])])), /networks: is empty/);
  assert.match(refused(detect([{ networks: ALL }])), /authentication: is missing/);
  assert.match(refused(detect([authz(unauth, [net('10.0.0.0/40')])])), /networks\[0\]\.net/);
  assert.match(refused({ authorizations: [authz(unauth)] }), /protocol: is missing/);
});

const pm = (kind: 'exact' | 'prefix', v: string) => ({ path: { kind: { kind, [kind]: v } } });
const hroute = (name: string, matches: unknown[], authorizations: Authz[] = [], hosts: unknown[] = []) => ({
  metadata: { kind: { kind: 'resource', resource: { namespace: 'default', name, kind: 'HTTPRoute' } } },
  hosts,
  authorizations,
  rules: [{ matches }],
});

test('routes: each route admits with its own authorizations and the Server\'s; a request matching no route is denied', () => {
  const p = compile(
    detect(
      [authz(ids(['spiffe://cluster.local/ns/default/sa/admin']))],
      [hroute('public', [pm('prefix', '/public')], [authz(unauth)]), hroute('api', [pm('prefix', '/api')], [authz(ids([SPIFFE]))])],
    ),
  );
  assert.equal(allowed(p, req({ path: '/public/x', from: null })), true);
  assert.equal(allowed(p, req({ path: '/api/x' })), true);
  assert.equal(allowed(p, req({ path: '/api/x', from: null })), false);
  assert.equal(allowed(p, req({ path: '/api/x', from: 'spiffe://cluster.local/ns/default/sa/other' })), false);
  assert.equal(allowed(p, req({ path: '/api/x', from: 'spiffe://cluster.local/ns/default/sa/admin' })), true, 'Server authorizations apply on every route');
  assert.equal(allowed(p, req({ path: '/other', from: 'spiffe://cluster.local/ns/default/sa/admin' })), false, 'no route: denied');
  assert.equal(p.evaluate(req({ path: '/other' })).rule, 'no-route');
});

test('route precedence: the more specific route decides, whatever the order; ties go to the route sent first', () => {
  const p = compile(
    detect(
      [],
      [
        hroute('all', [pm('prefix', '/')], [authz(unauth)]),
        hroute('admin', [pm('prefix', '/admin')], [authz(ids(['spiffe://cluster.local/ns/default/sa/admin']))]),
        hroute('admin-health', [pm('exact', '/admin/health')], [authz(unauth)]),
        hroute('admin-post', [{ ...pm('prefix', '/admin'), method: { type: { kind: 'registered', registered: 1 } } }], []),
        hroute('all-twin', [pm('prefix', '/')], []),
      ],
    ),
  );
  assert.equal(allowed(p, req({ path: '/x', from: null })), true, '"all" was sent before its twin: it decides');
  assert.equal(allowed(p, req({ path: '/admin/users', from: null })), false);
  assert.equal(allowed(p, req({ path: '/admin/users', from: 'spiffe://cluster.local/ns/default/sa/admin' })), true);
  assert.equal(allowed(p, req({ path: '/admin/health', from: null })), true);
  assert.equal(allowed(p, req({ path: '/admin/users', method: 'POST', from: 'spiffe://cluster.local/ns/default/sa/admin' })), false, 'the method route (no authorizations) decides');
});

test('route hosts: an exact host over a wildcard; header matches', () => {
  const exactHost = { match: { kind: 'exact', exact: 'web.example.com' } };
  const wildcard = { match: { kind: 'suffix', suffix: { reverseLabels: ['com', 'example'] } } };
  const p = compile(
    detect(
      [],
      [
        hroute('wild', [pm('prefix', '/')], [authz(unauth)], [wildcard]),
        hroute('exact', [pm('prefix', '/')], [], [exactHost]),
        hroute('canary', [{ headers: [{ name: 'X-Canary', value: { kind: 'exact', exact: new TextEncoder().encode('1') } }] }], [authz(unauth)]),
      ],
    ),
  );
  assert.equal(allowed(p, req({ host: 'a.example.com', from: null })), true);
  assert.equal(allowed(p, req({ host: 'web.example.com', from: null })), false);
  assert.equal(allowed(p, req({ host: 'other.test', from: null })), false, 'no route');
  assert.equal(allowed(p, req({ host: 'other.test', from: null, headers: { 'x-canary': '1' } })), true);
});

test('what inbound policy cannot express is refused: regex paths, header regexes, query matches, filters, rate limits', () => {
  assert.match(refused(detect([], [hroute('r', [{ path: { kind: { kind: 'regex', regex: '/a.*' } } }])])), /regex path matches/);
  assert.match(refused(detect([], [hroute('h', [{ headers: [{ name: 'x', value: { kind: 'regex', regex: 'a' } }] }])])), /only exact header/);
  assert.match(refused(detect([], [hroute('q', [{ queryParams: [{ name: 'a', value: { kind: 'exact', exact: 'b' } }] }])])), /query-parameter/);
  assert.match(refused(detect([], [hroute('p', [pm('prefix', '/a*')])])), /pattern|"\*"/);
  const filtered = { ...hroute('f', []), rules: [{ matches: [], filters: [{ kind: { kind: 'redirect', redirect: { host: 'x' } } }] }] };
  assert.match(refused(detect([], [filtered])), /redirect filter/);
  assert.match(refused({ protocol: { kind: { kind: 'http1', http1: { routes: [], localRateLimit: { total: { requestsPerSecond: 5 } } } } }, authorizations: [] } as never), /local rate limits/);
});

test('gRPC routes: POST /service/method, a service alone; opaque ports judge every request by the Server authorizations', () => {
  const g = compile({
    protocol: { kind: { kind: 'grpc', grpc: { routes: [
      { metadata: { kind: { kind: 'default', default: 'get' } }, hosts: [], authorizations: [authz(unauth)], rules: [{ matches: [{ rpc: { service: 'pkg.Svc', method: 'Get' } }] }] },
      { metadata: { kind: { kind: 'default', default: 'svc' } }, hosts: [], authorizations: [], rules: [{ matches: [{ rpc: { service: 'pkg.Svc', method: '' } }] }] },
    ] } } } as never,
    authorizations: [],
  });
  assert.equal(allowed(g, req({ method: 'POST', path: '/pkg.Svc/Get', from: null })), true);
  assert.equal(allowed(g, req({ method: 'POST', path: '/pkg.Svc/List', from: null })), false);
  assert.equal(allowed(g, req({ method: 'GET', path: '/pkg.Svc/Get', from: null })), false);
  const o = compile({ protocol: { kind: { kind: 'opaque', opaque: {} } }, authorizations: [authz(tlsAny)] } as never);
  assert.equal(allowed(o, req({ path: '/anything' })), true);
  assert.equal(allowed(o, req({ path: '/anything', from: null })), false);
});

test('the policy is scoped to its port: other ports follow the mesh default', () => {
  const p = compile(detect([]));
  assert.equal(allowed(p, req({ port: 9999 })), true, 'all-authenticated default elsewhere');
});

const L = (sa: string, ns = 'default') => `${sa}.${ns}.serviceaccount.identity.linkerd.cluster.local`;

test('DNS-like identities: exact names match DNS peers of that name only, never a SPIFFE peer of the same workload', () => {
  const p = compile(detect([authz(ids([L('web')]))]));
  assert.equal(allowed(p, req({ from: L('web') })), true);
  assert.equal(allowed(p, req({ from: L('web2') })), false);
  assert.equal(allowed(p, req({ from: SPIFFE })), false, 'the SPIFFE ID of the same service account is another identity');
  assert.equal(allowed(p, req({ from: null })), false);
});

test('suffixes match label-wise: a name that only ends in the suffix as a string is refused', () => {
  const p = compile(detect([authz(ids([], [['default', 'serviceaccount', 'identity', 'linkerd', 'cluster', 'local']]))]));
  assert.equal(allowed(p, req({ from: L('web') })), true);
  assert.equal(allowed(p, req({ from: L('a.b') })), true, 'any depth of labels before the suffix');
  assert.equal(allowed(p, req({ from: L('web', 'prod') })), false);
  assert.equal(allowed(p, req({ from: 'web.xdefault.serviceaccount.identity.linkerd.cluster.local' })), false, 'xdefault is not the label default');
  assert.equal(allowed(p, req({ from: 'default.serviceaccount.identity.linkerd.cluster.local' })), false, 'the suffix itself is not under it');
  assert.equal(allowed(p, req({ from: 'spiffe://default.serviceaccount.identity.linkerd.cluster.local/ns/default/sa/web' })), false, 'a SPIFFE peer is never judged by a DNS suffix');
  // Parts holding dots join as Linkerd joins them (".a.b"): the same suffix.
  const joined = compile(detect([authz(ids([], [['default.serviceaccount', 'identity', 'linkerd', 'cluster', 'local']]))]));
  assert.equal(allowed(joined, req({ from: L('web') })), true);
  assert.equal(allowed(joined, req({ from: 'web.xdefault.serviceaccount.identity.linkerd.cluster.local' })), false);
});

test('a single-label suffix (["local"]) is a valid pattern, matched label-wise: the Server is not refused', () => {
  const p = compile(detect([authz(ids([], [['local']]))]));
  assert.equal(allowed(p, req({ from: L('web') })), true);
  assert.equal(allowed(p, req({ from: 'web.default.serviceaccount.identity.linkerd.cluster.xlocal' })), false);
  assert.equal(allowed(p, req({ from: SPIFFE })), false, 'a SPIFFE peer is never judged by a DNS suffix');
});

test('a suffix [] admits DNS and SPIFFE peers alike; identities and suffixes of one authorization are an OR', () => {
  const any = compile(detect([authz(ids([], [[]]))]));
  assert.equal(allowed(any, req({ from: L('x', 'y') })), true);
  assert.equal(allowed(any, req({ from: SPIFFE })), true);
  const or = compile(detect([authz(ids([L('web', 'prod')], [['staging', 'serviceaccount', 'identity', 'linkerd', 'cluster', 'local']]))]));
  assert.equal(allowed(or, req({ from: L('web', 'prod') })), true);
  assert.equal(allowed(or, req({ from: L('any', 'staging') })), true);
  assert.equal(allowed(or, req({ from: L('other', 'prod') })), false);
});
