// The inbound Listener istiod sends a proxyless workload → mode + policy, then JUDGED by the real
// compiled evaluator: every case below is an AuthorizationPolicy as istiod renders it (test/helpers/
// istio-rbac.ts), encoded with our codecs (and, at the end, with the real Envoy protos), decoded
// with our codecs, translated, compiled with the mesh layer's default (no rule decides: allow).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeListener } from '../../../../src/proto/envoy/config/listener/v3/listener.js';
import { type InboundSpec, inboundAddressOf, translateInbound } from '../../../../src/control-plane/xds/translate/inbound.js';
import { formatReasons } from '../../../../src/control-plane/xds/translate/result.js';
import { compilePolicy, loadPolicy } from '../../../../src/policy/index.js';
import { type InboundShape, type IstioRule, OWN, inboundListener, istioPolicy, realEncoder } from '../../../helpers/istio-rbac.js';
import { loadReal } from '../../../helpers/xds-protos.js';
import { req } from '../../../policy/helpers.js';

const OPTS = { trustDomain: 'cluster.local', namespace: 'default', defaultPolicy: 'all-unauthenticated' } as const;
const WEB = 'spiffe://cluster.local/ns/default/sa/web';
const DB = 'spiffe://cluster.local/ns/prod/sa/db';

function spec(shape: InboundShape, enc = OWN): InboundSpec {
  const t = translateInbound(decodeListener(inboundListener(enc, shape)));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  return t.value;
}
/** A judge for requests under the translated policy: `allows({ from, path, … })`. */
function judge(shape: InboundShape, enc = OWN) {
  const compiled = compilePolicy(spec(shape, enc).policy, OPTS);
  return (o: Parameters<typeof req>[0]) => compiled.evaluate(req(o));
}
const allowOnly = (...rules: IstioRule[]): InboundShape => ({ allow: Object.fromEntries(rules.map((r, i) => [`ns[default]-policy[p]-rule[${i}]`, istioPolicy(r)])) });
const denyOnly = (...rules: IstioRule[]): InboundShape => ({ deny: Object.fromEntries(rules.map((r, i) => [`ns[default]-policy[d]-rule[${i}]`, istioPolicy(r)])) });

test('istiod\'s listener with no AuthorizationPolicy: strict → strict mode, no rules, everything allowed (Istio: no policy = allow)', () => {
  const s = spec({});
  assert.equal(s.name, 'xds.istio.io/grpc/lds/inbound/10.0.0.7:8443');
  assert.equal(s.port, 8443);
  assert.equal(s.mode, 'strict');
  assert.deepEqual(s.policy, loadPolicy({}));
  assert.equal(compilePolicy(s.policy, OPTS).evaluate(req({ from: null })).allowed, true);
  assert.equal(spec({ mode: 'permissive' }).mode, 'permissive');
  assert.equal(spec({ ip: '::1', port: 9000 }).port, 9000);
  assert.deepEqual(inboundAddressOf('xds.istio.io/grpc/lds/inbound/[fd00::1]:80'), { ip: 'fd00::1', port: 80 });
  assert.equal(inboundAddressOf('xds.istio.io/grpc/lds/inbound/10.0.0.7'), undefined);
});

test('principals: exact, prefix and "*"; an unauthenticated peer matches none of them', () => {
  const exact = judge(allowOnly({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }] }));
  assert.equal(exact({ from: WEB }).allowed, true);
  assert.equal(exact({ from: 'spiffe://cluster.local/ns/default/sa/webb' }).allowed, false);
  assert.equal(exact({ from: 'spiffe://cluster.local/ns/default/sa/web/x' }).allowed, false);
  assert.equal(exact({ from: 'spiffe://other.td/ns/default/sa/web' }).allowed, false);
  assert.equal(exact({ from: null }).allowed, false);
  assert.equal(exact({ from: DB }).rule, 'no-allow-match');
  const prefix = judge(allowOnly({ from: [{ principals: ['cluster.local/ns/prod/*'] }] }));
  assert.equal(prefix({ from: DB }).allowed, true);
  assert.equal(prefix({ from: WEB }).allowed, false);
  const any = judge(allowOnly({ from: [{ principals: ['*'] }] }));
  assert.equal(any({ from: 'spiffe://x.td/anything' }).allowed, true);
  assert.equal(any({ from: null }).allowed, false);
});

test('principal "*suffix" is istiod\'s regex spiffe://.*<suffix>: an ID whose suffix overlaps the scheme does not match', () => {
  const allows = judge(allowOnly({ from: [{ principals: ['*/sa/web'] }] }));
  assert.equal(allows({ from: WEB }).allowed, true);
  assert.equal(allows({ from: 'spiffe://td2/ns/x/sa/web' }).allowed, true);
  assert.equal(allows({ from: 'spiffe://sa/web' }).allowed, false, 'spiffe://.*/sa/web does not match spiffe://sa/web');
  assert.equal(allows({ from: DB }).allowed, false);
});

test('namespaces (.*/ns/<ns>/.*) and service accounts (spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?)', () => {
  const ns = judge(allowOnly({ from: [{ namespaces: ['prod'] }] }));
  assert.equal(ns({ from: DB }).allowed, true);
  assert.equal(ns({ from: 'spiffe://other.td/ns/prod/sa/x' }).allowed, true);
  assert.equal(ns({ from: WEB }).allowed, false);
  assert.equal(ns({ from: 'spiffe://cluster.local/ns/production/sa/x' }).allowed, false);
  assert.equal(ns({ from: null }).allowed, false);
  // The regex also matches IDs that are not /ns/<ns>/sa/<sa>; for an ALLOW the mesh stays below it.
  assert.equal(ns({ from: 'spiffe://cluster.local/x/ns/prod/y' }).allowed, false);
  const sa = judge(allowOnly({ from: [{ serviceAccounts: ['prod/db'] }] }));
  assert.equal(sa({ from: DB }).allowed, true);
  assert.equal(sa({ from: 'spiffe://east.td/ns/prod/sa/db' }).allowed, true, 'any trust domain, as the regex says');
  assert.equal(sa({ from: 'spiffe://cluster.local/ns/prod/sa/dbx' }).allowed, false);
  assert.equal(sa({ from: 'spiffe://cluster.local/ns/other/sa/db' }).allowed, false);
  // In a DENY, the same regex denies what it would match, and (failing closed) every other
  // authenticated peer whose ID has no Kubernetes shape.
  const deny = judge(denyOnly({ from: [{ namespaces: ['prod'] }] }));
  assert.equal(deny({ from: DB }).allowed, false);
  assert.equal(deny({ from: 'spiffe://cluster.local/x/ns/prod/y' }).allowed, false);
  assert.equal(deny({ from: WEB }).allowed, true);
  assert.equal(deny({ from: null }).allowed, true);
});

test('not_id forms: notPrincipals and notNamespaces; an unauthenticated peer has none of the listed identities', () => {
  const j = judge(allowOnly({ from: [{ notPrincipals: ['cluster.local/ns/default/sa/web'] }] }));
  assert.equal(j({ from: WEB }).allowed, false);
  assert.equal(j({ from: DB }).allowed, true);
  assert.equal(j({ from: null }).allowed, true, 'Envoy: not(authenticated…) holds for a plaintext peer');
  const n = judge(allowOnly({ from: [{ notNamespaces: ['prod'] }] }));
  assert.equal(n({ from: WEB }).allowed, true);
  assert.equal(n({ from: DB }).allowed, false);
  assert.equal(n({ from: 'spiffe://cluster.local/x/ns/prod/y' }).allowed, false, 'the regex would match it: excluded (fail closed)');
  const d = judge(denyOnly({ from: [{ notNamespaces: ['default'] }] }));
  assert.equal(d({ from: WEB }).allowed, true);
  assert.equal(d({ from: DB }).allowed, false);
  assert.equal(d({ from: null }).allowed, false);
});

test('operations: methods, paths exact/prefix/suffix/"*", not forms, ports; source ip blocks', () => {
  const j = judge(allowOnly({ to: [{ methods: ['GET', 'HEAD'], paths: ['/api/*', '/healthz', '*.json'], notPaths: ['/api/admin*'] }] }));
  assert.equal(j({ method: 'GET', path: '/api/users' }).allowed, true);
  assert.equal(j({ method: 'HEAD', path: '/healthz' }).allowed, true);
  assert.equal(j({ method: 'GET', path: '/x/data.json' }).allowed, true);
  assert.equal(j({ method: 'GET', path: '/healthz/' }).allowed, false);
  assert.equal(j({ method: 'get', path: '/healthz' }).allowed, false, 'methods are case-sensitive');
  assert.equal(j({ method: 'POST', path: '/api/users' }).allowed, false);
  assert.equal(j({ method: 'GET', path: '/api/admin/x' }).allowed, false);
  const any = judge(allowOnly({ to: [{ paths: ['*'], notMethods: ['DELETE'] }] }));
  assert.equal(any({ method: 'PUT', path: '/x' }).allowed, true);
  assert.equal(any({ method: 'DELETE', path: '/x' }).allowed, false);
  const ports = judge(allowOnly({ to: [{ ports: [8443] }] }, { to: [{ notPorts: [8443, 9000], methods: ['GET'] }] }));
  assert.equal(ports({ port: 8443, method: 'POST' }).allowed, true);
  assert.equal(ports({ port: 9001, method: 'GET' }).allowed, true);
  assert.equal(ports({ port: 9000, method: 'GET' }).allowed, false);
  const ip = judge(allowOnly({ from: [{ ipBlocks: ['10.1.0.0/16'], notIpBlocks: ['10.1.9.9'] }] }));
  assert.equal(ip({ ip: '10.1.2.3' }).allowed, true);
  assert.equal(ip({ ip: '10.1.9.9' }).allowed, false);
  assert.equal(ip({ ip: '10.2.0.1' }).allowed, false);
});

test('hosts: Envoy compares :authority as sent (port included); an ALLOW never admits more, a DENY never less', () => {
  const allow = judge(allowOnly({ to: [{ hosts: ['api.example.com', '*.svc.local'] }] }));
  const h = (host: string) => ({ host, headers: { host } });
  assert.equal(allow(h('api.example.com')).allowed, true);
  assert.equal(allow(h('a.svc.local')).allowed, true);
  assert.equal(allow(h('api.example.com:8443')).allowed, false, 'Envoy: "api.example.com" ≠ "api.example.com:8443"');
  assert.equal(allow(h('other.example.com')).allowed, false);
  const deny = judge(denyOnly({ to: [{ hosts: ['admin.example.com'] }] }));
  assert.equal(deny(h('admin.example.com')).allowed, false);
  assert.equal(deny(h('ADMIN.example.com:8443')).allowed, false, 'denied in every spelling');
  assert.equal(deny(h('api.example.com')).allowed, true);
});

test('DENY beats ALLOW; an ALLOW filter without policies allows nothing; rules keep istiod\'s policy names', () => {
  const shape: InboundShape = {
    deny: { 'ns[default]-policy[no-admin]-rule[0]': istioPolicy({ to: [{ paths: ['/admin*'] }] }) },
    allow: { 'ns[default]-policy[web]-rule[0]': istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }] }) },
  };
  const j = judge(shape);
  assert.deepEqual([j({ from: WEB, path: '/x' }).allowed, j({ from: WEB, path: '/x' }).rule], [true, 'ns[default]-policy[web]-rule[0]']);
  assert.deepEqual([j({ from: WEB, path: '/admin/x' }).allowed, j({ from: WEB, path: '/admin/x' }).rule], [false, 'ns[default]-policy[no-admin]-rule[0]']);
  assert.equal(j({ from: DB, path: '/x' }).allowed, false);
  const nothing = judge({ allow: {} });
  assert.equal(nothing({ from: WEB }).allowed, false);
  assert.equal(nothing({ from: null }).allowed, false);
  const emptyDeny = judge({ deny: {} });
  assert.equal(emptyDeny({ from: null }).allowed, true);
});

test('several from and to entries: any from AND any to (one native rule per policy)', () => {
  const s = spec(allowOnly({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }, { namespaces: ['prod'] }], to: [{ methods: ['GET'] }, { paths: ['/write'], methods: ['POST'] }] }));
  assert.equal(s.policy.rules.length, 1);
  const j = judge(allowOnly({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }, { namespaces: ['prod'] }], to: [{ methods: ['GET'] }, { paths: ['/write'], methods: ['POST'] }] }));
  assert.equal(j({ from: WEB, method: 'GET' }).allowed, true);
  assert.equal(j({ from: DB, method: 'POST', path: '/write' }).allowed, true);
  assert.equal(j({ from: DB, method: 'POST', path: '/other' }).allowed, false);
  assert.equal(j({ from: 'spiffe://cluster.local/ns/x/sa/y', method: 'GET' }).allowed, false);
});

test('the same listener encoded by the REAL Envoy protos translates to the same policy', () => {
  const real = realEncoder(loadReal());
  const shape: InboundShape = {
    deny: { d: istioPolicy({ from: [{ notNamespaces: ['default', 'prod'] }], to: [{ notPaths: ['/public/*'] }] }) },
    allow: {
      a: istioPolicy({ from: [{ principals: ['cluster.local/ns/default/sa/web', '*/sa/db'], ipBlocks: ['10.0.0.0/8'] }], to: [{ methods: ['GET'], hosts: ['*.example.com'], ports: [8443] }] }),
      b: istioPolicy({ from: [{ serviceAccounts: ['prod/db'] }] }),
    },
  };
  const mine = spec(shape);
  const theirs = spec(shape, real);
  assert.deepEqual(theirs, mine);
  assert.equal(spec({ mode: 'permissive' }, real).mode, 'permissive');
  const j = judge(shape, real);
  assert.equal(j({ from: WEB, method: 'GET', host: 'a.example.com', headers: { host: 'a.example.com' } }).allowed, true);
  assert.equal(j({ from: 'spiffe://cluster.local/ns/evil/sa/x', path: '/public/x' }).allowed, false, 'not the ALLOW');
  assert.equal(j({ from: 'spiffe://cluster.local/ns/evil/sa/x', path: '/private' }).rule, 'd');
  assert.equal(j({ from: DB, method: 'DELETE' }).allowed, true);
});

test('LOG policies become audit rules: recorded, never deciding', () => {
  const shape: InboundShape = {
    hcm: (h) => ({ ...h, http_filters: [{ name: 'log', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', value: OWN.rbac({ rules: { action: 'LOG', policies: { audited: istioPolicy({ to: [{ paths: ['/x'] }] }) } } }) } }, ...(h.http_filters as unknown[])] }),
  };
  const j = judge(shape);
  assert.deepEqual(j({ path: '/x', from: null }).audit, ['audited']);
  assert.equal(j({ path: '/x', from: null }).allowed, true);
});

test('fields our protos do not declare, encoded by the real protos into istiod\'s listener: what changes what the policy sees is NACKed, naming it; what does not is noted', () => {
  const real = realEncoder(loadReal());
  type Json = Record<string, unknown>;
  const translate = (shape: InboundShape) => translateInbound(decodeListener(inboundListener(real, shape)));
  const reasons = (shape: InboundShape) => {
    const t = translate(shape);
    assert.ok(!t.ok, 'accepted');
    return formatReasons(t.reasons);
  };
  const hcm = (o: Json): InboundShape => ({ hcm: (h) => ({ ...h, ...o }) });
  const chain = (o: Json): InboundShape => ({ listener: (l) => ({ ...l, filter_chains: [{ ...(l.filter_chains as Json[])[0], ...o }] }) });
  const route = (o: Json): InboundShape => ({
    hcm: (h) => {
      const rc = h.route_config as { virtual_hosts: Array<{ routes: Json[] }> };
      return { ...h, route_config: { ...rc, virtual_hosts: [{ ...rc.virtual_hosts[0], routes: [{ ...rc.virtual_hosts[0]!.routes[0], ...o }] }] } };
    },
  });
  const HC = 'filter_chains\\[0\\]\\.filters\\[0\\]\\.typed_config';
  assert.match(reasons(chain({ use_proxy_proto: { value: true } })), /filter_chains\[0\]\.use_proxy_proto: the PROXY protocol is not supported: it would change the peer address the policy sees \(envoy\.config\.listener\.v3\.FilterChain field 4\)/);
  assert.match(reasons(hcm({ forward_client_cert_details: 'APPEND_FORWARD' })), new RegExp(`${HC}\\.forward_client_cert_details: forwarding client certificate details is not supported.*HttpConnectionManager field 16\\)`));
  assert.match(reasons(hcm({ normalize_path: { value: false } })), new RegExp(`${HC}\\.normalize_path: path normalization is sidecarless's own`));
  assert.match(reasons(hcm({ merge_slashes: true })), /merge_slashes: path normalization is sidecarless's own/);
  assert.match(reasons(hcm({ strip_any_host_port: true })), /strip_any_host_port: the policy sees the Host as the client sent it/);
  assert.match(reasons(hcm({ common_http_protocol_options: { headers_with_underscores_action: 'DROP_HEADER' } })), /common_http_protocol_options\.headers_with_underscores_action: dropping or refusing headers with underscores is not supported/);
  assert.match(reasons({ listener: (l) => ({ ...l, socket_options: [{ level: 0, name: 19, int_value: 1 }] }) }), /^Listener "[^"]+" socket_options: socket options from xDS are not applied/);
  assert.match(reasons(hcm({ http_protocol_options: { accept_http_10: true, default_host_for_http_10: 'a.example.com' } })), /http_protocol_options: HTTP\/1 options \(a default Host for HTTP\/1\.0/);
  assert.match(reasons({ listener: (l) => ({ ...l, address: { socket_address: { ...((l.address as Json).socket_address as Json), protocol: 'UDP' } } }) }), /address\.socket_address\.protocol: only TCP is supported/);
  const rbacPerRoute = { 'envoy.filters.http.rbac': { type_url: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', value: new Uint8Array() } };
  assert.match(reasons(route({ typed_per_filter_config: rbacPerRoute })), /routes\[0\]\.typed_per_filter_config\["envoy\.filters\.http\.rbac"\]: per-route filter configs are not supported on a server listener/);
  // Declared, and refused when set: what would narrow which clients may connect (istiod sends none on a server).
  const tls = (vc: Json): InboundShape => chain({
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        value: real.tls({ common_tls_context: { tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' }, combined_validation_context: { default_validation_context: vc, validation_context_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' } } }, require_client_certificate: { value: true } }),
      },
    },
  });
  const istiodTls = translate(tls({}));
  assert.ok(istiodTls.ok && istiodTls.value.mode === 'strict', istiodTls.ok ? '' : formatReasons(istiodTls.reasons));
  assert.match(reasons(tls({ match_subject_alt_names: [{ exact: WEB }] })), /common_tls_context\.combined_validation_context\.default_validation_context\.match_subject_alt_names: would narrow which clients may connect/);
  assert.match(reasons(tls({ verify_certificate_hash: ['ab'] })), /default_validation_context\.verify_certificate_hash: would narrow which clients may connect/);
  assert.match(reasons(tls({ allow_expired_certificate: true })), /default_validation_context\.allow_expired_certificate: expired certificates are never accepted \(envoy\.extensions\.transport_sockets\.tls\.v3\.CertificateValidationContext field 8\)/);
  // Noted: the same policy as without them.
  const base = allowOnly({ from: [{ principals: ['cluster.local/ns/default/sa/web'] }] });
  const plain = translate(base);
  assert.ok(plain.ok, plain.ok ? '' : formatReasons(plain.reasons));
  assert.deepEqual(plain.notes.map((n) => n.field), ['filter_chains[0].transport_socket.typed_config.common_tls_context'], 'istiod\'s shape: only the certificates note');
  const noted = translate({ ...base, hcm: (h) => ({ ...h, use_remote_address: { value: true }, server_name: 'x' }), listener: (l) => ({ ...l, traffic_direction: 'INBOUND' }) });
  assert.ok(noted.ok, noted.ok ? '' : formatReasons(noted.reasons));
  assert.deepEqual(noted.value, plain.value);
  assert.deepEqual(noted.notes.map((n) => n.field).sort(), ['filter_chains[0].filters[0].typed_config.server_name', 'filter_chains[0].filters[0].typed_config.use_remote_address', 'filter_chains[0].transport_socket.typed_config.common_tls_context', 'traffic_direction']);
  assert.match(noted.notes.find((n) => n.field === 'traffic_direction')!.message, /^no effect: the name already says inbound \(envoy\.config\.listener\.v3\.Listener field 16\)$/);
});
