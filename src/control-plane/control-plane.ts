/**
 * Where a mesh's desired state comes from. go-spiffe small: the current snapshot, an update event,
 * ready, close. A control plane emits only complete, consistent snapshots (grpc-js-xds's
 * `XdsConfigWatcher.onUpdate` model): never a half-delivered tree. The mesh validates each one
 * whole and runs the last good one (control-plane/reconcile.ts).
 */
import type { MeshSnapshot } from './snapshot.js';

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
}
