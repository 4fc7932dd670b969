/**
 * One mesh per function instance, made on first use: concurrent first invocations share one
 * createMesh; a failed one is not kept (the next invocation tries again, and gets that attempt's
 * error). What createMesh opens keeps no timer alive, so the platform's instance can idle and exit.
 */
import { type Mesh } from '../mesh.js';

export class LazyMesh {
  #mesh: Mesh | undefined;
  #creating: Promise<Mesh> | undefined;

  constructor(private readonly create: () => Promise<Mesh>) {}

  /** The mesh, creating it if needed. Rejects with createMesh's own error (ConfigError, IdentityUnavailableError). */
  get(): Promise<Mesh> {
    if (this.#mesh) return Promise.resolve(this.#mesh);
    this.#creating ??= this.create().then(
      (mesh) => {
        this.#mesh = mesh;
        this.#creating = undefined;
        return mesh;
      },
      (err: unknown) => {
        this.#creating = undefined; // not cached: the next invocation retries
        throw err;
      },
    );
    return this.#creating;
  }

  /** The mesh once made (undefined before, or after a failed creation). */
  get current(): Mesh | undefined {
    return this.#mesh;
  }
}
