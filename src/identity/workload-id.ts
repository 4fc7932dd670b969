import { type SpiffeId, parseSpiffeId } from './spiffe-id.js';

/**
 * The SPIFFE ID a workload must hold: an SVID for any other ID is refused, at start and on every
 * rotation. `derivedFrom` says how the ID was chosen (createMesh's default
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<service>`), so the refusal can name what to change.
 */
export interface ExpectedIdentity {
  readonly spiffeId: string;
  readonly derivedFrom?: { readonly trustDomain: string; readonly namespace: string; readonly service: string };
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
export function identityMismatch(expected: ExpectedIdentity, actual: SpiffeId, from: string): string | undefined {
  if (actual.id === expected.spiffeId) return undefined;
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
