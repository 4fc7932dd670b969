/**
 * What a translation of one control-plane message (an xDS resource, a Linkerd update) gives back:
 * the value, or every reason it was refused. A reason names the message and the field (proto
 * names: `routes[2].match.prefix`) and says what the mesh cannot honour. A refused message is
 * refused whole: the caller keeps the last good state (fail closed). Notes record fields accepted
 * with no effect, so nothing is dropped without a trace. Shared by control-plane/xds/translate
 * (result.ts: NACK reasons) and control-plane/linkerd/translate (findings.ts). Pure; no I/O.
 */
import type { Duration } from '../proto/google/protobuf/duration.js';

export interface TranslationReason {
  /** `Listener "payments:8080"`, `OutboundPolicy "web.default.svc.cluster.local:80"`, `Server port 8080`. */
  readonly resource: string;
  /** Proto field path inside the message: `virtual_hosts[0].routes[1].match.safe_regex.regex`. */
  readonly field: string;
  readonly message: string;
}

export type Translation<T> =
  | { readonly ok: true; readonly value: T; readonly notes: readonly TranslationReason[] }
  | { readonly ok: false; readonly reasons: readonly TranslationReason[] };

/** Reasons (or notes) kept per message; one more line says how many were left out. */
export const MAX_FINDINGS = 50;

/** Collects reasons and notes for one message while a translator walks it. */
export class Findings {
  readonly reasons: TranslationReason[] = [];
  readonly notes: TranslationReason[] = [];
  constructor(readonly resource: string) {}

  /** Kept up to MAX_FINDINGS (a hostile message cannot make a million of them); the rest counted in one more. */
  refuse(field: string, message: string): void {
    add(this.reasons, { resource: this.resource, field, message });
  }

  note(field: string, message: string): void {
    add(this.notes, { resource: this.resource, field, message });
  }

  get failed(): boolean {
    return this.reasons.length > 0;
  }

  /** The value when nothing was refused, else the reasons. */
  result<T>(value: T): Translation<T> {
    return this.reasons.length > 0 ? { ok: false, reasons: this.reasons } : { ok: true, value, notes: this.notes };
  }
}

function add(list: TranslationReason[], r: TranslationReason): void {
  if (list.length < MAX_FINDINGS) list.push(r);
  else if (list.length === MAX_FINDINGS) list.push({ resource: r.resource, field: '…', message: 'more reasons left out' });
}

/** One line per reason (`Cluster "c" lb_policy: RING_HASH is not supported …`), for error_detail, logs and status. */
export function formatReasons(reasons: readonly TranslationReason[]): string {
  return reasons.map((r) => `${r.resource} ${r.field}: ${r.message}`).join('\n');
}

/** Longest duration accepted anywhere (31 days): larger values are a mistake, not a setting. */
export const MAX_DURATION_MS = 31 * 24 * 3600 * 1000;

/**
 * A Duration in milliseconds, or undefined (with a reason) when it is negative, has nanos out of
 * range or of another sign than seconds, or exceeds MAX_DURATION_MS. Sub-millisecond parts round up,
 * so a positive duration never becomes 0 ("none").
 */
export function durationMs(d: Duration, f: Findings, field: string): number | undefined {
  const { seconds, nanos } = d;
  if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || Math.abs(nanos) > 999_999_999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    f.refuse(field, `is not a valid Duration (seconds ${seconds}, nanos ${nanos})`);
    return undefined;
  }
  if (seconds < 0 || nanos < 0) {
    f.refuse(field, 'must not be negative');
    return undefined;
  }
  const ms = seconds * 1000 + Math.ceil(nanos / 1e6);
  if (ms > MAX_DURATION_MS) {
    f.refuse(field, `${seconds}s is longer than the ${MAX_DURATION_MS / 86_400_000} days sidecarless accepts`);
    return undefined;
  }
  return ms;
}

/** `"name"` for messages: JSON-quoted and cut to 200 characters, so a hostile name cannot flood a log line. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}
