// Loopback-only networking helpers: listen on 127.0.0.1:0 and a raw TLS client that writes request
// bytes itself (a client library would normalize them away) and reports what came back.
import diagnosticsChannel from 'node:diagnostics_channel';
import { type Server, type Socket as NetSocket, createServer as createNetServer } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export const LOOPBACK = '127.0.0.1';

export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

export interface RawTlsOptions {
  port: number;
  cert?: string;
  key?: string;
  /** Trust for the server certificate; default: accept any (the tests judge the server side). */
  ca?: string;
  session?: Buffer;
  servername?: string;
  /** The request bytes; default a GET / with Connection: close. */
  request?: string;
  /** Extra header lines for the default request. */
  headers?: Array<[string, string]>;
  timeoutMs?: number;
  tls?: Partial<ConnectionOptions>;
}

export interface RawTlsResult {
  /** True when the TLS handshake completed from the client's point of view. */
  secureConnected: boolean;
  /** Everything the server sent back. */
  response: string;
  /** The HTTP status, when a response arrived. */
  status: number | undefined;
  body: string;
  error: Error | undefined;
  sessionReused: boolean;
  /** The last session ticket the server sent (for a resumption attempt). */
  session: Buffer | undefined;
  /** The server's leaf serial (hex, upper case as Node reports it). */
  serverSerial: string | undefined;
}

/** Opens a TLS connection, sends one request, collects the answer until the server closes. */
export function rawTlsRequest(o: RawTlsOptions): Promise<RawTlsResult> {
  return new Promise((resolve) => {
    const headerLines = (o.headers ?? []).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const request = o.request ?? `GET / HTTP/1.1\r\nHost: localhost\r\n${headerLines}Connection: close\r\n\r\n`;
    const chunks: Buffer[] = [];
    let session: Buffer | undefined;
    let error: Error | undefined;
    let secureConnected = false;
    let sessionReused = false;
    let serverSerial: string | undefined;
    let settled = false;
    const socket: TLSSocket = connect({
      host: LOOPBACK,
      port: o.port,
      ...(o.cert !== undefined && { cert: o.cert }),
      ...(o.key !== undefined && { key: o.key }),
      ...(o.ca !== undefined ? { ca: o.ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false }),
      ...(o.session && { session: o.session }),
      ...(o.servername !== undefined && { servername: o.servername }),
      ALPNProtocols: ['http/1.1'],
      ...o.tls,
    });
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const response = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
      const sep = response.indexOf('\r\n\r\n');
      resolve({
        secureConnected,
        response,
        status: m ? Number(m[1]) : undefined,
        body: sep >= 0 ? response.slice(sep + 4) : '',
        error,
        sessionReused,
        session,
        serverSerial,
      });
    };
    const timer = setTimeout(() => {
      error ??= new Error('raw TLS request timed out');
      socket.destroy();
      finish();
    }, o.timeoutMs ?? 10_000);
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.once('secureConnect', () => {
      secureConnected = true;
      sessionReused = socket.isSessionReused();
      serverSerial = socket.getPeerCertificate()?.serialNumber;
      socket.write(request);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (e) => {
      error ??= e;
    });
    socket.on('close', () => {
      // Give a late 'session' event (TLS 1.3 tickets follow the handshake) a chance to land.
      setImmediate(finish);
    });
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * An `Expect: 100-continue` exchange as a careful client does it: the header section alone, then
 * the body only once the server said `100 Continue` (or after `waitMs` without an answer, as curl).
 * Resolves with everything the server sent, until it closes or `timeoutMs`.
 */
export function expectContinueRequest(o: { port: number; cert: string; key: string; head: string; body: string; waitMs?: number; timeoutMs?: number }): Promise<{ response: string; sentBody: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let sentBody = false;
    let settled = false;
    const socket = connect({ host: LOOPBACK, port: o.port, cert: o.cert, key: o.key, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(wait);
      resolve({ response: Buffer.concat(chunks).toString('latin1'), sentBody });
    };
    const sendBody = () => {
      if (sentBody || socket.destroyed) return;
      sentBody = true;
      socket.write(o.body);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, o.timeoutMs ?? 5_000);
    const wait = setTimeout(sendBody, o.waitMs ?? 1_500);
    socket.once('secureConnect', () => socket.write(o.head));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 100 ')) sendBody();
    });
    socket.on('error', () => {});
    socket.on('close', finish);
  });
}

/**
 * A front that accepts every connection itself and hands it to `inner` with emit('connection')
 * (a PROXY-protocol front, one port for HTTP and HTTPS). `close` also ends what it handed over.
 */
export async function frontFor(inner: { emit(event: 'connection', socket: NetSocket): boolean }): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<NetSocket>();
  const front = createNetServer((socket: NetSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    inner.emit('connection', socket);
  });
  const port = await listen(front);
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(front);
    },
  };
}

/** Every TCP socket this process connects to `port` while the test runs (grpc-js connects with net.connect). */
export function socketsTo(t: { after(fn: () => void): void }, port: number): NetSocket[] {
  const sockets: NetSocket[] = [];
  const seen = (m: unknown) => {
    const socket = (m as { socket: NetSocket }).socket;
    socket.once('connect', () => socket.remotePort === port && sockets.push(socket));
  };
  diagnosticsChannel.subscribe('net.client.socket', seen);
  t.after(() => diagnosticsChannel.unsubscribe('net.client.socket', seen));
  return sockets;
}
