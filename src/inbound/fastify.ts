import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { type Server as HttpServer } from 'node:http';
import { ConfigError } from '../errors.js';
import { type RouterSemantics, fastifyRouting } from '../policy/router-semantics.js';
import { peerOf } from './peer-of.js';
import { type InboundPipeline } from './pipeline.js';
import { HTTP2_UNSUPPORTED, type InboundServers, isHttp2Server } from './servers.js';
import { checkTarget } from './http1/target.js';
import './fastify-types.js'; // request.peer (the `declare module 'fastify'` augmentation)

/**
 * The Fastify plugin (`fastify.register(mesh.fastify)`) for `Fastify({ https: mesh.serverTlsOptions() })`:
 * adopts `fastify.server` at registration (certificate rotated, every connection verified at the
 * handshake, every request event judged before Fastify routes it) with the routing semantics of
 * THIS instance's router options, and decorates `request.peer`.
 */
export function fastifyPlugin(pipeline: InboundPipeline, servers: InboundServers, onUnsafe: (why: string) => void): FastifyPluginCallback {
  const plugin: FastifyPluginCallback = (fastify: FastifyInstance, _opts, done) => {
    const rewrite = rewriteUrlOf(fastify);
    if (rewrite) {
      done(new ConfigError(
        'mesh.fastify: this Fastify instance has a rewriteUrl option: Fastify would route a URL other than the one the ' +
          'policy judged. Remove rewriteUrl (rewrite in a route or a reverse proxy in front), or serve it without the mesh.',
        [{ path: 'rewriteUrl', message: 'not supported behind mesh.fastify' }],
      ));
      return;
    }
    if (isHttp2Server(fastify.server)) {
      done(new ConfigError(`mesh.fastify: ${HTTP2_UNSUPPORTED}`, [{ path: 'http2', message: 'not supported behind mesh.fastify yet' }]));
      return;
    }
    const routing = routingOfInstance(fastify);
    servers.adopt(fastify.server as unknown as HttpServer, routing);
    fastify.decorateRequest('peer', null);
    fastify.addHook('onRequest', (request, reply, hookDone) => {
      if (!pipeline.admit(request.raw, reply.raw, routing)) {
        // The pipeline answered (or closed the connection) itself.
        reply.hijack();
        return hookDone();
      }
      const t = checkTarget(request.raw);
      if (t.ok && request.raw.method !== 'CONNECT' && request.raw.url !== t.target) {
        // Something between the gate and the router changed the URL: never route what was not judged.
        onUnsafe(`Fastify routed ${request.raw.url} but the policy judged ${t.target}: the request was refused with 500`);
        reply.hijack();
        reply.raw.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('Internal Server Error\n');
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

/**
 * How this Fastify instance's router compares paths, from its options (policy/router-semantics.ts).
 * HEAD is always judged as GET: a route's own `exposeHeadRoute: true` serves HEAD from GET even
 * when the instance turned `exposeHeadRoutes` off, which the instance's options cannot tell.
 */
export function routingOfInstance(fastify: FastifyInstance): RouterSemantics {
  const c = fastify.initialConfig as {
    caseSensitive?: boolean;
    useSemicolonDelimiter?: boolean;
    routerOptions?: { caseSensitive?: boolean; useSemicolonDelimiter?: boolean };
  };
  return fastifyRouting({
    caseSensitive: c.routerOptions?.caseSensitive ?? c.caseSensitive ?? true,
    useSemicolonDelimiter: c.routerOptions?.useSemicolonDelimiter ?? c.useSemicolonDelimiter ?? false,
  });
}

/** The instance's rewriteUrl option, when it has one (Fastify keeps its options under a symbol). */
function rewriteUrlOf(fastify: FastifyInstance): unknown {
  const key = Object.getOwnPropertySymbols(fastify).find((s) => s.description === 'fastify.options');
  const options = key ? (fastify as unknown as Record<symbol, { rewriteUrl?: unknown }>)[key] : undefined;
  return typeof options?.rewriteUrl === 'function' ? options.rewriteUrl : undefined;
}
