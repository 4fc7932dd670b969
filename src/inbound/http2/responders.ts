/**
 * How a refusal is written on an HTTP/2 stream: a small text response (400 malformed, 403 denied,
 * 500 unjudgeable router), or, for a gRPC request (`content-type: application/grpc…`), a
 * trailers-only response: one HEADERS frame with END_STREAM, `:status 200`,
 * `content-type: application/grpc` (a gRPC-Web request's own type for gRPC-Web), `grpc-status` (7 PERMISSION_DENIED for a denial, 3
 * INVALID_ARGUMENT for a malformed request, 13 INTERNAL otherwise) and `grpc-message`.
 */
import { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** gRPC status codes the gate answers with (grpc/grpc doc/statuscodes.md). */
export const GRPC_STATUS = Object.freeze({ INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, INTERNAL: 13, UNAVAILABLE: 14 });

/** Whether a request is gRPC (its content type says so). */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.toLowerCase().startsWith('application/grpc');
}

/** gRPC-Web's media types (PROTOCOL-WEB.md): a gRPC-Web client reads a denial only in its own type. */
const GRPC_WEB_TYPES = new Set(['application/grpc-web', 'application/grpc-web+proto', 'application/grpc-web-text', 'application/grpc-web-text+proto']);

/** The content type of a gRPC refusal: the request's gRPC-Web type, else application/grpc. */
function grpcContentType(headers: IncomingHttpHeaders): string {
  const ct = String(headers['content-type']).split(';')[0]!.trim().toLowerCase();
  return GRPC_WEB_TYPES.has(ct) ? ct : 'application/grpc';
}

function grpcStatusOf(status: number): number {
  if (status === 403) return GRPC_STATUS.PERMISSION_DENIED;
  if (status === 503) return GRPC_STATUS.UNAVAILABLE;
  if (status === 400) return GRPC_STATUS.INVALID_ARGUMENT;
  return GRPC_STATUS.INTERNAL;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2): printable ASCII except "%" is kept. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * What grpc-message says: a denial never names the rule that denied (as HTTP/1.1's 403 body does
 * not); a malformed request is told what was wrong with it.
 */
function grpcText(status: number, reason: string | undefined): string {
  if (status === 403) return 'sidecarless: permission denied by the mesh policy';
  if (status === 400) return `sidecarless: malformed request${reason ? `: ${reason}` : ''}`;
  if (status === 503) return 'sidecarless: this port is waiting for its policy from the control plane; retry';
  return 'sidecarless: internal error';
}

/** Answers a refused stream; nothing of its request body is read. Never throws. `reason`: why (400 only is told). */
export function respondStream(stream: ServerHttp2Stream, status: 400 | 403 | 500 | 503, headers: IncomingHttpHeaders, reason?: string): void {
  if (stream.destroyed || stream.closed) return;
  try {
    if (stream.headersSent) {
      stream.close();
      return;
    }
    if (isGrpcRequest(headers)) {
      stream.respond(
        { ':status': 200, 'content-type': grpcContentType(headers), 'grpc-status': String(grpcStatusOf(status)), 'grpc-message': grpcMessage(grpcText(status, reason)) },
        { endStream: true },
      );
      return;
    }
    const body = `${REASONS[status] ?? 'Error'}\n`;
    stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(status === 503 && { 'retry-after': '1' }) });
    stream.end(body);
  } catch {
    stream.destroy();
  }
}
