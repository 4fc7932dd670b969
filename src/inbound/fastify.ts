import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type RouterSemantics } from '../policy/equivalence.js';
import { type ServerTls } from '../tls/server-context.js';
import { prepareTarget } from './authorize.js';
import { peerOf } from './peer-of.js';
import { type InboundPipeline } from './pipeline.js';
import './fastify-types.js'; // request.peer (the `declare module 'fastify'` augmentation)

/**
 * The Fastify plugin (`fastify.register(mesh.fastify)`) for `Fastify({ https: mesh.serverTlsOptions() })`:
 * keeps the server's certificate rotated, runs the inbound pipeline in an onRequest hook and
 * decorates `request.peer`.
 */
export function fastifyPlugin(pipeline: InboundPipeline, tls: ServerTls): FastifyPluginCallback {
  const plugin: FastifyPluginCallback = (fastify: FastifyInstance, _opts, done) => {
    const server = fastify.server as unknown as { setSecureContext?: unknown };
    if (typeof server.setSecureContext === 'function') tls.attach(fastify.server as never);
    // Fastify routes before its hooks run: normalize the target first, so the route is chosen for
    // exactly the path the policy will judge (a listener that runs before Fastify's own).
    fastify.server.prependListener('request', prepareTarget);
    fastify.decorateRequest('peer', null);
    const routing = fastifyRouting(fastify);
    fastify.addHook('onRequest', (request, reply, hookDone) => {
      if (!pipeline.admit(request.raw, reply.raw, routing)) {
        // The pipeline answered (or closed the connection) itself.
        reply.hijack();
        return hookDone();
      }
      request.peer = peerOf(request.raw);
      // The route handler runs with the request's server span as the active trace context.
      pipeline.within(request.raw, hookDone);
    });
    done();
  };
  return fp(plugin, { fastify: '5.x', name: 'sidecarless' });
}

/** How this Fastify instance's router compares paths (find-my-way: exact by default). */
function fastifyRouting(fastify: FastifyInstance): RouterSemantics {
  const c = fastify.initialConfig as { caseSensitive?: boolean; ignoreTrailingSlash?: boolean; routerOptions?: { caseSensitive?: boolean; ignoreTrailingSlash?: boolean } };
  return {
    caseInsensitive: (c.routerOptions?.caseSensitive ?? c.caseSensitive ?? true) === false,
    ignoreTrailingSlash: (c.routerOptions?.ignoreTrailingSlash ?? c.ignoreTrailingSlash ?? false) === true,
  };
}
