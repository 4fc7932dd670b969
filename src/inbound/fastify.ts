import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { type Server as HttpServer } from 'node:http';
import { ConfigError } from '../errors.js';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type RouterSemantics } from '../policy/equivalence.js';
import { peerOf } from './peer-of.js';
import { type InboundPipeline } from './pipeline.js';
import { HTTP2_UNSUPPORTED, type InboundServers, isHttp2Server } from './servers.js';
import { checkTarget } from './target.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified SPIFFE identity of the client, or null (sidecarless). */
    peer: PeerIdentity | null;
  }
}

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
    const routing = fastifyRouting(fastify);
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
 * How this Fastify instance's router (find-my-way) compares paths. It percent-decodes before
 * matching and lower-cases the decoded path when `caseSensitive: false` (Unicode folding: the
 * Kelvin sign is `k`); a prefixed plugin's '/' route is served at `/prefix` and `/prefix/`
 * (`prefixTrailingSlash: 'both'`, the default), so a trailing slash is always judged alike;
 * HEAD is always judged as GET too: `exposeHeadRoutes` (the default) serves HEAD from GET routes, and
 * a route's own `exposeHeadRoute: true` does so even when the instance turned it off, which the
 * instance's options cannot tell. `ignoreDuplicateSlashes` needs no care: the gate merges `//`
 * before the router sees the path.
 */
export function fastifyRouting(fastify: FastifyInstance): RouterSemantics {
  const c = fastify.initialConfig as {
    caseSensitive?: boolean;
    useSemicolonDelimiter?: boolean;
    routerOptions?: { caseSensitive?: boolean; useSemicolonDelimiter?: boolean };
  };
  return Object.freeze({
    caseInsensitive: (c.routerOptions?.caseSensitive ?? c.caseSensitive ?? true) === false,
    ignoreTrailingSlash: true,
    semicolonDelimiter: (c.routerOptions?.useSemicolonDelimiter ?? c.useSemicolonDelimiter ?? false) === true,
    decodesPath: true,
    headAsGet: true,
  });
}

/** The instance's rewriteUrl option, when it has one (Fastify keeps its options under a symbol). */
function rewriteUrlOf(fastify: FastifyInstance): unknown {
  const key = Object.getOwnPropertySymbols(fastify).find((s) => s.description === 'fastify.options');
  const options = key ? (fastify as unknown as Record<symbol, { rewriteUrl?: unknown }>)[key] : undefined;
  return typeof options?.rewriteUrl === 'function' ? options.rewriteUrl : undefined;
}
