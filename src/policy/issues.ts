import { PolicyError } from '../errors.js';

/** One problem in a policy document, with the dotted path of the offending field. */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
  /** Where in the text it is (1-based), when the policy was loaded from YAML/JSON text. */
  readonly line?: number;
  readonly column?: number;
  /** The file the text came from, when known. */
  readonly file?: string;
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

/**
 * One issue as a line: `file:line:col path: message` (`line:col path: message` without a file,
 * `path: message` without a position; the document root is not named when a position is).
 */
export function formatIssue(i: PolicyIssue): string {
  const where = i.line === undefined ? '' : `${i.file ? `${i.file}:` : ''}${i.line}:${i.column ?? 1} `;
  const path = where !== '' && i.path === '(root)' ? '' : i.path;
  return path === '' ? `${where}${i.message}` : `${where}${path}: ${i.message}`;
}

/** Builds the PolicyError for `issues`; its message lists each issue (formatIssue) on its own line. */
export function policyError(issues: readonly PolicyIssue[], what = 'invalid policy'): PolicyError {
  const lines = issues.slice(0, MAX_LINES).map((i) => `  ${formatIssue(i)}`);
  if (issues.length > MAX_LINES) lines.push(`  … and ${issues.length - MAX_LINES} more (err.issues lists them all)`);
  return new PolicyError(`${what}:\n${lines.join('\n')}`, issues);
}

/** Issues listed in a message; a document with thousands of mistakes keeps its message readable. */
const MAX_LINES = 50;

/** The same error with its issues naming `file` (`file:line:col`), for a policy read from a file. */
export function inFile(err: PolicyError, file: string, what = `invalid policy in ${file}`): PolicyError {
  const issues = err.issues.map((i) => (i.line === undefined ? i : { ...i, file }));
  return policyError(issues, what);
}

/** Throws a PolicyError with a single issue. */
export function fail(path: string, message: string): never {
  throw policyError([{ path, message }]);
}
