// The inbound Listener the embedded control plane serves (src/server/xds/inbound-listener.ts),
// checked by its inverse: render → decode with our codecs → our client's translateInbound →
// compilePolicy, against compilePolicy on the input policy, on a table of requests. Exact on
// Kubernetes-shaped peers and port-less lower-case hosts; never more permissive on the rest (the
// documented fail-closed readings of istiod's regexes and of `:authority`). Then the bytes are
// judged by grpc-js-xds's own A41 RBAC engine, and the refusal table.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { decodeListener } from '../../../src/proto/envoy/config/listener/v3/listener.js';
import { decodeHttpConnectionManager } from '../../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { decodeDownstreamTlsContext } from '../../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { RBAC_Action } from '../../../src/proto/envoy/config/rbac/v3/rbac.js';
import { translateInbound } from '../../../src/control-plane/xds/translate/inbound.js';
import { formatReasons } from '../../../src/control-plane/xds/translate/result.js';
import { type DefaultPolicy, type PolicyInput, compilePolicy, parsePolicy } from '../../../src/policy/index.js';
import { InboundRenderError } from '../../../src/server/xds/rbac-render.js';
import { type InboundListenerInput, RBAC_FILTER_NAMES, renderInboundListener } from '../../../src/server/xds/inbound-listener.js';
import { loadReal } from '../../helpers/xds-protos.js';
import { req } from '../../policy/helpers.js';

const TD = 'cluster.local';
const WORKLOAD = { trustDomain: TD, namespace: 'default', labels: { app: 'api' } } as const;
const input = (doc: PolicyInput, o: Partial<InboundListenerInput> = {}): InboundListenerInput => ({ ip: '10.0.0.7', port: 8443, mode: 'strict', policy: parsePolicy(doc), ...WORKLOAD, ...o });

function roundTrip(i: InboundListenerInput) {
  const t = translateInbound(decodeListener(renderInboundListener(i)));
  assert.ok(t.ok, t.ok ? '' : formatReasons(t.reasons));
  assert.deepEqual(t.notes.map((n) => n.field), ['filter_chains[0].transport_socket.typed_config.common_tls_context'].slice(0, i.mode === 'strict' ? 1 : 0), 'no note but the certificate one (nothing unknown, nothing without effect)');
  return t.value;
}

const PEERS_K8S = [`spiffe://${TD}/ns/default/sa/web`, `spiffe://${TD}/ns/default/sa/webb`, `spiffe://${TD}/ns/prod/sa/db`, `spiffe://${TD}/ns/prod/sa/web`, 'spiffe://east.td/ns/prod/sa/db', null];
const PEERS_ODD = ['spiffe://sa/web', `spiffe://${TD}/x/ns/prod/y`, `spiffe://${TD}/ns/prod/sa/db/extra`];
const SHAPES: Array<{ method: string; path: string; host: string; port: number; ip: string; headers: Record<string, string> }> = [
  { method: 'GET', path: '/api/users', host: 'api.example.com', port: 8443, ip: '10.1.2.3', headers: { 'x-env': 'prod' } },
  { method: 'POST', path: '/api/admin/x', host: 'svc.local', port: 9000, ip: '192.168.1.9', headers: {} },
  { method: 'DELETE', path: '/healthz', host: 'api.example.com', port: 8443, ip: 'fd00::5', headers: { 'x-env': 'dev-1' } },
  { method: 'GET', path: '/public/x.json', host: 'other.example.com', port: 9000, ip: '10.9.9.9', headers: { 'x-trace': 'on' } },
  { method: 'PUT', path: '/', host: 'svc.local', port: 8443, ip: '172.16.0.1', headers: {} },
];
const ODD_HOSTS = ['API.example.com', 'api.example.com:8443'];

/** Native policies, one per case of the corpus: every field the rendering takes, alone and combined. */
const CORPUS: PolicyInput[] = [
  {},
  { rules: [{ action: 'allow', from: { identities: [`spiffe://${TD}/ns/default/sa/web`] }, to: { methods: ['GET'], paths: ['/api/*'] } }] },
  { rules: [{ action: 'deny', from: { namespaces: ['prod'] } }, { action: 'allow', from: { identities: ['*'] } }] },
  { rules: [{ action: 'allow', matchNothing: true }] },
  { rules: [{ action: 'allow', matchNothing: true }, { action: 'allow', to: { paths: ['/healthz'] } }] },
  { rules: [{ action: 'allow', from: { notNamespaces: ['prod'], notIdentities: [`spiffe://${TD}/ns/default/sa/webb`] }, to: { notPaths: ['/api/admin*'], notMethods: ['DELETE'], notPorts: [9000] } }] },
  { rules: [{ action: 'deny', from: { notIpBlocks: ['10.0.0.0/8'] }, to: { notHosts: ['svc.local'] } }] },
  { rules: [{ name: 'watch', action: 'audit', from: { namespaces: ['prod'] } }, { action: 'allow', to: { methods: ['GET', 'PUT'] } }] },
  { rules: [{ action: 'deny', from: { serviceAccounts: ['default/web'] }, to: { methods: ['POST', 'DELETE'] } }, { action: 'allow', from: { serviceAccounts: ['prod/*', 'default/webb'] } }] },
  { rules: [{ action: 'allow', from: { notServiceAccounts: ['prod/db'], unauthenticated: false } }, { action: 'deny', from: { unauthenticated: true }, to: { paths: ['/api/*'] } }] },
  { rules: [{ action: 'allow', from: [{ identities: ['*/sa/web', `spiffe://${TD}/ns/prod/*`] }, { ipBlocks: ['192.168.1.9', 'fd00::/8'] }] }] },
  { rules: [{ action: 'allow', to: [{ headers: { 'x-env': ['prod', 'dev-*'] } }, { headers: { 'x-trace': ['*'] }, notHeaders: { 'x-env': ['*'] } }] }] },
  { rules: [{ action: 'deny', to: { notHeaders: { 'x-env': ['*-1'] }, paths: ['*.json', '/'] } }] },
  { rules: [{ action: 'allow', from: { namespaces: ['default', '*'] }, to: { hosts: ['api.example.com', '*.local'], ports: [8443] }, when: [{ namespaces: ['default'], methods: ['GET', 'DELETE'] }, { notPaths: ['/healthz'] }] }] },
  { rules: [{ action: 'deny', when: { identities: ['*/sa/db'], paths: ['*'], methods: ['*'], hosts: ['*'] } }] },
  { rules: [{ action: 'deny', namespace: 'other', from: { identities: ['*'] } }, { action: 'allow', selector: { matchLabels: { app: 'api' } }, to: { ports: [8443] } }, { action: 'allow', selector: { matchLabels: { app: 'db' } } }] },
  { rules: [{ action: 'allow', to: [{ paths: ['/api/users'] }, { hosts: ['*.example.com'], methods: ['GET'] }] }, { action: 'deny', from: { identities: ['spiffe://east.td/*'] }, to: { ports: [8443] } }] },
];

type Shape = (typeof SHAPES)[number];
const request = (from: string | null, s: Shape, host = s.host) => req({ from, method: s.method, path: s.path, host, port: s.port, ip: s.ip, headers: { ...s.headers, host } });

test('inverse: every policy of the corpus, rendered and read back by our client, judges the request table as the input does', () => {
  let compared = 0;
  let stricter = 0;
  for (const [ci, doc] of CORPUS.entries()) {
    const i = input(doc);
    const spec = roundTrip(i);
    for (const defaultPolicy of ['all-unauthenticated', 'deny'] as DefaultPolicy[]) {
      const opts = { ...WORKLOAD, defaultPolicy };
      const want = compilePolicy(i.policy, opts);
      const got = compilePolicy(spec.policy, opts);
      const check = (from: string | null, s: Shape, host: string, exact: boolean) => {
        const a = want.evaluate(request(from, s, host));
        const b = got.evaluate(request(from, s, host));
        const where = `corpus[${ci}] (${defaultPolicy}) ${from} ${s.method} ${host}${s.path} :${s.port} from ${s.ip}: input ${a.allowed}/${a.rule}, round trip ${b.allowed}/${b.rule}`;
        if (b.allowed) assert.equal(a.allowed, true, `the round trip admits more — ${where}`);
        if (exact) {
          assert.equal(b.allowed, a.allowed, where);
          assert.equal(b.audit.length > 0, a.audit.length > 0, `audit — ${where}`);
          if (a.action !== 'default' && !a.rule.endsWith('allow-nothing')) assert.equal(b.rule.replace(/#\d+$/, ''), a.rule, `deciding rule — ${where}`);
        } else if (a.allowed !== b.allowed) stricter++;
        compared++;
      };
      for (const s of SHAPES) {
        for (const from of PEERS_K8S) check(from, s, s.host, true);
        for (const from of PEERS_ODD) check(from, s, s.host, false);
        for (const host of ODD_HOSTS) check(PEERS_K8S[0]!, s, host, false);
      }
    }
  }
  assert.equal(compared, CORPUS.length * 2 * SHAPES.length * (PEERS_K8S.length + PEERS_ODD.length + ODD_HOSTS.length));
  assert.ok(stricter > 0, 'the corpus reaches the documented fail-closed readings (non-Kubernetes IDs, Host with a port or upper case)');
});

test('the corpus decides: every policy allows and denies something of the table (the inverse test is not vacuous)', () => {
  for (const [ci, doc] of CORPUS.entries()) {
    if (Object.keys(doc).length === 0) continue;
    const c = compilePolicy(parsePolicy(doc), { ...WORKLOAD, defaultPolicy: 'all-unauthenticated' });
    const results = new Set(SHAPES.flatMap((s) => PEERS_K8S.map((p) => c.evaluate(request(p, s)).allowed)));
    if (ci !== 3) assert.equal(results.size, 2, `corpus[${ci}] decides both ways`);
  }
});

test('istiod\'s shape: name, address, TLS by mode, the HCM\'s filters in order, allow-nothing as an ALLOW filter without policies', () => {
  const strict = roundTrip(input({ rules: [{ action: 'deny', from: { namespaces: ['prod'] } }, { name: 'a', action: 'audit' }, { action: 'allow', matchNothing: true }] }));
  assert.equal(strict.name, 'xds.istio.io/grpc/lds/inbound/10.0.0.7:8443');
  assert.equal(strict.mode, 'strict');
  const permissive = roundTrip(input({}, { mode: 'permissive', ip: 'fd00::7', port: 9443 }));
  assert.equal(permissive.name, 'xds.istio.io/grpc/lds/inbound/[fd00::7]:9443');
  assert.equal(permissive.mode, 'permissive');
  assert.equal(decodeListener(renderInboundListener(input({}, { mode: 'permissive' }))).filterChains[0]!.transportSocket, undefined);
  const l = decodeListener(renderInboundListener(input({ rules: [{ action: 'deny', from: { namespaces: ['prod'] } }, { name: 'a', action: 'audit' }, { action: 'allow', matchNothing: true }] })));
  const tls = l.filterChains[0]!.transportSocket!;
  assert.equal(tls.name, 'envoy.transport_sockets.tls');
  // STRICT: client certificates required and verified against ROOTCA, named where grpc-js-xds reads it
  // (default_validation_context.ca_certificate_provider_instance; without it its XdsServer verifies no
  // client certificate) and where istiod names it (validation_context_certificate_provider_instance)
  const down = decodeDownstreamTlsContext(tls.typedConfig!.value);
  assert.equal(down.requireClientCertificate, true);
  const combined = down.commonTlsContext!.combinedValidationContext!;
  assert.deepEqual(combined.defaultValidationContext?.caCertificateProviderInstance, { instanceName: 'default', certificateName: 'ROOTCA' });
  assert.deepEqual(combined.validationContextCertificateProviderInstance, { instanceName: 'default', certificateName: 'ROOTCA' });
  const hcm = decodeHttpConnectionManager(l.filterChains[0]!.filters[0]!.typedConfig!.value);
  assert.deepEqual(hcm.httpFilters.map((f) => f.name), [RBAC_FILTER_NAMES.audit, RBAC_FILTER_NAMES.deny, RBAC_FILTER_NAMES.allow, RBAC_FILTER_NAMES.router]);
  const c = compilePolicy(strict.policy, { ...WORKLOAD, defaultPolicy: 'all-unauthenticated' });
  assert.equal(c.evaluate(req({ from: `spiffe://${TD}/ns/default/sa/web` })).allowed, false, 'allow-nothing');
  assert.deepEqual(c.evaluate(req({ from: null })).audit, ['a']);
  // No rule of an action: no filter of it (Istio: no AuthorizationPolicy, no RBAC filter).
  const bare = decodeHttpConnectionManager(decodeListener(renderInboundListener(input({}))).filterChains[0]!.filters[0]!.typedConfig!.value);
  assert.deepEqual(bare.httpFilters.map((f) => f.name), [RBAC_FILTER_NAMES.router]);
  assert.equal(RBAC_Action.LOG, 2);
});

test('identities "*X" are exact on every peer, also where X overlaps the scheme (spiffe://sa/web for */sa/web)', () => {
  for (const pattern of ['*/sa/web', '*//sa/web', '*spiffe://sa/web', '*e://sa/web']) {
    const i = input({ rules: [{ action: 'allow', from: { identities: [pattern] } }] });
    const got = compilePolicy(roundTrip(i).policy, WORKLOAD);
    const want = compilePolicy(i.policy, WORKLOAD);
    for (const from of ['spiffe://sa/web', 'spiffe://x/sa/web', 'spiffe://e://sa/web', ...PEERS_K8S, ...PEERS_ODD]) {
      assert.equal(got.evaluate(req({ from })).allowed, want.evaluate(req({ from })).allowed, `${pattern} on ${from}`);
    }
    assert.equal(want.evaluate(req({ from: 'spiffe://sa/web' })).allowed, true, `${pattern} matches spiffe://sa/web`);
  }
});

test('deterministic bytes: the same input renders the same bytes, a policy parsed again too', () => {
  for (const doc of CORPUS) {
    const a = renderInboundListener(input(doc));
    assert.deepEqual(renderInboundListener(input(doc)), a);
    assert.deepEqual(renderInboundListener(input(JSON.parse(JSON.stringify(doc)) as PolicyInput)), a);
  }
});

test('refusal table: what has no exact rendering is an error naming the rule and the field, never an approximation', () => {
  const table: Array<[PolicyInput | (() => unknown), RegExp]> = [
    [{ rules: [{ action: 'allow', from: { trustDomains: ['east.td'] } }] }, /rules\[0\] "rule-0"\.from\[0\]\.trustDomains: trust-domain-only sources/],
    [{ rules: [{ action: 'deny', when: { notTrustDomains: ['east.td'] } }] }, /rules\[0\] "rule-0"\.when\[0\]\.notTrustDomains/],
    [{ rules: [{ action: 'allow', to: { sni: ['a.example'] } }] }, /to\[0\]\.sni: TLS server names/],
    [{ rules: [{ action: 'allow', to: { paths: ['/users/{id}/orders'] } }] }, /to\[0\]\.paths\[0\]: "\/users\/\{id\}\/orders": path templates have no RBAC form/],
    [{ rules: [{ action: 'allow', to: { notPaths: ['/a/{**}'] } }] }, /to\[0\]\.notPaths\[0\]/],
    [{ rules: [{ action: 'allow', from: { namespaces: ['prod*'] } }] }, /from\[0\]\.namespaces\[0\]: "prod\*": only an exact namespace/],
    [{ rules: [{ action: 'allow', from: { serviceAccounts: ['Prod/*'] } }] }, /serviceAccounts/],
    [{ rules: [{ action: 'allow', to: { headers: { Host: ['a'] } } }] }, /to\[0\]\.headers\.host: a header named "host"/],
    [{ rules: [{ name: 'x', action: 'allow' }, { name: 'x', action: 'allow', to: { ports: [1] } }] }, /rules\[1\] "x"\.name: another allow rule has this name/],
    [{ rules: [{ name: 'n'.repeat(513), action: 'deny' }] }, /\.name: longer than 512 characters/],
    // A server section renders for the Listener's port (linkerd-rbac.test.ts), except ranked routes RBAC cannot tell apart.
    [{ servers: [{ name: 'web', ports: [8443], routes: [{ route: 'a', rank: 2, paths: ['/admin*'] }, { route: 'b', rank: 1, paths: ['/*'] }], rules: [{ name: 'x', action: 'allow', route: 'a' }] }] }, /servers\[0\] "web"\.routes\[1\]: may match the same request as routes\[0\] \(route "a"\)/],
    [() => renderInboundListener(input({}, { ip: '10.0.0' })), /ip: "10\.0\.0" is not an IPv4 or IPv6 address/],
    [() => renderInboundListener(input({}, { port: 0 })), /port: 0 is not a port/],
    [() => renderInboundListener(input({}, { trustDomain: 'Cluster/Local' })), /trustDomain: "Cluster\/Local" is not a trust domain/],
    // Renderable field by field, but more than our client expands: its NACK reason, caught before sending.
    [{ rules: [{ action: 'allow', from: Array.from({ length: 17 }, (_, i) => ({ identities: [`spiffe://${TD}/ns/ns${i}/*`] })), to: Array.from({ length: 17 }, (_, i) => ({ ports: [i + 1], paths: [`/p${i}`] })), when: { identities: ['*/sa/web'] } }] }, /Listener "xds\.istio\.io\/grpc\/lds\/inbound\/10\.0\.0\.7:8443" cannot be served[^]*expands to more than 256 rules/],
  ];
  for (const [doc, re] of table) {
    const run = typeof doc === 'function' ? doc : () => renderInboundListener(input(doc));
    assert.throws(run, (e: unknown) => {
      assert.ok(e instanceof InboundRenderError, String(e));
      assert.equal(e.code, 'ERR_SIDECARLESS_XDS_INBOUND_UNRENDERABLE');
      assert.match(e.message, re);
      assert.match(e.message, /nothing was sent/);
      return true;
    });
  }
  // Every problem at once, not the first one only.
  assert.throws(() => renderInboundListener(input({ rules: [{ action: 'allow', from: { trustDomains: ['a'] }, to: { sni: ['b'] } }, { action: 'deny', to: { paths: ['/{x}'] } }] })), (e: InboundRenderError) => e.issues.length === 3);
});

// ------------------------------------------------------------------------------------------------
// The rendered RBAC judged by grpc-js-xds's own A41 engine (real RE2), as the client-side test does.

const require = createRequire(import.meta.url);
interface GroupLike { apply(info: unknown): boolean }
const xdsRbac = require('@grpc/grpc-js-xds/build/src/rbac.js') as { parseConfig(rbac: unknown): GroupLike };
const { Metadata } = require('@grpc/grpc-js') as { Metadata: new () => { set(k: string, v: string): void } };

test('grpc-js-xds\'s A41 RBAC engine, on the rendered bytes, judges the request table as the input policy does', () => {
  const real = loadReal();
  const L = real.lookupType('envoy.config.listener.v3.Listener');
  const H = real.lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const R = real.lookupType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const obj = { longs: String, enums: String, defaults: true, oneofs: true };
  let compared = 0;
  for (const [ci, doc] of CORPUS.entries()) {
    const i = input(doc);
    const l = L.decode(renderInboundListener(i)) as unknown as { filter_chains: Array<{ filters: Array<{ typed_config: { value: Uint8Array } }> }> };
    const hcm = H.decode(l.filter_chains[0]!.filters[0]!.typed_config.value) as unknown as { http_filters: Array<{ name: string; typed_config: { value: Uint8Array } }> };
    const engines = hcm.http_filters
      .filter((f) => f.name === RBAC_FILTER_NAMES.deny || f.name === RBAC_FILTER_NAMES.allow)
      .map((f) => xdsRbac.parseConfig(R.toObject(R.decode(f.typed_config.value), obj).rules));
    const want = compilePolicy(i.policy, { ...WORKLOAD, defaultPolicy: 'all-unauthenticated' });
    for (const s of SHAPES) for (const from of PEERS_K8S) {
      const headers = new Metadata();
      for (const [k, v] of Object.entries(s.headers)) headers.set(k, v);
      headers.set(':method', s.method);
      headers.set(':authority', s.host);
      headers.set(':path', s.path);
      const info = { headers, urlPath: s.path, destinationIp: '10.0.0.7', destinationPort: s.port, sourceIp: s.ip, tls: from !== null, peerCertificate: from === null ? null : { subjectaltname: `URI:${from}`, subject: {} } };
      const theirs = engines.every((e) => e.apply(info));
      const ours = want.evaluate(request(from, s)).allowed;
      assert.equal(theirs, ours, `corpus[${ci}] ${from} ${s.method} ${s.host}${s.path} :${s.port} from ${s.ip}`);
      compared++;
    }
  }
  assert.equal(compared, CORPUS.length * SHAPES.length * PEERS_K8S.length);
});
