/**
 * What one logical outbound request records: the mesh's golden signals (always), the OpenTelemetry
 * client metrics (when a MeterProvider is registered), and a client span (when a TracerProvider is
 * registered) whose tries are span events and whose context is injected into every try's headers.
 */
import { type Attributes, type Span, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { ATTR, type Instruments, activeRequests, attrsKey, instruments, methodAttr, recordBudgetExhausted, recordRetry } from './instruments.js';
import { type TrafficStats } from './stats.js';
import { injectHeaders, tracer } from './tracing.js';

/** `host[:port]` as the app wrote it → address and port (default 80: the app writes http://). */
function splitHost(host: string): { address: string; port: number } {
  const i = host.lastIndexOf(':');
  if (i > 0 && !host.endsWith(']')) {
    const port = Number(host.slice(i + 1));
    if (Number.isInteger(port) && port > 0) return { address: host.slice(0, i), port };
  }
  return { address: host, port: 80 };
}

/** Why a try is retried: its failure kind, or the response status. */
export type RetryCause = string;

export class OutboundObservation {
  readonly #t0 = performance.now();
  readonly #m: Instruments | undefined;
  readonly #span: Span | undefined;
  readonly #activeAttrs: Attributes | undefined;
  #activeKey = '';
  /** Headers carrying the client span's trace context, added to every try. */
  readonly headers: Record<string, string> | undefined;
  /** The identity of the endpoint last tried (what the connector verified), else the service's. */
  #peer: string;
  #done = false;

  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
    identity: string,
    private readonly method: string,
    host: string,
    private readonly route: string | undefined,
  ) {
    this.#peer = identity;
    traffic.active.outbound++;
    const m = (this.#m = instruments());
    const tr = tracer();
    if (!m && !tr) return;
    const { address, port } = splitHost(host);
    const attrs: Attributes = {
      [ATTR.method]: methodAttr(method),
      [ATTR.scheme]: 'https',
      [ATTR.serverAddress]: address,
      [ATTR.serverPort]: port,
      [ATTR.service]: service,
      [ATTR.tls]: 'mtls',
    };
    this.#activeAttrs = attrs;
    if (m) activeRequests('client', (this.#activeKey = attrsKey(attrs)), attrs, 1);
    if (tr) {
      const parent = context.active();
      const name = methodAttr(method) === '_OTHER' ? 'HTTP' : methodAttr(method);
      const span = (this.#span = tr.startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...attrs, ...(route !== undefined && { [ATTR.route]: route }) } }, parent));
      this.headers = injectHeaders(trace.setSpan(parent, span));
    }
  }

  /** A try starts on an endpoint. */
  attempt(n: number, address: string, identity: string): void {
    this.#peer = identity;
    this.#span?.addEvent('sidecarless.attempt', { 'sidecarless.attempt': n, [ATTR.endpoint]: address, [ATTR.peer]: identity });
  }

  /** A try ended (at response headers, an error, or its timeout). */
  attemptEnded(ok: boolean, failure: string | undefined, latencyMs: number): void {
    this.#span?.addEvent('sidecarless.attempt.end', { 'sidecarless.attempt.ok': ok, ...(failure !== undefined && { 'sidecarless.attempt.failure': failure }), 'sidecarless.attempt.latency_ms': latencyMs });
  }

  /** The request retries after a failed try. */
  retry(cause: RetryCause): void {
    this.traffic.series('outbound', this.service, this.#peer, this.route ?? '').retry(cause);
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
    const base = this.#activeAttrs;
    if (!base) return;
    const errorType = err ? ((err as { code?: string }).code ?? err.name ?? 'Error') : status !== undefined && status >= 500 ? String(status) : undefined;
    if (this.#m) {
      const attrs: Attributes = { ...base, [ATTR.peer]: this.#peer };
      if (status !== undefined) attrs[ATTR.status] = status;
      if (errorType) attrs[ATTR.errorType] = errorType;
      if (this.route !== undefined) attrs[ATTR.route] = this.route;
      this.#m.clientDuration.record(seconds, attrs);
      activeRequests('client', this.#activeKey, base, -1);
    }
    const span = this.#span;
    if (span) {
      span.setAttribute(ATTR.peer, this.#peer);
      if (status !== undefined) span.setAttribute(ATTR.status, status);
      if (errorType) {
        span.setAttribute(ATTR.errorType, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, ...(err && { message: err.message }) });
      }
      span.end();
    }
  }
}
