// node:http2 client sessions for the HTTP/2 inbound tests: one session per (port, identity), a
// request helper that reports status, headers, trailers, body or the stream's reset code, and the
// four server shapes the mesh protects (compat 'request', core 'stream', createSecureServer from
// serverTlsOptions({ http2: true }), Fastify({ http2: true }) + mesh.fastify).
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { type AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { type IssuedSvid, type Mesh, peerOf } from '../../src/index.js';

export interface H2Result {
  status: number | undefined;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: string;
  /** The stream's RST_STREAM code when it was reset, or the session/stream error code. */
  reset: number | string | undefined;
}

export function connectH2(port: number, client: IssuedSvid | undefined): ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ...(client && { cert: client.certChainPem, key: client.keyPem }),
    rejectUnauthorized: false, // the tests judge the server side
  });
  session.on('error', () => {});
  return session;
}

/** Sends one request on `session` and collects the answer (never rejects). */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Result> {
  return new Promise((resolve) => {
    const out: H2Result = { status: undefined, headers: {}, trailers: {}, body: '', reset: undefined };
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request(headers, { endStream: body === undefined });
    } catch (e) {
      out.reset = (e as { code?: string }).code ?? String(e);
      return resolve(out);
    }
    req.setEncoding('utf8');
    req.on('response', (h) => {
      out.headers = h;
      out.status = Number(h[':status']);
    });
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (d: string) => (out.body += d));
    req.on('error', (e: Error & { code?: string }) => (out.reset ??= e.code ?? e.message));
    req.on('close', () => {
      if (req.rstCode) out.reset ??= req.rstCode;
      resolve(out);
    });
    if (body !== undefined) req.end(body);
  });
}

export type H2Kind = 'compat' | 'stream' | 'createSecureServer' | 'fastify';
export const H2_KINDS: readonly H2Kind[] = ['compat', 'stream', 'createSecureServer', 'fastify'];

export interface Seen {
  url: string;
  peer: string | null;
  headers: IncomingHttpHeaders;
}

export interface H2Served {
  kind: H2Kind;
  port: number;
  seen: Seen[];
  close: () => Promise<void>;
}

const answer = (seen: Seen[], s: Seen) => {
  seen.push(s);
  return JSON.stringify(s);
};

/** Serves one of the four shapes; every handler records what it saw and echoes it. */
export async function serveH2(kind: H2Kind, mesh: Mesh): Promise<H2Served> {
  const seen: Seen[] = [];
  if (kind === 'fastify') {
    const app = Fastify({ http2: true, https: mesh.serverTlsOptions({ http2: true }) as never });
    await app.register(mesh.fastify);
    app.all('/*', async (req) => answer(seen, { url: req.raw.url ?? '', peer: req.peer?.spiffeId ?? null, headers: req.headers as IncomingHttpHeaders }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { kind, port: (app.server.address() as AddressInfo).port, seen, close: () => app.close() };
  }
  let server: http2.Http2SecureServer;
  if (kind === 'stream') {
    server = mesh.createServer(undefined, { http2: true });
    server.on('stream', (stream, headers) => {
      const peer = (stream.session?.socket as unknown as { [k: symbol]: { spiffeId: string } | null })[Symbol.for('sidecarless.v1.peer')];
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(answer(seen, { url: String(headers[':path']), peer: peer?.spiffeId ?? null, headers }));
    });
  } else {
    const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      res.setHeader('content-type', 'application/json');
      res.end(answer(seen, { url: req.url, peer: peerOf(req as never)?.spiffeId ?? null, headers: req.headers }));
    };
    server = kind === 'compat' ? mesh.createServer(handler, { http2: true }) : http2.createSecureServer(mesh.serverTlsOptions({ http2: true }), handler);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    kind,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
