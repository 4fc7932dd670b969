/**
 * A Cluster's transport_socket → the SPIFFE IDs its endpoints must present. Certificates and trust
 * bundles never come from xDS: certificate provider instance names are local (gRFC A29) and the
 * mesh uses its own X509Source, so those fields are accepted; what would change how a peer is
 * verified and the mesh cannot honour (tls_params, custom handshakers or validators, pinned
 * hashes, a CA from the control plane, CRLs, SCTs, ALPN) is a reason. Expected identities come
 * from `match_subject_alt_names` (exact `spiffe://` values) or `match_typed_subject_alt_names`
 * (san_type URI, exact); a prefix, regex or non-SPIFFE SAN is a reason, and so is a TLS context
 * naming no SAN at all (it would accept any workload of the trust domain). Pure.
 */
import type { TransportSocket } from '../../../proto/envoy/config/core/v3/base.js';
import {
  type CertificateValidationContext,
  type CommonTlsContext,
  SubjectAltNameMatcher_SanType,
  type UpstreamTlsContext,
  UpstreamTlsContextCodec,
} from '../../../proto/envoy/extensions/transport_sockets/tls/v3/tls.js';
import type { StringMatcher } from '../../../proto/envoy/type/matcher/v3/matcher.js';
import { isAny, unpackAny } from '../../../proto/any-pack.js';
import { type Findings, quote } from './result.js';
import { CERTIFICATE_VALIDATION_CONTEXT, COMBINED_VALIDATION_CONTEXT, COMMON_TLS_CONTEXT, STRING_MATCHER, SUBJECT_ALT_NAME_MATCHER, TRANSPORT_SOCKET, UPSTREAM_TLS_CONTEXT } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

const TLS_SOCKET = 'envoy.transport_sockets.tls';
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;

function identityOf(m: StringMatcher | undefined, f: Findings, at: string): string | undefined {
  refuseUnknown(m, f, at, STRING_MATCHER);
  if (m?.exact === undefined || m.ignoreCase) {
    f.refuse(at, 'only an exact, case-sensitive SPIFFE ID is supported as an expected SAN');
    return undefined;
  }
  if (!SPIFFE_ID.test(m.exact)) {
    f.refuse(`${at}.exact`, `${quote(m.exact)} is not a SPIFFE ID (spiffe://trust-domain/path); DNS, IP and email SANs are not supported`);
    return undefined;
  }
  return m.exact;
}

function validationOf(v: CertificateValidationContext, f: Findings, at: string, out: Set<string>): void {
  refuseUnknown(v, f, at, CERTIFICATE_VALIDATION_CONTEXT);
  if (v.trustedCa !== undefined) f.refuse(`${at}.trusted_ca`, 'trust comes from the mesh\'s own bundle, not from xDS');
  if (v.verifyCertificateHash.length > 0) f.refuse(`${at}.verify_certificate_hash`, 'certificate pinning is not supported');
  if (v.verifyCertificateSpki.length > 0) f.refuse(`${at}.verify_certificate_spki`, 'key pinning is not supported');
  if (v.requireSignedCertificateTimestamp === true) f.refuse(`${at}.require_signed_certificate_timestamp`, 'not supported');
  if (v.crl !== undefined) f.refuse(`${at}.crl`, 'CRLs are not supported');
  if (v.customValidatorConfig !== undefined) f.refuse(`${at}.custom_validator_config`, 'custom validators are not supported (SPIFFE validation is built in)');
  v.matchSubjectAltNames.forEach((m, i) => {
    const id = identityOf(m, f, `${at}.match_subject_alt_names[${i}]`);
    if (id) out.add(id);
  });
  v.matchTypedSubjectAltNames.forEach((m, i) => {
    refuseUnknown(m, f, `${at}.match_typed_subject_alt_names[${i}]`, SUBJECT_ALT_NAME_MATCHER);
    if (m.sanType !== SubjectAltNameMatcher_SanType.URI) f.refuse(`${at}.match_typed_subject_alt_names[${i}].san_type`, 'only URI SANs (SPIFFE IDs) are supported');
    else {
      const id = identityOf(m.matcher, f, `${at}.match_typed_subject_alt_names[${i}].matcher`);
      if (id) out.add(id);
    }
  });
}

function commonOf(c: CommonTlsContext, f: Findings, at: string, out: Set<string>): void {
  refuseUnknown(c, f, at, COMMON_TLS_CONTEXT);
  refuseUnknown(c.combinedValidationContext, f, `${at}.combined_validation_context`, COMBINED_VALIDATION_CONTEXT);
  if (c.tlsParams !== undefined) f.refuse(`${at}.tls_params`, 'TLS versions and ciphers are the mesh\'s own (TLS 1.3)');
  if (c.customHandshaker !== undefined) f.refuse(`${at}.custom_handshaker`, 'not supported');
  if (c.alpnProtocols.length > 0) f.refuse(`${at}.alpn_protocols`, 'ALPN is chosen by the mesh');
  const v = c.validationContext ?? c.combinedValidationContext?.defaultValidationContext;
  const vat = c.validationContext ? `${at}.validation_context` : `${at}.combined_validation_context.default_validation_context`;
  if (v) validationOf(v, f, vat, out);
  else if (c.validationContextCertificateProviderInstance === undefined && c.combinedValidationContext === undefined) {
    f.refuse(`${at}.validation_context_type`, 'no validation context: the expected SPIFFE IDs are missing');
  }
}

/** The expected SPIFFE IDs of a Cluster's TLS transport socket (at least one, or reasons). */
export function expectedIdentities(ts: TransportSocket, f: Findings, at = 'transport_socket'): string[] {
  const out = new Set<string>();
  refuseUnknown(ts, f, at, TRANSPORT_SOCKET);
  const any = ts.typedConfig;
  if (any === undefined || !isAny(any, UpstreamTlsContextCodec)) {
    f.refuse(`${at}.typed_config`, `transport socket ${quote(ts.name)} must hold an UpstreamTlsContext (${TLS_SOCKET})`);
    return [];
  }
  let tls: UpstreamTlsContext;
  try {
    tls = unpackAny(any, UpstreamTlsContextCodec);
  } catch (e) {
    f.refuse(`${at}.typed_config`, `is not a valid UpstreamTlsContext: ${(e as Error).message}`);
    return [];
  }
  refuseUnknown(tls, f, `${at}.typed_config`, UPSTREAM_TLS_CONTEXT);
  if (tls.sni !== '') f.note(`${at}.typed_config.sni`, 'not used: the mesh verifies the SPIFFE ID, not the server name');
  if (tls.commonTlsContext === undefined) f.refuse(`${at}.typed_config.common_tls_context`, 'is required');
  else commonOf(tls.commonTlsContext, f, `${at}.typed_config.common_tls_context`, out);
  if (tls.commonTlsContext !== undefined && out.size === 0 && f.reasons.length === 0) {
    f.refuse(`${at}.typed_config.common_tls_context`, 'names no expected SPIFFE ID (match_subject_alt_names): any workload of the trust domain would be accepted');
  }
  return [...out];
}
