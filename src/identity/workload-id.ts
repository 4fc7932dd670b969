import { validateDnsName } from './dns-id.js';
import { type IdentityName, isDnsIdentity } from './name.js';
import { parseSpiffeId } from './spiffe-id.js';

/**
 * The identity a workload must hold: an SVID for any other is refused, at start and on every
 * rotation. Either a SPIFFE ID — `derivedFrom` says how it was chosen (createMesh's default
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<service>`), so the refusal can name what to change —
 * or a DNS-like identity (`dnsName`: a Linkerd workload's
 * `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>`), whose certificate carries
 * that one DNS SAN and no URI SAN.
 */
export type ExpectedIdentity = ExpectedSpiffeId | ExpectedDnsName;

export interface ExpectedSpiffeId {
  readonly spiffeId: string;
  readonly dnsName?: undefined;
  readonly derivedFrom?: { readonly trustDomain: string; readonly namespace: string; readonly service: string };
}

export interface ExpectedDnsName {
  readonly dnsName: string;
  readonly spiffeId?: undefined;
  /** Says where the name came from in a refusal (`controlPlane.linkerd`, LINKERD2_PROXY_IDENTITY_LOCAL_NAME). */
  readonly origin?: string;
}

/** Throws SpiffeIdError / DnsIdentityError when the expectation itself is malformed. */
export function checkExpected(expected: ExpectedIdentity): void {
  if (expected.dnsName !== undefined) validateDnsName(expected.dnsName);
  else parseSpiffeId(expected.spiffeId);
}

/** The expected identity as a string (the SPIFFE ID or the DNS name). */
export function expectedId(expected: ExpectedIdentity): string {
  return expected.dnsName ?? expected.spiffeId;
}

/** The default SPIFFE ID of a workload (the Kubernetes shape Istio and Linkerd use). */
export function derivedSpiffeId(trustDomain: string, namespace: string, service: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${service}`;
}

/**
 * Why an SVID for `actual` is not this workload's (naming both IDs and what to change), or
 * undefined when it is. `from` names where the SVID came from ("the identity directory /x").
 * Pure.
 */
export function identityMismatch(expected: ExpectedIdentity, actual: IdentityName, from: string): string | undefined {
  if (actual.id === expectedId(expected)) return undefined;
  if (expected.dnsName !== undefined) {
    return (
      `the certificate from ${from} is for ${actual.id}, but this workload's DNS-like identity is ${expected.dnsName}` +
      (expected.origin ? ` (from ${expected.origin})` : '') +
      `. Give this workload a certificate whose one DNS SAN is ${expected.dnsName} (and no URI SAN).`
    );
  }
  if (isDnsIdentity(actual)) {
    return (
      `the certificate from ${from} names the DNS-like identity ${actual.id} (no URI SAN), but this workload's SPIFFE ID is ${expected.spiffeId}` +
      '. Give this workload an X.509-SVID for its SPIFFE ID, or configure it as a Linkerd workload (controlPlane.linkerd).'
    );
  }
  const want = parseSpiffeId(expected.spiffeId);
  const d = expected.derivedFrom;
  const how = d
    ? ` (derived as spiffe://<trustDomain>/ns/<namespace>/sa/<service> from trustDomain "${d.trustDomain}", namespace "${d.namespace}" and service "${d.service}")`
    : ' (set by the spiffeId option or SIDECARLESS_SPIFFE_ID)';
  const tdDiffers = actual.trustDomain !== want.trustDomain;
  const changes: string[] = [];
  if (tdDiffers) changes.push(`trustDomain: "${actual.trustDomain}" (or SIDECARLESS_TRUST_DOMAIN)`);
  if (actual.path !== want.path || (tdDiffers && !d)) changes.push(`spiffeId: "${actual.id}" (or SIDECARLESS_SPIFFE_ID)`);
  return (
    `the X.509-SVID from ${from} is for ${actual.id}, but this workload's SPIFFE ID is ${expected.spiffeId}${how}` +
    (tdDiffers ? `; the trust domains differ ("${actual.trustDomain}" is not "${want.trustDomain}")` : '') +
    `. To run as ${actual.id}, set ${changes.join(' and ')}; otherwise give this workload an SVID for ${expected.spiffeId}.`
  );
}
