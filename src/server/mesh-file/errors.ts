/**
 * The one error a mesh file gives: every issue of the file (and of the policy files it names),
 * each with the file, line and column it is about. Pure.
 */
import { SidecarlessError } from '../../errors.js';

/** One problem: where it is (the mesh file, or a policy file it names) and what to do about it. */
export interface MeshFileIssue {
  /** The file the issue is in (as the caller named it: the mesh file's path, or the policy file's). */
  readonly file: string;
  /** 1-based; absent only when the file could not be read at all. */
  readonly line?: number;
  readonly column?: number;
  /** The field, dotted (`services[1].split[0].service`), or `(root)`. */
  readonly path: string;
  readonly message: string;
}

/** Issues listed in a message; err.issues has them all. */
const MAX_LINES = 50;

/** `file:line:col path: message`. */
export function formatMeshIssue(i: MeshFileIssue): string {
  const where = i.line === undefined ? `${i.file}:` : `${i.file}:${i.line}:${i.column ?? 1}`;
  const path = i.path === '(root)' ? '' : ` ${i.path}:`;
  return `${where}${path} ${i.message}`;
}

/**
 * A mesh file rejected whole (nothing of it is served; a running control plane keeps the last good
 * one). `issues` lists every problem found with its file and line.
 */
export class MeshFileError extends SidecarlessError {
  readonly file: string;
  readonly issues: readonly MeshFileIssue[];
  /** The policy files the rejected mesh file names, resolved as the loader resolved them (a watcher watches them too). */
  readonly policyFiles: readonly string[];
  constructor(file: string, issues: readonly MeshFileIssue[], policyFiles: readonly string[] = []) {
    const lines = issues.slice(0, MAX_LINES).map((i) => `  ${formatMeshIssue(i)}`);
    if (issues.length > MAX_LINES) lines.push(`  … and ${issues.length - MAX_LINES} more (err.issues lists them all)`);
    super('ERR_SIDECARLESS_MESH_FILE', `mesh file ${file} rejected whole (fix what is listed; nothing of this version is served):\n${lines.join('\n')}`);
    this.file = file;
    this.issues = issues;
    this.policyFiles = policyFiles;
  }
}
