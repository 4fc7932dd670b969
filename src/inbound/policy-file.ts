import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, PolicyError, PolicyFileError } from '../errors.js';
import { inFile } from '../policy/issues.js';
import { type Clock, type Timer, systemClock } from '../clock.js';

export interface PolicyFileOptions {
  /** Applies a new document; throws (PolicyError) to reject it. */
  apply: (text: string) => void;
  onError: (err: Error) => void;
  onApplied?: () => void;
  pollMs?: number;
  /** Runs the poll and the debounce (default systemClock). */
  clock?: Clock;
}

/**
 * A policy file that is watched: each change is loaded and applied whole, or rejected whole with the
 * previous policy kept and the error reported. The first load must succeed (a mesh does not start
 * with a policy it cannot read).
 */
export class PolicyFile {
  readonly path: string;
  #watcher: FSWatcher | undefined;
  #poll: Timer | undefined;
  #debounce: Timer | undefined;
  #signature = '';
  #lastText = '';
  /** The last reload was rejected (so the in-force text coming back clears the error). */
  #failed = false;

  /** The path as it was given (`inbound.policy`), for messages. */
  readonly given: string;

  get #clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  constructor(path: string, private readonly opts: PolicyFileOptions) {
    this.given = path;
    this.path = resolve(path);
  }

  async start(): Promise<void> {
    if (looksLikeDocument(this.given)) {
      throw new ConfigError(
        `invalid sidecarless options:\n  - inbound.policy looks like a policy document, not a file path ("${this.given}"): ` +
          `pass loadPolicy(text) or a multi-line string (a one-line string is read as the path of a policy file)`,
        [{ path: 'inbound.policy', message: 'looks like a policy document, not a file path: pass loadPolicy(text) or a multi-line string' }],
      );
    }
    const text = await readFile(this.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new PolicyFileError(this.path, `cannot read the policy file ${this.path} (inbound.policy "${this.given}"): ${readError(e)}`, { cause: e });
    });
    if (isEmptyDocument(text)) {
      // As on reload: an empty file would be a policy without rules; say "rules: []" to mean that.
      throw new PolicyError(`policy file ${this.path} is empty (no YAML/JSON content); write "rules: []" for a policy without rules`, [
        { path: '(root)', message: 'empty document' },
      ]);
    }
    try {
      this.opts.apply(text);
    } catch (e) {
      // Name the file: the policy's own message names the field, its line and column.
      if (e instanceof PolicyError) throw inFile(e, this.path);
      throw e;
    }
    this.#lastText = text;
    this.#signature = await this.#sig();
    try {
      // Watch the file's directory: editors and ConfigMap volumes replace files rather than write them.
      this.#watcher = watch(resolve(this.path, '..'), { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', () => {});
    } catch {
      // polling covers it
    }
    this.#poll = this.#clock.setInterval(() => void this.#check(), this.opts.pollMs ?? 2000);
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
    this.#debounce?.cancel();
    this.#debounce = this.#clock.setTimeout(() => void this.reload(), 50);
  }

  /** Reads and applies the file now. */
  async reload(): Promise<void> {
    this.#signature = await this.#sig();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      this.#failed = true;
      this.opts.onError(new PolicyFileError(this.path, `cannot read the policy file ${this.path}: ${readError(e as NodeJS.ErrnoException)}; keeping the previous policy`, { cause: e }));
      return;
    }
    if (text === this.#lastText) {
      // The policy in force is back (e.g. after a rejected intermediate state): nothing to swap.
      if (this.#failed) {
        this.#failed = false;
        this.opts.onApplied?.();
      }
      return;
    }
    if (isEmptyDocument(text)) {
      this.#failed = true;
      // Most likely a writer caught between truncating and writing: loaded as it is, it would be a
      // policy without rules (the default policy), opening the gate. Write `rules: []` to mean that.
      this.opts.onError(
        new PolicyError(`policy file ${this.path} is empty (no YAML/JSON content), keeping the previous policy; write "rules: []" for a policy without rules`, [
          { path: '(root)', message: 'empty document' },
        ]),
      );
      return;
    }
    try {
      this.opts.apply(text);
      this.#lastText = text;
      this.#failed = false;
      this.opts.onApplied?.();
    } catch (e) {
      this.#failed = true;
      this.opts.onError(
        e instanceof PolicyError
          ? inFile(e, this.path, `policy file ${this.path} rejected, keeping the previous policy`)
          : new PolicyError(`policy file ${this.path} rejected, keeping the previous policy: ${(e as Error).message}`),
      );
    }
  }

  close(): void {
    this.#watcher?.close();
    this.#poll?.cancel();
    this.#debounce?.cancel();
  }
}

/** Only whitespace, comments and document markers: no content at all. */
function isEmptyDocument(text: string): boolean {
  return text.split(/\r?\n/).every((l) => {
    const t = l.trim();
    return t === '' || t.startsWith('#') || t === '---' || t === '...';
  });
}

/** Why a file could not be read, in words. */
function readError(e: NodeJS.ErrnoException): string {
  if (e.code === 'ENOENT') return 'it does not exist (a relative path is resolved from the working directory)';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'EISDIR') return 'it is a directory: name the policy file in it';
  return `${e.message}${e.code ? ` (${e.code})` : ''}`;
}

/**
 * A one-line string that is YAML rather than a path: `rules: []`, `apiVersion: …`, `- name: x`.
 * (A flow document, `{rules: []}`, is taken as a document already; see isPolicyPath.) Paths with
 * a drive letter (`C:\policy.yaml`) are paths.
 */
export function looksLikeDocument(v: string): boolean {
  return /^\s*[A-Za-z_][\w.-]*\s*:(\s|$)/.test(v) || /^\s*-\s/.test(v);
}

/** A one-line string is a file path; text with a newline, or an object, is a document. */
export function isPolicyPath(v: unknown): v is string {
  return typeof v === 'string' && !v.includes('\n') && !/^\s*[{[]/.test(v);
}
