import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Clock, type Timer, systemClock } from '../clock.js';
import { bundlesFromPem } from '../identity/bundle.js';
import { parseCertificate } from '../identity/certificate.js';
import { pemToCertDers } from '../identity/pem.js';
import { buildSvid } from './svid-set.js';
import { type ExpectedIdentity } from '../identity/workload-id.js';
import { type SvidLifecycleEvent, renewalPoint } from './lifecycle.js';
import { CoreBackedSource, SourceCore, retryDelay } from './source.js';

/** spiffe-helper's file names. */
export const SVID_FILE = 'svid.pem';
export const KEY_FILE = 'svid_key.pem';
export const BUNDLE_FILE = 'svid_bundle.pem';

export interface DirSourceOptions {
  dir: string;
  /** The trust domain that roots without a SPIFFE URI SAN belong to; default: the leaf's. */
  trustDomain?: string;
  /** Fallback poll interval for file systems where watching misses changes (default 5 s). */
  pollMs?: number;
  clock?: Clock;
  random?: () => number;
  /**
   * Told about every rejected update (the previous SVID stays in use); files that fail again the
   * same way (the poll and the retries read them again) are not reported again.
   */
  onError?: (err: Error) => void;
  /** Refuse an SVID for any other SPIFFE ID (createMesh passes the workload's). */
  expect?: ExpectedIdentity;
  /** Told when the SVID passes its renewal point or expires with no renewal, and when a renewal follows. */
  onLifecycle?: (event: SvidLifecycleEvent) => void;
}

/**
 * Reads svid.pem, svid_key.pem and svid_bundle.pem from a directory (as spiffe-helper or a
 * Kubernetes secret volume writes them), watches it, and swaps in only a consistent, verified set.
 * A bad or half-written update is rejected whole: the previous SVID stays, the error is recorded,
 * and the read is retried with jittered backoff.
 */
export class DirSource extends CoreBackedSource {
  readonly dir: string;
  readonly #opts: DirSourceOptions;
  #watcher: FSWatcher | undefined;
  // The source's clock runs them (unref()ed), so tests drive polling, retries and the debounce in virtual time.
  #poll: Timer | undefined;
  #retry: Timer | undefined;
  #debounce: Timer | undefined;
  #attempt = 0;
  #signature = '';
  #loading: Promise<void> | undefined;
  #again: Promise<void> | undefined;
  /** The error last reported: the same failure, read again by the poll or a retry, is not reported twice. */
  #reported: string | undefined;

  constructor(opts: DirSourceOptions) {
    const dir = resolve(opts.dir);
    super(
      new SourceCore('dir', opts.clock ?? systemClock, `identity directory ${dir}`, {
        ...(opts.expect && { expect: opts.expect }),
        ...(opts.onLifecycle && { onLifecycle: opts.onLifecycle }),
      }),
    );
    this.dir = dir;
    this.#opts = opts;
  }

  /** Starts reading and watching. Resolves after the first read attempt, whatever its outcome. */
  async start(): Promise<void> {
    try {
      this.#watcher = watch(this.dir, { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', () => {
        // The directory may be replaced (Kubernetes secret volumes swap a symlink); polling covers it.
      });
    } catch {
      // The directory does not exist yet: polling will find it when it does.
    }
    this.#poll = this.core.clock.setInterval(() => this.#checkSignature(), this.#opts.pollMs ?? 5000);
    await this.#load();
  }

  #schedule(): void {
    // Writers replace three files one after another: wait for them to settle.
    this.#debounce?.cancel();
    this.#debounce = this.core.clock.setTimeout(() => this.#load(), 50);
  }

  async #fileSignature(): Promise<string> {
    const parts: string[] = [];
    for (const f of [SVID_FILE, KEY_FILE, BUNDLE_FILE]) {
      try {
        const s = await stat(join(this.dir, f));
        parts.push(`${s.ino}:${s.size}:${s.mtimeMs}`);
      } catch {
        parts.push('-');
      }
    }
    return parts.join('|');
  }

  async #checkSignature(): Promise<void> {
    if ((await this.#fileSignature()) !== this.#signature || this.core.lastError) await this.#load();
  }

  /** Re-reads the files now (also what the watcher triggers). */
  reload(): Promise<void> {
    return this.#load();
  }

  /**
   * Re-reads the files now when the SVID is past its renewal point (or there is none valid): the
   * writer renews at half-life, so newer files are likely there; a thawed process's poll has not run.
   */
  async refreshIfDue(): Promise<void> {
    const svid = this.core.current;
    if (!svid || this.core.clock.now() >= renewalPoint(svid.notBefore, svid.notAfter) || this.core.lastError) await this.#load();
  }

  /**
   * One read at a time. A call made while a read is in flight resolves after the read that starts
   * when that one ends (the files may have changed after it began), not with the stale one.
   */
  async #load(): Promise<void> {
    if (this.#loading) {
      this.#again ??= this.#loading.then(() => this.#load());
      return this.#again;
    }
    this.#loading = this.#read().finally(() => {
      this.#loading = undefined;
      this.#again = undefined;
    });
    return this.#loading;
  }

  async #read(): Promise<void> {
    if (this.core.closed) return;
    const signature = await this.#fileSignature();
    try {
      const [certPem, keyPem, bundlePem] = await readAll(this.dir, [SVID_FILE, KEY_FILE, BUNDLE_FILE]);
      const current = this.core.current;
      // The same files again: nothing to do — unless a read failed since (the directory was taken
      // away and put back unchanged), when accepting them again clears the failure (state ready).
      if (current && current.certChainPem === certPem && current.keyPem === keyPem && signature === this.#signature && !this.core.lastError) return;
      const td = this.#opts.trustDomain ?? leafTrustDomainHint(certPem!);
      let bundles;
      try {
        bundles = bundlesFromPem(bundlePem!, td);
      } catch (e) {
        throw new Error(`${BUNDLE_FILE}: ${(e as Error).message}`);
      }
      const svid = buildSvid(certPem!, keyPem!, bundles, this.core.clock.now());
      this.core.accept(svid, bundles); // throws, keeping the previous SVID, when it is for another SPIFFE ID
      this.#signature = signature;
      this.#reported = undefined;
      this.#attempt = 0;
      this.#retry?.cancel();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.core.fail(err);
      this.#retry?.cancel();
      this.#retry = this.core.clock.setTimeout(() => this.#load(), retryDelay(this.#attempt++, this.#opts.random));
      if (err.message !== this.#reported) {
        try {
          this.#opts.onError?.(err);
        } catch {
          // A logger's failure must not stop the retry (nor reject a read nobody awaits: the process would exit).
        }
      }
      this.#reported = err.message;
    }
  }

  async close(): Promise<void> {
    this.core.close();
    this.#watcher?.close();
    this.#poll?.cancel();
    this.#retry?.cancel();
    this.#debounce?.cancel();
    await this.#loading;
  }
}

/**
 * Reads the files together. When several fail, the error is the first in `files` order, not the
 * first to arrive: the same failure read again is the same message (and is reported once).
 */
async function readAll(dir: string, files: readonly string[]): Promise<string[]> {
  const results = await Promise.allSettled(files.map((f) => readFile(join(dir, f), 'utf8')));
  return results.map((r, i) => {
    if (r.status === 'fulfilled') return r.value;
    const e = r.reason as NodeJS.ErrnoException;
    const path = join(dir, files[i]!);
    throw new Error(e.code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${e.message}`);
  });
}

/**
 * Roots in svid_bundle.pem without a SPIFFE URI SAN belong to the workload's own trust domain.
 * Reading it from the leaf (before verification) only decides which bundle such roots join; the
 * chain is then verified against that bundle, so a lie here only makes verification fail.
 */
function leafTrustDomainHint(certPem: string): string {
  try {
    const der = pemToCertDers(certPem)[0];
    const uri = der ? (parseCertificate(der).uris[0] ?? '') : '';
    return /^spiffe:\/\/([^/]+)/.exec(uri)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Creates and starts a dir source. */
export async function createDirSource(opts: DirSourceOptions): Promise<DirSource> {
  const s = new DirSource(opts);
  await s.start();
  return s;
}
