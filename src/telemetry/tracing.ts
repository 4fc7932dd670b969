/**
 * Tracing through `@opentelemetry/api` only: a server span per inbound request, a client span per
 * logical outbound request (tries are span events), W3C trace context carried in `traceparent`.
 *
 * Nothing is created unless a TracerProvider is registered: `tracer()` asks the API's proxy provider
 * for its delegate and returns undefined when there is none (one global lookup per request).
 * Propagation goes through `propagation.inject/extract` when a global propagator is registered (the
 * SDK registers W3C trace context + baggage); with none, the mesh uses its own W3C trace-context
 * propagator, so a TracerProvider alone is enough for traces to cross services.
 */
import type { Context, Span, SpanContext, TextMapGetter, TextMapPropagator, TextMapSetter, Tracer, TracerProvider } from '@opentelemetry/api';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './instruments.js';
import { api, otelInUse } from './otel.js';

// Without the API these are undefined: everything here but tracer() runs only once tracer() returned
// a tracer, which needs the API (see otel.ts).

type ProxyLike = TracerProvider & { getDelegate?: () => TracerProvider; getDelegateTracer?: (name: string, version?: string) => Tracer | undefined };

let cachedDelegate: TracerProvider | undefined;
let cachedTracer: Tracer | undefined;
let cachedProvider: TracerProvider | undefined;

/** The mesh's tracer, or undefined when no TracerProvider is registered. */
function currentTracer(): Tracer | undefined {
  const p = api.trace.getTracerProvider() as ProxyLike;
  if (typeof p.getDelegate !== 'function' || typeof p.getDelegateTracer !== 'function') {
    if (p !== cachedProvider) {
      cachedProvider = p;
      cachedTracer = p.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    }
    return cachedTracer;
  }
  const d = p.getDelegate();
  if (d === cachedDelegate && cachedProvider === p) return cachedTracer;
  cachedDelegate = d;
  cachedProvider = p;
  cachedTracer = p.getDelegateTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  return cachedTracer;
}

/** `currentTracer`, or — without the API, where no provider can be registered — always undefined. */
export const tracer = (): Tracer | undefined => (otelInUse() ? currentTracer() : undefined);

const TRACEPARENT = 'traceparent';
const TRACESTATE = 'tracestate';
const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** W3C Trace Context (traceparent, tracestate), for when no global propagator is registered. */
export const w3cTraceContext: TextMapPropagator = {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter = api.defaultTextMapSetter): void {
    const sc = api.trace.getSpanContext(ctx);
    if (sc) injectW3c(sc, carrier, setter);
  },
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter = api.defaultTextMapGetter): Context {
    const raw = getter.get(carrier, TRACEPARENT);
    const header = Array.isArray(raw) ? raw[0] : raw;
    if (typeof header !== 'string') return ctx;
    const value = header.trim();
    const m = TRACEPARENT_RE.exec(value);
    if (!m || m[1] === 'ff' || (m[1] === '00' && value.length !== 55)) return ctx;
    // The pattern already checked the hex digits: what is left of isSpanContextValid is "not all zeros".
    if (m[2] === INVALID_TRACE_ID || m[3] === INVALID_SPAN_ID) return ctx;
    const sc = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16) & api.TraceFlags.SAMPLED, isRemote: true };
    const rawState = getter.get(carrier, TRACESTATE);
    const state = Array.isArray(rawState) ? rawState.join(',') : rawState;
    return api.trace.setSpanContext(ctx, state ? { ...sc, traceState: api.createTraceState(state) } : sc);
  },
  fields: () => [TRACEPARENT, TRACESTATE],
};

const INVALID_TRACE_ID = '00000000000000000000000000000000';
const INVALID_SPAN_ID = '0000000000000000';

function injectW3c(sc: SpanContext, carrier: unknown, setter: TextMapSetter): void {
  if (!api.isSpanContextValid(sc)) return;
  setter.set(carrier, TRACEPARENT, `00-${sc.traceId}-${sc.spanId}-0${Number(sc.traceFlags & api.TraceFlags.SAMPLED)}`);
  const ts = sc.traceState?.serialize();
  if (ts) setter.set(carrier, TRACESTATE, ts);
}

/** The global propagator when one is registered, else the built-in W3C trace context. */
function propagator(): Pick<TextMapPropagator, 'inject' | 'extract'> {
  return api.propagation.fields().length > 0 ? api.propagation : w3cTraceContext;
}

/** Trace context from inbound request headers (Node's lower-cased `req.headers`). */
export function extractContext(parent: Context, headers: Record<string, string | string[] | undefined>): Context {
  return propagator().extract(parent, headers, api.defaultTextMapGetter);
}

/**
 * Headers carrying `span` as a child of `parent`. With the built-in W3C propagator the span's
 * context is written directly (no Context object made for it); a registered propagator gets
 * the context it expects (it may carry baggage from `parent`).
 */
export function injectSpanHeaders(parent: Context, span: Span): Record<string, string> {
  const out: Record<string, string> = {};
  if (api.propagation.fields().length > 0) api.propagation.inject(api.trace.setSpan(parent, span), out, api.defaultTextMapSetter);
  else injectW3c(span.spanContext(), out, api.defaultTextMapSetter);
  return out;
}

/** Headers carrying `ctx` (traceparent, tracestate, baggage… whatever the propagator writes). */
export function injectHeaders(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  propagator().inject(ctx, out, api.defaultTextMapSetter);
  return out;
}
