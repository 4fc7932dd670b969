// RBAC → native policy: what is refused (a NACK naming the field), and a differential against
// @grpc/grpc-js-xds's own RBAC engine (gRFC A41, real RE2 through re2-wasm) on the same RBAC bytes
// and the same requests: the mesh never admits a request grpc-js-xds would refuse, and on
// Kubernetes-shaped identities and port-less hosts the two agree exactly.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { decodeListener } from '../../../../src/proto/envoy/config/listener/v3/listener.js';
import { RBACCodec } from '../../../../src/proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { translateInbound } from '../../../../src/control-plane/xds/translate/inbound.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { MAX_CLAUSES, MAX_DEPTH } from '../../../../src/control-plane/xds/translate/rbac-formula.js';
import { unquoteMeta } from '../../../../src/control-plane/xds/translate/rbac-principal.js';
import { compilePolicy } from '../../../../src/policy/index.js';
import { type InboundShape, type IstioRule, OWN, inboundListener, istioPolicy, realEncoder } from '../../../helpers/istio-rbac.js';
import { loadReal } from '../../../helpers/xds-protos.js';
import { req } from '../../../policy/helpers.js';

type Json = Record<string, unknown>;
const RBAC_URL = RBACCodec.typeUrl;

function reasons(shape: InboundShape): string {
  const t = translateInbound(decodeListener(inboundListener(OWN, shape)));
  assert.ok(!t.ok, 'was accepted');
  return formatReasons(t.reasons);
}
const allowing = (policy: Json): InboundShape => ({ allow: { p: policy } });
const principal = (p: Json): InboundShape => allowing({ permissions: [{ any: true }], principals: [p] });
const permission = (p: Json): InboundShape => allowing({ permissions: [p], principals: [{ any: true }] });
const name = (m: Json) => principal({ authenticated: { principal_name: m } });
const header = (h: Json) => permission({ header: h });

test('NACK table: every shape the native model cannot state exactly is refused, naming its field', () => {
  const table: Array<[InboundShape, RegExp]> = [
    [allowing({ permissions: [{ any: true }], principals: [{ any: true }], condition: { id: 1 } }), /policies\["p"\]\.condition: CEL conditions are not supported/],
    [allowing({ permissions: [], principals: [{ any: true }] }), /policies\["p"\]\.permissions: must not be empty/],
    [allowing({ permissions: [{ any: true }], principals: [] }), /policies\["p"\]\.principals: must not be empty/],
    [name({ safe_regex: { regex: 'spiffe://cluster\\.local/ns/[a-z]+/sa/x' } }), /principal_name\.safe_regex\.regex: regex "spiffe:\/\/cluster\\\\\.local\/ns\/\[a-z\]\+\/sa\/x" is not one of the shapes istiod writes/],
    [name({ safe_regex: { regex: '.*/ns/a.b/.*' } }), /is not one of the shapes istiod writes/],
    [name({ exact: 'spiffe://td/ns/a/sa/b', ignore_case: true }), /principal_name\.ignore_case: SPIFFE IDs are compared case-sensitively/],
    [name({ exact: 'web.example.com' }), /principal_name\.exact: "web\.example\.com" is not a SPIFFE ID: the mesh matches principals against the peer's SPIFFE ID only/],
    [name({ suffix: '/sa/web' }), /principal_name\.suffix: suffix matchers on principals are not supported/],
    [name({ contains: '/ns/x/' }), /principal_name\.contains/],
    [name({ exact: 'spiffe://td/ns/*/sa/b' }), /"\*" is literal here but a wildcard/],
    [principal({ metadata: { filter: 'istio_authn' } }), /principals\[0\]\.metadata: metadata principals are not supported/],
    [principal({ any: false }), /principals\[0\]\.any: must be true/],
    [principal({ and_ids: { ids: [] } }), /principals\[0\]\.and_ids\.ids: must not be empty/],
    [principal({ direct_remote_ip: { address_prefix: 'not-an-ip', prefix_len: { value: 8 } } }), /direct_remote_ip: "not-an-ip\/8"/],
    [principal({ remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 33 } } }), /remote_ip: "10\.0\.0\.0\/33"/],
    [permission({ destination_ip: { address_prefix: '10.0.0.1', prefix_len: { value: 32 } } }), /permissions\[0\]\.destination_ip: is not supported: the native policy has no destination address/],
    [permission({ destination_port_range: { start: 1, end: 9 } }), /destination_port_range: is not supported/],
    [permission({ requested_server_name: { exact: 'a' } }), /requested_server_name: is not supported/],
    [permission({ metadata: { filter: 'x' } }), /permissions\[0\]\.metadata/],
    [permission({ destination_port: 70000 }), /destination_port: 70000 is not a port/],
    [permission({ url_path: { path: { safe_regex: { regex: '/api/.*' } } } }), /url_path\.path\.safe_regex\.regex: "\/api\/\.\*": only "\.\+"/],
    [permission({ url_path: { path: { exact: '/a', ignore_case: true } } }), /url_path\.path\.ignore_case/],
    [permission({ url_path: { path: { prefix: '/a/../b' } } }), /url_path\.path: .*not in normalized form/],
    [permission({ url_path: { path: { exact: '/users/{id}' } } }), /"\{" is literal here but a template/],
    [permission({ url_path: { path: { contains: 'x' } } }), /url_path\.path\.contains: contains is not supported for paths/],
    [header({ name: ':method', string_match: { prefix: 'G' } }), /a :method matcher must be an exact, case-sensitive method/],
    [header({ name: ':path', string_match: { exact: '/x' } }), /header\.name: ":path": only :method and :authority are supported among pseudo-headers/],
    [header({ name: ':authority', string_match: { exact: 'a.example.com:8443' } }), /a host with a port is not supported/],
    [header({ name: 'x-user', safe_regex_match: { regex: 'a.*' } }), /header\.safe_regex_match: is not supported in RBAC header matchers/],
    [header({ name: 'x-user', range_match: { start: 1, end: 2 } }), /header\.range_match/],
    [header({ name: 'x-user', string_match: { exact: 'A', ignore_case: true } }), /header values are compared case-sensitively/],
    [header({ name: 'x-user', string_match: { exact: 'a' }, treat_missing_header_as_empty: true }), /treat_missing_header_as_empty/],
    [{ allow: { a: istioPolicy({}) }, hcm: (h) => ({ ...h, http_filters: [(h.http_filters as Json[])[0], (h.http_filters as Json[])[0], ...(h.http_filters as Json[]).slice(1)] }) }, /a second ALLOW filter/],
    [{ hcm: (h) => ({ ...h, http_filters: [{ name: 'm', typed_config: { type_url: RBAC_URL, value: OWN.rbac({ matcher: { on_no_match: {} } }) } }, ...(h.http_filters as Json[])] }) }, /\.matcher: the matcher form of RBAC is not supported/],
    [{ hcm: (h) => ({ ...h, http_filters: [{ name: 'x', typed_config: { type_url: RBAC_URL, value: OWN.rbac({ rules: { action: 7 } }) } }, ...(h.http_filters as Json[])] }) }, /rules\.action: 7 is not ALLOW, DENY or LOG/],
    [{ allow: { ['x'.repeat(600)]: istioPolicy({}) } }, /a policy name must have 1 to 512 characters/],
    [{ hcm: (h) => ({ ...h, xff_num_trusted_hops: 1 }) }, /xff_num_trusted_hops: must be 0/],
    [{ hcm: (h) => ({ ...h, route_config: undefined, rds: { route_config_name: 'r' } }) }, /\.rds: a server listener needs an inline route_config/],
    [{ hcm: (h) => ({ ...h, route_config: { virtual_hosts: [{ domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] } }) }, /route_config: must be one virtual host with domains \["\*"\]/],
    [{ hcm: (h) => ({ ...h, http_filters: [] }) }, /http_filters: the last HTTP filter must be the router/],
    [{ hcm: (h) => ({ ...h, http_filters: [{ name: 'cors', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors', value: new Uint8Array() } }, ...(h.http_filters as Json[])] }) }, /filter "cors" .* is not supported on a server listener/],
    [{ listener: (l) => ({ ...l, address: { socket_address: { address: '10.0.0.7', port_value: 9999 } } }) }, /address\.socket_address\.port_value: 9999 does not match the port in the name \(8443\)/],
    [{ listener: (l) => ({ ...l, address: { socket_address: { address: '10.0.0.8', port_value: 8443 } } }) }, /address\.socket_address\.address: "10\.0\.0\.8" does not match/],
    [{ listener: (l) => ({ ...l, address: undefined }) }, /address\.socket_address: is missing/],
    [{ listener: (l) => ({ ...l, name: 'inbound:8443' }) }, /name: is not xds\.istio\.io\/grpc\/lds\/inbound\/<IP>:<port>/],
    [{ listener: (l) => ({ ...l, listener_filters: [{ name: 'tls_inspector' }] }) }, /listener_filters: must be empty/],
    [{ listener: (l) => ({ ...l, filter_chains: [...(l.filter_chains as Json[]), ...(l.filter_chains as Json[])] }) }, /filter_chains: holds 2 filter chains/],
    [{ listener: (l) => ({ ...l, filter_chains: [{ ...(l.filter_chains as Json[])[0], filter_chain_match: { server_names: ['a'] } }] }) }, /filter_chain_match: is not supported/],
    [{ listener: (l) => ({ ...l, filter_chains: [{ ...(l.filter_chains as Json[])[0], transport_socket: { name: 'tls', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', value: OWN.tls({ require_client_certificate: { value: false } }) } } }] }) }, /require_client_certificate: must be true/],
  ];
  for (const [shape, re] of table) assert.match(reasons(shape), re);
});

test('hostile nesting is refused, not expanded: depth and the number of alternatives are bounded', () => {
  let deep: Json = { any: true };
  for (let i = 0; i <= MAX_DEPTH + 1; i++) deep = { not_id: deep };
  assert.match(reasons(principal(deep)), new RegExp(`nested deeper than ${MAX_DEPTH} levels`));
  // and(or(a1,b1), or(a2,b2), …): 2^n alternatives once distributed.
  const ors = Array.from({ length: 12 }, (_, i) => ({ or_ids: { ids: [{ direct_remote_ip: { address_prefix: `10.0.${i}.0`, prefix_len: { value: 24 } } }, { authenticated: {} }] } }));
  assert.match(reasons(principal({ and_ids: { ids: ors } })), new RegExp(`more than ${MAX_CLAUSES} alternatives`));
});

test('unquoteMeta reads Go\'s regexp.QuoteMeta output and nothing else', () => {
  assert.equal(unquoteMeta('a\\.b\\*c'), 'a.b*c');
  assert.equal(unquoteMeta('a.b'), undefined);
  assert.equal(unquoteMeta('a\\d'), undefined);
  assert.equal(unquoteMeta('a\\'), undefined);
});

test('arbitrary nesting that the model can state is translated exactly (when conditions), e.g. not(and(principal, method))', () => {
  const t = translateInbound(decodeListener(inboundListener(OWN, {
    deny: { p: { permissions: [{ any: true }], principals: [{ not_id: { and_ids: { ids: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/web' } } }, { header: { name: ':method', string_match: { exact: 'GET' } } }] } } }] } },
  })));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  const c = compilePolicy(t.value.policy, { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: 'all-unauthenticated' });
  const WEB = 'spiffe://cluster.local/ns/default/sa/web';
  assert.equal(c.evaluate(req({ from: WEB, method: 'GET' })).allowed, true);
  assert.equal(c.evaluate(req({ from: WEB, method: 'POST' })).allowed, false);
  assert.equal(c.evaluate(req({ from: null, method: 'GET' })).allowed, false);
});

// ------------------------------------------------------------------------------------------------
// Differential against grpc-js-xds's RBAC engine.

const require = createRequire(import.meta.url);
interface GroupLike { apply(info: unknown): boolean }
const xdsRbac = require('@grpc/grpc-js-xds/build/src/rbac.js') as { parseConfig(rbac: unknown): GroupLike };
const { Metadata } = require('@grpc/grpc-js') as { Metadata: new () => { set(k: string, v: string): void; get(k: string): unknown[] } };

const IDS = [
  'spiffe://cluster.local/ns/default/sa/web',
  'spiffe://cluster.local/ns/default/sa/webb',
  'spiffe://cluster.local/ns/prod/sa/db',
  'spiffe://cluster.local/ns/prod/sa/web',
  'spiffe://east.td/ns/prod/sa/db',
  'spiffe://cluster.local/ns/production/sa/x',
  'spiffe://sa/web',
  'spiffe://cluster.local/x/ns/prod/y',
  null,
];
const K8S = /^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/[^/]+$/;
const REQUESTS = IDS.flatMap((from) =>
  [
    { method: 'GET', path: '/api/users', host: 'api.example.com', port: 8443, ip: '10.1.2.3' },
    { method: 'POST', path: '/api/admin/x', host: 'a.svc.local', port: 9000, ip: '10.9.9.9' },
    { method: 'DELETE', path: '/healthz', host: 'api.example.com:8443', port: 8443, ip: '192.168.1.1' },
    { method: 'GET', path: '/public/x.json', host: 'other.example.com', port: 8443, ip: '10.1.9.9' },
  ].map((r) => ({ ...r, from })),
);

const CORPUS: Array<{ deny?: IstioRule[]; allow?: IstioRule[] }> = [
  { allow: [{ from: [{ principals: ['cluster.local/ns/default/sa/web'] }] }] },
  { allow: [{ from: [{ principals: ['*/sa/web'] }] }, { to: [{ paths: ['/healthz'] }] }] },
  { allow: [{ from: [{ namespaces: ['prod'], notPrincipals: ['cluster.local/ns/prod/sa/web'] }], to: [{ methods: ['GET', 'POST'] }] }] },
  { deny: [{ from: [{ namespaces: ['prod'] }] }], allow: [{ from: [{ principals: ['*'] }] }] },
  { deny: [{ from: [{ notNamespaces: ['default'] }], to: [{ notPaths: ['/public/*'] }] }] },
  { allow: [{ from: [{ serviceAccounts: ['prod/db'] }] }, { from: [{ ipBlocks: ['10.1.0.0/16'], notIpBlocks: ['10.1.9.9/32'] }] }] },
  { deny: [{ to: [{ hosts: ['api.example.com'] }] }] },
  { allow: [{ to: [{ hosts: ['*.example.com'], notMethods: ['DELETE'], ports: [8443] }] }] },
  { allow: [{ to: [{ paths: ['/api/*', '*.json'], notPaths: ['/api/admin*'] }] }] },
  { deny: [{ from: [{ principals: ['cluster.local/ns/prod/*'] }], to: [{ notPorts: [9000] }] }], allow: [{ to: [{ paths: ['*'] }] }] },
  { allow: [] },
];

function theirs(real: ReturnType<typeof loadReal>, groups: Array<{ action: 'DENY' | 'ALLOW'; policies: Json }>) {
  const T = real.lookupType('envoy.config.rbac.v3.RBAC');
  const engines = groups.map((g) => {
    const msg = T.decode(T.encode(T.fromObject(g)).finish());
    return xdsRbac.parseConfig(T.toObject(msg, { longs: String, enums: String, defaults: true, oneofs: true }));
  });
  return (r: (typeof REQUESTS)[number]) => {
    const headers = new Metadata();
    headers.set(':method', r.method);
    headers.set(':authority', r.host);
    headers.set(':path', r.path);
    const info = {
      headers,
      urlPath: r.path,
      destinationIp: '10.0.0.7',
      destinationPort: r.port,
      sourceIp: r.ip,
      tls: r.from !== null,
      peerCertificate: r.from === null ? null : { subjectaltname: `URI:${r.from}`, subject: {} },
    };
    return engines.every((e) => e.apply(info));
  };
}

test('differential: grpc-js-xds\'s A41 engine and the translated policy judge the same requests alike (and the mesh never admits more)', () => {
  const real = loadReal();
  let compared = 0;
  let stricter = 0;
  for (const [ci, c] of CORPUS.entries()) {
    const policies = (rules: IstioRule[] | undefined) => (rules ? Object.fromEntries(rules.map((r, i) => [`ns[default]-policy[c${ci}]-rule[${i}]`, istioPolicy(r)])) : undefined);
    const deny = policies(c.deny);
    const allow = policies(c.allow);
    const shape: InboundShape = { ...(deny && { deny }), ...(allow && { allow }) };
    const t = translateInbound(decodeListener(inboundListener(realEncoder(real), shape)));
    assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
    const ours = compilePolicy(t.value.policy, { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: 'all-unauthenticated' });
    const groups = [...(deny ? [{ action: 'DENY' as const, policies: deny }] : []), ...(allow ? [{ action: 'ALLOW' as const, policies: allow }] : [])];
    const judge = theirs(real, groups);
    for (const r of REQUESTS) {
      const a = ours.evaluate(req({ ...r, headers: { host: r.host } })).allowed;
      const b = judge(r);
      const where = `corpus[${ci}] ${JSON.stringify(r)}: ours ${a}, grpc-js-xds ${b}`;
      if (a) assert.equal(b, true, `the mesh admitted what grpc-js-xds refuses — ${where}`);
      const canonical = (r.from === null || K8S.test(r.from)) && !r.host.includes(':');
      if (canonical) assert.equal(a, b, where);
      else if (a !== b) stricter++;
      compared++;
    }
  }
  assert.equal(compared, CORPUS.length * REQUESTS.length);
  assert.ok(stricter > 0, 'the corpus holds the documented fail-closed cases (non-Kubernetes IDs, hosts with a port)');
});
