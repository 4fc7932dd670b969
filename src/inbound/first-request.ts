/**
 * Connection hygiene: a connection that completed its TLS handshake must send a request within a
 * bounded time, or it is closed. node:http has no such timer (its headersTimeout counts only once a
 * request has begun; server.timeout is 0 for https), so an authenticated peer could otherwise hold
 * connections open forever. One unref'd timer per connection, cleared by its first request.
 */
import { type Socket } from 'node:net';

export const DEFAULT_FIRST_REQUEST_TIMEOUT_MS = 30_000;

const kFirstRequest = Symbol.for('sidecarless.v1.firstRequestTimer');

type TimedSocket = Socket & { [kFirstRequest]?: NodeJS.Timeout | null };

function onClose(this: TimedSocket): void {
  const t = this[kFirstRequest];
  if (t) clearTimeout(t);
  this[kFirstRequest] = null;
}

/** Starts the first-request timer of a new connection (no-op when it already ran or was started). */
export function armFirstRequestTimer(socket: Socket, ms: number, onExpire: () => void = () => {}): void {
  const s = socket as TimedSocket;
  if (s[kFirstRequest] !== undefined || s.destroyed || ms <= 0) return;
  const timer = setTimeout(() => {
    s[kFirstRequest] = null;
    if (s.destroyed) return;
    onExpire();
    s.destroy();
  }, ms);
  timer.unref();
  s[kFirstRequest] = timer;
  s.once('close', onClose);
}

/** A request arrived on `socket`: its first-request timer (if any) is cleared for good. */
export function firstRequestSeen(socket: Socket): void {
  const s = socket as TimedSocket;
  const t = s[kFirstRequest];
  if (t === null) return;
  if (t !== undefined) clearTimeout(t);
  s[kFirstRequest] = null;
}
