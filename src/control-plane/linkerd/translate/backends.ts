/**
 * Linkerd outbound backends and distributions → our split (weighted backend services). Pure.
 *
 * - `balancer.discovery.dst.path` → a backend service fed by Destination.Get(path); the path of the
 *   watched authority itself is the service itself (its own endpoints).
 * - `forward` (one WeightedAddr) → a backend service with that one endpoint (endpoint.ts rules:
 *   an unmeshed one is refused — the whole update, since a route would send traffic to it).
 * - `balancer.peak_ewma` {default_rtt, decay} → EwmaSettings; `penalty_peak_ewma` likewise (its
 *   penalty fields noted: our EWMA penalises failures its own way); none → our defaults.
 * - `queue` noted (requests for a backend without endpoints wait as for any pending service).
 * - Distributions: `random_available` → the split with its weights (0 kept: never picked; the same
 *   backend twice: weights added; all 0 → refused); `first_available` with one backend → that
 *   backend; `empty`, none, or `first_available` with several → refused (we cannot express
 *   "always fail" nor fail-over order). Route-backend filters → refused.
 */
import { ewmaSettings, type EwmaSettings, DEFAULT_EWMA_SETTINGS } from '../../../outbound/balancer/ewma.js';
import type { SplitBackend } from '../../../outbound/settings.js';
import type { Backend, HttpRoute_Distribution, GrpcRoute_Distribution, HttpRoute_Filter, GrpcRoute_Filter } from '../../../proto/linkerd/outbound.js';
import { endpointOf, type LinkerdEndpoint } from './endpoint.js';
import { type Findings, durationMs, quote } from './findings.js';

/** A backend as the mesh runs it: a service of its own (or the watched service itself). */
export interface BackendTarget {
  /** The mesh service name (the watched service's own name when the path is its authority). */
  readonly service: string;
  /** The Destination path whose endpoints it holds; absent for a forward backend. */
  readonly dstPath?: string;
  /** A forward backend's one endpoint. */
  readonly forward?: LinkerdEndpoint;
  readonly ewma: EwmaSettings;
}

export interface BackendContext {
  /** The authority the OutboundPolicy was watched for (`host:port`). */
  readonly authority: string;
  /** The mesh service name of that authority. */
  readonly name: string;
}

export const MAX_BACKENDS = 100;
const AUTHORITY = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?:\d{1,5}$/;

function ewmaOf(b: NonNullable<Extract<Backend['kind'], { kind: 'balancer' }>['balancer']>, f: Findings, at: string): EwmaSettings {
  const load = b.load;
  if (!load) return DEFAULT_EWMA_SETTINGS;
  const e = load.kind === 'peakEwma' ? load.peakEwma : load.penaltyPeakEwma;
  const lat = `${at}.${load.kind === 'peakEwma' ? 'peak_ewma' : 'penalty_peak_ewma'}`;
  if (load.kind === 'penaltyPeakEwma') f.note(lat, 'penalty, max_retry_after and penalty_decay have no effect: a failure counts as a doubled latency sample');
  const partial: Partial<EwmaSettings> = {};
  if (e.defaultRtt) {
    const v = durationMs(e.defaultRtt, f, `${lat}.default_rtt`);
    if (v !== undefined) partial.defaultRttMs = v;
  }
  if (e.decay) {
    const v = durationMs(e.decay, f, `${lat}.decay`);
    if (v === 0) f.refuse(`${lat}.decay`, 'must be longer than 0');
    else if (v !== undefined) partial.decayMs = v;
  }
  return ewmaSettings(partial);
}

/** One Backend → its target, or undefined with a reason. */
export function backendOf(b: Backend | undefined, ctx: BackendContext, f: Findings, at: string): BackendTarget | undefined {
  if (!b?.kind) {
    f.refuse(at, 'names no backend (a Service the control plane could not resolve, which Linkerd answers with errors)');
    return undefined;
  }
  if (b.queue) f.note(`${at}.queue`, 'no effect: requests for a backend without endpoints wait as for any pending service');
  if (b.kind.kind === 'forward') {
    const r = endpointOf(b.kind.forward);
    if (r.kind !== 'ok') {
      f.refuse(`${at}.forward`, r.kind === 'bad' ? r.message : `${r.address}: ${r.reason}`);
      return undefined;
    }
    return { service: r.address, forward: r.endpoint, ewma: DEFAULT_EWMA_SETTINGS };
  }
  const bal = b.kind.balancer;
  const d = bal.discovery?.kind;
  if (d?.kind !== 'dst') {
    f.refuse(`${at}.balancer.discovery`, 'names no Destination path (discovery.dst.path)');
    return undefined;
  }
  const path = d.dst.path;
  if (!AUTHORITY.test(path)) {
    f.refuse(`${at}.balancer.discovery.dst.path`, `${quote(path)} is not a lower-case host:port authority`);
    return undefined;
  }
  const ewma = ewmaOf(bal, f, `${at}.balancer`);
  return { service: path === ctx.authority ? ctx.name : path, dstPath: path, ewma };
}

type Filter = HttpRoute_Filter | GrpcRoute_Filter;

/** Filters of a rule or a route backend: none of them can be honoured by our routes. */
export function refuseFilters(filters: readonly Filter[], f: Findings, at: string): void {
  filters.forEach((x, i) => {
    const kind = x.kind?.kind ?? 'unknown';
    f.refuse(`${at}.filters[${i}]`, `the ${kind} filter is not supported: the mesh's routes cannot ${kind === 'failureInjector' ? 'inject failures' : kind === 'redirect' ? 'redirect' : 'modify headers'}`);
  });
}

/** A distribution → the split (weights per backend service) and the targets it names. */
export function splitOf(d: HttpRoute_Distribution | GrpcRoute_Distribution | undefined, ctx: BackendContext, f: Findings, at: string): { split: SplitBackend[]; targets: BackendTarget[] } | undefined {
  const k = d?.kind;
  const weighted: { rb: { backend?: Backend; filters: readonly Filter[] } | undefined; weight: number; at: string }[] = [];
  if (k?.kind === 'randomAvailable') {
    k.randomAvailable.backends.forEach((w, i) => weighted.push({ rb: w.backend, weight: w.weight, at: `${at}.random_available.backends[${i}]` }));
  } else if (k?.kind === 'firstAvailable' && k.firstAvailable.backends.length === 1) {
    weighted.push({ rb: k.firstAvailable.backends[0], weight: 1, at: `${at}.first_available.backends[0]` });
  } else if (k?.kind === 'firstAvailable' && k.firstAvailable.backends.length > 1) {
    f.refuse(`${at}.first_available`, `${k.firstAvailable.backends.length} backends in fail-over order are not supported: use one, or random_available`);
    return undefined;
  }
  if (weighted.length === 0) {
    f.refuse(at, 'names no backend: Linkerd fails every request of this route, which the mesh cannot express');
    return undefined;
  }
  if (weighted.length > MAX_BACKENDS) {
    f.refuse(at, `${weighted.length} backends: at most ${MAX_BACKENDS}`);
    return undefined;
  }
  const weights = new Map<string, number>();
  const targets: BackendTarget[] = [];
  for (const w of weighted) {
    if (!w.rb) {
      f.refuse(w.at, 'names no backend');
      continue;
    }
    refuseFilters(w.rb.filters, f, `${w.at}.backend`);
    const t = backendOf(w.rb.backend, ctx, f, `${w.at}.backend.backend`);
    if (!t) continue;
    if (!weights.has(t.service)) targets.push(t);
    weights.set(t.service, (weights.get(t.service) ?? 0) + w.weight);
  }
  if (f.failed) return undefined;
  const split = [...weights].map(([service, weight]) => ({ service, weight }));
  if (!split.some((b) => b.weight > 0)) {
    f.refuse(at, 'every backend has weight 0: no request could be sent');
    return undefined;
  }
  return { split, targets };
}
