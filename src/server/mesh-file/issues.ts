/** Issue collection for one mesh file: a path → the line and column where it was written. Pure. */
import type { ParsedText } from '../../policy/yaml.js';
import type { MeshFileIssue } from './errors.js';

export class Issues {
  readonly list: MeshFileIssue[] = [];
  constructor(
    readonly file: string,
    private readonly parsed?: ParsedText,
  ) {}

  /** An issue at `path` of the mesh file, at the line where that field (or its nearest written ancestor) is. */
  add(path: string, message: string, preferKey = false): void {
    const pos = this.parsed?.locate(path, preferKey);
    this.list.push({ file: this.file, ...(pos ?? { line: 1, column: 1 }), path, message });
  }

  /** `file:line` of `path`, for messages that point back to the mesh file. */
  where(path: string): string {
    const pos = this.parsed?.locate(path);
    return `${this.file}:${pos?.line ?? 1}`;
  }

  push(...issues: MeshFileIssue[]): void {
    this.list.push(...issues);
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}
