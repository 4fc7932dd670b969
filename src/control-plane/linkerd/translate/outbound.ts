/**
 * OutboundPolicies.Watch(authority) → the mesh's services: the watched one with its routes (each
 * with its request policy and split) and every backend service its splits name, plus the
 * Destination paths to watch to fill their endpoints. Pure; the control plane does the I/O.
 *
 * - protocol: `http1` → 'http', `http2` → 'http2', `grpc` → 'grpc'; `detect` → its http1 routes
 *   spoken as 'http' (its http2 routes when the caller says the service speaks HTTP/2); `opaque`
 *   and `tls` (TCP proxying) are refused.
 * - routes: every (route, rule, match) becomes one of our first-match routes, sorted into
 *   linkerd2-proxy's precedence (specificity.ts); a rule without matches matches everything.
 *   Route `hosts` are refused (our routes do not match on the host: the service is already chosen
 *   by it), as are rule filters, query-parameter matches and regexes we cannot run safely.
 * - failure_accrual: `consecutive_failures` → FailureAccrualSettings; none → no ejection
 *   ("if empty, circuit breaking is not performed"); `unified` refused.
 * - retry and timeouts: request-policy.ts. No route retries unless it says so.
 * Metadata and labels are ignored (the route's name comes from its metadata).
 */
import { DEFAULT_EWMA_SETTINGS } from '../../../outbound/balancer/ewma.js';
import { failureAccrualSettings, type FailureAccrualSettings } from '../../../outbound/balancer/failure-accrual.js';
import { DEFAULT_SERVICE_SETTINGS, type RequestPolicy, type RouteMatch, type RouteSpec, type ServiceProtocol, type ServiceSettings, type ServiceSpec } from '../../../outbound/settings.js';
import type { Metadata } from '../../../proto/linkerd/meta.js';
import type { FailureAccrual, GrpcRoute, HttpRoute, OutboundPolicy } from '../../../proto/linkerd/outbound.js';
import { type BackendTarget, refuseFilters, splitOf } from './backends.js';
import { Findings, durationMs, quote, type Translation } from './findings.js';
import { grpcRouteMatchOf, httpRouteMatchOf } from './http-match.js';
import { grpcRequestPolicy, httpRequestPolicy } from './request-policy.js';
import { bySpecificity, grpcSpecificity, httpSpecificity, type Specificity } from './specificity.js';

export interface OutboundContext {
  /** The authority watched (`host:port`): also the Destination path of the service itself. */
  readonly authority: string;
  /** Its mesh service name. Default: the authority. */
  readonly name?: string;
  readonly namespace: string;
  /** The names an application may write for it. */
  readonly hostnames: readonly string[];
  /** The identity expected of endpoints that name none (Linkerd's all do; unmeshed ones are refused). */
  readonly identity: string;
  /** What the application speaks to it when Linkerd says `detect`. Default 'http'. */
  readonly protocol?: ServiceProtocol;
}

export interface OutboundBackend {
  /** The backend as a service of the snapshot (no hostnames of its own: reached only by the split). */
  readonly spec: ServiceSpec;
  /** The Destination path that fills its endpoints; absent for a forward backend (endpoints fixed). */
  readonly dstPath?: string;
}

export interface OutboundTranslation {
  readonly protocol: ServiceProtocol;
  /** The watched service: its routes; its endpoints undefined (pending) when it is its own backend, else []. */
  readonly service: ServiceSpec;
  /** Services the splits name other than `service` itself. */
  readonly backends: readonly OutboundBackend[];
  /** Destination paths to watch, each with the service whose endpoints it fills. */
  readonly watch: readonly { readonly path: string; readonly service: string }[];
}

export const MAX_ROUTE_ENTRIES = 1000;

interface Entry {
  readonly key: Specificity;
  readonly route: RouteSpec;
}

interface Proto {
  readonly protocol: ServiceProtocol;
  readonly http?: readonly HttpRoute[];
  readonly grpc?: readonly GrpcRoute[];
  readonly accrual?: FailureAccrual;
  readonly at: string;
}

function protocolOf(p: OutboundPolicy, ctx: OutboundContext, f: Findings): Proto | undefined {
  const k = p.protocol?.kind;
  switch (k?.kind) {
    case 'http1':
      return { protocol: 'http', http: k.http1.routes, accrual: k.http1.failureAccrual, at: 'protocol.http1' };
    case 'http2':
      return { protocol: 'http2', http: k.http2.routes, accrual: k.http2.failureAccrual, at: 'protocol.http2' };
    case 'grpc':
      return { protocol: 'grpc', grpc: k.grpc.routes, accrual: k.grpc.failureAccrual, at: 'protocol.grpc' };
    case 'detect': {
      const wantH2 = ctx.protocol === 'http2' || ctx.protocol === 'grpc';
      const h = wantH2 ? (k.detect.http2 ?? k.detect.http1) : (k.detect.http1 ?? k.detect.http2);
      if (!h) break;
      const at = h === k.detect.http1 ? 'protocol.detect.http1' : 'protocol.detect.http2';
      return { protocol: ctx.protocol ?? 'http', http: h.routes, accrual: h.failureAccrual, at };
    }
    case 'opaque':
    case 'tls':
      f.refuse(`protocol.${k.kind}`, 'TCP (opaque or TLS) proxying is not supported: the mesh carries HTTP, HTTP/2 and gRPC only');
      return undefined;
  }
  f.refuse('protocol', 'names no HTTP protocol');
  return undefined;
}

function accrualOf(a: FailureAccrual | undefined, f: Findings, at: string): FailureAccrualSettings | false {
  if (!a?.kind) return false;
  if (a.kind.kind === 'unified') {
    f.refuse(`${at}.unified`, 'unified (success-rate) failure accrual is not supported: use consecutive failures');
    return false;
  }
  const c = a.kind.consecutiveFailures;
  if (a.ejection && a.ejection.minReadyEndpoints > 1) f.note(`${at}.ejection.min_ready_endpoints`, `${a.ejection.minReadyEndpoints}: the mesh keeps at least 1 endpoint ready, not more`);
  if (!(c.maxFailures >= 1)) {
    f.refuse(`${at}.consecutive_failures.max_failures`, 'must be at least 1');
    return false;
  }
  const b = c.backoff;
  const partial: Partial<FailureAccrualSettings> = { consecutiveFailures: c.maxFailures };
  const bat = `${at}.consecutive_failures.backoff`;
  if (b?.minBackoff) partial.minMs = durationMs(b.minBackoff, f, `${bat}.min_backoff`);
  if (b?.maxBackoff) partial.maxMs = durationMs(b.maxBackoff, f, `${bat}.max_backoff`);
  if (b) {
    if (!(b.jitterRatio >= 0 && b.jitterRatio <= 100)) f.refuse(`${bat}.jitter_ratio`, `${b.jitterRatio} is not a ratio >= 0`);
    else partial.jitterRatio = b.jitterRatio;
  }
  try {
    return failureAccrualSettings(partial);
  } catch (e) {
    f.refuse(bat, (e as Error).message);
    return false;
  }
}

/** `ns/name` of a resource, or the default's name; `route-<i>` when there is none. */
export function routeName(m: Metadata | undefined, i: number): string {
  const k = m?.kind;
  if (k?.kind === 'resource') return k.resource.namespace ? `${k.resource.namespace}/${k.resource.name}` : k.resource.name;
  if (k?.kind === 'default') return `default:${k.default}`;
  return `route-${i}`;
}

type AnyRoute = HttpRoute | GrpcRoute;

/** Every (route, rule, match) of one protocol as entries with their precedence keys. */
function entriesOf(p: Proto, ctx: { authority: string; name: string }, f: Findings, targets: Map<string, BackendTarget>): Entry[] {
  const routes: readonly AnyRoute[] = p.http ?? p.grpc ?? [];
  const entries: Entry[] = [];
  routes.forEach((r, ri) => {
    const rat = `${p.at}.routes[${ri}]`;
    const name = routeName(r.metadata, ri);
    if (r.hosts.length > 0) f.refuse(`${rat}.hosts`, `route ${quote(name)} matches hosts: not supported (the service is already chosen by its host name; write the route without hostnames)`);
    if (r.rules.length === 0) f.refuse(`${rat}.rules`, `route ${quote(name)} has no rules`);
    r.rules.forEach((rule, ki) => {
      const at = `${rat}.rules[${ki}]`;
      refuseFilters(rule.filters, f, at);
      const policy: RequestPolicy = p.grpc ? grpcRequestPolicy(rule as GrpcRoute['rules'][number], f, at) : httpRequestPolicy(rule as HttpRoute['rules'][number], f, at);
      const s = splitOf(rule.backends, ctx, f, `${at}.backends`);
      if (s) for (const t of s.targets) if (!targets.has(t.service)) targets.set(t.service, t);
      const matches: readonly unknown[] = rule.matches.length ? rule.matches : [undefined];
      matches.forEach((m, mi) => {
        const mat = `${at}.matches[${mi}]`;
        let match: RouteMatch | undefined = {};
        let key: Specificity;
        if (p.grpc) {
          const gm = m as GrpcRoute['rules'][number]['matches'][number] | undefined;
          match = gm ? grpcRouteMatchOf(gm, f, mat) : { methods: ['POST'] };
          key = grpcSpecificity(gm);
        } else {
          const hm = m as HttpRoute['rules'][number]['matches'][number] | undefined;
          if (hm) match = httpRouteMatchOf(hm, f, mat);
          key = httpSpecificity(hm);
        }
        if (match && s && entries.length < MAX_ROUTE_ENTRIES) entries.push({ key, route: { name, match, policy, split: s.split } });
        else if (entries.length >= MAX_ROUTE_ENTRIES) f.refuse(mat, `more than ${MAX_ROUTE_ENTRIES} route matches`);
      });
    });
  });
  if (routes.length === 0) f.refuse(`${p.at}.routes`, 'names no route: no request could be sent');
  return entries;
}

function settingsOf(protocol: ServiceProtocol, accrual: FailureAccrualSettings | false, ewma: ServiceSettings['ewma']): ServiceSettings {
  return { ...DEFAULT_SERVICE_SETTINGS, protocol, accrual, ewma, retry: null, timeout: {} };
}

/** Translates one OutboundPolicy for `ctx.authority`; refused whole on any reason. */
export function translateOutbound(policy: OutboundPolicy, ctx: OutboundContext): Translation<OutboundTranslation> {
  const name = ctx.name ?? ctx.authority;
  const f = new Findings(`OutboundPolicy ${quote(ctx.authority)}`);
  const p = protocolOf(policy, ctx, f);
  if (!p) return f.result(undefined as never);
  const accrual = accrualOf(p.accrual, f, `${p.at}.failure_accrual`);
  const targets = new Map<string, BackendTarget>();
  const entries = entriesOf(p, { authority: ctx.authority, name }, f, targets);
  if (f.failed) return f.result(undefined as never);
  const routes = bySpecificity(entries, (e) => e.key).map((e) => e.route);
  const self = targets.get(name);
  const service: ServiceSpec = {
    name,
    namespace: ctx.namespace,
    hostnames: ctx.hostnames,
    identity: ctx.identity,
    settings: settingsOf(p.protocol, accrual, self?.ewma ?? DEFAULT_EWMA_SETTINGS),
    routes,
    endpoints: self ? undefined : [],
  };
  const backends: OutboundBackend[] = [];
  const watch: { path: string; service: string }[] = self?.dstPath ? [{ path: self.dstPath, service: name }] : [];
  for (const t of targets.values()) {
    if (t.service === name) continue;
    const spec: ServiceSpec = {
      name: t.service,
      namespace: ctx.namespace,
      hostnames: [],
      identity: ctx.identity,
      settings: settingsOf(p.protocol, accrual, t.ewma),
      routes: [],
      endpoints: t.forward ? [t.forward] : undefined,
    };
    backends.push(t.dstPath ? { spec, dstPath: t.dstPath } : { spec });
    if (t.dstPath) watch.push({ path: t.dstPath, service: t.service });
  }
  return f.result({ protocol: p.protocol, service, backends, watch });
}

