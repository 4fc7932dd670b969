/**
 * What a translation of one Linkerd message gives back: the value, or every reason it was refused.
 * A reason names the message (`OutboundPolicy "payments.default.svc.cluster.local:8080"`) and the
 * field (proto names: `http1.routes[2].rules[0].filters[0]`) and says what the mesh cannot honour.
 * A refused message is refused whole: the caller keeps the last good state (fail closed). Notes
 * record fields accepted with no effect, so nothing is dropped without a trace. Pure; no I/O.
 */
import { SidecarlessError } from '../../../errors.js';
import type { Duration } from '../../../proto/google/protobuf/duration.js';

export interface TranslationReason {
  /** `OutboundPolicy "web.default.svc.cluster.local:80"`, `Server port 8080`, `Destination "web…:80"`. */
  readonly resource: string;
  /** Proto field path inside the message. */
  readonly field: string;
  readonly message: string;
}

export type Translation<T> =
  | { readonly ok: true; readonly value: T; readonly notes: readonly TranslationReason[] }
  | { readonly ok: false; readonly reasons: readonly TranslationReason[] };

/** Reasons (or notes) kept per message; one more line says how many were left out. */
export const MAX_FINDINGS = 50;

/** Collects reasons and notes while a translator walks one message. */
export class Findings {
  readonly reasons: TranslationReason[] = [];
  readonly notes: TranslationReason[] = [];
  constructor(readonly resource: string) {}

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

/** One line per reason, for logs and status. */
export function formatReasons(reasons: readonly TranslationReason[]): string {
  return reasons.map((r) => `${r.resource} ${r.field}: ${r.message}`).join('\n');
}

/** A refused Linkerd update, for callers that throw: `code` is stable, `reasons` lists every field. */
export class LinkerdUpdateError extends SidecarlessError {
  readonly reasons: readonly TranslationReason[];
  constructor(reasons: readonly TranslationReason[]) {
    super('ERR_SIDECARLESS_LINKERD_UPDATE_INVALID', `the Linkerd control plane sent an update the mesh cannot honour (kept the last good state):\n${formatReasons(reasons)}`);
    this.reasons = reasons;
  }
}

/** The value of a translation, or a LinkerdUpdateError with its reasons. */
export function unwrap<T>(t: Translation<T>): T {
  if (!t.ok) throw new LinkerdUpdateError(t.reasons);
  return t.value;
}

/** Longest duration accepted anywhere (31 days): larger values are a mistake, not a setting. */
export const MAX_DURATION_MS = 31 * 24 * 3600 * 1000;

/**
 * A Duration in milliseconds (sub-millisecond parts round up, so a positive duration never becomes
 * 0), or undefined with a reason when it is negative, malformed or longer than MAX_DURATION_MS.
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
    f.refuse(field, `${seconds}s is longer than the 31 days sidecarless accepts`);
    return undefined;
  }
  return ms;
}

/** `"name"` for messages: JSON-quoted and cut to 200 characters, so a hostile name cannot flood a log line. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}
