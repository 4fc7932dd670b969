import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface PolicyFileOptions {
  /** Applies a new document; throws (PolicyError) to reject it. */
  apply: (text: string) => void;
  onError: (err: Error) => void;
  onApplied?: () => void;
  pollMs?: number;
}

/**
 * A policy file that is watched: each change is loaded and applied whole, or rejected whole with the
 * previous policy kept and the error reported. The first load must succeed (a mesh does not start
 * with a policy it cannot read).
 */
export class PolicyFile {
  readonly path: string;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #signature = '';
  #lastText = '';

  constructor(path: string, private readonly opts: PolicyFileOptions) {
    this.path = resolve(path);
  }

  async start(): Promise<void> {
    const text = await readFile(this.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new Error(`cannot read the policy file ${this.path}: ${e.code === 'ENOENT' ? 'it does not exist' : e.message}`);
    });
    this.opts.apply(text);
    this.#lastText = text;
    this.#signature = await this.#sig();
    try {
      // Watch the file's directory: editors and ConfigMap volumes replace files rather than write them.
      this.#watcher = watch(resolve(this.path, '..'), { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', () => {});
    } catch {
      // polling covers it
    }
    this.#poll = setInterval(() => void this.#check(), this.opts.pollMs ?? 2000);
    this.#poll.unref();
  }

  async #sig(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return '-';
    }
  }

  async #check(): Promise<void> {
    if ((await this.#sig()) !== this.#signature) this.#schedule();
  }

  #schedule(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), 50);
    this.#debounce.unref();
  }

  /** Reads and applies the file now. */
  async reload(): Promise<void> {
    this.#signature = await this.#sig();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      this.opts.onError(new Error(`cannot read the policy file ${this.path}: ${(e as Error).message}; keeping the previous policy`));
      return;
    }
    if (text === this.#lastText) return;
    try {
      this.opts.apply(text);
      this.#lastText = text;
      this.opts.onApplied?.();
    } catch (e) {
      this.opts.onError(new Error(`policy file ${this.path} rejected, keeping the previous policy: ${(e as Error).message}`));
    }
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }
}

/** A one-line string is a file path; text with a newline, or an object, is a document. */
export function isPolicyPath(v: unknown): v is string {
  return typeof v === 'string' && !v.includes('\n') && !/^\s*[{[]/.test(v);
}
