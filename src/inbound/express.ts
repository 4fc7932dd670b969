import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type InboundPipeline } from './pipeline.js';

/**
 * Express middleware (`app.use(mesh.express())`) for an app served by its own
 * `https.createServer(mesh.serverTlsOptions(), app)`: the same pipeline as mesh.createServer.
 * Put it first, so routing sees the request the policy judged.
 */
export function expressMiddleware(pipeline: InboundPipeline) {
  return function sidecarless(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    if (pipeline.admit(req, res)) next();
  };
}
