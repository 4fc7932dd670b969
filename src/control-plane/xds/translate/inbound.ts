/**
 * The server-side Listener istiod sends a proxyless workload for
 * `xds.istio.io/grpc/lds/inbound/<IP>:<port>` (gRFC A36) → the inbound mode and policy. What istiod
 * renders: its `address` equal to the name's IP:port; one filter chain; a DownstreamTlsContext with
 * `require_client_certificate: true` (STRICT) or no transport socket (PERMISSIVE: plaintext is
 * accepted too — the mesh still presents and verifies mTLS when a client offers it); one
 * HttpConnectionManager with an inline route_config (`domains ["*"]`, `prefix "/"`,
 * `non_forwarding_action`) and http_filters [RBAC DENY, RBAC ALLOW, router] (rbac.ts). Anything
 * else that would change who gets in is a reason to NACK. Every message read is checked for fields
 * our protos do not declare (unknown-fields.ts, over the server tables of envoy-fields.ts:
 * INBOUND_LISTENER, INBOUND_HCM, ...; a client API listener's "no effect" does not hold here). The
 * policy goes through parsePolicy, the validation every importer's output goes through. Pure.
 */
import type { FilterChain, Listener } from '../../../proto/envoy/config/listener/v3/listener.js';
import { type HttpConnectionManager, HttpConnectionManagerCodec } from '../../../proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import type { RouteConfiguration } from '../../../proto/envoy/config/route/v3/route.js';
import { RBACCodec } from '../../../proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { RouterCodec } from '../../../proto/envoy/extensions/filters/http/router/v3/router.js';
import { type CommonTlsContext, DownstreamTlsContextCodec } from '../../../proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { isAny, typeNameOf, unpackAny } from '../../../proto/any-pack.js';
import { type Policy, parsePolicy } from '../../../policy/index.js';
import { PolicyError } from '../../../errors.js';
import { parseIp } from '../../../policy/cidr.js';
import { Findings, quote, type Translation } from './result.js';
import { type RbacFilterEntry, rbacRules } from './rbac.js';
import { refuseUnknown } from './unknown-fields.js';
import {
  CERTIFICATE_VALIDATION_CONTEXT, COMBINED_VALIDATION_CONTEXT, COMMON_TLS_CONTEXT, DOWNSTREAM_TLS_CONTEXT, FILTER_CHAIN, FILTER_CHAIN_MATCH, HTTP_FILTER, INBOUND_ADDRESS, INBOUND_HCM, INBOUND_HTTP_PROTOCOL_OPTIONS, INBOUND_LISTENER,
  NETWORK_FILTER, ROUTE, ROUTE_CONFIGURATION, ROUTE_MATCH, SOCKET_ADDRESS, TRANSPORT_SOCKET, VIRTUAL_HOST,
} from './envoy-fields.js';

export interface InboundSpec {
  readonly name: string;
  readonly port: number;
  /** strict: a client certificate is required; permissive: plaintext is accepted alongside mTLS. */
  readonly mode: 'strict' | 'permissive';
  /** The control plane's policy (validated, canonical): evaluated together with the local one, both must allow. */
  readonly policy: Policy;
}

/** istiod's prefix for inbound listener names (the A36 server_listener_resource_name_template). */
export const INBOUND_PREFIX = 'xds.istio.io/grpc/lds/inbound/';
const TLS_SOCKET = 'envoy.transport_sockets.tls';
const FAULT = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

/** `xds.istio.io/grpc/lds/inbound/10.0.0.7:8443`, `…/[fd00::1]:8443`: the name of the inbound Listener for `ip` and `port` (inboundAddressOf's inverse). */
export function inboundListenerName(ip: string, port: number): string {
  return `${INBOUND_PREFIX}${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

/** `IP:port` or `[IPv6]:port` after the prefix → its parts, or undefined. */
export function inboundAddressOf(name: string): { ip: string; port: number } | undefined {
  if (!name.startsWith(INBOUND_PREFIX)) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(name.slice(INBOUND_PREFIX.length));
  if (!m) return undefined;
  const ip = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (parseIp(ip) === null || port < 1 || port > 65535) return undefined;
  return { ip, port };
}

function checkAddress(l: Listener, want: { ip: string; port: number }, f: Findings): void {
  const sa = l.address?.socketAddress;
  refuseUnknown(l.address, f, 'address', INBOUND_ADDRESS);
  refuseUnknown(sa, f, 'address.socket_address', SOCKET_ADDRESS);
  if (sa === undefined) {
    f.refuse('address.socket_address', 'is missing: a server listener names the address it serves (gRFC A36)');
    return;
  }
  if (sa.protocol !== 0) f.refuse('address.socket_address.protocol', 'only TCP is supported: a server listener serves HTTP over TCP');
  if (sa.portValue !== want.port) f.refuse('address.socket_address.port_value', `${sa.portValue ?? 'unset'} does not match the port in the name (${want.port}) (gRFC A36)`);
  const a = parseIp(sa.address);
  const b = parseIp(want.ip);
  if (a === null || b === null || a.v !== b.v || a.n !== b.n) f.refuse('address.socket_address.address', `${quote(sa.address)} does not match the address in the name (${want.ip}) (gRFC A36)`);
}

/**
 * The server's certificate and roots are the mesh's own; so are its TLS versions and ALPN. What
 * would narrow which clients may connect (expected SANs, pins, CRLs, a CA of the control plane's)
 * would not be enforced: refused, so that it is never read as absent.
 */
function checkCommonTls(c: CommonTlsContext, f: Findings, at: string): void {
  refuseUnknown(c, f, at, COMMON_TLS_CONTEXT);
  refuseUnknown(c.combinedValidationContext, f, `${at}.combined_validation_context`, COMBINED_VALIDATION_CONTEXT);
  const v = c.validationContext ?? c.combinedValidationContext?.defaultValidationContext;
  const vat = c.validationContext ? `${at}.validation_context` : `${at}.combined_validation_context.default_validation_context`;
  if (v !== undefined) {
    refuseUnknown(v, f, vat, CERTIFICATE_VALIDATION_CONTEXT);
    const narrowing: Array<[string, boolean]> = [
      ['trusted_ca', v.trustedCa !== undefined],
      ['verify_certificate_hash', v.verifyCertificateHash.length > 0],
      ['verify_certificate_spki', v.verifyCertificateSpki.length > 0],
      ['require_signed_certificate_timestamp', v.requireSignedCertificateTimestamp === true],
      ['crl', v.crl !== undefined],
      ['match_subject_alt_names', v.matchSubjectAltNames.length > 0],
      ['custom_validator_config', v.customValidatorConfig !== undefined],
      ['match_typed_subject_alt_names', v.matchTypedSubjectAltNames.length > 0],
    ];
    for (const [name, set] of narrowing) {
      if (set) f.refuse(`${vat}.${name}`, 'would narrow which clients may connect, and sidecarless verifies clients against the mesh\'s own bundle only: say who may call in an AuthorizationPolicy (principals)');
    }
  }
  if (c.customHandshaker !== undefined) f.refuse(`${at}.custom_handshaker`, 'not supported');
  f.note(at, 'certificates, roots, TLS versions and ALPN come from the mesh\'s own identity source and settings (certificate provider instances are local names)');
}

function modeOf(chain: FilterChain, f: Findings, at: string): InboundSpec['mode'] {
  const ts = chain.transportSocket;
  if (ts === undefined) return 'permissive';
  const tat = `${at}.transport_socket`;
  refuseUnknown(ts, f, tat, TRANSPORT_SOCKET);
  if (ts.typedConfig === undefined || !isAny(ts.typedConfig, DownstreamTlsContextCodec)) {
    f.refuse(tat, `${quote(ts.name)} is not ${TLS_SOCKET} with a DownstreamTlsContext`);
    return 'strict';
  }
  let tls;
  try {
    tls = unpackAny(ts.typedConfig, DownstreamTlsContextCodec);
  } catch (e) {
    f.refuse(`${tat}.typed_config`, `is not a valid DownstreamTlsContext: ${(e as Error).message}`);
    return 'strict';
  }
  refuseUnknown(tls, f, `${tat}.typed_config`, DOWNSTREAM_TLS_CONTEXT);
  if (tls.requireSni === true) f.refuse(`${tat}.typed_config.require_sni`, 'is not supported (gRFC A29)');
  if (tls.requireClientCertificate !== true) {
    f.refuse(`${tat}.typed_config.require_client_certificate`, 'must be true: TLS without a client certificate is neither STRICT (mTLS) nor PERMISSIVE (plaintext too) in sidecarless');
  }
  if (tls.commonTlsContext !== undefined) checkCommonTls(tls.commonTlsContext, f, `${tat}.typed_config.common_tls_context`);
  return 'strict';
}

function hcmOf(chain: FilterChain, f: Findings, at: string): HttpConnectionManager | undefined {
  if (chain.filters.length !== 1) {
    f.refuse(`${at}.filters`, `holds ${chain.filters.length} filters: a server filter chain is one HttpConnectionManager (gRFC A36)`);
    return undefined;
  }
  refuseUnknown(chain.filters[0], f, `${at}.filters[0]`, NETWORK_FILTER);
  const any = chain.filters[0]!.typedConfig;
  if (any === undefined || !isAny(any, HttpConnectionManagerCodec)) {
    f.refuse(`${at}.filters[0].typed_config`, `holds ${quote(any?.typeUrl ?? '')}, not an HttpConnectionManager`);
    return undefined;
  }
  try {
    return unpackAny(any, HttpConnectionManagerCodec);
  } catch (e) {
    f.refuse(`${at}.filters[0].typed_config`, `is not a valid HttpConnectionManager: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Every message of the inline route table is checked; a per-filter config anywhere in it (an
 * RBACPerRoute would replace the policy for the route's requests) is refused.
 */
function checkRouteMessages(rc: RouteConfiguration, f: Findings, at: string): void {
  const perFilter = (m: ReadonlyMap<string, unknown>, mat: string) => {
    for (const name of m.keys()) f.refuse(`${mat}.typed_per_filter_config[${quote(name)}]`, 'per-route filter configs are not supported on a server listener (an RBAC override would change the policy for some requests)');
  };
  refuseUnknown(rc, f, at, ROUTE_CONFIGURATION);
  perFilter(rc.typedPerFilterConfig, at);
  rc.virtualHosts.forEach((vh, i) => {
    const vat = `${at}.virtual_hosts[${i}]`;
    refuseUnknown(vh, f, vat, VIRTUAL_HOST);
    perFilter(vh.typedPerFilterConfig, vat);
    vh.routes.forEach((r, j) => {
      const rat = `${vat}.routes[${j}]`;
      refuseUnknown(r, f, rat, ROUTE);
      refuseUnknown(r.match, f, `${rat}.match`, ROUTE_MATCH);
      perFilter(r.typedPerFilterConfig, rat);
    });
  });
}

/** istiod's server route table: every host, every path, non-forwarding. Anything else would route requests the mesh does not. */
function checkRoutes(rc: RouteConfiguration | undefined, f: Findings, at: string): void {
  if (rc !== undefined) checkRouteMessages(rc, f, `${at}.route_config`);
  const vh = rc?.virtualHosts;
  const r = vh?.length === 1 && vh[0]!.domains.length === 1 && vh[0]!.domains[0] === '*' && vh[0]!.routes.length === 1 ? vh[0]!.routes[0]! : undefined;
  const m = r?.match;
  const catchAll = m !== undefined && m.prefix === '/' && m.headers.length === 0 && m.queryParameters.length === 0 && m.runtimeFraction === undefined && m.caseSensitive !== false;
  if (rc === undefined) f.refuse(`${at}.route_config`, 'a server listener needs an inline route_config (rds is not supported here)');
  else if (r === undefined || !catchAll || r.nonForwardingAction === undefined) {
    f.refuse(`${at}.route_config`, 'must be one virtual host with domains ["*"] and one route with prefix "/" and non_forwarding_action, as istiod writes: server-side routing is not supported');
  }
}

function rbacFilters(hcm: HttpConnectionManager, f: Findings, at: string): RbacFilterEntry[] {
  const out: RbacFilterEntry[] = [];
  const last = hcm.httpFilters.length - 1;
  hcm.httpFilters.forEach((h, i) => {
    const hat = `${at}.http_filters[${i}]`;
    refuseUnknown(h, f, hat, HTTP_FILTER);
    const any = h.typedConfig;
    if (any === undefined) f.refuse(`${hat}.typed_config`, `filter ${quote(h.name)} has no typed_config (config_discovery is not supported)`);
    else if (isAny(any, RouterCodec)) {
      if (i !== last) f.refuse(hat, 'the router must be the last filter');
    } else if (isAny(any, RBACCodec)) {
      if (h.disabled) f.refuse(`${hat}.disabled`, 'a disabled RBAC filter enabled per route is not supported');
      try {
        out.push({ at: `${hat}.typed_config`, name: h.name, config: unpackAny(any, RBACCodec) });
      } catch (e) {
        f.refuse(`${hat}.typed_config`, `is not a valid RBAC config: ${(e as Error).message}`);
      }
    } else if (typeNameOf(any.typeUrl) === FAULT && any.value.length === 0) {
      // istiod's placeholder, no fault configured.
    } else if (h.disabled || h.isOptional) f.note(hat, `filter ${quote(h.name)} is ${h.disabled ? 'disabled' : 'optional'} and not supported: skipped`);
    else f.refuse(hat, `filter ${quote(h.name)} (${quote(typeNameOf(any.typeUrl))}) is not supported on a server listener`);
  });
  if (last < 0 || !isAny(hcm.httpFilters[last]!.typedConfig ?? { typeUrl: '', value: new Uint8Array(0) }, RouterCodec)) {
    f.refuse(`${at}.http_filters`, 'the last HTTP filter must be the router');
  }
  return out;
}

function policyOf(hcm: HttpConnectionManager, f: Findings, at: string): Policy | undefined {
  const rules = rbacRules(rbacFilters(hcm, f, at), f);
  if (f.reasons.length > 0) return undefined;
  try {
    return parsePolicy({ rules });
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    for (const i of e.issues) f.refuse(`${at}.http_filters`, `the translated policy is invalid at ${i.path}: ${i.message}`);
    return undefined;
  }
}

/** One server Listener → its inbound mode and policy, or the reasons to NACK it. */
export function translateInbound(l: Listener): Translation<InboundSpec> {
  const f = new Findings(`Listener ${quote(l.name)}`);
  refuseUnknown(l, f, '', INBOUND_LISTENER);
  const want = inboundAddressOf(l.name);
  if (want === undefined) f.refuse('name', `is not ${INBOUND_PREFIX}<IP>:<port>`);
  else checkAddress(l, want, f);
  if (l.apiListener !== undefined) f.refuse('api_listener', 'a server listener is not an API listener');
  if (l.listenerFilters.length > 0) f.refuse('listener_filters', 'must be empty (gRFC A36)');
  if (l.useOriginalDst === true) f.refuse('use_original_dst', 'must not be set (gRFC A36)');
  if (l.defaultFilterChain !== undefined) f.refuse('default_filter_chain', 'is not supported: istiod writes one filter chain');
  if (l.filterChains.length !== 1) {
    f.refuse('filter_chains', `holds ${l.filterChains.length} filter chains: sidecarless takes the one istiod writes`);
    return f.result(undefined as never);
  }
  const chain = l.filterChains[0]!;
  const m = chain.filterChainMatch;
  refuseUnknown(chain, f, 'filter_chains[0]', FILTER_CHAIN);
  refuseUnknown(m, f, 'filter_chains[0].filter_chain_match', FILTER_CHAIN_MATCH);
  if (m !== undefined && (m.destinationPort !== undefined || m.prefixRanges.length || m.sourcePrefixRanges.length || m.sourcePorts.length || m.transportProtocol !== '' || m.applicationProtocols.length || m.serverNames.length)) {
    f.refuse('filter_chains[0].filter_chain_match', 'is not supported: the one filter chain applies to every connection');
  }
  const mode = modeOf(chain, f, 'filter_chains[0]');
  const at = 'filter_chains[0].filters[0].typed_config';
  const hcm = hcmOf(chain, f, 'filter_chains[0]');
  if (hcm === undefined) return f.result(undefined as never);
  refuseUnknown(hcm, f, at, INBOUND_HCM);
  refuseUnknown(hcm.commonHttpProtocolOptions, f, `${at}.common_http_protocol_options`, INBOUND_HTTP_PROTOCOL_OPTIONS);
  if (hcm.xffNumTrustedHops !== 0) f.refuse(`${at}.xff_num_trusted_hops`, 'must be 0: sidecarless trusts no X-Forwarded-For hops (gRFC A41)');
  if (hcm.rds !== undefined) f.refuse(`${at}.rds`, 'a server listener needs an inline route_config (rds is not supported here)');
  else checkRoutes(hcm.routeConfig, f, at);
  const policy = policyOf(hcm, f, at);
  return f.result({ name: l.name, port: want?.port ?? 0, mode, policy: policy! });
}
