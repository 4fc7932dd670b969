/**
 * One mesh request: tries, retries, timeouts and the caller's abort, as an undici handler pair.
 *
 * The caller's handler (old or new style, adapted to old style) sees exactly one response or one
 * error. Each try is an `Attempt` (an old-style handler given to one endpoint's Pool); the request
 * decides, when a try ends, whether to retry:
 *
 * - a try ends at response headers (latency to headers is what the balancer learns), at an error
 *   before headers, or when its per-try timeout fires; its in-flight record is ended exactly once;
 * - a retry happens only before any response byte reached the caller. A retryable status
 *   (502/503/504) is decided at headers time: if retried, that response's body is read and thrown
 *   away (up to 64 KiB, else the connection is dropped) and nothing of it is passed on;
 * - every retry picks a fresh endpoint from the backend's balancer (preferring one this request
 *   has not tried), after the backoff (or the server's Retry-After), within the request deadline
 *   and the service's retry budget;
 * - the caller's abort (AbortSignal, fetch termination) stops the current try and any pending one;
 * - a 'grpc' service: its status is in grpc-status, not :status (200 for every gRPC answer); a
 *   trailers-only UNAVAILABLE (grpc-status 14 among the response headers) is a failed try for the
 *   balancer (EWMA, failure accrual), as Envoy maps it to 503, but it is passed on, never retried:
 *   the server may have acted on the call. Other gRPC statuses are the application's answers;
 * - an HTTP/2 stream refused with REFUSED_STREAM was not processed: a connect failure; headers
 *   HTTP/2 forbids are dropped before the first try (handler.ts withoutH2ForbiddenHeaders).
 */
import { type Dispatcher } from 'undici';
import { type Clock, type Timer } from '../clock.js';
import { NoEndpointError } from '../errors.js';
import { type FailureKind, type InFlight, type Outcome } from './balancer/index.js';
import { EndpointConnectError, EndpointFailedError, MeshClosedError, OutboundTimeoutError } from './errors.js';
import { type LegacyHandler, addHeaders, parseRawHeaders, withHost, withoutH2ForbiddenHeaders } from './handler.js';
import { OutboundObservation, requestBodyBytes } from '../telemetry/outbound.js';
import { Deadline, type RetryBudget, retryDecision } from './retry/index.js';
import { type PreparedBody, prepareBody } from './retry/replay-body.js';
import { type PooledEndpoint, type OutboundService, type RequestSettings } from './service.js';

/** A retried response body larger than this is not read to the end: its connection is dropped. */
const MAX_DISCARD_BYTES = 64 * 1024;
/** Outcomes without a failure kind, shared (the balancer only reads them). */
const OK: Outcome = Object.freeze({ ok: true });
const NOT_OK: Outcome = Object.freeze({ ok: false });
/** Error codes of a connection that broke (system errors, undici's socket and timeout errors, TLS). */
const NETWORK_ERROR = /^(E(?!RR_)[A-Z0-9]+$|UND_ERR_(SOCKET|HEADERS_TIMEOUT|CLOSED|DESTROYED)$|ERR_SSL_|ERR_TLS_|ERR_HTTP2_)/;

/**
 * An HTTP/2 stream the server refused with REFUSED_STREAM: RFC 9113 §8.7 guarantees it was not
 * processed, so it fails as a connect failure does (retried for any method). Node reports it as
 * ERR_HTTP2_STREAM_ERROR naming the code; other stream errors are resets.
 */
function refusedStream(err: Error & { code?: string }): boolean {
  return err.code === 'ERR_HTTP2_STREAM_ERROR' && err.message.includes('NGHTTP2_REFUSED_STREAM');
}

/**
 * HTTP/2: the request's HEADERS frame could not be sent (undici reports Node's frameError of
 * type 1 as UND_ERR_INFO; a header block over the limits, e.g. a 70 kB value). The same headers
 * fail on every endpoint: it is the caller's, not the endpoint's.
 */
function headersUnsendable(err: Error & { code?: string }): boolean {
  return err.code === 'UND_ERR_INFO' && /"frameError" received - type 1,/.test(err.message);
}

/** gRPC UNAVAILABLE (14) as a response header: a trailers-only response (the server sent no message). */
function grpcUnavailable(raw: readonly Buffer[]): boolean {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === 'grpc-status') return String(raw[i + 1]).trim() === '14';
  }
  return false;
}

class Attempt implements LegacyHandler {
  abortFn: ((err?: Error) => void) | undefined;
  /** The request was handed to a connection (bytes may have been sent). */
  connected = false;
  /** This try no longer drives the request (ended, cancelled, or its response is being discarded). */
  over = false;
  /** Its response is being read and thrown away before a retry. */
  discarding = false;
  discarded = 0;
  retryDelayMs = 0;
  /** Why it is retried (failure kind or status), once decided. */
  retryCause = '';
  cancelReason: Error | undefined;
  ended = false;
  /** Only kept for the span's attempt events (the balancer times the try itself). */
  readonly startedAt: number;

  constructor(
    readonly req: MeshRequest,
    readonly endpoint: PooledEndpoint,
    readonly inflight: InFlight,
  ) {
    this.startedAt = req.observation?.tracing ? req.clock.now() : 0;
  }

  /** Ends the balancer's in-flight record (exactly once). */
  end(ok: boolean, failure?: FailureKind): void {
    if (this.ended) return;
    this.ended = true;
    // The balancer measures the latency from its own start time: no clock read, no outcome object here.
    this.inflight.end(failure ? { ok, failure } : ok ? OK : NOT_OK);
    const o = this.req.observation;
    if (o?.tracing) o.attemptEnded(ok, failure, Math.max(0, this.req.clock.now() - this.startedAt));
  }

  /** Stops the try on its connection (now, or as soon as it gets one). */
  cancel(reason: Error): void {
    this.over = true;
    this.cancelReason = reason;
    this.abortFn?.(reason);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelReason) {
      abort(this.cancelReason);
      return;
    }
    this.abortFn = abort;
    this.connected = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.req.attemptHeaders(this, statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    return this.req.attemptData(this, chunk);
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.req.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.req.attemptError(this, err);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void {
    this.req.attemptUpgrade(this, statusCode, rawHeaders, socket);
  }
}

type State = 'starting' | 'trying' | 'backoff' | 'responding' | 'done';

export class MeshRequest {
  readonly clock: Clock;
  #state: State = 'starting';
  #tries = 0;
  /** The endpoint of the first try; a Set of every one tried is made only on a retry. */
  #firstTried: string | undefined;
  #tried: Set<string> | undefined;
  #current: Attempt | undefined;
  #body: PreparedBody | undefined;
  #headers: Dispatcher.DispatchOptions['headers'] | undefined;
  readonly #deadline: Deadline;
  // On the service's clock (unref()ed unless said): virtual in tests, like the deadline they enforce.
  #requestTimer: Timer | undefined;
  #tryTimer: Timer | undefined;
  #backoffTimer: Timer | undefined;
  readonly #method: string;
  readonly #budget: RetryBudget;
  /** Telemetry of this logical request (golden signals, metrics, client span). */
  observation: OutboundObservation | undefined;
  /** The status passed on to the caller. */
  #status: number | undefined;

  constructor(
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly caller: LegacyHandler,
    /** The service the app addressed (its settings apply). */
    private readonly addressed: OutboundService,
    /** Where the endpoints come from: the addressed service, or the split backend chosen once for all tries. */
    private readonly backend: OutboundService,
    private readonly settings: RequestSettings,
    private readonly host: string,
    /**
     * Set when the caller was already told the request started (it waited for a pending
     * reference, dispatcher.ts): `start` hands its abort here instead of calling onConnect again.
     */
    private readonly started?: (abort: (reason?: Error) => void) => void,
  ) {
    this.clock = backend.clock;
    // One budget for the request's life: its deposit and its retries' withdrawals (a settings
    // change meanwhile gives the service a new budget for new requests). Endpoints and the
    // balancer are read live at each try, together: they change as one.
    this.#budget = backend.budget;
    this.#method = (opts.method ?? 'GET').toUpperCase();
    this.#deadline = new Deadline(settings.timeout, this.clock);
  }

  start(): void {
    try {
      if (this.started) this.started((reason?: Error) => this.#abort(reason));
      else this.caller.onConnect?.((reason?: Error) => this.#abort(reason));
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    if (this.#state === 'done') return;
    this.observation = new OutboundObservation(this.addressed.traffic, this.addressed.name, this.backend.identity, this.#method, this.host, this.settings.route, this.addressed.namespace);
    if (this.addressed.traffic.istio) this.observation.requestBytes = requestBodyBytes(this.opts.body, this.opts.headers);
    this.#budget.deposit();
    const requestMs = this.settings.timeout.requestMs;
    if (requestMs !== undefined) {
      this.#requestTimer = this.clock.setTimeout(() => this.#requestTimeout(requestMs), requestMs);
    }
    const retryable = this.settings.retry !== null && this.settings.retry.maxRetries > 0 && !this.opts.upgrade && this.#method !== 'CONNECT';
    let prepared: PreparedBody | Promise<PreparedBody>;
    try {
      prepared = retryable
        ? prepareBody(this.opts.body as never, this.settings.maxReplayBodyBytes)
        : { replayable: false, take: () => this.opts.body as never };
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    if (prepared instanceof Promise) {
      prepared.then(
        (b) => {
          this.#body = b;
          this.#try();
        },
        (e: Error) => this.#fail(e),
      );
    } else {
      this.#body = prepared;
      this.#try();
    }
  }

  #try(): void {
    if (this.#state === 'done') return;
    this.#state = 'trying';
    this.#backoffTimer = undefined;
    const lb = this.backend.balancer;
    let handle = lb.pick();
    if (this.#tries > 0) {
      // A retry avoids the endpoints this request already tried when it can (Envoy's
      // previous_hosts predicate); when all were tried, whatever the balancer says.
      const tried = (this.#tried ??= new Set([this.#firstTried!]));
      if (handle && tried.has(handle.key)) handle = lb.pickUntried(tried) ?? handle;
    }
    const endpoint = handle && this.backend.endpoint(handle.key);
    if (!handle || !endpoint) {
      this.#fail(this.backend.closed ? new MeshClosedError() : new NoEndpointError(this.backend.name));
      return;
    }
    if (this.#tries++ === 0) this.#firstTried = handle.key;
    else this.#tried!.add(handle.key);
    this.backend.counters.attempts++;
    const attempt = new Attempt(this, endpoint, handle.start());
    this.#current = attempt;
    this.observation?.attempt(this.#tries, endpoint.address, endpoint.identity, endpoint.labels);
    if (this.#deadline.perTryBound()) {
      const ms = this.#deadline.tryTimeoutMs()!;
      this.#tryTimer = this.clock.setTimeout(() => this.#perTryTimeout(attempt, ms), ms);
    }
    let body: unknown;
    try {
      body = this.#body!.take();
    } catch (e) {
      attempt.over = true;
      attempt.end(true);
      this.#fail(e as Error);
      return;
    }
    // The same headers for every try (the trace context is the logical request's).
    let headers = this.#headers;
    if (headers === undefined) {
      headers = withHost(this.backend.h2 ? withoutH2ForbiddenHeaders(this.opts.headers) : this.opts.headers, this.host);
      const trace = this.observation?.headers;
      if (trace) headers = addHeaders(headers, trace);
      this.#headers = headers;
    }
    // Object.assign, then the fields: `{ ...opts, origin, headers, body }` takes V8's slow path
    // (≈ 0.4–0.6 µs) whenever it adds a property opts lacks (undici.request callers often pass no
    // body or headers). servername: the connector sends the service's own SNI anyway; naming it
    // spares undici deriving one from the host header (an isIP regex) on every request.
    const o = Object.assign({}, this.opts) as Dispatcher.DispatchOptions & { servername?: string };
    o.origin = endpoint.origin;
    o.headers = headers;
    o.body = body as Dispatcher.DispatchOptions['body'];
    o.servername = this.backend.servername;
    // HTTP/2: undici holds a non-idempotent request back while others run on the connection;
    // streams are independent, and retries are decided here, never by undici.
    if (this.backend.h2) o.idempotent = true;
    endpoint.pool.dispatch(o, attempt as unknown as Dispatcher.DispatchHandler);
  }

  /** Whether the request may retry after try number `this.#tries` ended this way. */
  #decide(failure: FailureKind | undefined, status: number | undefined, headers?: Record<string, string | string[]>) {
    const policy = this.settings.retry;
    // A removed service's pools are closing: its in-flight request ends with its last try's outcome.
    if (policy === null || this.backend.closed) return { retry: false, delayMs: 0, reason: 'max-retries' as const };
    const d = retryDecision(
      {
        method: this.#method,
        attempt: this.#tries,
        ...(failure !== undefined && { failure }),
        ...(status !== undefined && { status }),
        ...(headers && { headers }),
        bodyReplayable: this.#body?.replayable ?? false,
        remainingMs: this.#deadline.remainingMs(),
        budget: this.#budget,
      },
      policy,
      { clock: this.clock, random: this.backend.random },
    );
    if (d.reason === 'budget-exhausted') this.observation?.budgetExhausted();
    return d;
  }

  #retryAfter(delayMs: number, cause: string): void {
    if (this.#state === 'done') return;
    this.observation?.retry(cause);
    this.#state = 'backoff';
    this.#current = undefined;
    this.#clearTryTimer();
    this.backend.counters.retries++;
    // Kept alive on purpose: a request waiting for its retry is live work (short, bounded by the backoff).
    this.#backoffTimer = this.clock.setTimeout(() => this.#try(), delayMs, { keepAlive: true });
  }

  attemptHeaders(a: Attempt, status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (a !== this.#current || a.over) return true;
    if (status < 200) return true; // informational (100, 103): not the response
    this.#clearTryTimer();
    const ok = status < 500 && !(this.backend.grpc && grpcUnavailable(rawHeaders));
    a.end(ok, ok ? undefined : 'status');
    const policy = this.settings.retry;
    if (policy !== null && policy.retryOnStatuses.includes(status) && this.#state === 'trying') {
      const d = this.#decide(undefined, status, parseRawHeaders(rawHeaders));
      if (d.retry) {
        a.over = true;
        a.discarding = true;
        a.retryDelayMs = d.delayMs;
        a.retryCause = String(status);
        this.#state = 'backoff';
        return true;
      }
    }
    this.#state = 'responding';
    this.#status = status;
    this.caller.onResponseStarted?.();
    return this.caller.onHeaders?.(status, rawHeaders, resume, statusText) !== false;
  }

  attemptData(a: Attempt, chunk: Buffer): boolean {
    if (a.discarding) {
      a.discarded += chunk.length;
      if (a.discarded > MAX_DISCARD_BYTES) {
        a.discarding = false;
        a.abortFn?.(new Error('discarding a retried response'));
        this.#retryAfter(a.retryDelayMs, a.retryCause);
      }
      return true;
    }
    if (a !== this.#current || this.#state !== 'responding') return true;
    const o = this.observation;
    if (o) o.responseBytes += chunk.length;
    return this.caller.onData?.(chunk) !== false;
  }

  attemptComplete(a: Attempt, trailers: Buffer[] | string[] | null): void {
    if (a.discarding) {
      a.discarding = false;
      this.#retryAfter(a.retryDelayMs, a.retryCause);
      return;
    }
    if (a !== this.#current || this.#state !== 'responding') return;
    this.#finish();
    this.caller.onComplete?.(trailers);
  }

  attemptUpgrade(a: Attempt, status: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void {
    if (a !== this.#current || a.over) return;
    this.#clearTryTimer();
    a.end(true);
    this.#status = status;
    this.#finish();
    this.caller.onUpgrade?.(status, rawHeaders, socket);
  }

  attemptError(a: Attempt, err: Error): void {
    if (a.discarding) {
      a.discarding = false;
      this.#retryAfter(a.retryDelayMs, a.retryCause);
      return;
    }
    if (a !== this.#current || a.over) return;
    if (this.#state === 'responding') {
      // Headers were passed on: the response broke mid-body. Nothing to retry.
      this.#finish(err);
      this.caller.onError?.(err);
      return;
    }
    a.over = true;
    this.#clearTryTimer();
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_INVALID_ARG' || (!a.connected && err instanceof TypeError) || headersUnsendable(err)) {
      // undici refused the request itself (a header it does not allow: keep-alive, upgrade, …;
      // a TypeError: headers it cannot read; HTTP/2: a header block too large to send): the
      // caller's mistake, the same on every endpoint. Not a failure of this one, not retried.
      a.end(true);
      this.#fail(err);
      return;
    }
    const failure: FailureKind = !a.connected || refusedStream(err) ? 'connect' : code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'reset';
    a.end(false, failure);
    const d = this.#decide(failure, undefined);
    if (d.retry) this.#retryAfter(d.delayMs, failure);
    else this.#fail(this.#named(a, err));
  }

  /**
   * The error a failed try ends the request with: the mesh's own errors as they are (peer identity,
   * connect timeout, identity unavailable); a Node or undici network error wrapped in one that
   * names the service and the endpoint (`cause`: the original), so `err.cause.code` through
   * mesh.fetch is always an ERR_SIDECARLESS_* code. Anything else (the app's own body stream
   * failing) is passed on unchanged.
   */
  #named(a: Attempt, err: Error): Error {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_SIDECARLESS_')) return err;
    if (this.backend.closed) return new MeshClosedError({ cause: err });
    if (!a.connected) return new EndpointConnectError(this.backend.name, a.endpoint.address, err, this.#tries);
    if (typeof code === 'string' && NETWORK_ERROR.test(code)) return new EndpointFailedError(this.backend.name, a.endpoint.address, err, this.#tries);
    return err;
  }

  #perTryTimeout(a: Attempt, ms: number): void {
    this.#tryTimer = undefined;
    if (a !== this.#current || a.over || this.#state !== 'trying') return;
    const err = new OutboundTimeoutError(this.addressed.name, 'per-try', ms);
    a.cancel(err);
    a.end(false, 'timeout');
    const d = this.#decide('timeout', undefined);
    if (d.retry) this.#retryAfter(d.delayMs, 'timeout');
    else this.#fail(err);
  }

  #requestTimeout(ms: number): void {
    this.#requestTimer = undefined;
    if (this.#state === 'done') return;
    this.#stop(new OutboundTimeoutError(this.addressed.name, 'request', ms), false);
  }

  /** The caller aborted (AbortSignal, fetch terminated, consumer destroyed the body). */
  #abort(reason?: Error): void {
    if (this.#state === 'done') return;
    const err = reason ?? Object.assign(new Error('Request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
    this.#stop(err, true);
  }

  /** Ends the request with `err`: cancels the current try (if any) and any pending retry. */
  #stop(err: Error, byCaller: boolean): void {
    const a = this.#current;
    if (a && !a.over) {
      a.cancel(err);
      // A caller's abort says nothing about the endpoint: record the time it had as a plain sample.
      a.end(byCaller, byCaller ? undefined : 'timeout');
    } else if (a && this.#state === 'responding') {
      a.over = true;
      a.abortFn?.(err);
    }
    this.#fail(err);
  }

  #clearTryTimer(): void {
    this.#tryTimer?.cancel();
    this.#tryTimer = undefined;
  }

  #finish(err?: Error): void {
    this.#state = 'done';
    this.observation?.end(this.#status, err);
    this.#clearTryTimer();
    this.#requestTimer?.cancel();
    this.#backoffTimer?.cancel();
    this.#requestTimer = this.#backoffTimer = undefined;
  }

  #fail(err: Error): void {
    if (this.#state === 'done') return;
    if (this.#current && !this.#current.ended) this.#current.end(false);
    this.#finish(err);
    this.caller.onError?.(err);
  }
}
