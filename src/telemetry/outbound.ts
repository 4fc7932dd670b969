/**
 * What one logical outbound request records: the mesh's golden signals (always), the OpenTelemetry
 * client metrics (when a MeterProvider is registered), and a client span (when a TracerProvider is
 * registered) whose tries are span events and whose context is injected into every try's headers.
 */
import type { Attributes, Span } from '@opentelemetry/api';
import { ATTR, type Instruments, MAX_ATTRIBUTE_SETS, type TallyEntry, clientActive, instruments, methodAttr, recordBudgetExhausted, recordRetry } from './instruments.js';
import { type TrafficStats } from './stats.js';
import { api } from './otel.js';
import { injectSpanHeaders, tracer } from './tracing.js';

// Reached only once tracer() returned a tracer, which needs the API (see otel.ts).

/** `host[:port]` as the app wrote it → address and port (default 80: the app writes http://). */
function splitHost(host: string): { address: string; port: number } {
  const i = host.lastIndexOf(':');
  if (i > 0 && !host.endsWith(']')) {
    const port = Number(host.slice(i + 1));
    if (Number.isInteger(port) && port > 0) return { address: host.slice(0, i), port };
  }
  return { address: host, port: 80 };
}

/** How many attribute sets the client caches hold (all services together). */
let cachedSets = 0;

/**
 * The attribute sets of one (service, host, method), built once and never mutated: a request reuses
 * them (the SDK hashes what it is given; the mesh need not build it again), and holds the tally
 * entry of its active-request count.
 */
class ClientAttrs {
  readonly active: Attributes;
  /** The active-request count (undefined: not made yet; null: past the cap). */
  tally: TallyEntry | null | undefined;
  /** route → span start attributes. */
  readonly #span = new Map<string | undefined, Attributes>();
  /** peer → status → error.type → route → duration attributes. */
  readonly #durations = new Map<string, Map<number | undefined, Map<string | undefined, Map<string | undefined, Attributes>>>>();

  constructor(service: string, host: string, method: string) {
    const { address, port } = splitHost(host);
    this.active = {
      [ATTR.method]: methodAttr(method),
      [ATTR.scheme]: 'https',
      [ATTR.serverAddress]: address,
      [ATTR.serverPort]: port,
      [ATTR.service]: service,
      [ATTR.tls]: 'mtls',
    };
  }

  activeEntry(): TallyEntry | null {
    if (this.tally === undefined) this.tally = clientActive.entry(this.active) ?? null;
    return this.tally;
  }

  spanAttrs(route: string | undefined): Attributes {
    let a = this.#span.get(route);
    if (a === undefined) {
      a = route === undefined ? this.active : { ...this.active, [ATTR.route]: route };
      if (cachedSets < MAX_ATTRIBUTE_SETS) {
        cachedSets++;
        this.#span.set(route, a);
      }
    }
    return a;
  }

  duration(peer: string, status: number | undefined, errorType: string | undefined, route: string | undefined): Attributes {
    let byStatus = this.#durations.get(peer);
    if (byStatus === undefined) this.#durations.set(peer, (byStatus = new Map()));
    let byError = byStatus.get(status);
    if (byError === undefined) byStatus.set(status, (byError = new Map()));
    let byRoute = byError.get(errorType);
    if (byRoute === undefined) byError.set(errorType, (byRoute = new Map()));
    let a = byRoute.get(route);
    if (a === undefined) {
      a = { ...this.active, [ATTR.peer]: peer };
      if (status !== undefined) a[ATTR.status] = status;
      if (errorType) a[ATTR.errorType] = errorType;
      if (route !== undefined) a[ATTR.route] = route;
      if (cachedSets < MAX_ATTRIBUTE_SETS) {
        cachedSets++;
        byRoute.set(route, a);
      }
    }
    return a;
  }
}

/** service → host → method → attribute sets. */
const clientAttrs = new Map<string, Map<string, Map<string, ClientAttrs>>>();
function clientAttrsOf(service: string, host: string, method: string): ClientAttrs {
  let byHost = clientAttrs.get(service);
  if (byHost === undefined) clientAttrs.set(service, (byHost = new Map()));
  let byMethod = byHost.get(host);
  if (byMethod === undefined) byHost.set(host, (byMethod = new Map()));
  let c = byMethod.get(method);
  if (c === undefined) {
    c = new ClientAttrs(service, host, method);
    if (cachedSets < MAX_ATTRIBUTE_SETS) {
      cachedSets++;
      byMethod.set(method, c);
    }
  }
  return c;
}

/** The size of a request body given as bytes or a string, else its Content-Length header, else 0. */
export function requestBodyBytes(body: unknown, headers: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  let v: unknown;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'content-length') v = headers[i + 1];
  } else if (headers !== null && typeof headers === 'object') {
    for (const [k, val] of Object.entries(headers)) if (k.toLowerCase() === 'content-length') v = val;
  }
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) return 0;
  return Number(v);
}

/** Why a try is retried: its failure kind, or the response status. */
export type RetryCause = string;

export class OutboundObservation {
  readonly #t0 = performance.now();
  readonly #m: Instruments | undefined;
  readonly #span: Span | undefined;
  /** Its attribute sets, when a MeterProvider or a TracerProvider is registered. */
  readonly #attrs: ClientAttrs | undefined;
  /** Its active-request count, when a MeterProvider is registered. */
  readonly #active: TallyEntry | null = null;
  /** Headers carrying the client span's trace context, added to every try. */
  readonly headers: Record<string, string> | undefined;
  /** A client span records this request (its tries are span events). */
  readonly tracing: boolean = false;
  /** The identity of the endpoint last tried (what the connector verified), else the service's. */
  #peer: string;
  /** The address of the endpoint last tried ('' before any try). */
  #address = '';
  /** When the current try started (performance.now(); kept only with the Linkerd dialect on). */
  #tryT0 = 0;
  /** The labels of the endpoint last tried (kept only with the Linkerd dialect on: its dst_* labels). */
  #labels: Readonly<Record<string, string>> | undefined;
  #done = false;
  /** Response body bytes passed on to the caller (one add per chunk; read only by the Istio dialect). */
  responseBytes = 0;
  /** Request body bytes, when known (set only with the Istio dialect on). */
  requestBytes = 0;

  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
    identity: string,
    private readonly method: string,
    private readonly host: string,
    private readonly route: string | undefined,
    /** The namespace of the service addressed (Istio's destination_service_namespace). */
    private readonly namespace = '',
  ) {
    this.#peer = identity;
    traffic.active.outbound++;
    const m = (this.#m = instruments());
    const tr = tracer();
    if (!m && !tr) return;
    const c = (this.#attrs = clientAttrsOf(service, host, method));
    if (m) {
      const e = (this.#active = c.activeEntry());
      if (e) e.n++;
    }
    if (tr) {
      const parent = api.context.active();
      const name = c.active[ATTR.method] === '_OTHER' ? 'HTTP' : (c.active[ATTR.method] as string);
      this.tracing = true;
      const span = (this.#span = tr.startSpan(name, { kind: api.SpanKind.CLIENT, attributes: c.spanAttrs(route) }, parent));
      this.headers = injectSpanHeaders(parent, span);
    }
  }

  /** A try starts on an endpoint. */
  attempt(n: number, address: string, identity: string, labels?: Readonly<Record<string, string>>): void {
    this.#peer = identity;
    this.#address = address;
    if (this.traffic.linkerd) {
      this.#tryT0 = performance.now();
      this.#labels = labels;
    }
    this.#span?.addEvent('sidecarless.attempt', { 'sidecarless.attempt': n, [ATTR.endpoint]: address, [ATTR.peer]: identity });
  }

  /** A try ended (at response headers, an error, or its timeout). */
  attemptEnded(ok: boolean, failure: string | undefined, latencyMs: number): void {
    const span = this.#span;
    if (!span) return;
    span.addEvent(
      'sidecarless.attempt.end',
      failure === undefined
        ? { 'sidecarless.attempt.ok': ok, 'sidecarless.attempt.latency_ms': latencyMs }
        : { 'sidecarless.attempt.ok': ok, 'sidecarless.attempt.failure': failure, 'sidecarless.attempt.latency_ms': latencyMs },
    );
  }

  /** The request retries after a failed try. */
  retry(cause: RetryCause): void {
    this.traffic.series('outbound', this.service, this.#peer, this.route ?? '').retry(cause);
    // Linkerd's endpoint metrics count each try: the one retried ended with a status or a failure.
    const linkerd = this.traffic.linkerd;
    if (linkerd && this.#address !== '') {
      const status = /^\d{3}$/.test(cause) ? Number(cause) : undefined;
      const out = status !== undefined ? { status } : { status: undefined, error: cause === 'timeout' ? 'timeout' : 'unclassified' };
      linkerd.outbound(this.host, this.#address, this.#peer, this.service, this.namespace, out, performance.now() - this.#tryT0, this.#labels);
    }
    recordRetry(this.service, cause);
    this.#span?.addEvent('sidecarless.retry', { [ATTR.retryReason]: cause });
  }

  /** A retry was refused by the service's budget. */
  budgetExhausted(): void {
    this.traffic.exhausted(this.service);
    recordBudgetExhausted(this.service);
    this.#span?.addEvent('sidecarless.retry_budget.exhausted');
  }

  /** The logical request ended: with the response status passed on (and completely read), or with an error. */
  end(status: number | undefined, err: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    const seconds = (performance.now() - this.#t0) / 1000;
    this.traffic.series('outbound', this.service, this.#peer, this.route ?? '').record(err ? undefined : status, seconds);
    this.traffic.active.outbound--;
    const istio = this.traffic.istio;
    if (istio) {
      const code = err ? (err as { code?: string }).code : undefined;
      // Envoy's %RESPONSE_FLAGS%: UF upstream connection failure, UT upstream request timeout.
      const flags = code === 'ERR_SIDECARLESS_CONNECT_FAILED' ? 'UF' : code === 'ERR_SIDECARLESS_TIMEOUT' ? 'UT' : '-';
      istio.record('outbound', this.service, this.namespace, this.#peer, err ? undefined : status, 'http', flags, seconds * 1000, this.requestBytes, this.responseBytes);
    }
    // Linkerd's endpoint metrics: the last try (a request that never reached an endpoint is not
    // one of them). No response: Linkerd's error label (classify.rs: `timeout`, else h2_error's
    // `unclassified`).
    const linkerd = this.traffic.linkerd;
    if (linkerd && this.#address !== '') {
      const out = err ? { status: undefined, error: (err as { code?: string }).code === 'ERR_SIDECARLESS_TIMEOUT' ? 'timeout' : 'unclassified' } : { status };
      linkerd.outbound(this.host, this.#address, this.#peer, this.service, this.namespace, out, performance.now() - this.#tryT0, this.#labels);
    }
    const c = this.#attrs;
    if (!c) return;
    const errorType = err ? ((err as { code?: string }).code ?? err.name ?? 'Error') : status !== undefined && status >= 500 ? String(status) : undefined;
    if (this.#m) {
      this.#m.clientDuration.record(seconds, c.duration(this.#peer, status, errorType, this.route));
      if (this.#active) this.#active.n--;
    }
    const span = this.#span;
    if (span) {
      span.setAttribute(ATTR.peer, this.#peer);
      if (status !== undefined) span.setAttribute(ATTR.status, status);
      if (errorType) {
        span.setAttribute(ATTR.errorType, errorType);
        span.setStatus({ code: api.SpanStatusCode.ERROR, ...(err && { message: err.message }) });
      }
      span.end();
    }
  }
}
