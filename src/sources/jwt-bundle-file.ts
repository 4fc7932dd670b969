/**
 * A JWT bundle from a file (`inbound.jwtSvid.bundle.file`): a JWK Set, or a SPIFFE bundle (a JWK
 * Set with `spiffe_sequence`/`spiffe_refresh_hint`; its x509-svid keys are ignored), for one trust
 * domain. Checked at most once per `checkIntervalMs` (default 1 s): re-read when its size, mtime
 * or inode changed, and in any case once per `maxAgeMs` (default 5 min: a file replaced within one
 * mtime tick). A read or parse that fails after a good one keeps the last good bundle (and reports
 * the error); before any, `bundle()` rejects with JwtSvidUnavailableError naming the file.
 */
import { readFile, stat } from 'node:fs/promises';
import { type Clock, systemClock } from '../clock.js';
import { JwtSvidUnavailableError } from '../errors.js';
import { type JwtBundle, MAX_JWT_BUNDLE_BYTES, parseJwtBundle } from '../identity/jwt-bundle.js';

export interface JwtBundleFileOptions {
  readonly file: string;
  readonly trustDomain: string;
  readonly clock?: Clock;
  readonly checkIntervalMs?: number;
  readonly maxAgeMs?: number;
  readonly onError?: (err: Error) => void;
}

export class JwtBundleFile {
  readonly #o: JwtBundleFileOptions;
  readonly #clock: Clock;
  #bundle: JwtBundle | undefined;
  #stamp = '';
  #readAt = -Infinity;
  #checkedAt = -Infinity;
  #checking: Promise<void> | undefined;
  #lastError: Error | undefined;

  constructor(o: JwtBundleFileOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
  }

  get file(): string {
    return this.#o.file;
  }

  /** The bundle now, re-read first when it may have changed. */
  async bundle(): Promise<JwtBundle> {
    const now = this.#clock.now();
    if (now - this.#checkedAt >= (this.#o.checkIntervalMs ?? 1000)) {
      this.#checking ??= this.#check(now).finally(() => (this.#checking = undefined));
      await this.#checking;
    }
    if (this.#bundle) return this.#bundle;
    throw new JwtSvidUnavailableError(`the JWT bundle file ${this.#o.file} cannot be used: ${this.#lastError?.message ?? 'not read yet'}; fix the file (a JWK Set) or inbound.jwtSvid.bundle.file`);
  }

  async #check(now: number): Promise<void> {
    this.#checkedAt = now;
    try {
      const st = await stat(this.#o.file);
      const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (this.#bundle && stamp === this.#stamp && now - this.#readAt < (this.#o.maxAgeMs ?? 300_000)) return;
      if (st.size > MAX_JWT_BUNDLE_BYTES) throw new Error(`it is ${st.size} bytes, more than the ${MAX_JWT_BUNDLE_BYTES} allowed`);
      const bundle = parseJwtBundle(this.#o.trustDomain, await readFile(this.#o.file));
      this.#bundle = bundle;
      this.#stamp = stamp;
      this.#readAt = now;
      this.#lastError = undefined;
    } catch (e) {
      this.#lastError = e as Error;
      try {
        this.#o.onError?.(new JwtSvidUnavailableError(`JWT bundle file ${this.#o.file}: ${(e as Error).message}${this.#bundle ? '; keeping the last good bundle' : ''}`, { cause: e }));
      } catch {
        // a listener's failure is not ours
      }
    }
  }
}
