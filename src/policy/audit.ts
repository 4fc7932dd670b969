/**
 * The audit record: one structured line per request an AUDIT rule matched, for a pluggable sink
 * (`inbound.audit`). Plain data, so the options schema (config.ts) and the gate that writes it
 * (inbound/policy-gate.ts) share it without one importing the other.
 */
export interface AuditRecord {
  readonly time: string;
  readonly type: 'sidecarless.audit';
  readonly decision: 'allow' | 'deny';
  readonly rule: string;
  readonly audit: readonly string[];
  readonly peer: string | null;
  readonly sourceIp: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
}
