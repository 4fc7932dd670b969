/**
 * An HTTP/2 stream as the gate, the audit and the telemetry see it: the same shape as the parts of a
 * node:http request they read (method, url, headers, socket, httpVersion), built once per stream
 * before any listener runs, and a response view over the stream (status sent, finished, 'close')
 * for the observer (telemetry/inbound.ts) that records HTTP/1.1 requests. Kept on the stream, so a
 * compat request (`'request'` listeners, Fastify) finds the judgment of its stream.
 */
import { EventEmitter } from 'node:events';
import { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { type TLSSocket } from 'node:tls';
import { type CheckedTarget } from '../target-check.js';

const kRequest = Symbol.for('sidecarless.v1.h2request');

export interface Http2Request {
  readonly stream: ServerHttp2Stream;
  /** The stream's own header object (identity fields removed, `:path` normalized in place). */
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** The session's socket (node:http2's proxy: reads reach the TLS socket, destroy() throws). */
  readonly socket: TLSSocket;
  readonly method: string;
  /** The `:path` as sent; the normalized target once checked. */
  url: string;
  readonly httpVersion: '2.0';
  readonly httpVersionMajor: 2;
  readonly httpVersionMinor: 0;
  /** The checked target (set by the judge). */
  target?: CheckedTarget;
  /** The response view the observer watches. */
  readonly response: StreamResponseView;
}

type Carrier = ServerHttp2Stream & { [kRequest]?: Http2Request };

/** The request view of `stream` (made at its first look). */
export function http2RequestOf(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[] | undefined): Http2Request {
  const s = stream as Carrier;
  const existing = s[kRequest];
  if (existing) return existing;
  const path = headers[':path'];
  const r: Http2Request = {
    stream,
    headers,
    rawHeaders: Array.isArray(rawHeaders) ? rawHeaders : [],
    socket: stream.session?.socket as TLSSocket,
    method: typeof headers[':method'] === 'string' ? headers[':method'] : '',
    url: typeof path === 'string' ? path : '',
    httpVersion: '2.0',
    httpVersionMajor: 2,
    httpVersionMinor: 0,
    response: new StreamResponseView(stream),
  };
  s[kRequest] = r;
  return r;
}

/** The request view made for `stream`, if any. */
export function existingHttp2Request(stream: unknown): Http2Request | undefined {
  return (stream as Carrier | undefined)?.[kRequest];
}

/** The stream under a node:http2 compat request (Http2ServerRequest), or undefined for HTTP/1.1. */
export function compatStreamOf(req: unknown): ServerHttp2Stream | undefined {
  const r = req as { httpVersionMajor?: unknown; stream?: { respond?: unknown } } | undefined;
  return r?.httpVersionMajor === 2 && typeof r.stream?.respond === 'function' ? (r.stream as ServerHttp2Stream) : undefined;
}

/** What the observer reads of a response, over an h2 stream. */
export class StreamResponseView extends EventEmitter {
  constructor(private readonly stream: ServerHttp2Stream) {
    super();
    stream.once('close', () => this.emit('close'));
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get statusCode(): number {
    return Number((this.stream.sentHeaders as IncomingHttpHeaders | undefined)?.[':status'] ?? 0);
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  getHeader(name: string): unknown {
    return (this.stream.sentHeaders as IncomingHttpHeaders | undefined)?.[name];
  }
}
