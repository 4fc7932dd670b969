/**
 * What a translation of one xDS resource gives back: the typed value, or the reasons to NACK it
 * (control-plane/translation.ts holds the shared machinery). A reason names the resource (type and
 * name) and the field, so the NACK's `error_detail` tells an operator what to change. `notes`
 * record fields accepted with no effect (documented in docs/control-planes.md). Pure; no I/O.
 */
import type { Duration } from '../../../proto/google/protobuf/duration.js';
import { type Findings, durationMs as checkedDurationMs } from '../../translation.js';
import { DURATION } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

export { Findings, MAX_DURATION_MS, MAX_FINDINGS, type Translation, formatReasons, quote } from '../../translation.js';
export type { TranslationReason as NackReason } from '../../translation.js';

/** A Duration in milliseconds (translation.ts `durationMs`), its unknown fields refused first. */
export function durationMs(d: Duration, f: Findings, field: string): number | undefined {
  refuseUnknown(d, f, field, DURATION);
  return checkedDurationMs(d, f, field);
}
