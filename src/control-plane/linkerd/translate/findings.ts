/**
 * What a translation of one Linkerd message gives back (control-plane/translation.ts: the value, or
 * every reason it was refused; `OutboundPolicy "payments.default.svc.cluster.local:8080"` and the
 * proto field path `http1.routes[2].rules[0].filters[0]`), and the error a refused update throws.
 * A refused message is refused whole: the caller keeps the last good state (fail closed). Pure.
 */
import { SidecarlessError } from '../../../errors.js';
import { type Translation, type TranslationReason, formatReasons } from '../../translation.js';

export { Findings, MAX_DURATION_MS, MAX_FINDINGS, type Translation, type TranslationReason, durationMs, formatReasons, quote } from '../../translation.js';

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
