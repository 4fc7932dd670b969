/**
 * The user's spellings (createMesh options, `mesh.setService`) → typed snapshot parts: durations
 * already in ms (zod did that), every default filled in, identities and hostnames derived. The
 * boundary where options stop: nothing below reads config.ts.
 */
import { type EndpointConfig, type MeshConfig, type RetryConfig, type RouteConfig, type ServiceConfig, type TimeoutConfig } from '../config.js';
import { DEFAULT_FIRST_REQUEST_TIMEOUT_MS } from '../inbound/first-request.js';
import { type InboundSettings } from '../inbound/inbound.js';
import { systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { ewmaSettings } from '../outbound/balancer/ewma.js';
import { failureAccrualSettings } from '../outbound/balancer/failure-accrual.js';
import { RetryBudget } from '../outbound/retry/budget.js';
import { type RetryPolicySettings, type TimeoutSettings, retryPolicySettings } from '../outbound/retry/policy.js';
import { DEFAULT_MAX_REPLAY_BODY_BYTES } from '../outbound/retry/replay-body.js';
import { serviceHostnames } from '../outbound/router.js';
import {
  DEFAULT_SERVICE_SETTINGS,
  type ServiceEndpoint,
  type HeaderMatch,
  type RequestPolicy,
  type RouteMatch,
  type RouteSpec,
  type ServiceSettings,
} from '../outbound/settings.js';
import type { ServiceSnapshot } from './snapshot.js';

/** What a service's defaults derive from: the mesh's trust domain and namespace. */
export interface ServiceContext {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly clusterDomain?: string;
}

/** Runs `fn`; a RangeError from a settings constructor becomes a ConfigError naming `path`. */
function at<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new ConfigError(`invalid sidecarless options:\n  - ${path}: ${e.message}`, [{ path, message: e.message }]);
  }
}

function retryPolicyOf(c: RetryConfig | undefined, path: string): RetryPolicySettings | null {
  if (c === false) return null;
  if (c === undefined) return DEFAULT_SERVICE_SETTINGS.retry;
  const kinds = c.retryOn?.filter((x): x is 'connect' | 'reset' | 'timeout' => typeof x === 'string');
  const statuses = c.retryOn?.filter((x): x is number => typeof x === 'number');
  return at(path, () =>
    retryPolicySettings({
      ...(c.maxRetries !== undefined && { maxRetries: c.maxRetries }),
      ...(c.methods !== undefined && { retryableMethods: c.methods }),
      ...(c.retryConnectFailuresForAnyMethod !== undefined && { retryConnectFailuresForAnyMethod: c.retryConnectFailuresForAnyMethod }),
      ...(kinds !== undefined && { retryOnFailures: kinds }),
      ...(statuses !== undefined && { retryOnStatuses: statuses }),
      ...(c.honourRetryAfter !== undefined && { honourRetryAfter: c.honourRetryAfter }),
      ...(c.maxRetryAfter !== undefined && { maxRetryAfterMs: c.maxRetryAfter }),
      backoff: {
        ...(c.backoff?.base !== undefined && { baseMs: c.backoff.base }),
        ...(c.backoff?.max !== undefined && { maxMs: c.backoff.max }),
        ...(c.backoff?.multiplier !== undefined && { multiplier: c.backoff.multiplier }),
      },
    }),
  );
}

/** A route's retry fields override its service's one by one; `false` turns retries off. */
function mergeRetry(service: RetryConfig | undefined, route: RetryConfig | undefined): RetryConfig | undefined {
  if (route === undefined) return service;
  if (route === false) return false;
  const base = service === false || service === undefined ? {} : service;
  return { ...base, ...route, backoff: { ...base.backoff, ...route.backoff } };
}

function timeoutOf(cfg: TimeoutConfig | undefined): TimeoutSettings {
  return { ...(cfg?.request !== undefined && { requestMs: cfg.request }), ...(cfg?.perTry !== undefined && { perTryMs: cfg.perTry }) };
}

function requestPolicyOf(retry: RetryConfig | undefined, timeout: TimeoutSettings, path: string): RequestPolicy {
  const replay = retry === false || retry === undefined ? undefined : retry.maxReplayBodyBytes;
  return { retry: retryPolicyOf(retry, path), maxReplayBodyBytes: replay ?? DEFAULT_MAX_REPLAY_BODY_BYTES, timeout };
}

export function settingsOf(c: ServiceConfig, path: string): ServiceSettings {
  const a = c.failureAccrual;
  const b = c.retry === false ? undefined : c.retry?.budget;
  return {
    ...requestPolicyOf(c.retry, timeoutOf(c.timeout), `${path}.retry`),
    protocol: c.protocol ?? DEFAULT_SERVICE_SETTINGS.protocol,
    ...(c.jwtSvid && { jwtSvid: { audience: typeof c.jwtSvid.audience === 'string' ? [c.jwtSvid.audience] : [...new Set(c.jwtSvid.audience)].sort() } }),
    balancer: c.balancer ?? DEFAULT_SERVICE_SETTINGS.balancer,
    ewma: at(`${path}.ewma`, () =>
      ewmaSettings({
        ...(c.ewma?.defaultRtt !== undefined && { defaultRttMs: c.ewma.defaultRtt }),
        ...(c.ewma?.decay !== undefined && { decayMs: c.ewma.decay }),
        ...(c.ewma?.failurePenaltyFactor !== undefined && { failurePenaltyFactor: c.ewma.failurePenaltyFactor }),
        ...(c.ewma?.maxFailurePenalty !== undefined && { maxFailurePenaltyMs: c.ewma.maxFailurePenalty }),
      }),
    ),
    accrual:
      a === false
        ? false
        : at(`${path}.failureAccrual`, () =>
            failureAccrualSettings({
              ...(a?.consecutiveFailures !== undefined && { consecutiveFailures: a.consecutiveFailures }),
              ...(a?.minPenalty !== undefined && { minMs: a.minPenalty }),
              ...(a?.maxPenalty !== undefined && { maxMs: a.maxPenalty }),
              ...(a?.jitterRatio !== undefined && { jitterRatio: a.jitterRatio }),
            }),
          ),
    budget: at(`${path}.retry.budget`, () =>
      new RetryBudget({
        ...(b?.retryRatio !== undefined && { retryRatio: b.retryRatio }),
        ...(b?.minRetriesPerSecond !== undefined && { minRetriesPerSecond: b.minRetriesPerSecond }),
        ...(b?.window !== undefined && { windowMs: b.window }),
      }, systemClock).settings,
    ),
    connections: {
      maxPerEndpoint: c.connections?.maxPerEndpoint ?? DEFAULT_SERVICE_SETTINGS.connections.maxPerEndpoint,
      keepAliveTimeoutMs: c.connections?.keepAliveTimeout ?? DEFAULT_SERVICE_SETTINGS.connections.keepAliveTimeoutMs,
    },
  };
}

function matchOf(m: RouteConfig['match']): RouteMatch {
  const headers: HeaderMatch[] = Object.entries(m.headers ?? {}).map(([raw, want]) => {
    const name = raw.toLowerCase();
    return typeof want === 'string' ? { name, exact: want } : { name, ...want };
  });
  return {
    ...(m.path && { path: m.path }),
    ...(m.method !== undefined && { methods: (Array.isArray(m.method) ? m.method : [m.method]).map((x) => x.toUpperCase()) }),
    ...(headers.length > 0 && { headers }),
  };
}

function routesOf(c: ServiceConfig, service: RequestPolicy, path: string): RouteSpec[] {
  return (c.routes ?? []).map((r, i) => {
    const retry = mergeRetry(c.retry, r.retry);
    const timeout = r.timeout ? { ...service.timeout, ...timeoutOf(r.timeout) } : service.timeout;
    return {
      name: r.name ?? `#${i}`,
      match: matchOf(r.match),
      policy: requestPolicyOf(retry, timeout, `${path}.routes.${i}.retry`),
      ...(r.split && { split: r.split }),
    };
  });
}

export function endpointsOf(list: readonly EndpointConfig[], identity: string): ServiceEndpoint[] {
  return list.map((e) => ({
    address: e.address,
    identity: e.identity ?? identity,
    ...(e.serverName !== undefined && { serverName: e.serverName }),
    weight: e.weight,
    ...(e.zone !== undefined && { zone: e.zone }),
    ...(e.labels !== undefined && { labels: e.labels }),
  }));
}

/** One service of the options (or of `mesh.setService`) as the snapshot holds it. `path` prefixes error paths. */
export function serviceFromConfig(name: string, c: ServiceConfig, ctx: ServiceContext, path = `outbound.services.${name}`): ServiceSnapshot {
  const namespace = c.namespace ?? ctx.namespace;
  const identity = c.identity ?? `spiffe://${ctx.trustDomain}/ns/${namespace}/sa/${name}`;
  const settings = settingsOf(c, path);
  return {
    name,
    namespace,
    hostnames: c.hostnames?.map((h) => h.toLowerCase()) ?? serviceHostnames(name, namespace, ctx.clusterDomain),
    identity,
    settings,
    routes: routesOf(c, settings, path),
    ...(c.split && { split: c.split }),
    endpoints: endpointsOf(c.endpoints, identity),
  };
}

/** The inbound side's settings from the options. */
export function inboundSettingsOf(config: MeshConfig): InboundSettings {
  const i = config.inbound;
  return {
    service: config.service,
    trustDomain: config.trustDomain,
    namespace: config.namespace,
    labels: config.labels,
    mode: i.mode,
    defaultPolicy: i.defaultPolicy,
    defaultPolicyFollowsMode: !i.defaultPolicyExplicit,
    identityHeaders: i.identityHeaders,
    firstRequestTimeoutMs: i.firstRequestTimeout ?? DEFAULT_FIRST_REQUEST_TIMEOUT_MS,
    ...(i.audit && { audit: i.audit }),
  };
}
