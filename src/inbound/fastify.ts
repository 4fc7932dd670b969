import type { FastifyInstance, FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import { type RouterSemantics, fastifyRouting } from '../policy/router-semantics.js';
import { peerOf } from './peer-of.js';
import { type InboundPipeline } from './pipeline.js';
import { HTTP2_PLAINTEXT, type InboundServers, isHttp2Server } from './servers.js';
import { checkTarget } from './http1/target.js';
import { checkedHttp2Target } from './http2/judge.js';
import { compatStreamOf, existingHttp2Request } from './http2/request.js';
import { respondStream } from './http2/responders.js';
import { type CheckedTarget } from './target-check.js';
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
    if (isHttp2Server(fastify.server) && typeof (fastify.server as { setSecureContext?: unknown }).setSecureContext !== 'function') {
      done(new ConfigError(`mesh.fastify: ${HTTP2_PLAINTEXT}`, [{ path: 'https', message: 'required with http2: true behind mesh.fastify' }]));
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
      const t = judgedTarget(request.raw);
      if (t.ok && request.raw.method !== 'CONNECT' && t.path !== '*' && request.raw.url !== t.target) {
        // Something between the gate and the router changed the URL: never route what was not judged.
        onUnsafe(`Fastify routed ${request.raw.url} but the policy judged ${t.target}: the request was refused with 500`);
        reply.hijack();
        refuse500(request.raw, reply.raw);
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

/** The target the gate judged for a request, over HTTP/1.1 or HTTP/2. */
function judgedTarget(req: IncomingMessage): CheckedTarget {
  const stream = compatStreamOf(req);
  const view = stream && existingHttp2Request(stream);
  if (stream) return view ? checkedHttp2Target(view) : { ok: false, reason: 'an HTTP/2 request the gate did not judge' };
  return checkTarget(req);
}

function refuse500(req: IncomingMessage, res: ServerResponse): void {
  const stream = compatStreamOf(req);
  if (stream) return respondStream(stream, 500, req.headers as never);
  res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('Internal Server Error\n');
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
