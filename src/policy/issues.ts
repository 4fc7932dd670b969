import { PolicyError } from '../errors.js';

/** One problem in a policy document, with the dotted path of the offending field. */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
}

/** Formats a path of keys and indexes as `rules[0].from.identities[2]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Joins a base path and a child key. */
export function at(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base === '(root)' ? '' : base}[${key}]`;
  return base === '' || base === '(root)' ? key : `${base}.${key}`;
}

/** Builds the PolicyError for `issues`; its message lists each `path: message` on its own line. */
export function policyError(issues: readonly PolicyIssue[], what = 'invalid policy'): PolicyError {
  const lines = issues.map((i) => `  ${i.path}: ${i.message}`);
  return new PolicyError(`${what}:\n${lines.join('\n')}`, issues);
}

/** Throws a PolicyError with a single issue. */
export function fail(path: string, message: string): never {
  throw policyError([{ path, message }]);
}
