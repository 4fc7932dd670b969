/**
 * Request bodies that can be sent more than once. A retry must send the same bytes again, so the
 * dispatcher keeps small bodies (≤ 64 KiB by default, Linkerd's limit) and gives up retrying the
 * others:
 *
 * - no body, a string, a Buffer or Uint8Array within the limit: replayable as they are;
 * - a plain iterable or async iterable (undici's `fetch` hands every body over as an async
 *   generator): read ahead up to the limit; if it ends within it, the bytes are kept and replayed;
 *   if not, the bytes read so far and the rest of the iterator are sent once, unretried;
 * - a Node stream, a Blob, FormData or anything else: sent once, never read ahead or retried.
 *
 * Reading ahead means the first try starts once the body is in hand (for bodies ≤ 64 KiB).
 */

export const DEFAULT_MAX_REPLAY_BODY_BYTES = 64 * 1024;

/** A request body as undici's DispatchOptions takes it. */
export type DispatchBody = string | Buffer | Uint8Array | Iterable<unknown> | AsyncIterable<unknown> | NodeJS.ReadableStream | null | undefined | object;

export interface PreparedBody {
  /** Whether the body may be sent again. */
  readonly replayable: boolean;
  /** The body for the next try. After a non-replayable body was taken once, throws. */
  take(): DispatchBody;
}

function isStream(b: object): boolean {
  return typeof (b as { pipe?: unknown }).pipe === 'function' || typeof (b as { getReader?: unknown }).getReader === 'function';
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk);
  throw new TypeError(`request body chunks must be strings, Buffers or Uint8Arrays, got ${typeof chunk}`);
}

const NO_BODY_NULL: PreparedBody = Object.freeze({ replayable: true, take: () => null });
const NO_BODY_UNDEFINED: PreparedBody = Object.freeze({ replayable: true, take: () => undefined });
const replayable = (body: DispatchBody): PreparedBody =>
  body === null ? NO_BODY_NULL : body === undefined ? NO_BODY_UNDEFINED : { replayable: true, take: () => body };

function once(body: DispatchBody): PreparedBody {
  let taken = false;
  return {
    replayable: false,
    take() {
      if (taken) throw new Error('a non-replayable request body cannot be sent twice');
      taken = true;
      return body;
    },
  };
}

/**
 * Prepares `body` for tries. Synchronous for bodies that need no reading (returns a PreparedBody),
 * a Promise for iterables that are read ahead.
 */
export function prepareBody(body: DispatchBody, limit = DEFAULT_MAX_REPLAY_BODY_BYTES): PreparedBody | Promise<PreparedBody> {
  if (body === null || body === undefined) return replayable(body);
  if (typeof body === 'string') return Buffer.byteLength(body) <= limit ? replayable(body) : once(body);
  if (body instanceof Uint8Array) return body.byteLength <= limit ? replayable(body) : once(body);
  if (typeof body !== 'object' || isStream(body)) return once(body);
  if (Symbol.asyncIterator in body || Symbol.iterator in body) return readAhead(body as AsyncIterable<unknown> | Iterable<unknown>, limit);
  return once(body);
}

async function readAhead(source: AsyncIterable<unknown> | Iterable<unknown>, limit: number): Promise<PreparedBody> {
  const it: AsyncIterator<unknown> | Iterator<unknown> =
    Symbol.asyncIterator in source ? (source as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (source as Iterable<unknown>)[Symbol.iterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      const all = Buffer.concat(chunks, size);
      return replayable(all);
    }
    const buf = toBuffer(r.value);
    chunks.push(buf);
    size += buf.byteLength;
    if (size > limit) {
      // Too large to keep: send what was read, then the rest, once.
      async function* rest() {
        yield* chunks;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield toBuffer(n.value);
        }
      }
      return once(rest());
    }
  }
}
