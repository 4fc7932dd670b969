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

/**
 * Returns `headers` with a `host` header added when it has none (the name the app wrote, as a
 * sidecar preserves it). A plain object (what undici's fetch passes) comes back as a flat
 * `[name, value, …]` array, which undici takes as well: `{ ...headers, host }` went through V8's
 * slow path for a spread that adds a property (≈ 0.4 µs, and garbage, per request).
 */
export function withHost(headers: Dispatcher.DispatchOptions['headers'], host: string): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return { host };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      // [name, value] pairs: undici reads an array as a flat list only, so they go on flat.
      const pairs = headers as unknown as Array<[string, string]>;
      const flat = pairs.flat(1) as string[];
      return pairs.some(([k]) => String(k).toLowerCase() === 'host') ? flat : [...flat, 'host', host];
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
  const flat: Array<string | string[] | undefined> = [];
  for (const k in obj) {
    if (k.length === 4 && k.toLowerCase() === 'host') return headers;
    flat.push(k, obj[k]);
  }
  flat.push('host', host);
  return flat as string[];
}

/**
 * Request headers HTTP/2 forbids that undici passes on (RFC 9113 §8.2.2: `proxy-connection`,
 * `http2-settings`, `te` other than "trailers"; undici itself handles or refuses `connection`,
 * `keep-alive`, `upgrade` and `transfer-encoding`). Node refuses them, after which undici's h2
 * client stalls every later stream of the connection; so they are dropped, as an HTTP/1-to-2
 * intermediary must. The headers as they were when none is present (no copy).
 */
export function withoutH2ForbiddenHeaders(headers: Dispatcher.DispatchOptions['headers']): Dispatcher.DispatchOptions['headers'] {
  if (headers == null) return headers;
  const flat = flatHeaders(headers);
  let out: Array<unknown> | undefined;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const k = String(flat[i]).toLowerCase();
    const forbidden = k === 'proxy-connection' || k === 'http2-settings' || (k === 'te' && !onlyTrailers(flat[i + 1]));
    if (forbidden) out ??= flat.slice(0, i);
    else out?.push(flat[i], flat[i + 1]);
  }
  return out === undefined ? headers : (out as string[]);
}

function onlyTrailers(v: unknown): boolean {
  return (Array.isArray(v) ? v : [v]).every((x) => String(x).trim().toLowerCase() === 'trailers');
}

/** Any undici header form as `[name, value, …]`. */
function flatHeaders(headers: NonNullable<Dispatcher.DispatchOptions['headers']>): unknown[] {
  if (Array.isArray(headers)) return headers.length > 0 && Array.isArray(headers[0]) ? (headers as unknown as unknown[][]).flat(1) : headers;
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') return [...(headers as Iterable<[unknown, unknown]>)].flat(1);
  return Object.entries(headers).flat(1);
}

/**
 * Adds `extra` (lower-case names) to request headers of any undici form, replacing headers of the
 * same names (trace context from the mesh's client span replaces any the app set by hand).
 */
export function addHeaders(headers: Dispatcher.DispatchOptions['headers'], extra: Readonly<Record<string, string>>): Dispatcher.DispatchOptions['headers'] {
  const names = Object.keys(extra);
  if (names.length === 0) return headers;
  const drop = (k: unknown) => names.includes(String(k).toLowerCase());
  if (headers == null) return { ...extra };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      const pairs = (headers as unknown as Array<[string, string]>).filter(([k]) => !drop(k));
      return [...pairs, ...Object.entries(extra)] as never;
    }
    const flat = headers as string[];
    const out: string[] = [];
    for (let i = 0; i < flat.length; i += 2) if (!drop(flat[i])) out.push(flat[i]!, flat[i + 1]!);
    for (const [k, v] of Object.entries(extra)) out.push(k, v);
    return out;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const pairs = [...(headers as Iterable<[string, string]>)].filter(([k]) => !drop(k));
    return [...pairs, ...Object.entries(extra)] as never;
  }
  const out: Record<string, string | string[] | undefined> = {};
  const obj = headers as Record<string, string | string[] | undefined>;
  for (const k in obj) if (!drop(k)) out[k] = obj[k];
  return Object.assign(out, extra);
}

/**
 * The old-style (undici ≤ 6) handler shape, which undici's own `fetch` and `request` still use
 * and which Pool calls underneath. The mesh's retrying request speaks it to both sides; a
 * new-style caller (onRequestStart/onResponseStart/…) is adapted by `legacyHandler`.
 */
export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: Buffer[] | string[] | null): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void;
}

interface NewController {
  abort(reason?: Error): void;
  pause(): void;
  resume(): void;
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: Error | null;
  rawHeaders?: Buffer[] | null;
  rawTrailers?: Buffer[] | string[] | null;
}

interface NewHandler {
  onRequestStart?(controller: NewController, context: unknown): void;
  onRequestUpgrade?(controller: NewController, statusCode: number, headers: Record<string, string | string[]>, socket: unknown): void;
  onResponseStart?(controller: NewController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void;
  onResponseData?(controller: NewController, chunk: Buffer): void;
  onResponseEnd?(controller: NewController, trailers: Record<string, string | string[]>): void;
  onResponseError?(controller: NewController, err: Error): void;
}

/** Returns `handler` as an old-style handler (itself when it already is one), as undici's UnwrapHandler does. */
export function legacyHandler(handler: Dispatcher.DispatchHandler): LegacyHandler {
  const h = handler as NewHandler;
  if (typeof h.onRequestStart !== 'function') return handler as unknown as LegacyHandler;
  let abortFn: (err?: Error) => void = () => {};
  let resumeFn: (() => void) | undefined;
  let paused = false;
  let aborted = false;
  let reason: Error | null = null;
  const controller: NewController = {
    abort(r) {
      if (aborted) return;
      aborted = true;
      reason = r ?? null;
      abortFn(r);
    },
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      resumeFn?.();
    },
    get aborted() {
      return aborted;
    },
    get paused() {
      return paused;
    },
    get reason() {
      return reason;
    },
  };
  return {
    onConnect(abort, context) {
      abortFn = abort;
      h.onRequestStart?.(controller, context);
    },
    onHeaders(statusCode, rawHeaders, resume, statusText) {
      resumeFn = resume;
      controller.rawHeaders = rawHeaders;
      h.onResponseStart?.(controller, statusCode, parseRawHeaders(rawHeaders), statusText);
      return !paused;
    },
    onData(chunk) {
      h.onResponseData?.(controller, chunk);
      return !paused;
    },
    onComplete(trailers) {
      controller.rawTrailers = trailers;
      h.onResponseEnd?.(controller, parseRawHeaders(trailers ?? []));
    },
    onError(err) {
      h.onResponseError?.(controller, err);
    },
    onUpgrade(statusCode, rawHeaders, socket) {
      h.onRequestUpgrade?.(controller, statusCode, parseRawHeaders(rawHeaders ?? []), socket);
    },
  };
}

/** Raw header pairs (Buffers or strings) → lower-case names, repeated names as arrays. */
export function parseRawHeaders(raw: ReadonlyArray<Buffer | string | Array<Buffer | string>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = String(raw[i]).toLowerCase();
    const v = raw[i + 1]!;
    const vals = Array.isArray(v) ? v.map((x) => x.toString('latin1')) : [v.toString('latin1')];
    const cur = out[key];
    if (cur === undefined) out[key] = vals.length === 1 ? vals[0]! : vals;
    else out[key] = [...(Array.isArray(cur) ? cur : [cur]), ...vals];
  }
  return out;
}

/** The value of request header `name` (lower case) in any of the shapes DispatchOptions.headers takes. Repeated headers are joined with ', '. */
export function requestHeader(headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  if (headers == null) return undefined;
  const found: string[] = [];
  const add = (k: unknown, v: unknown) => {
    if (String(k).toLowerCase() !== name || v === undefined || v === null) return;
    if (Array.isArray(v)) found.push(...v.map(String));
    else found.push(String(v));
  };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) for (const [k, v] of headers as unknown as Array<[string, string]>) add(k, v);
    else for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i], headers[i + 1]);
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string]>) add(k, v);
  } else {
    for (const k in headers as Record<string, unknown>) add(k, (headers as Record<string, unknown>)[k]);
  }
  return found.length === 0 ? undefined : found.join(', ');
}
