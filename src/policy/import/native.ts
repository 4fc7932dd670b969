/**
 * What the importers produce before validation: the native policy shape, shared by every importer
 * (istio.ts, linkerd.ts) and by load.ts, so no importer depends on another.
 */
import type { Condition, Operation, RuleAction, Source } from '../model.js';

/** A native rule before validation (the importer's output). */
export type NativeRule = {
  name: string;
  action: RuleAction;
  from?: Source[];
  to?: Operation[];
  when?: Condition[];
  matchNothing?: boolean;
  namespace?: string;
  selector?: { matchLabels?: Record<string, string> };
};
