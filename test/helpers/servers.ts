// Every way this project's users serve an app behind the mesh, with every request-carrying server
// event wired to app code that records what reached it: 'request', a WebSocket server from the real
// `ws` package ('upgrade'), a 'connect' listener, and optionally 'checkContinue'/'checkExpectation'
// listeners. Tests assert on `events`: what app code saw, and with which peer and headers.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import { type Duplex } from 'node:stream';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { type Mesh, peerOf } from '../../src/index.js';
import { closeServer, listen } from './net.js';

export type ServerKind =
  | 'node:http'
  | 'express'
  | 'express-without-middleware'
  | 'express-via-createServer'
  | 'fastify';

export const SERVER_KINDS: readonly ServerKind[] = ['node:http', 'express', 'express-without-middleware', 'express-via-createServer', 'fastify'];

/** What reached app code. */
export interface AppEvent {
  event: 'request' | 'upgrade' | 'connect' | 'checkContinue' | 'checkExpectation' | 'message';
  method: string;
  url: string;
  peer: string | null;
  headers: Record<string, unknown>;
  /** The host the framework reports (Express req.hostname, Fastify request.hostname, node:http Host). */
  hostname?: string | undefined;
  trailers?: Record<string, unknown>;
}

export interface Served {
  kind: ServerKind;
  port: number;
  events: AppEvent[];
  server: HttpsServer;
  close: () => Promise<void>;
}

export interface ServeOptions {
  /** Also listen to checkContinue / checkExpectation (app-defined Expect handling). */
  expectListeners?: boolean;
  fastify?: Record<string, unknown>;
}

function record(events: AppEvent[], event: AppEvent['event'], req: IncomingMessage, hostname?: string): void {
  events.push({ event, method: req.method ?? '', url: req.url ?? '', peer: peerOf(req)?.spiffeId ?? null, headers: { ...req.headers }, hostname });
}

function answer(res: ServerResponse, body: unknown): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

/** A request handler that reads the body (and so its trailers) before answering. */
function nodeHandler(events: AppEvent[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    record(events, 'request', req, req.headers.host);
    const e = events[events.length - 1]!;
    req.resume();
    req.on('end', () => {
      e.trailers = { ...req.trailers };
      answer(res, { route: 'node', url: req.url, peer: e.peer, trailers: req.trailers, rawTrailers: req.rawTrailers });
    });
  };
}

function expressApp(events: AppEvent[], mesh: Mesh, middleware: boolean) {
  const app = express();
  if (middleware) app.use(mesh.express());
  app.all('/{*rest}', (req, res) => {
    record(events, 'request', req, req.hostname);
    const e = events[events.length - 1]!;
    req.resume();
    req.on('end', () => {
      e.trailers = { ...req.trailers };
      res.json({ route: 'express', url: req.url, peer: e.peer, trailers: req.trailers, rawTrailers: req.rawTrailers });
    });
  });
  return app;
}

/** WebSocket, CONNECT and (optionally) Expect listeners on `server`, as apps and libraries add them. */
function wireSocketEvents(server: HttpsServer, events: AppEvent[], handler: (req: IncomingMessage, res: ServerResponse) => void, o: ServeOptions): void {
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    record(events, 'upgrade', req);
    ws.on('message', (m) => ws.send(JSON.stringify({ echo: String(m), peer: peerOf(req)?.spiffeId ?? null, headers: req.headers })));
  });
  wss.on('error', () => {});
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    record(events, 'connect', req);
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  if (o.expectListeners) {
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      record(events, 'checkContinue', req);
      res.writeContinue();
      handler(req, res);
    });
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      record(events, 'checkExpectation', req);
      answer(res, { expectation: req.headers.expect });
    });
  }
}

export async function serveKind(kind: ServerKind, mesh: Mesh, o: ServeOptions = {}): Promise<Served> {
  const events: AppEvent[] = [];
  if (kind === 'fastify') {
    const app: FastifyInstance = Fastify({ https: mesh.serverTlsOptions(), ...o.fastify });
    await app.register(mesh.fastify);
    app.all('/*', async (request, reply) => {
      record(events, 'request', request.raw, request.hostname);
      const e = events[events.length - 1]!;
      e.trailers = { ...request.raw.trailers };
      return reply.send({ route: 'fastify', url: request.raw.url, peer: e.peer, trailers: request.raw.trailers });
    });
    const server = app.server as unknown as HttpsServer;
    wireSocketEvents(server, events, (req, res) => (app as unknown as { routing: (q: IncomingMessage, s: ServerResponse) => void }).routing(req, res), o);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { kind, port: (app.server.address() as { port: number }).port, events, server, close: () => app.close() };
  }
  let server: HttpsServer;
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  if (kind === 'node:http') {
    handler = nodeHandler(events);
    server = mesh.createServer(handler);
  } else if (kind === 'express-via-createServer') {
    const app = expressApp(events, mesh, false);
    handler = app;
    server = mesh.createServer(app);
  } else {
    const app = expressApp(events, mesh, kind === 'express');
    handler = app;
    server = createHttpsServer(mesh.serverTlsOptions(), app);
  }
  wireSocketEvents(server, events, handler, o);
  const port = await listen(server);
  return { kind, port, events, server, close: () => closeServer(server) };
}
