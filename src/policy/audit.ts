/**
 * The audit record: one structured line per request an AUDIT rule matched, for a pluggable sink
 * (`inbound.audit`). Plain data, so the options schema (config.ts) and the gate that writes it
 * (inbound/policy-gate.ts) share it without one importing the other.
 */
import type { JudgedRequestFacts } from '../telemetry/events.js';

export interface AuditRecord extends JudgedRequestFacts {
  readonly time: string;
  readonly type: 'sidecarless.audit';
  readonly decision: 'allow' | 'deny';
  readonly rule: string;
  /** With a control plane's policy beside the local one: the layer that decided and the control plane's rule. */
  readonly layer?: 'local' | 'mesh';
  readonly meshRule?: string;
  readonly audit: readonly string[];
  /** The peer was authenticated by a JWT-SVID or a forwarded certificate, not the connection's mTLS. */
  readonly authenticatedBy?: 'jwt-svid' | 'forwarded-certificate';
}
