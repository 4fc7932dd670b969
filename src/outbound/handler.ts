import type { Dispatcher } from 'undici';

type AnyHandler = Dispatcher.DispatchHandler & {
  onError?: (err: Error) => void;
  onRequestStart?: unknown;
  onResponseError?: (controller: unknown, err: Error) => void;
};

/** Fails a request before it reached any connection, for both undici handler styles. */
export function failHandler(handler: Dispatcher.DispatchHandler, err: Error): void {
  const h = handler as AnyHandler;
  queueMicrotask(() => {
    if (typeof h.onResponseError === 'function' && typeof h.onRequestStart === 'function') {
      h.onResponseError({ abort() {}, pause() {}, resume() {}, aborted: true, paused: false, reason: err }, err);
    } else if (typeof h.onError === 'function') {
      h.onError(err);
    }
  });
}

/** Returns `headers` with a `host` header added when it has none (the name the app wrote, as a sidecar preserves it). */
export function withHost(headers: Dispatcher.DispatchOptions['headers'], host: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { host };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      const pairs = headers as unknown as Array<[string, string]>;
      return pairs.some(([k]) => k.toLowerCase() === 'host') ? headers : ([...pairs, ['host', host]] as never);
    }
    const flat = headers as string[];
    for (let i = 0; i < flat.length; i += 2) if (String(flat[i]).toLowerCase() === 'host') return headers;
    return [...flat, 'host', host];
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const pairs = [...(headers as Iterable<[string, string]>)];
    return pairs.some(([k]) => k.toLowerCase() === 'host') ? (pairs as never) : ([...pairs, ['host', host]] as never);
  }
  const obj = headers as Record<string, string | string[] | undefined>;
  for (const k in obj) if (k.length === 4 && k.toLowerCase() === 'host') return headers;
  return { ...obj, host };
}
