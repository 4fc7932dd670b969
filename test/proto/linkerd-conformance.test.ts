// Field numbers and wire types of our own Linkerd .proto files (src/proto/linkerd), proven against
// Debian's Python protobuf fed the same files by grpc_tools.protoc: every message, built in Python
// with EVERY field set (each oneof member in turn), decodes in TS to the same fields and values, and
// our encoding of that decoded message decodes in Python to the same message again. A wrong number,
// wire type, signedness or width makes a field vanish, change or fail on one side. The numbers
// themselves are checked against Linkerd's (linkerd2-proxy-api, proto/*.proto) by the table below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPython } from '../helpers/py/stack.js';
import { loadLinkerd, linkerdTypes, oneofWidth, toPlain } from '../helpers/linkerd-protos.js';
import { ownCodecs } from '../helpers/xds-protos.js';

const root = loadLinkerd();
const types = linkerdTypes(root);
const codecs = await ownCodecs(types);

interface Answer {
  b64?: string;
  plain?: Record<string, unknown>;
  error?: string;
}

async function python(reqs: object[]): Promise<Answer[]> {
  const out = await runPython('linkerd_wire.py', reqs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return out.trim().split('\n').map((l) => JSON.parse(l) as Answer);
}

test('every Linkerd message, fully populated by Python, decodes in TS to the same fields; our encoding decodes in Python to the same message', async () => {
  assert.ok(types.length >= 80, `only ${types.length} messages`);
  const cases = types.flatMap((t) => Array.from({ length: oneofWidth(t) }, (_, variant) => ({ t, variant })));
  const samples = await python(cases.map(({ t, variant }) => ({ op: 'sample', type: t.fullName.slice(1), variant })));
  const encoded: string[] = [];
  let fields = 0;
  cases.forEach(({ t, variant }, i) => {
    const s = samples[i]!;
    assert.equal(s.error, undefined, `${t.fullName} #${variant}: ${s.error}`);
    const codec = codecs.get(t.fullName.slice(1))!;
    const decoded = codec.decode(Buffer.from(s.b64!, 'base64')) as Record<string, unknown>;
    assert.deepEqual(toPlain(t, decoded), s.plain, `${t.fullName} #${variant}: TS decodes what Python encoded`);
    fields += JSON.stringify(s.plain).length;
    encoded.push(Buffer.from(codec.encode(decoded)).toString('base64'));
  });
  assert.ok(fields > 10_000, 'the samples are populated');
  const back = await python(cases.map(({ t }, i) => ({ op: 'decode', type: t.fullName.slice(1), b64: encoded[i] })));
  cases.forEach(({ t, variant }, i) => {
    assert.equal(back[i]!.error, undefined, `${t.fullName} #${variant}: ${back[i]!.error}`);
    assert.deepEqual(back[i]!.plain, samples[i]!.plain, `${t.fullName} #${variant}: Python decodes what TS encoded`);
  });
});

test('every field of every Linkerd message is covered by some sample (no field left at its zero value everywhere)', async () => {
  const cases = types.flatMap((t) => Array.from({ length: oneofWidth(t) }, (_, variant) => ({ t, variant })));
  const samples = await python(cases.map(({ t, variant }) => ({ op: 'sample', type: t.fullName.slice(1), variant })));
  const seen = new Set<string>();
  cases.forEach(({ t }, i) => Object.keys(samples[i]!.plain!).forEach((k) => seen.add(`${t.fullName}.${k}`)));
  for (const t of types) for (const f of t.fieldsArray) assert.ok(seen.has(`${t.fullName}.${f.name}`), `${f.fullName} never set`);
});

/** Linkerd's numbers (linkerd2-proxy-api proto/*.proto and research §4), written down independently of our files. */
const LINKERD_NUMBERS: Record<string, Record<string, number>> = {
  'io.linkerd.proxy.net.IPAddress': { ipv4: 1, ipv6: 2 },
  'io.linkerd.proxy.net.IPv6': { first: 1, last: 2 },
  'io.linkerd.proxy.net.TcpAddress': { ip: 1, port: 2 },
  'io.linkerd.proxy.net.IPNetwork': { ip: 1, prefix_len: 2 },
  'io.linkerd.proxy.destination.GetDestination': { scheme: 1, path: 2, context_token: 3 },
  'io.linkerd.proxy.destination.Update': { add: 1, remove: 2, no_endpoints: 3 },
  'io.linkerd.proxy.destination.WeightedAddrSet': { addrs: 1, metric_labels: 2 },
  'io.linkerd.proxy.destination.AddrSet': { addrs: 1 },
  'io.linkerd.proxy.destination.NoEndpoints': { exists: 1 },
  'io.linkerd.proxy.destination.WeightedAddr': { addr: 1, weight: 3, metric_labels: 4, tls_identity: 5, protocol_hint: 6, authority_override: 7, http2: 8, resource_ref: 9 },
  'io.linkerd.proxy.destination.TlsIdentity': { dns_like_identity: 1, uri_like_identity: 3, server_name: 4 },
  'io.linkerd.proxy.destination.ProtocolHint': { h2: 1, opaque_transport: 2, opaque: 3 },
  'io.linkerd.proxy.destination.ProtocolHint.OpaqueTransport': { inbound_port: 1 },
  'io.linkerd.proxy.outbound.TrafficSpec': { source_workload: 1, addr: 2, authority: 3 },
  'io.linkerd.proxy.outbound.OutboundPolicy': { protocol: 1, metadata: 2 },
  'io.linkerd.proxy.outbound.ProxyProtocol': { detect: 1, opaque: 2, http1: 3, http2: 4, grpc: 5, tls: 6 },
  'io.linkerd.proxy.outbound.ProxyProtocol.Http1': { routes: 1, failure_accrual: 2 },
  'io.linkerd.proxy.outbound.ProxyProtocol.Http2': { routes: 1, failure_accrual: 2 },
  'io.linkerd.proxy.outbound.HttpRoute': { metadata: 1, hosts: 2, rules: 3 },
  'io.linkerd.proxy.outbound.HttpRoute.Rule': { matches: 1, filters: 2, backends: 3, timeouts: 5, retry: 6, allow_l5d_request_headers: 7 },
  'io.linkerd.proxy.outbound.HttpRoute.Distribution': { empty: 1, first_available: 2, random_available: 3 },
  'io.linkerd.proxy.outbound.HttpRoute.WeightedRouteBackend': { backend: 1, weight: 2 },
  'io.linkerd.proxy.outbound.HttpRoute.RouteBackend': { backend: 1, filters: 3 },
  'io.linkerd.proxy.outbound.HttpRoute.Retry': { max_retries: 1, max_request_bytes: 2, conditions: 3, timeout: 4, backoff: 5 },
  'io.linkerd.proxy.outbound.HttpRoute.Retry.Conditions.StatusRange': { start: 1, end: 2 },
  'io.linkerd.proxy.outbound.GrpcRoute.Retry.Conditions': { cancelled: 1, deadine_exceeded: 4, resource_exhausted: 8, internal: 13, unavailable: 14 },
  'io.linkerd.proxy.outbound.Backend': { metadata: 1, forward: 2, balancer: 3, queue: 4 },
  'io.linkerd.proxy.outbound.Backend.BalanceP2c': { discovery: 1, peak_ewma: 2, penalty_peak_ewma: 3 },
  'io.linkerd.proxy.outbound.Backend.BalanceP2c.PeakEwma': { default_rtt: 1, decay: 2 },
  'io.linkerd.proxy.outbound.Backend.EndpointDiscovery': { dst: 1 },
  'io.linkerd.proxy.outbound.Backend.EndpointDiscovery.DestinationGet': { path: 1 },
  'io.linkerd.proxy.outbound.Queue': { capacity: 1, failfast_timeout: 2 },
  'io.linkerd.proxy.outbound.FailureAccrual': { consecutive_failures: 1, unified: 2, ejection: 3 },
  'io.linkerd.proxy.outbound.FailureAccrual.ConsecutiveFailures': { max_failures: 1, backoff: 2 },
  'io.linkerd.proxy.outbound.ExponentialBackoff': { min_backoff: 1, max_backoff: 2, jitter_ratio: 3, respect_retry_after_hint: 4 },
  'io.linkerd.proxy.http_route.Timeouts': { response: 1, request: 2, idle: 3 },
  'io.linkerd.proxy.http_route.HttpRouteMatch': { path: 1, headers: 2, query_params: 3, method: 4 },
  'io.linkerd.proxy.http_route.PathMatch': { exact: 1, prefix: 2, regex: 3 },
  'io.linkerd.proxy.http_route.HeaderMatch': { name: 1, exact: 2, regex: 3 },
  'io.linkerd.proxy.http_route.HostMatch': { exact: 1, suffix: 2 },
  'io.linkerd.proxy.grpc_route.GrpcRpcMatch': { service: 1, method: 2 },
  'io.linkerd.proxy.inbound.PortSpec': { workload: 1, port: 2 },
  'io.linkerd.proxy.inbound.Server': { protocol: 1, server_ips: 2, authorizations: 3, labels: 4 },
  'io.linkerd.proxy.inbound.ProxyProtocol': { detect: 1, opaque: 2, tls: 3, http1: 4, http2: 5, grpc: 6 },
  'io.linkerd.proxy.inbound.ProxyProtocol.Detect': { timeout: 1, http_routes: 3, http_local_rate_limit: 4 },
  'io.linkerd.proxy.inbound.ProxyProtocol.Http1': { routes: 2, local_rate_limit: 3 },
  'io.linkerd.proxy.inbound.Authz': { networks: 1, authentication: 2, labels: 3, metadata: 4 },
  'io.linkerd.proxy.inbound.Network': { net: 1, except: 2 },
  'io.linkerd.proxy.inbound.Authn': { unauthenticated: 1, meshTLS: 2 },
  'io.linkerd.proxy.inbound.Authn.PermitMeshTLS': { unauthenticated: 1, identities: 2 },
  'io.linkerd.proxy.inbound.Authn.PermitMeshTLS.PermitClientIdentities': { identities: 1, suffixes: 2 },
  'io.linkerd.proxy.inbound.Identity': { name: 1 },
  'io.linkerd.proxy.inbound.IdentitySuffix': { parts: 1 },
  'io.linkerd.proxy.inbound.HttpRoute': { metadata: 1, hosts: 2, authorizations: 3, rules: 4 },
  'io.linkerd.proxy.meta.Metadata': { default: 1, resource: 2 },
  'io.linkerd.proxy.meta.Resource': { group: 1, kind: 2, name: 3, namespace: 4, section: 5, port: 6 },
};

test('the numbers our files declare are Linkerd’s (and the gRPC method paths)', async () => {
  for (const [name, want] of Object.entries(LINKERD_NUMBERS)) {
    const t = root.lookupType(name);
    for (const [field, id] of Object.entries(want)) assert.equal(t.fields[field]?.id, id, `${name}.${field}`);
  }
  const { Destination } = await import('../../src/proto/linkerd/destination.js');
  const { OutboundPolicies } = await import('../../src/proto/linkerd/outbound.js');
  const { InboundServerPolicies } = await import('../../src/proto/linkerd/inbound.js');
  assert.equal(Destination.Get.path, '/io.linkerd.proxy.destination.Destination/Get');
  assert.equal(OutboundPolicies.Watch.path, '/io.linkerd.proxy.outbound.OutboundPolicies/Watch');
  assert.equal(InboundServerPolicies.WatchPort.path, '/io.linkerd.proxy.inbound.InboundServerPolicies/WatchPort');
  for (const m of [Destination.Get, OutboundPolicies.Watch, InboundServerPolicies.WatchPort]) assert.equal(m.responseStream, true);
});
