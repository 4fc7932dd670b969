/**
 * Which router a node:http(s) server hands its requests to, read from its 'request' listeners, and
 * so which spellings of a path reach one handler (policy/router-semantics.ts). An Express app (or an
 * `express.Router()`) routes with EXPRESS_ROUTING whatever its settings; a plain function may wrap
 * any router (`(req, res) => app(req, res)`), so it is judged with ANY_ROUTING (fail closed). A
 * Fastify app without `register(mesh.fastify)` cannot be judged (its router options live in the
 * instance): unsafe.
 */
import { type Server as HttpServer } from 'node:http';
import { ANY_ROUTING, EXACT_ROUTING, EXPRESS_ROUTING, type RouterSemantics, unionRouting } from '../policy/router-semantics.js';

export type ServerRouting = { readonly kind: 'known'; readonly routing: RouterSemantics } | { readonly kind: 'unsafe'; readonly why: string };

const FASTIFY_UNREGISTERED =
  'a Fastify app is served with mesh.serverTlsOptions() but mesh.fastify is not registered: the mesh cannot read its ' +
  'router options (caseSensitive, ignoreTrailingSlash, useSemicolonDelimiter, ...), so its requests are refused with 500. ' +
  'Call fastify.register(mesh.fastify) before fastify.listen()';

/** An Express application or router: a function with `handle` and a middleware stack. */
export function isExpressLike(l: unknown): boolean {
  if (typeof l !== 'function') return false;
  const f = l as unknown as { handle?: unknown; set?: unknown; use?: unknown; stack?: unknown };
  return typeof f.handle === 'function' && typeof f.use === 'function' && (typeof f.set === 'function' || Array.isArray(f.stack));
}

/** Fastify's request listener (`wrapRouting` in fastify.js returns a function named preRouting). */
function isFastifyHandler(l: unknown): boolean {
  return typeof l === 'function' && l.name === 'preRouting';
}

/** The routing of one request listener. */
export function routingOfListener(l: unknown): ServerRouting {
  if (isExpressLike(l)) return { kind: 'known', routing: EXPRESS_ROUTING };
  if (isFastifyHandler(l)) return { kind: 'unsafe', why: FASTIFY_UNREGISTERED };
  return { kind: 'known', routing: ANY_ROUTING };
}

const cache = new WeakMap<HttpServer, ServerRouting>();
const watched = new WeakSet<HttpServer>();

function compute(server: HttpServer): ServerRouting {
  let routing = EXACT_ROUTING;
  for (const l of server.listeners('request')) {
    const r = routingOfListener(l);
    if (r.kind === 'unsafe') return r;
    routing = unionRouting(routing, r.routing);
  }
  return { kind: 'known', routing };
}

/** The routing of `server`'s request listeners (cached until its 'request' listeners change). */
export function routingOfServer(server: HttpServer): ServerRouting {
  const hit = cache.get(server);
  if (hit) return hit;
  if (!watched.has(server)) {
    watched.add(server);
    const forget = (event: string | symbol) => {
      if (event === 'request') cache.delete(server);
    };
    server.on('newListener', forget);
    server.on('removeListener', forget);
  }
  const r = compute(server);
  cache.set(server, r);
  return r;
}
