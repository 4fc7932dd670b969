/**
 * Where a mesh's desired state comes from. go-spiffe small: the current snapshot, an update event,
 * ready, close. A control plane emits only complete, consistent snapshots (grpc-js-xds's
 * `XdsConfigWatcher.onUpdate` model): never a half-delivered tree. The mesh validates each one
 * whole and runs the last good one (control-plane/reconcile.ts).
 */
import type { DiscoveryAnswer } from '../outbound/dispatcher.js';
import type { MeshSnapshot } from './snapshot.js';
import type { XdsStatus } from './xds/xds-status.js';

/** How to word a rejection of this update (`mesh.setSplit("payments") rejected, split unchanged`). */
export interface UpdateHint {
  readonly title?: string;
}

export interface ControlPlane {
  /** A short name for logs and `mesh.snapshot().source`: 'options', 'xds:istiod.istio-system.svc:15012'. */
  readonly name: string;
  /** The latest snapshot; throws before ready() has resolved. */
  current(): MeshSnapshot;
  /** Called with every new snapshot. Returns the unsubscribe function. */
  onUpdate(listener: (snapshot: MeshSnapshot, hint?: UpdateHint) => void): () => void;
  /** Resolves once a first snapshot exists; rejects after `timeoutMs` without one. */
  ready(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  /** What it wants shown beside the snapshot in stats() and /config (a watched file, its last error). */
  status?(): ControlPlaneStatus;
  /**
   * A discovering control plane (xDS) answers for a host no service holds (outbound/dispatcher.ts
   * ServiceRegistry.discover has the contract). Absent: hosts are what the snapshot says.
   */
  discover?(host: string, protocol: string, ms: number, stop?: Promise<unknown>): Promise<DiscoveryAnswer>;
  /** A control plane with inbound policy (xDS) is told each port the mesh serves on: it asks for that port's inbound Listener. */
  servePort?(port: number): void;
  /**
   * The process was frozen for `gapMs` (a serverless thaw, mesh/thaw.ts): a control plane whose
   * state may have gone stale meanwhile refreshes it, bounded; resolves (never rejects) when done
   * or given up, the last good state still in force.
   */
  thaw?(gapMs: number): Promise<void>;
}

export interface ControlPlaneStatus {
  /** A watched policy file. */
  readonly policyFile?: string;
  /** Why its last reload was rejected (cleared by the next good one). */
  readonly lastPolicyError?: string;
  /** An xDS control plane's stream, resources (version, ACK/NACK, last error) and discovered hosts. */
  readonly xds?: XdsStatus;
  /** A Linkerd control plane's streams: authorities watched, destinations, served ports (linkerd/linkerd-control-plane.ts). */
  readonly linkerd?: import('./linkerd/linkerd-status.js').LinkerdStatus;
}

/**
 * A control plane that also takes the run-time API's updates (`mesh.setService`, `setSplit`, …):
 * the static one. `update` offers the snapshot to the listeners and throws what they throw.
 */
export interface LocalUpdates {
  update(next: Omit<MeshSnapshot, 'version' | 'source'>, source: string, hint?: UpdateHint): MeshSnapshot;
}
