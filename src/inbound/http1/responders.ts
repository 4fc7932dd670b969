/**
 * How a refusal is written, per transport: an HTTP/1.1 response through node:http's
 * ServerResponse, or raw bytes on the socket of an upgrade or CONNECT request (node:http has
 * handed the socket over; no ServerResponse exists).
 */
import { type ServerResponse } from 'node:http';
import { type Duplex } from 'node:stream';

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 417: 'Expectation Failed', 500: 'Internal Server Error', 503: 'Service Unavailable' };

function bodyOf(status: number): string {
  return `${REASONS[status] ?? 'Error'}\n`;
}

/** Answers through node:http; `close` ends the connection after the response. */
export function respondHttp(res: ServerResponse, status: number, close = false): void {
  if (close) res.shouldKeepAlive = false;
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = bodyOf(status);
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(status === 503 && { 'retry-after': '1' }), ...(close && { connection: 'close' }) });
  res.end(body);
}

/** Writes a complete HTTP/1.1 response on a raw socket, then closes it. */
export function respondSocket(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  const body = bodyOf(status);
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${status === 503 ? 'retry-after: 1\r\n' : ''}connection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
  // A peer that never reads must not keep the socket: give the bytes a moment, then drop it.
  setTimeout(() => socket.destroy(), 1000).unref();
}
