/**
 * What the inbound pipeline records per request: the mesh's own golden signals (always), the
 * OpenTelemetry server metrics (when a MeterProvider is registered) and a server span whose context
 * is active for the app's handler (when a TracerProvider is registered). Starts once the peer is
 * known; ends on the response's 'close' (after 'finish', or when the connection went away).
 */
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type TLSSocket } from 'node:tls';
import { type Attributes, type Context, type Span, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { ATTR, type Instruments, activeRequests, attrsKey, instruments, methodAttr } from './instruments.js';
import { type TrafficStats } from './stats.js';
import { extractContext, tracer } from './tracing.js';

/** Process-wide key (ESM and CJS copies share it) of a request's observation. */
const kObservation = Symbol.for('sidecarless.observation');

interface Observation {
  readonly owner: InboundObserver;
  readonly req: IncomingMessage;
  readonly t0: number;
  readonly peer: string;
  readonly m: Instruments | undefined;
  readonly activeAttrs: Attributes | undefined;
  readonly activeKey: string;
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

export class InboundObserver {
  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
  ) {}

  /** Begins observing a request whose peer is known (null: unauthenticated, permissive mode). */
  start(req: IncomingMessage, res: ServerResponse, peer: PeerIdentity | null): void {
    const r = req as IncomingMessage & Carrier;
    if (r[kObservation]) return; // admitted twice (a server and a middleware): observed once
    const t0 = performance.now();
    this.traffic.active.inbound++;
    const m = instruments();
    const tr = tracer();
    const peerId = peer?.spiffeId ?? '';
    let activeAttrs: Attributes | undefined;
    let activeKey = '';
    let span: Span | undefined;
    let ctx: Context | undefined;
    if (m || tr) {
      const socket = req.socket as TLSSocket;
      activeAttrs = {
        [ATTR.method]: methodAttr(req.method),
        [ATTR.scheme]: 'https',
        [ATTR.serverAddress]: socket.localAddress ?? '',
        [ATTR.serverPort]: socket.localPort ?? 0,
        [ATTR.service]: this.service,
        [ATTR.tls]: peer ? 'mtls' : 'unauthenticated',
      };
      if (peer) activeAttrs[ATTR.peer] = peerId;
      if (m) activeRequests('server', (activeKey = attrsKey(activeAttrs)), activeAttrs, 1);
      if (tr) {
        const parent = extractContext(context.active(), req.headers);
        span = tr.startSpan(
          methodAttr(req.method) === '_OTHER' ? 'HTTP' : methodAttr(req.method),
          {
            kind: SpanKind.SERVER,
            attributes: {
              ...activeAttrs,
              'client.address': socket.remoteAddress ?? '',
              'network.protocol.version': req.httpVersion,
            },
          },
          parent,
        );
        ctx = trace.setSpan(parent, span);
      }
    }
    r[kObservation] = { owner: this, req, t0, peer: peerId, m, activeAttrs, activeKey, span, ctx, denied: false, rule: undefined };
    (res as ServerResponse & Carrier)[kObservation] = r[kObservation];
    res.on('close', onClose);
  }

  /** The policy's verdict on the request (for its span, and the denial count). */
  decided(req: IncomingMessage, allowed: boolean, rule: string): void {
    const o = (req as IncomingMessage & Carrier)[kObservation];
    if (!o) return;
    o.rule = rule;
    if (!allowed) o.denied = true;
    o.span?.setAttributes({ [ATTR.decision]: allowed ? 'allow' : 'deny', [ATTR.rule]: rule });
  }

  /** Runs `fn` (the app) with the request's server span as the active context. */
  within<T>(req: IncomingMessage, fn: () => T): T {
    const ctx = (req as IncomingMessage & Carrier)[kObservation]?.ctx;
    return ctx ? context.with(ctx, fn) : fn();
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
    if (!o.activeAttrs) return;
    const errorType = !finished ? 'aborted' : status !== undefined && status >= 500 ? String(status) : undefined;
    if (o.m) {
      const attrs: Attributes = { ...o.activeAttrs };
      if (status !== undefined) attrs[ATTR.status] = status;
      if (errorType) attrs[ATTR.errorType] = errorType;
      if (route) attrs[ATTR.route] = route;
      o.m.serverDuration.record(seconds, attrs);
      activeRequests('server', o.activeKey, o.activeAttrs, -1);
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
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    }
  }
}
