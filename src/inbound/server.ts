import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import { type ServerTls } from '../tls/server-context.js';
import { type InboundPipeline } from './pipeline.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An https.Server that speaks mutual TLS with the workload's SVID (rotated in place) and runs the
 * inbound pipeline before `listener`. Node's strict HTTP parser stays on.
 */
export function createMeshServer(tls: ServerTls, pipeline: InboundPipeline, listener: RequestListener): Server {
  if (typeof listener !== 'function') {
    // A listener added later with server.on('request') would run for refused requests too.
    throw new TypeError('mesh.createServer(listener): pass the request listener (a function, an Express app) here');
  }
  const server = createHttpsServer(tls.options(), (req, res) => {
    if (pipeline.admit(req, res)) pipeline.within(req, () => listener(req, res));
  });
  tls.attach(server);
  return server;
}
