/** Helpers shared by the Kubernetes-resource importers: metadata, strict parsing with paths. */
import { z } from 'zod';
import { readableIssues } from '../../zod-issues.js';
import { at, policyError, type PolicyIssue } from '../issues.js';

/** A Kubernetes resource as loaded, with the path it was loaded from (e.g. `[2]`). */
export interface K8sDoc {
  readonly path: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** metadata.namespace, when present. */
  readonly namespace: string | undefined;
  readonly body: Record<string, unknown>;
}

/** metadata: name required, everything else the API server adds is tolerated and ignored. */
export const MetadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().min(1).optional(),
});

/** Parses `value` with `schema`; every issue is reported under `base` (unknown fields included). */
export function strictParse<T extends z.ZodType>(schema: T, value: unknown, base: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues: PolicyIssue[] = readableIssues(r.error.issues, value, schema, { noun: 'field' }).map((i) => {
    let p = base;
    for (const k of i.path) p = at(p, typeof k === 'number' ? k : String(k));
    return { path: p, message: i.message };
  });
  throw policyError(issues);
}

/** Accepts a single value or a list and returns the list (Kubernetes `List` items, arrays). */
export function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** The API group of an apiVersion (`security.istio.io/v1` → `security.istio.io`). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
