// Inbound Listeners shaped as istiod's grpcgen builds them for a proxyless workload
// (`xds.istio.io/grpc/lds/inbound/IP:port`), written as plain proto-JSON (snake_case, the real
// Envoy field names) and encoded two ways: with the project's generated codecs, or with the REAL
// Envoy protos loaded by protobufjs from @grpc/grpc-js-xds/deps. The RBAC shapes follow istiod's
// authz builder (pilot/pkg/security/authz/model): a policy per AuthorizationPolicy rule,
// permissions = one and_rules per `to` of [or_rules(values), not_rule(or_rules(notValues))…],
// principals = one and_ids per `from` likewise; principals as authenticated.principal_name
// (`spiffe://` prefixed; namespaces and service accounts as istiod's regexes).
import type protobuf from 'protobufjs';
import { encodeListener } from '../../src/proto/envoy/config/listener/v3/listener.js';
import { HttpConnectionManagerCodec, encodeHttpConnectionManager } from '../../src/proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { RBACCodec, encodeRBAC } from '../../src/proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { RouterCodec } from '../../src/proto/envoy/extensions/filters/http/router/v3/router.js';
import { DownstreamTlsContextCodec, encodeDownstreamTlsContext } from '../../src/proto/envoy/extensions/transport_sockets/tls/v3/tls.js';

type Json = Record<string, unknown>;

export interface IstioSource {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
}
export interface IstioOperation {
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
  hosts?: string[];
  notHosts?: string[];
  ports?: number[];
  notPorts?: number[];
}
export interface IstioRule {
  from?: IstioSource[];
  to?: IstioOperation[];
}

const quoteMeta = (s: string) => s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');

/** istiod's StringMatcherWithPrefix. */
function stringMatcher(v: string, prefix = ''): Json {
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1) } : { safe_regex: { regex: `${prefix}.*${quoteMeta(v.slice(1))}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}
/** istiod's HeaderMatcher (methods) and HostMatcher (hosts, ignore_case). */
function headerMatcher(name: string, v: string, ignoreCase = false): Json {
  if (v === '*') return { header: { name, present_match: true } };
  const m = v.startsWith('*') ? { suffix: v.slice(1) } : v.endsWith('*') ? { prefix: v.slice(0, -1) } : { exact: v };
  return { header: { name, string_match: { ...m, ...(ignoreCase && { ignore_case: true }) } } };
}
const authenticated = (m: Json): Json => ({ authenticated: { principal_name: m } });
const cidr = (c: string): Json => {
  const [a, l] = c.split('/');
  return { address_prefix: a, prefix_len: { value: Number(l ?? (a!.includes(':') ? 128 : 32)) } };
};

const principalOf = {
  principal: (v: string) => authenticated(stringMatcher(v, 'spiffe://')),
  namespace: (v: string) => authenticated({ safe_regex: { regex: `.*/ns/${v.replace(/\*/g, '.*')}/.*` } }),
  serviceAccount: (v: string) => {
    const [ns, sa] = v.split('/');
    return authenticated({ safe_regex: { regex: `spiffe://.+/ns/${quoteMeta(ns!)}/(.+/|)sa/${quoteMeta(sa!)}(/.+)?` } });
  },
  ip: (v: string) => ({ direct_remote_ip: cidr(v) }),
};
const permissionOf = {
  method: (v: string) => headerMatcher(':method', v),
  path: (v: string) => ({ url_path: { path: stringMatcher(v) } }),
  host: (v: string) => headerMatcher(':authority', v, true),
  port: (v: number) => ({ destination_port: v }),
};

function pair<T>(kind: 'ids' | 'rules', values: T[] | undefined, notValues: T[] | undefined, one: (v: T) => Json): Json[] {
  const orKey = kind === 'ids' ? 'or_ids' : 'or_rules';
  const notKey = kind === 'ids' ? 'not_id' : 'not_rule';
  const out: Json[] = [];
  if (values?.length) out.push({ [orKey]: { [kind]: values.map(one) } });
  if (notValues?.length) out.push({ [notKey]: { [orKey]: { [kind]: notValues.map(one) } } });
  return out;
}

/** One AuthorizationPolicy rule → the RBAC Policy istiod writes for it. */
export function istioPolicy(r: IstioRule): Json {
  const principals = (r.from ?? [{}]).map((s) => {
    const ids = [
      ...pair('ids', s.principals, s.notPrincipals, principalOf.principal),
      ...pair('ids', s.namespaces, s.notNamespaces, principalOf.namespace),
      ...pair('ids', s.serviceAccounts, undefined, principalOf.serviceAccount),
      ...pair('ids', s.ipBlocks, s.notIpBlocks, principalOf.ip),
    ];
    return { and_ids: { ids: ids.length ? ids : [{ any: true }] } };
  });
  const permissions = (r.to ?? [{}]).map((o) => {
    const rules = [
      ...pair('rules', o.hosts, o.notHosts, permissionOf.host),
      ...pair('rules', o.methods, o.notMethods, permissionOf.method),
      ...pair('rules', o.paths, o.notPaths, permissionOf.path),
      ...pair('rules', o.ports, o.notPorts, permissionOf.port),
    ];
    return { and_rules: { rules: rules.length ? rules : [{ any: true }] } };
  });
  return { permissions, principals };
}

export interface InboundShape {
  ip?: string;
  port?: number;
  /** strict: DownstreamTlsContext requiring a client certificate; permissive: no transport socket. */
  mode?: 'strict' | 'permissive';
  /** Policies by name; undefined: no filter of that action. `{}`: the filter, with no policies. */
  deny?: Record<string, Json>;
  allow?: Record<string, Json>;
  /** Raw edits of the HCM / listener JSON, for refusal tests. */
  hcm?: (h: Json) => Json;
  listener?: (l: Json) => Json;
}

/** How one side encodes: the project's codecs or the real protos. */
export interface Encoder {
  rbac(j: Json): Uint8Array;
  hcm(j: Json): Uint8Array;
  tls(j: Json): Uint8Array;
  listener(j: Json): Uint8Array;
}

const any = (typeUrl: string, value: Uint8Array) => ({ type_url: typeUrl, value });

/** The inbound Listener bytes istiod would send. */
export function inboundListener(enc: Encoder, s: InboundShape = {}): Uint8Array {
  const ip = s.ip ?? '10.0.0.7';
  const port = s.port ?? 8443;
  const filters: Json[] = [];
  if (s.deny) filters.push({ name: 'envoy.filters.http.rbac.DENY', typed_config: any(RBACCodec.typeUrl, enc.rbac({ rules: { action: 'DENY', policies: s.deny } })) });
  if (s.allow) filters.push({ name: 'envoy.filters.http.rbac', typed_config: any(RBACCodec.typeUrl, enc.rbac({ rules: { action: 'ALLOW', policies: s.allow } })) });
  filters.push({ name: 'envoy.filters.http.router', typed_config: any(RouterCodec.typeUrl, new Uint8Array()) });
  let hcm: Json = {
    stat_prefix: `inbound|${port}||`,
    route_config: { name: 'inbound|8443||', virtual_hosts: [{ name: 'inbound|http|8443', domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }] },
    http_filters: filters,
  };
  if (s.hcm) hcm = s.hcm(hcm);
  const chain: Json = { filters: [{ name: 'inbound|8443||', typed_config: any(HttpConnectionManagerCodec.typeUrl, enc.hcm(hcm)) }] };
  if ((s.mode ?? 'strict') === 'strict') {
    const tls = {
      common_tls_context: { tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' } },
      require_client_certificate: { value: true },
    };
    chain.transport_socket = { name: 'envoy.transport_sockets.tls', typed_config: any(DownstreamTlsContextCodec.typeUrl, enc.tls(tls)) };
  }
  const addr = ip.includes(':') ? `[${ip}]` : ip;
  let l: Json = { name: `xds.istio.io/grpc/lds/inbound/${addr}:${port}`, address: { socket_address: { address: ip, port_value: port } }, filter_chains: [chain] };
  if (s.listener) l = s.listener(l);
  return enc.listener(l);
}

const ENUMS: Record<string, Record<string, number>> = { action: { ALLOW: 0, DENY: 1, LOG: 2 } };

/** proto-JSON (snake_case, wrappers as {value}) → the generated codecs' DeepPartial shape. */
export function toOwn(v: unknown, key = ''): unknown {
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return typeof v === 'string' && ENUMS[key]?.[v] !== undefined ? ENUMS[key]![v] : v;
  if (Array.isArray(v)) return v.map((x) => toOwn(x));
  const o = v as Json;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === 'value' && typeof o.value !== 'object') return o.value; // a wrapper
  if (key === 'policies') return new Map(Object.entries(o).map(([k, x]) => [k, toOwn(x)]));
  const out: Json = {};
  for (const [k, x] of Object.entries(o)) out[k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())] = toOwn(x, k);
  return out;
}

/** The project's codecs. */
export const OWN: Encoder = {
  rbac: (j) => encodeRBAC(toOwn(j) as never),
  hcm: (j) => encodeHttpConnectionManager(toOwn(j) as never),
  tls: (j) => encodeDownstreamTlsContext(toOwn(j) as never),
  listener: (j) => encodeListener(toOwn(j) as never),
};

/** fromObject drops a misspelt field silently: every key must be a field of the real message. */
function knownFields(T: protobuf.Type, j: unknown, at: string): void {
  if (j === null || typeof j !== 'object' || j instanceof Uint8Array) return;
  for (const [k, v] of Object.entries(j as Json)) {
    const f = T.fields[k];
    if (f === undefined) throw new Error(`${at}.${k} is not a field of ${T.fullName}`);
    f.resolve();
    const sub = f.resolvedType;
    if (!(sub && 'fields' in sub)) continue;
    const values = f.map ? Object.values(v as Json) : Array.isArray(v) ? v : [v];
    for (const x of values) knownFields(sub as protobuf.Type, x, `${at}.${k}`);
  }
}

/** The real Envoy protos (loadReal() from test/helpers/xds-protos.ts). */
export function realEncoder(root: protobuf.Root): Encoder {
  const enc = (name: string) => (j: Json) => {
    const T = root.lookupType(name);
    knownFields(T, j, name);
    return T.encode(T.fromObject(j)).finish();
  };
  return {
    rbac: enc('envoy.extensions.filters.http.rbac.v3.RBAC'),
    hcm: enc('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    tls: enc('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'),
    listener: enc('envoy.config.listener.v3.Listener'),
  };
}
