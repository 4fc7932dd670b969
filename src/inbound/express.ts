import { type IncomingMessage, type ServerResponse } from 'node:http';
import { EXPRESS_ROUTING } from '../policy/equivalence.js';
import { type InboundPipeline } from './pipeline.js';

/**
 * Express middleware (`app.use(mesh.express())`) for an app served by its own
 * `https.createServer(mesh.serverTlsOptions(), app)`: the same pipeline as mesh.createServer.
 * Put it first, so routing sees the request the policy judged.
 */
export function expressMiddleware(pipeline: InboundPipeline) {
  return function sidecarless(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const raw = req.url;
    // Express (and every express.Router(), whatever the app's settings) routes case-insensitively
    // and ignores a trailing slash by default: judge every spelling it routes alike.
    if (!pipeline.admit(req, res, EXPRESS_ROUTING)) return;
    // Express saved the raw target as req.originalUrl before any middleware ran; code that reads it
    // (guards, logging, redirects) must see what the policy judged and the router routes. Left alone
    // when mounted under a path (then originalUrl is not the raw req.url).
    const r = req as IncomingMessage & { originalUrl?: string };
    if (r.originalUrl === raw && raw !== req.url) r.originalUrl = req.url;
    pipeline.within(req, next);
  };
}
