/**
 * The part every balancer shares: the endpoint set with its per-endpoint state (peak-EWMA,
 * pending, failure accrual), the weighted sampling over the ready endpoints, and the balancer
 * shell that asks a `Picker` (p2c, least-request, round-robin, random) to choose among them.
 *
 * ## Weights
 * Sampling is by weight with Vose's alias method: O(n) to build when the ready set changes, O(1)
 * per draw (one random number). When all ready weights are equal, draws are plain uniform indices.
 *
 * How weights combine with power-of-two-choices — the choice made here, and why:
 * - Equal weights (the common case): the two candidates are two *distinct* uniform draws, exactly
 *   linkerd2-proxy/tower (`sample_floyd2`). A bad endpoint is never forced on anyone: it is picked
 *   only if it wins a comparison.
 * - Unequal weights: the two candidates are two *independent* draws by weight, and the cheaper one
 *   wins (ties go to the first draw). With independent draws an endpoint's share, when costs are
 *   equal, is exactly its weight share: P(i) = p_i² + 2·p_i·(1 − p_i)·½ = p_i. When costs differ,
 *   P2C moves traffic toward the cheaper endpoints, which is the point of a latency-aware
 *   balancer. The price: an endpoint with share p is drawn twice, and so forced, on p² of picks
 *   (failure accrual ejects it if it fails).
 * - Rejected alternatives: distinct draws with unequal weights pull shares toward uniform (two
 *   endpoints at 9:1 become 50:50, since both are always the candidates); dividing the cost by the
 *   weight instead makes the share depend on load (at low concurrency the heavier endpoint wins
 *   every comparison and a weight-1 endpoint next to a weight-9 one gets nothing).
 * - Weight 0 means "no traffic" while any ready endpoint has a positive weight; if none has, the
 *   ready endpoints are used as if their weights were equal.
 */
import { systemClock, type Clock } from '../../clock.js';
import { ConfigError } from '../../errors.js';
import { EndpointAccrual, failureAccrualSettings, type FailureAccrualSettings } from './failure-accrual.js';
import { PeakEwma, ewmaSettings, type EwmaSettings } from './ewma.js';
import type {
  Balancer,
  BalancerKind,
  BalancerOptions,
  BalancerStats,
  EndpointHandle,
  EndpointSnapshot,
  EndpointSpec,
  EndpointsDiff,
  EndpointState,
  InFlight,
  Outcome,
  StateChange,
} from './types.js';

/** Walker/Vose alias table: O(1) weighted sampling. */
export class AliasTable {
  private readonly prob: Float64Array;
  private readonly alias: Uint32Array;
  readonly size: number;

  /** `weights` must be finite, >= 0 and not all 0. */
  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.size = n;
    this.prob = new Float64Array(n);
    this.alias = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i]!;
    if (!(total > 0)) throw new RangeError('AliasTable needs at least one positive weight');
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / total;
      (scaled[i]! < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.prob[s] = scaled[s]!;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    // Leftovers are 1 up to rounding.
    for (const i of large) this.prob[i] = 1;
    for (const i of small) this.prob[i] = 1;
  }

  /** An index drawn with probability weight/total, from one uniform number `u` in [0, 1). */
  sample(u: number): number {
    const x = u * this.size;
    const i = Math.min(this.size - 1, Math.floor(x));
    return x - i < this.prob[i]! ? i : this.alias[i]!;
  }
}

/** The endpoints a picker chooses from: the ready ones, with their sampling structure. */
export class ReadySet {
  /** Ready endpoints that can be drawn (positive weight, or all ready if none has). */
  readonly list: BalancedEndpoint[];
  /** True when every endpoint in `list` has the same weight. */
  readonly uniform: boolean;
  private readonly alias: AliasTable | undefined;

  constructor(ready: BalancedEndpoint[]) {
    const positive = ready.filter((e) => e.weight > 0);
    this.list = positive.length > 0 ? positive : ready;
    const w0 = this.list[0]?.weight;
    this.uniform = positive.length === 0 || this.list.every((e) => e.weight === w0);
    this.alias = this.uniform ? undefined : new AliasTable(this.list.map((e) => e.weight));
  }

  /** Weight used for sampling (1 for everyone when no ready endpoint has a positive weight). */
  weightOf(e: BalancedEndpoint): number {
    return this.uniform ? 1 : e.weight;
  }

  /** One index drawn by weight. */
  draw(random: () => number): number {
    const u = random();
    return this.alias ? this.alias.sample(u) : Math.min(this.list.length - 1, Math.floor(u * this.list.length));
  }

  /** The second P2C candidate: distinct from `first` when weights are equal, an independent draw
   *  by weight otherwise (see the module comment). Needs list.length >= 2. */
  drawSecond(first: number, random: () => number): number {
    if (this.alias) return this.alias.sample(random());
    const n = this.list.length;
    const j = Math.min(n - 2, Math.floor(random() * (n - 1)));
    return j >= first ? j + 1 : j;
  }
}

/** A strategy: how to choose one endpoint among the ready ones. */
export interface Picker {
  readonly kind: BalancerKind;
  /** Called whenever the ready set changes (endpoints set, ejected, readmitted). */
  rebuild(set: ReadySet): void;
  /** Chooses an endpoint; called only with `set.list.length >= 2`. */
  pick(set: ReadySet, now: number): BalancedEndpoint;
}

class Try implements InFlight {
  private done = false;
  constructor(
    private readonly ep: BalancedEndpoint,
    private readonly startedAt: number,
    readonly probe: boolean,
  ) {}
  end(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    this.ep.finish(this.startedAt, this.probe, outcome);
  }
}

/** One endpoint and its state. Handed out by `pick()` as an `EndpointHandle`. */
export class BalancedEndpoint implements EndpointHandle {
  weight: number;
  pending = 0;
  requests = 0;
  failures = 0;
  removed = false;
  readonly ewma: PeakEwma;
  readonly accrual: EndpointAccrual;

  constructor(
    readonly key: string,
    weight: number,
    private readonly owner: MeshBalancer,
  ) {
    this.weight = weight;
    this.ewma = new PeakEwma(owner.ewmaSettings, owner.clock.now());
    this.accrual = new EndpointAccrual(owner.accrualSettings, owner.random);
  }

  get state(): EndpointState {
    return this.accrual.state;
  }

  start(): InFlight {
    this.pending++;
    let probe = false;
    const a = this.accrual;
    if (a.state !== 'ready' && !this.removed) {
      // Either the probe admitted after the penalty, or a panic pick: both decide readmission.
      probe = true;
      if (a.state === 'probing' && !a.probeInFlight) {
        a.probeInFlight = true;
        this.owner.probeStarted(this);
      }
    }
    return new Try(this, this.owner.clock.now(), probe);
  }

  /** @internal called by `InFlight.end`. */
  finish(startedAt: number, probe: boolean, outcome: Outcome): void {
    const now = this.owner.clock.now();
    const latency = outcome.latencyMs ?? Math.max(0, now - startedAt);
    this.pending--;
    this.requests++;
    if (outcome.ok) this.ewma.observe(latency, now);
    else {
      this.failures++;
      this.ewma.observeFailure(latency, now);
    }
    if (this.removed) return;
    this.owner.recordOutcome(this, outcome.ok, probe, latency, now);
  }

  snapshot(): EndpointSnapshot {
    const s: EndpointSnapshot = {
      key: this.key,
      weight: this.weight,
      ewmaMs: this.ewma.get(this.owner.clock.now()),
      pending: this.pending,
      requests: this.requests,
      failures: this.failures,
      consecutiveFailures: this.accrual.consecutiveFailures,
      state: this.accrual.state,
      ejections: this.accrual.ejections,
    };
    if (this.accrual.state === 'ejected') s.probeAt = this.accrual.probeAt;
    return s;
  }
}

function validWeight(w: unknown): w is number {
  return typeof w === 'number' && Number.isFinite(w) && w >= 0;
}

/** The balancer shell: endpoint set, accrual, probes and panic, around a `Picker`. */
export class MeshBalancer implements Balancer {
  readonly clock: Clock;
  readonly random: () => number;
  readonly ewmaSettings: EwmaSettings;
  readonly accrualSettings: FailureAccrualSettings | undefined;
  private readonly onStateChange: ((c: StateChange) => void) | undefined;

  private all = new Map<string, BalancedEndpoint>();
  private order: BalancedEndpoint[] = [];
  private readyCount = 0;
  private set: ReadySet = new ReadySet([]);
  /** Probing endpoints whose probe has not started: the next picks go to them, one try each. */
  private probeQueue: BalancedEndpoint[] = [];
  /** Earliest `probeAt` among ejected endpoints (Infinity if none): pick() polls only then. */
  private nextPollAt = Infinity;
  private panicPicks = 0;
  /** A retry's choice among untried endpoints (stateless, so any balancer kind can use it). */
  private readonly untried: Picker;

  constructor(
    private readonly picker: Picker,
    /** How a retry chooses among the endpoints it has not tried (createBalancer passes p2c-ewma). */
    untried: Picker,
    opts: BalancerOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.ewmaSettings = ewmaSettings(opts.ewma);
    this.accrualSettings = opts.accrual === false ? undefined : failureAccrualSettings(opts.accrual);
    this.onStateChange = opts.onStateChange;
    this.untried = untried;
  }

  get kind(): BalancerKind {
    return this.picker.kind;
  }

  get size(): number {
    return this.order.length;
  }

  setEndpoints(list: readonly EndpointSpec[]): EndpointsDiff {
    const seen = new Set<string>();
    const issues: Array<{ path: string; message: string }> = [];
    list.forEach((spec, i) => {
      if (typeof spec?.key !== 'string' || spec.key === '') issues.push({ path: `[${i}].key`, message: 'must be a non-empty string' });
      else if (seen.has(spec.key)) issues.push({ path: `[${i}].key`, message: `duplicate endpoint "${spec.key}"` });
      else seen.add(spec.key);
      if (spec?.weight !== undefined && !validWeight(spec.weight)) issues.push({ path: `[${i}].weight`, message: `must be a finite number >= 0, got ${String(spec.weight)}` });
    });
    if (issues.length > 0) {
      throw new ConfigError(`invalid endpoint list: ${issues.map((x) => `${x.path} ${x.message}`).join('; ')}. Give each endpoint a unique key and a weight >= 0.`, issues);
    }
    const next = new Map<string, BalancedEndpoint>();
    const order: BalancedEndpoint[] = [];
    const diff: EndpointsDiff = { added: [], removed: [], kept: [] };
    for (const spec of list) {
      let ep = this.all.get(spec.key);
      if (ep) {
        ep.weight = spec.weight ?? 1;
        diff.kept.push(spec.key);
      } else {
        ep = new BalancedEndpoint(spec.key, spec.weight ?? 1, this);
        diff.added.push(spec.key);
      }
      next.set(spec.key, ep);
      order.push(ep);
    }
    for (const [key, ep] of this.all) {
      if (!next.has(key)) {
        ep.removed = true;
        diff.removed.push(key);
      }
    }
    this.all = next;
    this.order = order;
    if (diff.removed.length > 0) this.probeQueue = this.probeQueue.filter((e) => !e.removed);
    this.rebuild();
    return diff;
  }

  pick(): EndpointHandle | undefined {
    const now = this.clock.now();
    if (now >= this.nextPollAt) this.poll(now);
    const probe = this.probeQueue[0];
    if (probe !== undefined) return probe;
    const set = this.set;
    const n = set.list.length;
    if (n > 1) return this.picker.pick(set, now);
    if (n === 1) return set.list[0];
    return this.panic();
  }

  pickUntried(tried: ReadonlySet<string>): EndpointHandle | undefined {
    const rest = this.set.list.filter((e) => !tried.has(e.key));
    if (rest.length <= 1) return rest[0];
    return this.untried.pick(new ReadySet(rest), this.clock.now());
  }

  get(key: string): EndpointHandle | undefined {
    return this.all.get(key);
  }

  stats(): BalancerStats {
    const endpoints = this.order.map((e) => e.snapshot());
    let ejected = 0;
    let probing = 0;
    for (const e of endpoints) {
      if (e.state === 'ejected') ejected++;
      else if (e.state === 'probing') probing++;
    }
    return { kind: this.kind, endpoints, ready: this.readyCount, ejected, probing, panicPicks: this.panicPicks };
  }

  /** @internal the probe of `ep` has started: later picks go elsewhere until it ends. */
  probeStarted(ep: BalancedEndpoint): void {
    const i = this.probeQueue.indexOf(ep);
    if (i >= 0) this.probeQueue.splice(i, 1);
  }

  /** @internal accrual bookkeeping for one ended try. */
  recordOutcome(ep: BalancedEndpoint, ok: boolean, probe: boolean, latencyMs: number, now: number): void {
    const from = ep.accrual.state;
    const t = ep.accrual.record(ok, probe, now, () => this.readyCount > 1);
    if (t === 'none' || t === 'kept') return;
    if (t === 'readmitted') {
      // Its history predates the ejection: start over from the probe's latency.
      ep.ewma.reset(latencyMs, now);
      const i = this.probeQueue.indexOf(ep);
      if (i >= 0) this.probeQueue.splice(i, 1);
    }
    if (t === 'ejected') {
      if (ep.accrual.probeAt < this.nextPollAt) this.nextPollAt = ep.accrual.probeAt;
    }
    if (from === 'ready' || ep.accrual.state === 'ready') this.rebuild();
    this.emit(ep, from, now);
  }

  /** Ejected endpoints whose penalty elapsed become probing and queue for one try. O(n), rare. */
  private poll(now: number): void {
    let next = Infinity;
    for (const ep of this.order) {
      if (ep.accrual.poll(now)) {
        this.probeQueue.push(ep);
        this.emit(ep, 'ejected', now);
      } else if (ep.accrual.state === 'ejected' && ep.accrual.probeAt < next) next = ep.accrual.probeAt;
    }
    this.nextPollAt = next;
  }

  /** Nothing is ready: rather than fail for certain, use the endpoint closest to its probe. */
  private panic(): BalancedEndpoint | undefined {
    let best: BalancedEndpoint | undefined;
    for (const ep of this.order) {
      if (best === undefined || this.panicRank(ep) < this.panicRank(best)) best = ep;
    }
    if (best) this.panicPicks++;
    return best;
  }

  private panicRank(ep: BalancedEndpoint): number {
    const a = ep.accrual;
    return a.state === 'probing' ? -1 : a.state === 'ejected' ? a.probeAt : -2;
  }

  private rebuild(): void {
    const ready: BalancedEndpoint[] = [];
    let next = Infinity;
    for (const ep of this.order) {
      const st = ep.accrual.state;
      if (st === 'ready') ready.push(ep);
      else if (st === 'ejected' && ep.accrual.probeAt < next) next = ep.accrual.probeAt;
    }
    this.readyCount = ready.length;
    this.nextPollAt = next;
    this.set = new ReadySet(ready);
    this.picker.rebuild(this.set);
  }

  private emit(ep: BalancedEndpoint, from: EndpointState, at: number): void {
    const to = ep.accrual.state;
    if (!this.onStateChange || from === to) return;
    const change: StateChange = { key: ep.key, from, to, at };
    if (to === 'ejected') change.penaltyMs = ep.accrual.probeAt - at;
    this.onStateChange(change);
  }
}
