/**
 * The mesh's desired state, whole: what every control plane (options, `mesh.set*`, xDS, the
 * embedded control plane) produces and the runtime is reconciled to. Pure, immutable types.
 *
 * Snapshots share structure: an update that changes one service makes a new snapshot whose other
 * `ServiceSnapshot`s are the same objects as before, so applying it costs what changed, not what
 * the mesh holds (reconcile.ts compares by reference first).
 */
import type { DefaultPolicy, Policy } from '../policy/index.js';
import type { ServiceSpec } from '../outbound/settings.js';

export type InboundMode = 'strict' | 'permissive';

export interface InboundSnapshot {
  readonly mode: InboundMode;
  /** The default policy in force (when not set explicitly, it follows the mode). */
  readonly defaultPolicy: DefaultPolicy;
  /** True when defaultPolicy was chosen by the user, not derived from the mode. */
  readonly defaultPolicyExplicit: boolean;
  readonly policy: Policy;
  /**
   * The control plane's policy (an xDS server's RBAC), evaluated with `policy`: a request is
   * allowed only when both allow. Absent: `policy` alone decides. Its own default is allow (Istio:
   * no AuthorizationPolicy allows); `defaultPolicy` applies to `policy` only.
   */
  readonly meshPolicy?: Policy;
}

/** One outbound service as a snapshot holds it (outbound/settings.ts defines its shape). */
export type ServiceSnapshot = ServiceSpec;

export interface MeshSnapshot {
  /** Increases with every snapshot a control plane emits (a string for xDS version_info). */
  readonly version: string;
  /** Who produced it: 'options', 'api', 'xds:<address>', ... */
  readonly source: string;
  /**
   * True when its source will not deliver more (options, a mesh file): a reference to a service
   * it does not hold is a mistake. False for live sources: such a reference is pending.
   */
  readonly complete: boolean;
  readonly inbound: InboundSnapshot;
  readonly services: ReadonlyMap<string, ServiceSnapshot>;
}
