/**
 * The server-side Listener the embedded control plane serves a workload for
 * `xds.istio.io/grpc/lds/inbound/<IP>:<port>` (gRFC A36), shaped as istiod's grpcgen renders it
 * (research/control-planes.md §2.4 "LDS (inbound)"): `address` = the name's IP:port; one filter
 * chain; STRICT → a DownstreamTlsContext requiring a client certificate, with istiod's certificate
 * provider instances (`default`/`default` for the certificate, `default`/`ROOTCA` for the roots);
 * PERMISSIVE → no transport socket; one HttpConnectionManager with istiod's inline route table
 * (`domains ["*"]`, `prefix "/"`, `non_forwarding_action`) and http_filters [RBAC LOG (audit
 * rules), RBAC DENY (`envoy.filters.http.rbac.DENY`), RBAC ALLOW (`envoy.filters.http.rbac`),
 * router] — istiod's order (pilot/pkg/security/authz/builder: AUDIT, DENY, ALLOW), so that the LOG
 * filter sees every request, as the native audit records matches on every decision.
 *
 * The exact inverse of control-plane/xds/translate/inbound.ts: before the bytes are returned they
 * are read back by that translator, and anything it would NACK or note as unknown is an error
 * here — the control plane never sends what its own client would refuse. Pure; deterministic
 * bytes for the same input.
 */
import { encodeListener, decodeListener } from '../../proto/envoy/config/listener/v3/listener.js';
import type { DeepPartial } from '../../proto/wire.js';
import type { HttpFilter } from '../../proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { HttpConnectionManagerCodec } from '../../proto/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js';
import { type RBAC, RBACCodec } from '../../proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import { RouterCodec } from '../../proto/envoy/extensions/filters/http/router/v3/router.js';
import { DownstreamTlsContextCodec } from '../../proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import { packAny } from '../../proto/any-pack.js';
import { parseIp } from '../../policy/cidr.js';
import type { Policy } from '../../policy/index.js';
import { inboundListenerName, translateInbound } from '../../control-plane/xds/translate/inbound.js';
import { InboundRenderError, type RenderOptions, renderRbac } from './rbac-render.js';

export interface InboundListenerInput extends RenderOptions {
  /** The workload's address and port, as in the resource name. */
  readonly ip: string;
  readonly port: number;
  /** strict: mTLS only; permissive: plaintext accepted too. */
  readonly mode: 'strict' | 'permissive';
  /** The native policy (any importer's output, validated). */
  readonly policy: Policy;
}

/** The HTTP filters' names: DENY and ALLOW as istiod's grpcgen names them; the LOG one is ours (our client reads any name). */
export const RBAC_FILTER_NAMES = { audit: 'envoy.filters.http.rbac.AUDIT', deny: 'envoy.filters.http.rbac.DENY', allow: 'envoy.filters.http.rbac', router: 'envoy.filters.http.router' } as const;

export { inboundListenerName };

function checkInput(ip: string, port: number, trustDomain: string): void {
  const issues = [];
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) issues.push({ path: 'trustDomain', message: `"${trustDomain}" is not a trust domain (lower-case letters, digits, ".", "-", "_")` });
  if (parseIp(ip) === null) issues.push({ path: 'ip', message: `"${ip}" is not an IPv4 or IPv6 address` });
  if (!Number.isInteger(port) || port < 1 || port > 65535) issues.push({ path: 'port', message: `${port} is not a port (1-65535)` });
  if (issues.length > 0) throw new InboundRenderError('The inbound listener\'s input', issues);
}

/**
 * istiod's buildCommonTLSContext: the mesh's own certificate and roots, by provider instance name.
 * The roots are named twice: in the default validation context's ca_certificate_provider_instance
 * (the field grpc-js-xds reads: without it its XdsServer verifies no client certificate, so STRICT
 * would not be enforced and RBAC would see no principal) and in istiod's deprecated
 * validation_context_certificate_provider_instance (C-core reads either).
 */
const STRICT_TLS = packAny(DownstreamTlsContextCodec, {
  commonTlsContext: {
    tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
    combinedValidationContext: {
      defaultValidationContext: { caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' } },
      validationContextCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' },
    },
  },
  requireClientCertificate: true,
});

function httpFilters(o: InboundListenerInput): DeepPartial<HttpFilter>[] {
  const rbac = renderRbac(o.policy, o);
  const out: DeepPartial<HttpFilter>[] = [];
  for (const a of ['audit', 'deny', 'allow'] as const) {
    const config: DeepPartial<RBAC> | undefined = rbac[a];
    if (config !== undefined) out.push({ name: RBAC_FILTER_NAMES[a], typedConfig: packAny(RBACCodec, config) });
  }
  out.push({ name: RBAC_FILTER_NAMES.router, typedConfig: packAny(RouterCodec, {}) });
  return out;
}

/**
 * The encoded Listener for one inbound port of a workload.
 * @throws InboundRenderError naming every rule and field that has no exact rendering (or a bad address).
 */
export function renderInboundListener(o: InboundListenerInput): Uint8Array {
  checkInput(o.ip, o.port, o.trustDomain);
  const name = inboundListenerName(o.ip, o.port);
  const stat = `inbound|${o.port}||`;
  const hcm = packAny(HttpConnectionManagerCodec, {
    statPrefix: stat,
    routeConfig: {
      name: stat,
      virtualHosts: [{ name: `inbound|http|${o.port}`, domains: ['*'], routes: [{ match: { prefix: '/' }, nonForwardingAction: {} }] }],
    },
    httpFilters: httpFilters(o),
  });
  const bytes = encodeListener({
    name,
    address: { socketAddress: { address: o.ip, portValue: o.port } },
    filterChains: [{
      name: stat,
      filters: [{ name: stat, typedConfig: hcm }],
      ...(o.mode === 'strict' && { transportSocket: { name: 'envoy.transport_sockets.tls', typedConfig: STRICT_TLS } }),
    }],
  });
  selfCheck(bytes, name);
  return bytes;
}

/** Our own client's reading of the bytes: a NACK reason or a note (a field with no effect) is a bug here, never sent. */
function selfCheck(bytes: Uint8Array, name: string): void {
  const t = translateInbound(decodeListener(bytes));
  // The one expected note: the certificates are the mesh's own (certificate provider instances are local names).
  const bad = t.ok ? t.notes.filter((n) => !n.field.endsWith('.common_tls_context')) : t.reasons;
  if (bad.length > 0) throw new InboundRenderError(`Listener "${name}"`, bad.map((r) => ({ path: r.field, message: r.message })));
}
