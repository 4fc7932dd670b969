/**
 * `watchMeshFile`: the mesh file and its policy files, watched and reloaded whole. fs.watch is on
 * the directories (editors and ConfigMap volumes replace a file by renaming another over it, which
 * a watch on the file itself would miss), filtered to the files that matter; a slow poll of their
 * stat catches what fs.watch cannot see (a directory that did not exist yet, network file
 * systems). Changes are debounced; one reload runs at a time. A bad reload calls onError and the
 * caller keeps serving its last good model; nothing is ever thrown out of a watcher callback.
 */
import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { type Clock, type Timer, systemClock } from '../../clock.js';
import { MeshFileError } from './errors.js';
import { type LoadMeshFileOptions, parseMeshFileAt, readMeshText } from './load.js';
import type { MeshModel } from './model.js';

export interface WatchMeshFileOptions extends LoadMeshFileOptions {
  /** A new good model (or the one in force again after a rejected version). */
  onModel(model: MeshModel): void;
  /** A version rejected whole (MeshFileError), or a callback that threw: the last good model stays in force. */
  onError(err: Error): void;
  /** The model in force (from loadMeshFile): not reported again while the files are unchanged. Without it, the file is loaded at once. */
  readonly current?: MeshModel;
  /** Quiet time after the last change before reloading. Default 100 ms. */
  readonly debounceMs?: number;
  /** Poll the files' stat this often, for what fs.watch misses. Default 2000 ms; 0: no polling. */
  readonly pollMs?: number;
  readonly clock?: Clock;
}

export interface MeshFileWatcher {
  close(): void;
}

class Watcher implements MeshFileWatcher {
  readonly #path: string;
  readonly #o: WatchMeshFileOptions;
  readonly #clock: Clock;
  /** Directory → the file names in it that matter. */
  #wanted = new Map<string, Set<string>>();
  readonly #watchers = new Map<string, FSWatcher>();
  #debounce: Timer | undefined;
  #poll: Timer | undefined;
  #current: MeshModel | undefined;
  #failed = false;
  #running = false;
  #again = false;
  #closed = false;
  #signature = '';
  /** The policy files the last rejected version named (watched and polled too: one may appear). */
  #attempted: readonly string[] = [];

  constructor(path: string, o: WatchMeshFileOptions) {
    this.#path = path;
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#current = o.current;
    this.#rewatch(o.current?.policyFiles ?? []);
    if (o.current) void this.#sig().then((s) => (this.#signature = s));
    else this.#schedule(0);
    const poll = o.pollMs ?? 2000;
    if (poll > 0) this.#poll = this.#clock.setInterval(() => void this.#check(), poll);
  }

  /** Watch the mesh file's directory and every policy file's, for those names. */
  #rewatch(policyFiles: readonly string[]): void {
    const wanted = new Map<string, Set<string>>();
    for (const f of [this.#path, ...policyFiles].map((p) => resolve(p))) {
      const dir = dirname(f);
      if (!wanted.has(dir)) wanted.set(dir, new Set());
      wanted.get(dir)!.add(basename(f));
    }
    this.#wanted = wanted;
    for (const [dir, w] of this.#watchers) {
      if (wanted.has(dir)) continue;
      w.close();
      this.#watchers.delete(dir);
    }
    for (const dir of wanted.keys()) if (!this.#watchers.has(dir)) this.#watchDir(dir);
  }

  #watchDir(dir: string): void {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        const names = this.#wanted.get(dir);
        // `..data`: a Kubernetes ConfigMap volume swaps that symlink to replace every file at once.
        if (name === null || name === '..data' || names?.has(String(name))) this.#schedule(this.#o.debounceMs ?? 100);
      });
      w.on('error', () => {
        // The directory went away: polling covers it until a reload watches it again.
        w.close();
        this.#watchers.delete(dir);
      });
      this.#watchers.set(dir, w);
    } catch {
      // A directory that does not exist (yet): polling covers it.
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#debounce?.cancel();
    this.#debounce = this.#clock.setTimeout(() => void this.#reload(), ms);
  }

  async #sig(): Promise<string> {
    const files = this.#files();
    const parts = await Promise.all(files.map((f) => stat(f).then((s) => `${s.ino}:${s.size}:${s.mtimeMs}`, () => '-')));
    return parts.join('|');
  }

  #files(): string[] {
    return [...new Set([this.#path, ...(this.#current?.policyFiles ?? []), ...this.#attempted])];
  }

  async #check(): Promise<void> {
    try {
      const sig = await this.#sig();
      if (sig !== this.#signature && !this.#closed) this.#schedule(0);
    } catch {
      // stat failures are part of the signature already
    }
  }

  async #reload(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        await this.#loadOnce();
      } while (this.#again && !this.#closed);
    } catch (e) {
      // Nothing above should throw; if it does, it is reported, never left as an unhandled rejection.
      this.#report(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#running = false;
    }
  }

  async #loadOnce(): Promise<void> {
    const before = this.#files().join('\0');
    let model: MeshModel | undefined;
    let failure: Error | undefined;
    try {
      this.#signature = await this.#sig();
      model = parseMeshFileAt(this.#path, await readMeshText(this.#path), this.#o);
    } catch (e) {
      failure = e instanceof Error ? e : new Error(String(e));
    }
    if (this.#closed) return;
    const same = model !== undefined && this.#current?.version === model.version;
    if (model) this.#current = model;
    this.#attempted = failure instanceof MeshFileError ? failure.policyFiles : [];
    this.#rewatch(this.#files().slice(1));
    // The files to poll changed: take their state now, or the next poll would see a "change".
    if (this.#files().join('\0') !== before) this.#signature = await this.#sig();
    if (failure) {
      this.#failed = true;
      this.#report(failure);
      return;
    }
    if (same && !this.#failed) return;
    this.#failed = false;
    try {
      this.#o.onModel(model!);
    } catch (e) {
      this.#report(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #report(err: Error): void {
    try {
      this.#o.onError(err);
    } catch {
      // onError itself threw: nothing left to tell; the watcher goes on.
    }
  }

  close(): void {
    this.#closed = true;
    this.#debounce?.cancel();
    this.#poll?.cancel();
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}

/** Watches the mesh file at `path` and its policy files; see WatchMeshFileOptions. */
export function watchMeshFile(path: string, o: WatchMeshFileOptions): MeshFileWatcher {
  return new Watcher(path, o);
}
