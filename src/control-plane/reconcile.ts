/**
 * Applies a snapshot to the running mesh, whole or not at all (Envoy's "latch"): validated first
 * (validate.ts), then the inbound policy (which may still refuse: it is compiled), then the
 * outbound services — what stays keeps its pools, EWMA, accrual state and budget; what goes
 * drains (in-flight requests finish); what is new is created. Services are compared by reference
 * first, so an update that shares the unchanged ones costs what changed.
 */
import { ConfigError, PolicyError } from '../errors.js';
import type { Policy } from '../policy/index.js';
import type { ServiceSnapshot, InboundMode, MeshSnapshot } from './snapshot.js';
import { type PendingReference, type SnapshotIssue } from './validate.js';
import { SnapshotValidator } from './validate-incremental.js';

/** What the inbound side must offer the reconciler. */
export interface InboundTarget {
  /**
   * Compiles both layers and swaps them as one (the local policy and, when given, the control
   * plane's); throws (PolicyError, its paths under `meshPolicy` when that layer failed) and keeps
   * both old ones when either cannot be compiled.
   */
  setPolicy(policy: Policy, meshPolicy?: Policy): void;
  /** Switches STRICT ↔ PERMISSIVE for new connections; `defaultPolicy` is what follows from it. */
  setMode(mode: InboundMode, defaultPolicy: MeshSnapshot['inbound']['defaultPolicy']): void;
}

/** What the outbound side must offer the reconciler (outbound.ts). */
export interface OutboundTarget {
  upsert(spec: ServiceSnapshot): void;
  remove(name: string): void;
  /** Wakes requests waiting for pending references. */
  changed(): void;
}

export interface SnapshotDiff {
  readonly upserts: readonly ServiceSnapshot[];
  readonly removals: readonly string[];
  readonly policy: boolean;
  readonly mode: boolean;
}

/** What changed from `prev` to `next`. Pure; compares services by reference. */
export function diffSnapshots(prev: MeshSnapshot | undefined, next: MeshSnapshot): SnapshotDiff {
  const upserts: ServiceSnapshot[] = [];
  const removals: string[] = [];
  for (const [name, svc] of next.services) if (prev?.services.get(name) !== svc) upserts.push(svc);
  if (prev) for (const name of prev.services.keys()) if (!next.services.has(name)) removals.push(name);
  return {
    upserts,
    removals,
    policy: prev?.inbound.policy !== next.inbound.policy || prev?.inbound.meshPolicy !== next.inbound.meshPolicy,
    mode: prev === undefined ? false : prev.inbound.mode !== next.inbound.mode || prev.inbound.defaultPolicy !== next.inbound.defaultPolicy,
  };
}

/** Whether a setPolicy error is the control-plane layer's (its issues are under `meshPolicy`). */
function meshLayerFailed(e: unknown): boolean {
  const issues = e instanceof PolicyError ? e.issues : [];
  return issues.length > 0 && issues.every((i) => i.path === 'meshPolicy' || i.path.startsWith('meshPolicy.') || i.path.startsWith('meshPolicy['));
}

/** A snapshot that was refused, as `stats()` and `/config` show it. */
export interface RejectedSnapshot {
  readonly version: string;
  readonly source: string;
  readonly error: string;
  readonly at: string;
}

/** Published once per snapshot offered: applied or rejected. */
export interface SnapshotEvent {
  readonly version: string;
  readonly source: string;
  readonly accepted: boolean;
  readonly services: number;
  readonly changed: number;
  readonly error?: string;
}

export interface ApplyOptions {
  /** The first line of the error when rejected (default: "snapshot V from S rejected, keeping V'"). */
  readonly title?: string;
  /** Maps a snapshot path (`payments.split.0.service`) to the caller's (`outbound.services.payments.…`). */
  readonly path?: (path: string) => string;
}

export class Reconciler {
  #current: MeshSnapshot | undefined;
  #pending: readonly PendingReference[] = [];
  #rejected: RejectedSnapshot | undefined;
  /** validateSnapshot at the cost of what changed since the last snapshot applied. */
  readonly #validator = new SnapshotValidator();

  constructor(
    private readonly inbound: InboundTarget,
    private readonly outbound: OutboundTarget,
    private readonly onEvent: (e: SnapshotEvent) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** The snapshot the mesh runs on (undefined before the first apply). */
  get current(): MeshSnapshot | undefined {
    return this.#current;
  }

  /** References the current snapshot names but its control plane has not delivered yet. */
  get pending(): readonly PendingReference[] {
    return this.#pending;
  }

  /** The last snapshot refused (cleared by the next one applied). */
  get lastRejected(): RejectedSnapshot | undefined {
    return this.#rejected;
  }

  /** Applies `next` whole, or throws a ConfigError naming every issue and keeps the current one. */
  apply(next: MeshSnapshot, o: ApplyOptions = {}): void {
    const check = this.#validator.check(next);
    if (check.issues.length > 0) throw this.#reject(next, check.issues, o);
    const prev = this.#current;
    const diff = diffSnapshots(prev, next);
    if (diff.policy) {
      try {
        this.inbound.setPolicy(next.inbound.policy, next.inbound.meshPolicy);
      } catch (e) {
        // The policy's own error (PolicyError, naming its paths) is what the caller needs.
        this.#reject(next, [{ path: meshLayerFailed(e) ? 'inbound.meshPolicy' : 'inbound.policy', message: (e as Error).message }], o);
        throw e;
      }
    }
    if (diff.mode) this.inbound.setMode(next.inbound.mode, next.inbound.defaultPolicy);
    for (const name of diff.removals) this.outbound.remove(name);
    for (const svc of diff.upserts) this.outbound.upsert(svc);
    check.commit();
    this.#current = next;
    this.#pending = check.pending;
    this.#rejected = undefined;
    this.outbound.changed();
    this.onEvent({ version: next.version, source: next.source, accepted: true, services: next.services.size, changed: diff.upserts.length + diff.removals.length });
  }

  #reject(next: MeshSnapshot, issues: readonly SnapshotIssue[], o: ApplyOptions): ConfigError {
    const mapped = issues.map((i) => ({ path: o.path ? o.path(i.path) : i.path, message: i.message }));
    const keeping = this.#current ? `, keeping version ${this.#current.version}` : '';
    const title = o.title ?? `snapshot ${next.version} from ${next.source} rejected${keeping}`;
    const lines = mapped.map((i) => `  - ${i.path}${/^(is|are|must|takes)\b/.test(i.message) ? ' ' : ': '}${i.message}`).join('\n');
    const err = new ConfigError(`${title}:\n${lines}`, mapped);
    this.#rejected = { version: next.version, source: next.source, error: err.message, at: new Date(this.now()).toISOString() };
    this.onEvent({ version: next.version, source: next.source, accepted: false, services: next.services.size, changed: 0, error: err.message });
    return err;
  }
}
