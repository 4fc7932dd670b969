import { type IncomingMessage } from 'node:http';

type HeaderLines = (headers: string[], n: number) => void;
type TrailerCarrier = IncomingMessage & { _addHeaderLines: HeaderLines };

/**
 * Removes `names` (lower-case) from a request's trailers as node:http stores them. Trailers
 * arrive after the body, long after the gate ran: node:http hands them to the request through
 * `_addHeaderLines` once the message is complete (`rawTrailers`, and `trailers` is derived from
 * them on first read), so the filter sits there, on this request only. Only chunked requests can
 * carry trailers; others are left alone (no per-request cost).
 */
export function stripTrailers(req: IncomingMessage, names: ReadonlySet<string>, onRemoved: () => void): void {
  if (req.headers['transfer-encoding'] === undefined) return;
  const r = req as TrailerCarrier;
  const add = r._addHeaderLines;
  if (typeof add !== 'function') return;
  r._addHeaderLines = function addHeaderLines(this: TrailerCarrier, headers: string[], n: number) {
    if (this.complete && Array.isArray(headers)) {
      let kept = 0;
      const limit = Math.min(n, headers.length);
      for (let i = 0; i + 1 < limit; i += 2) {
        if (names.has(headers[i]!.toLowerCase())) continue;
        headers[kept++] = headers[i]!;
        headers[kept++] = headers[i + 1]!;
      }
      if (kept < limit) {
        headers.length = kept;
        n = kept;
        onRemoved();
      }
    }
    return add.call(this, headers, n);
  };
}
