/**
 * Closes an HTTP/2 session that has had no open stream for H2_IDLE_TIMEOUT_MS, with GOAWAY
 * NO_ERROR (node:http2's session.close(): a client opens a new connection for its next request).
 * node:http2 servers have no idle timeout, so a client that sent one request could hold its
 * connection, and a file descriptor, forever; HTTP/1.1 keep-alive connections close after
 * keepAliveTimeout. Only stream-less time counts, as with Envoy's idle_timeout: a quiet
 * long-lived stream (a gRPC watch) keeps its session.
 */
import { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { type Clock, type Timer } from '../../clock.js';

export const H2_IDLE_TIMEOUT_MS = 300_000;

/** Starts watching `session`; call the result for every stream it opens. */
export function watchIdle(session: ServerHttp2Session, clock: Clock, ms = H2_IDLE_TIMEOUT_MS): (stream: ServerHttp2Stream) => void {
  let open = 0;
  let timer: Timer | undefined;
  const arm = () => {
    timer?.cancel();
    timer = clock.setTimeout(() => {
      if (open === 0 && !session.closed && !session.destroyed) session.close();
    }, ms);
  };
  session.once('close', () => timer?.cancel());
  arm();
  return (stream) => {
    open++;
    timer?.cancel();
    stream.once('close', () => {
      if (--open === 0 && !session.closed) arm();
    });
  };
}
