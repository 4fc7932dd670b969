/**
 * The parts of the policy model that its zod schema (schema.ts) and the zod-free rest (model.ts)
 * share: the default policies, and the check of a path pattern.
 */
import { normalizePath } from './normalize.js';
import { checkStarPattern, isTemplate, parseTemplate } from './patterns.js';

/** What happens when no rule decides. Names follow Linkerd's default inbound policies. */
export type DefaultPolicy =
  | 'all-authenticated'
  | 'all-unauthenticated'
  | 'cluster-authenticated'
  | 'cluster-unauthenticated'
  | 'deny'
  | 'audit';

/** Every valid {@link DefaultPolicy}. */
export const DEFAULT_POLICIES: readonly DefaultPolicy[] = Object.freeze([
  'all-authenticated',
  'all-unauthenticated',
  'cluster-authenticated',
  'cluster-unauthenticated',
  'deny',
  'audit',
] as const);

/** Validates a path pattern: templates parse, literal parts are already normalized. */
export function checkPathPattern(v: string): string | undefined {
  if (v === '*') return undefined;
  if (isTemplate(v)) {
    const t = parseTemplate(v);
    return typeof t === 'string' ? t : undefined;
  }
  const e = checkStarPattern(v);
  if (e) return e;
  if (v.startsWith('*')) return undefined; // suffix: any string end
  const literal = v.endsWith('*') ? v.slice(0, -1) : v;
  if (!literal.startsWith('/')) return `"${v}" must start with "/" (or be a "*suffix" pattern)`;
  const n = normalizePath(literal);
  if (!n.startsWith('/')) return `"${v}": ${n}`;
  if (n !== literal) {
    return `"${v}" is not in normalized form; requests are matched after normalization, write "${n}${v.endsWith('*') ? '*' : ''}"`;
  }
  return undefined;
}
