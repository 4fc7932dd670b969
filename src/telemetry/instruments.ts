/**
 * OpenTelemetry metrics, through `@opentelemetry/api` only: the SDK (and its exporters) stay the
 * application's choice. Instruments are created lazily from `metrics.getMeter('sidecarless', …)`
 * the first time something is recorded after a MeterProvider is registered; with none registered,
 * `instruments()` returns undefined after one global lookup and one comparison, so callers build
 * no attribute objects at all. Without the API installed it is undefined at once (otel.ts).
 */
import type {
  Attributes,
  Counter,
  Histogram,
  Meter,
  MeterProvider,
  ObservableCounter,
  ObservableGauge,
  ObservableResult,
  ObservableUpDownCounter,
} from '@opentelemetry/api';
import { api, otelInUse } from './otel.js';
import { HTTP_DURATION_BUCKETS } from './stats.js';
import { VERSION } from '../version.js';


/** Instrumentation scope name and version. */
export const INSTRUMENTATION_NAME = 'sidecarless';
export const INSTRUMENTATION_VERSION = VERSION;

/** Attribute names: HTTP semantic conventions, and the mesh's own. */
export const ATTR = {
  method: 'http.request.method',
  status: 'http.response.status_code',
  errorType: 'error.type',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  scheme: 'url.scheme',
  route: 'http.route',
  peer: 'sidecarless.peer.spiffe_id',
  service: 'sidecarless.service',
  tls: 'sidecarless.tls',
  decision: 'sidecarless.authz.decision',
  rule: 'sidecarless.authz.rule',
  action: 'sidecarless.authz.action',
  retryReason: 'sidecarless.retry.reason',
  endpoint: 'sidecarless.endpoint',
  spiffeId: 'sidecarless.spiffe_id',
  snapshotSource: 'sidecarless.snapshot.source',
  snapshotResult: 'sidecarless.snapshot.result',
} as const;

export interface Instruments {
  readonly serverDuration: Histogram;
  readonly clientDuration: Histogram;
  readonly serverActive: ObservableUpDownCounter;
  readonly clientActive: ObservableUpDownCounter;
  readonly authzDecisions: ObservableCounter;
  readonly retries: Counter;
  readonly budgetExhausted: Counter;
  readonly ejections: Counter;
  readonly rotations: Counter;
  readonly snapshots: Counter;
  readonly identityExpiry: ObservableGauge;
}

/** What the identity expiry gauge observes: one per mesh. */
export interface IdentityObservation {
  readonly spiffeId: string;
  readonly service: string;
  /** Seconds until the SVID expires (0 when expired), or undefined when there is none. */
  secondsLeft(): number | undefined;
}

const observed = new Set<IdentityObservation>();

/** Most attribute sets the mesh caches (and counts) per instrument; past it they are built per request, or not counted. */
export const MAX_ATTRIBUTE_SETS = 2000;

/** An attribute set counted by an asynchronous instrument: its count changes in place. */
export class TallyEntry {
  n = 0;
  constructor(readonly attrs: Attributes) {}
}

/**
 * Per-request counts kept here and reported when the reader collects, rather than one SDK call per
 * change: an SDK `add` hashes its attributes (~2 µs), and active requests change twice per request,
 * authorization decisions once. The instruments are the asynchronous kinds of the same types
 * (ObservableUpDownCounter, ObservableCounter): exporters see the same sums. Callers keep the entry
 * of their (cached) attribute set, so a change is one increment: no key built, no lookup.
 */
export class Tally {
  readonly #entries: TallyEntry[] = [];
  /** A new entry for `attrs`, or undefined past the cap (that set is then not counted). */
  entry(attrs: Attributes): TallyEntry | undefined {
    if (this.#entries.length >= MAX_ATTRIBUTE_SETS) return undefined;
    const e = new TallyEntry(attrs);
    this.#entries.push(e);
    return e;
  }
  observe = (result: ObservableResult): void => {
    for (const e of this.#entries) result.observe(e.n, e.attrs);
  };
}
export const serverActive = new Tally();
export const clientActive = new Tally();
const authzDecisions = new Tally();

function observeIdentities(result: ObservableResult): void {
  for (const o of observed) {
    const left = o.secondsLeft();
    if (left !== undefined) result.observe(left, { [ATTR.spiffeId]: o.spiffeId, [ATTR.service]: o.service });
  }
}

function observing<T extends ObservableUpDownCounter | ObservableCounter>(instrument: T, tally: Tally): T {
  instrument.addCallback(tally.observe);
  return instrument;
}

function build(meter: Meter): Instruments {
  const advice = { explicitBucketBoundaries: [...HTTP_DURATION_BUCKETS] };
  const identityExpiry = meter.createObservableGauge('sidecarless.identity.expiry', {
    unit: 's',
    description: 'Seconds until the workload X.509-SVID expires.',
  });
  identityExpiry.addCallback(observeIdentities);
  return {
    serverDuration: meter.createHistogram('http.server.request.duration', { unit: 's', description: 'Duration of HTTP server requests.', advice }),
    clientDuration: meter.createHistogram('http.client.request.duration', { unit: 's', description: 'Duration of HTTP client requests (all tries of one logical request).', advice }),
    serverActive: observing(meter.createObservableUpDownCounter('http.server.active_requests', { unit: '{request}', description: 'Number of active HTTP server requests.' }), serverActive),
    clientActive: observing(meter.createObservableUpDownCounter('http.client.active_requests', { unit: '{request}', description: 'Number of active HTTP client requests.' }), clientActive),
    authzDecisions: observing(meter.createObservableCounter('sidecarless.authz.decisions', { unit: '{decision}', description: 'Authorization decisions on inbound requests.' }), authzDecisions),
    retries: meter.createCounter('sidecarless.retries', { unit: '{retry}', description: 'Outbound retries.' }),
    budgetExhausted: meter.createCounter('sidecarless.retry_budget.exhausted', { unit: '{retry}', description: 'Retries refused because the retry budget was exhausted.' }),
    ejections: meter.createCounter('sidecarless.endpoint.ejections', { unit: '{ejection}', description: 'Endpoints ejected by failure accrual.' }),
    rotations: meter.createCounter('sidecarless.identity.rotations', { unit: '{rotation}', description: 'Workload SVID rotations.' }),
    snapshots: meter.createCounter('sidecarless.snapshot.applications', { unit: '{snapshot}', description: 'Mesh snapshots offered to the mesh, by source and result (accepted or rejected).' }),
    identityExpiry,
  };
}

let cachedProvider: MeterProvider | undefined;
let cached: Instruments | undefined;
/** Instruments already made per provider: one registered again (after metrics.disable()) gets the same ones, not a second set of callbacks. */
const byProvider = new WeakMap<MeterProvider, Instruments | null>();

/**
 * The instruments of the current global MeterProvider, or undefined when none is registered (the
 * API's no-op meter). Follows a provider registered (or replaced) later.
 */
function currentInstruments(): Instruments | undefined {
  const provider = api.metrics.getMeterProvider();
  if (provider === cachedProvider) return cached;
  cachedProvider = provider;
  let made = byProvider.get(provider);
  if (made === undefined) {
    const meter = provider.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
    made = meter === api.createNoopMeter() ? null : build(meter);
    byProvider.set(provider, made);
  }
  cached = made ?? undefined;
  return cached;
}

/** `currentInstruments`, or — without the API, where no provider can be registered — always undefined. */
export const instruments = (): Instruments | undefined => (otelInUse() ? currentInstruments() : undefined);

/** Adds a mesh's identity to the expiry gauge; returns the function that removes it. */
export function observeIdentity(o: IdentityObservation): () => void {
  observed.add(o);
  instruments();
  return () => observed.delete(o);
}

/** Known methods are kept; anything else is `_OTHER` (HTTP semantic conventions, bounded cardinality). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);
export function methodAttr(method: string | undefined): string {
  if (method === undefined) return '_OTHER';
  if (KNOWN_METHODS.has(method)) return method;
  const up = method.toUpperCase();
  return KNOWN_METHODS.has(up) ? up : '_OTHER';
}

/** decision → rule → action → tally entry (null: past the cap, not counted). */
const authzEntries = new Map<string, Map<string, Map<string, TallyEntry | null>>>();
function authzEntry(decision: string, rule: string, action: string): TallyEntry | null {
  let byRule = authzEntries.get(decision);
  if (byRule === undefined) authzEntries.set(decision, (byRule = new Map()));
  let byAction = byRule.get(rule);
  if (byAction === undefined) byRule.set(rule, (byAction = new Map()));
  let e = byAction.get(action);
  if (e === undefined) {
    e = authzDecisions.entry({ [ATTR.decision]: decision, [ATTR.rule]: rule, [ATTR.action]: action }) ?? null;
    byAction.set(action, e);
  }
  return e;
}

/** Records an authorization decision (and one point per audit rule that matched, action 'audit'). */
export function recordAuthz(decision: string, rule: string, action: string, audit: readonly string[]): void {
  if (!instruments()) return;
  const e = authzEntry(decision, rule, action);
  if (e) e.n++;
  for (const a of audit) {
    const ea = authzEntry(decision, a, 'audit');
    if (ea) ea.n++;
  }
}

export function recordRetry(service: string, reason: string): void {
  instruments()?.retries.add(1, { [ATTR.service]: service, [ATTR.retryReason]: reason });
}

export function recordBudgetExhausted(service: string): void {
  instruments()?.budgetExhausted.add(1, { [ATTR.service]: service });
}

export function recordEjection(service: string, endpoint: string): void {
  instruments()?.ejections.add(1, { [ATTR.service]: service, [ATTR.endpoint]: endpoint });
}

export function recordRotation(spiffeId: string, service: string): void {
  instruments()?.rotations.add(1, { [ATTR.spiffeId]: spiffeId, [ATTR.service]: service });
}

export function recordSnapshot(source: string, result: 'accepted' | 'rejected'): void {
  instruments()?.snapshots.add(1, { [ATTR.snapshotSource]: source, [ATTR.snapshotResult]: result });
}

export type { Attributes };
