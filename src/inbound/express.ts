import { type IncomingMessage, type ServerResponse } from 'node:http';
import { EXPRESS_ROUTING } from '../policy/router-semantics.js';
import { type InboundPipeline } from './pipeline.js';

/**
 * Express middleware (`app.use(mesh.express())`). The server the app is served by (built from
 * `mesh.serverTlsOptions()`, or `mesh.createServer(app)`) has already judged the request, with
 * Express's routing semantics, before Express saw it; the middleware covers the rest: an app
 * behind a wrapper the server could not recognise as Express is judged again here with Express's
 * semantics, and a server the mesh did not build is adopted (see servers.ts).
 * Put it first, so routing sees the request the policy judged.
 */
export function expressMiddleware(pipeline: InboundPipeline) {
  return function sidecarless(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const raw = req.url;
    // Express (and every express.Router(), whatever the app's settings) routes case-insensitively,
    // ignores a trailing slash and serves HEAD from GET routes: judge every spelling it routes alike.
    if (!pipeline.admit(req, res, EXPRESS_ROUTING)) return;
    // Express saved the raw target as req.originalUrl before any middleware ran; code that reads it
    // (guards, logging, redirects) must see what the policy judged and the router routes. Left alone
    // when mounted under a path (then originalUrl is not the raw req.url).
    const r = req as IncomingMessage & { originalUrl?: string };
    if (r.originalUrl === raw && raw !== req.url) r.originalUrl = req.url;
    pipeline.within(req, next);
  };
}
