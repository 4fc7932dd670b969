/**
 * What the inbound pipeline records per request: the mesh's own golden signals (always), the
 * OpenTelemetry server metrics (when a MeterProvider is registered) and a server span whose context
 * is active for the app's handler (when a TracerProvider is registered). Starts once the peer is
 * known; ends on the response's 'close' (after 'finish', or when the connection went away).
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type TLSSocket } from 'node:tls';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { ATTR, type Instruments, MAX_ATTRIBUTE_SETS, type TallyEntry, instruments, methodAttr, serverActive } from './instruments.js';
import { type TrafficStats } from './stats.js';
import { linkerdInbound } from './linkerd-observe.js';
import { peerName } from './peer-name.js';
import { api } from './otel.js';
import { extractContext, tracer } from './tracing.js';

// Reached only once tracer() returned a tracer, which needs the API (see otel.ts).

/** Process-wide key (ESM and CJS copies share it) of a request's observation. */
const kObservation = Symbol.for('sidecarless.v1.observation');

interface Observation {
  readonly owner: InboundObserver;
  readonly req: IncomingMessage;
  readonly t0: number;
  /** The socket's bytesWritten at the start (HTTP/1.1, Istio dialect on), else -1. */
  readonly w0: number;
  readonly peer: string;
  /** With the Linkerd dialect on: the local address and port the request arrived on (else undefined, 0). */
  readonly localIp: string | undefined;
  readonly localPort: number;
  readonly m: Instruments | undefined;
  /** Its attribute sets, when a MeterProvider or a TracerProvider is registered. */
  readonly attrs: ServerAttrs | undefined;
  /** Its active-request count, when a MeterProvider is registered. */
  readonly active: TallyEntry | null;
  readonly span: Span | undefined;
  readonly ctx: Context | undefined;
  denied: boolean;
  rule: string | undefined;
}

type Carrier = { [kObservation]?: Observation };

function onClose(this: ServerResponse): void {
  const o = (this as ServerResponse & Carrier)[kObservation];
  if (o) o.owner.end(o, this);
}

/** The route the app matched, when the framework says (Express sets `req.route`; `baseUrl` for mounted routers). */
function routeOf(req: IncomingMessage): string {
  const r = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };
  const path = r.route?.path;
  if (typeof path !== 'string') return '';
  return (typeof r.baseUrl === 'string' ? r.baseUrl : '') + path;
}

/**
 * The attribute sets of one (local address, port, peer, method), built once and never mutated: a
 * request reuses them (the SDK hashes what it is given; the mesh need not build it again), and
 * holds the tally entry of its active-request count.
 */
class ServerAttrs {
  /** The active-request count (undefined: not made yet; null: past the cap). */
  tally: TallyEntry | null | undefined;
  /** status → error.type → route → duration attributes. */
  readonly #durations = new Map<number | undefined, Map<string | undefined, Map<string, Attributes>>>();

  /** client address → HTTP version → span start attributes. */
  readonly #span = new Map<string, Map<string, Attributes>>();

  constructor(readonly active: Attributes) {}

  spanAttrs(clientAddress: string, httpVersion: string): Attributes {
    let byVersion = this.#span.get(clientAddress);
    if (byVersion === undefined) this.#span.set(clientAddress, (byVersion = new Map()));
    let a = byVersion.get(httpVersion);
    if (a === undefined) {
      a = { ...this.active, 'client.address': clientAddress, 'network.protocol.version': httpVersion };
      if (cacheRoom()) byVersion.set(httpVersion, a);
    }
    return a;
  }

  activeEntry(): TallyEntry | null {
    if (this.tally === undefined) this.tally = serverActive.entry(this.active) ?? null;
    return this.tally;
  }

  duration(status: number | undefined, errorType: string | undefined, route: string): Attributes {
    let byError = this.#durations.get(status);
    if (byError === undefined) this.#durations.set(status, (byError = new Map()));
    let byRoute = byError.get(errorType);
    if (byRoute === undefined) byError.set(errorType, (byRoute = new Map()));
    let a = byRoute.get(route);
    if (a === undefined) {
      a = { ...this.active };
      if (status !== undefined) a[ATTR.status] = status;
      if (errorType) a[ATTR.errorType] = errorType;
      if (route) a[ATTR.route] = route;
      if (cacheRoom()) byRoute.set(route, a);
    }
    return a;
  }
}

/** How many attribute sets the server caches hold (every mesh of the process together). */
let cachedSets = 0;
function cacheRoom(): boolean {
  if (cachedSets >= MAX_ATTRIBUTE_SETS) return false;
  cachedSets++;
  return true;
}

/**
 * service → local address → local port → peer (null: unauthenticated) → method → attribute sets.
 * Process-wide, as the active-request tally is: one entry per attribute set, whichever mesh counts.
 */
const serverAttrs = new Map<string, Map<string, Map<number, Map<string | null, Map<string | undefined, ServerAttrs>>>>>();

/** A Content-Length value as a byte count (0 when absent or not a plain number). */
export function declaredLength(v: unknown): number {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : 0;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) return 0;
  return Number(v);
}

/** Body bytes an HTTP/1.1 response wrote: the socket's bytesWritten since `w0`, less the head Node wrote. */
function writtenBody(req: IncomingMessage, res: ServerResponse, w0: number): number {
  const head = (res as ServerResponse & { _header?: unknown })._header;
  const written = req.socket.bytesWritten - w0; // res.socket is detached once the response finished
  return Math.max(0, written - (typeof head === 'string' ? Buffer.byteLength(head, 'latin1') : 0));
}

export class InboundObserver {
  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
  ) {}

  #attrsOf(socket: TLSSocket, method: string | undefined, peer: PeerIdentity | null): ServerAttrs {
    const address = socket.localAddress ?? '';
    const port = socket.localPort ?? 0;
    const peerKey = peer ? peerName(peer) : null;
    let byAddress = serverAttrs.get(this.service);
    if (byAddress === undefined) serverAttrs.set(this.service, (byAddress = new Map()));
    let byPort = byAddress.get(address);
    if (byPort === undefined) byAddress.set(address, (byPort = new Map()));
    let byPeer = byPort.get(port);
    if (byPeer === undefined) byPort.set(port, (byPeer = new Map()));
    let byMethod = byPeer.get(peerKey);
    if (byMethod === undefined) byPeer.set(peerKey, (byMethod = new Map()));
    let c = byMethod.get(method);
    if (c === undefined) {
      const active: Attributes = {
        [ATTR.method]: methodAttr(method),
        [ATTR.scheme]: 'https',
        [ATTR.serverAddress]: address,
        [ATTR.serverPort]: port,
        [ATTR.service]: this.service,
        [ATTR.tls]: peer ? 'mtls' : 'unauthenticated',
      };
      if (peer) active[ATTR.peer] = peerName(peer);
      c = new ServerAttrs(active);
      if (cacheRoom()) byMethod.set(method, c);
    }
    return c;
  }

  /** Begins observing a request whose peer is known (null: unauthenticated, permissive mode). */
  start(req: IncomingMessage, res: ServerResponse, peer: PeerIdentity | null): void {
    const r = req as IncomingMessage & Carrier;
    if (r[kObservation]) return; // admitted twice (a server and a middleware): observed once
    const t0 = performance.now();
    this.traffic.active.inbound++;
    const m = instruments();
    const tr = tracer();
    const peerId = peer ? peerName(peer) : '';
    let attrs: ServerAttrs | undefined;
    let active: TallyEntry | null = null;
    let span: Span | undefined;
    let ctx: Context | undefined;
    if (m || tr) {
      const socket = req.socket as TLSSocket;
      attrs = this.#attrsOf(socket, req.method, peer);
      const activeAttrs = attrs.active;
      if (m) {
        active = attrs.activeEntry();
        if (active) active.n++;
      }
      if (tr) {
        const parent = extractContext(api.context.active(), req.headers);
        const attributes = attrs.spanAttrs(socket.remoteAddress ?? '', req.httpVersion);
        const method = activeAttrs[ATTR.method] as string;
        span = tr.startSpan(method === '_OTHER' ? 'HTTP' : method, { kind: api.SpanKind.SERVER, attributes }, parent);
        ctx = api.trace.setSpan(parent, span);
      }
    }
    const w0 = this.traffic.istio && req.httpVersionMajor === 1 ? req.socket.bytesWritten : -1;
    const localIp = this.traffic.linkerd ? (req.socket.localAddress ?? '') : undefined;
    const localPort = localIp === undefined ? 0 : (req.socket.localPort ?? 0);
    r[kObservation] = { owner: this, req, t0, w0, peer: peerId, localIp, localPort, m, attrs, active, span, ctx, denied: false, rule: undefined };
    (res as ServerResponse & Carrier)[kObservation] = r[kObservation];
    res.on('close', onClose);
  }

  /** The policy's verdict on the request (for its span, and the denial count). */
  decided(req: IncomingMessage, allowed: boolean, rule: string): void {
    const o = (req as IncomingMessage & Carrier)[kObservation];
    if (!o) return;
    o.rule = rule;
    if (!allowed) o.denied = true;
    const span = o.span;
    if (span) {
      span.setAttribute(ATTR.decision, allowed ? 'allow' : 'deny');
      span.setAttribute(ATTR.rule, rule);
    }
  }

  /** Runs `fn` (the app) with the request's server span as the active context. */
  within<T>(req: IncomingMessage, fn: () => T): T {
    const ctx = (req as IncomingMessage & Carrier)[kObservation]?.ctx;
    return ctx ? api.context.with(ctx, fn) : fn();
  }

  end(o: Observation, res: ServerResponse): void {
    const res2 = res as ServerResponse & Carrier;
    if (res2[kObservation] !== o) return;
    res2[kObservation] = undefined;
    const seconds = (performance.now() - o.t0) / 1000;
    const finished = res.writableFinished;
    const status = res.headersSent ? res.statusCode : undefined;
    const route = routeOf(o.req);
    const series = this.traffic.series('inbound', this.service, o.peer, route);
    series.record(finished ? status : undefined, seconds);
    if (o.denied) series.denials++;
    this.traffic.active.inbound--;
    const istio = this.traffic.istio;
    if (istio) {
      // The request's size is what it declared (Content-Length; counting its body would cost a
      // listener per request). The response's, over HTTP/1.1, is what the socket wrote meanwhile
      // less the head (chunk framing included); over HTTP/2 its declared Content-Length.
      // Unfinished: Envoy's DC (downstream connection termination).
      const ct = o.req.headers['content-type'];
      const protocol = ct !== undefined && ct.startsWith('application/grpc') ? 'grpc' : 'http';
      const reqBytes = declaredLength(o.req.headers['content-length']);
      const resBytes = o.w0 >= 0 ? writtenBody(o.req, res, o.w0) : declaredLength(res.getHeader('content-length'));
      istio.record('inbound', this.service, '', o.peer, finished ? status : undefined, protocol, finished ? '-' : 'DC', seconds * 1000, reqBytes, resBytes);
    }
    const linkerd = this.traffic.linkerd;
    if (linkerd) linkerdInbound(linkerd, o.req, res, o.localIp ?? '', o.localPort, o.peer === '' ? null : o.peer, finished, seconds * 1000);
    if (!o.attrs) return;
    const errorType = !finished ? 'aborted' : status !== undefined && status >= 500 ? String(status) : undefined;
    if (o.m) {
      o.m.serverDuration.record(seconds, o.attrs.duration(status, errorType, route));
      if (o.active) o.active.n--;
    }
    const span = o.span;
    if (span) {
      if (status !== undefined) span.setAttribute(ATTR.status, status);
      span.setAttribute('url.path', (o.req.url ?? '').split('?', 1)[0]!);
      if (route) {
        span.setAttribute(ATTR.route, route);
        span.updateName(`${methodAttr(o.req.method)} ${route}`);
      }
      if (errorType) {
        span.setAttribute(ATTR.errorType, errorType);
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      }
      span.end();
    }
  }
}
