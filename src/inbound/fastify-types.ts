/**
 * The Fastify side of the public types, apart from the plugin's body so that an Express-only
 * consumer's `.d.ts` never names `fastify` (an optional peer):
 *
 * - `MeshFastifyPlugin`, the type of `mesh.fastify`: a plugin callback described structurally, so it
 *   imports nothing from fastify, yet `fastify.register(mesh.fastify)` type-checks against fastify's
 *   own `FastifyPluginCallback`;
 * - the `request.peer` decoration, as the module augmentation Fastify plugins use.
 *
 * mesh.ts names `MeshFastifyPlugin`, so this file is part of the bundled `.d.ts` and the
 * augmentation with it (an augmentation in a file the public types never reach is dropped by the
 * bundler: consumers got TS2339 on `request.peer`). In a declaration file, TypeScript ignores an
 * augmentation of a module it cannot find, without an error even under `skipLibCheck: false`: where
 * fastify is installed it merges into its `FastifyRequest`, where it is not it costs nothing.
 * test/e2e/types.test.ts compiles both consumers against the packed tarball.
 */
import { type PeerIdentity } from '../identity/peer-identity.js';

/**
 * `mesh.fastify`: register it with `fastify.register(mesh.fastify)`. A Fastify plugin callback
 * `(instance, options, done) => void`, typed without fastify's types (the method-shorthand form keeps
 * its parameters bivariant, so fastify's `FastifyPluginCallback` and this type fit each other).
 */
export type MeshFastifyPlugin = {
  plugin(instance: unknown, options: unknown, done: (err?: Error) => void): void;
}['plugin'];

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified SPIFFE identity of the client, or null (sidecarless). */
    peer: PeerIdentity | null;
  }
}
