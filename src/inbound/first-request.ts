/**
 * Connection hygiene: a connection that completed its TLS handshake must send a request within a
 * bounded time, or it is closed. node:http has no such timer (its headersTimeout counts only once a
 * request has begun; server.timeout is 0 for https), so an authenticated peer could otherwise hold
 * connections open forever. One unref'd timer (on the mesh's clock) per connection, cleared by its first request.
 */
import { type Socket } from 'node:net';
import { type Clock, type Timer, systemClock } from '../clock.js';

export const DEFAULT_FIRST_REQUEST_TIMEOUT_MS = 30_000;

const kFirstRequest = Symbol.for('sidecarless.v1.firstRequestTimer');

type TimedSocket = Socket & { [kFirstRequest]?: Timer | null };

function onClose(this: TimedSocket): void {
  this[kFirstRequest]?.cancel();
  this[kFirstRequest] = null;
}

/** Starts the first-request timer of a new connection (no-op when it already ran or was started). */
export function armFirstRequestTimer(socket: Socket, ms: number, onExpire: () => void = () => {}, clock: Clock = systemClock): void {
  const s = socket as TimedSocket;
  if (s[kFirstRequest] !== undefined || s.destroyed || ms <= 0) return;
  s[kFirstRequest] = clock.setTimeout(() => {
    s[kFirstRequest] = null;
    if (s.destroyed) return;
    onExpire();
    s.destroy();
  }, ms);
  s.once('close', onClose);
}

/** A request arrived on `socket`: its first-request timer (if any) is cleared for good. */
export function firstRequestSeen(socket: Socket): void {
  const s = socket as TimedSocket;
  const t = s[kFirstRequest];
  if (t === null) return;
  t?.cancel();
  s[kFirstRequest] = null;
}
