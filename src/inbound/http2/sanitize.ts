/**
 * Identity headers (http1/sanitize.ts DEFAULT_IDENTITY_HEADERS and configured ones) never reach an
 * h2 app either: removed from a stream's header object and raw headers before any listener sees
 * them, and from its trailers as they arrive (a 'trailers' listener, or the compat request's
 * `trailers`, reads the filtered object).
 */
import { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

/** Removes `names` from `headers` and `raw` in place; true when one was there. */
export function stripFields(headers: IncomingHttpHeaders, raw: string[] | undefined, names: ReadonlySet<string>): boolean {
  let removed = false;
  for (const name of names) {
    if (name in headers) {
      delete headers[name];
      removed = true;
    }
  }
  if (!removed || !Array.isArray(raw)) return removed;
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!names.has(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
  }
  raw.length = 0;
  raw.push(...kept);
  return true;
}

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/**
 * Strips `names` from the stream's headers now and from its trailers later. `onRemoved` is told
 * once for the headers and once for the trailers.
 */
export function stripStreamIdentity(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, raw: string[] | undefined, names: ReadonlySet<string>, onRemoved: () => void): void {
  if (stripFields(headers, raw, names)) onRemoved();
  const emit = stream.emit as Emit;
  stream.emit = function strippingEmit(this: ServerHttp2Stream, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'trailers' && args[0] && typeof args[0] === 'object') {
      if (stripFields(args[0] as IncomingHttpHeaders, Array.isArray(args[2]) ? (args[2] as string[]) : undefined, names)) onRemoved();
    }
    return emit.call(this, event, ...args);
  } as typeof stream.emit;
}
