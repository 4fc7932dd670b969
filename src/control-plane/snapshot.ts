/**
 * The mesh's desired state, whole: what every control plane (options, `mesh.set*`, xDS, the
 * embedded control plane) produces and the runtime is reconciled to. Pure, immutable types.
 *
 * Snapshots share structure: an update that changes one service makes a new snapshot whose other
 * `ServiceSnapshot`s are the same objects as before, so applying it costs what changed, not what
 * the mesh holds (reconcile.ts compares by reference first).
 */
import type { DefaultPolicy, Policy } from '../policy/index.js';
import type { ServiceEndpoint, RouteSpec, ServiceSettings, SplitBackend } from '../outbound/settings.js';

export type InboundMode = 'strict' | 'permissive';

export interface InboundSnapshot {
  readonly mode: InboundMode;
  /** The default policy in force (when not set explicitly, it follows the mode). */
  readonly defaultPolicy: DefaultPolicy;
  /** True when defaultPolicy was chosen by the user, not derived from the mode. */
  readonly defaultPolicyExplicit: boolean;
  readonly policy: Policy;
}

export interface ServiceSnapshot {
  readonly name: string;
  readonly namespace: string;
  /**
   * The names an application may write for it: lower case, optional `:port`; `*.example.com`
   * (suffix), `example.*` (prefix) and `*` wildcards as xDS virtual hosts have them. Default: the
   * Kubernetes forms name, name.ns, name.ns.svc, name.ns.svc.<cluster domain>.
   */
  readonly hostnames: readonly string[];
  /** The SPIFFE ID its endpoints present unless an endpoint names its own. */
  readonly identity: string;
  readonly settings: ServiceSettings;
  readonly routes: readonly RouteSpec[];
  /** Service-level split; routes may have their own. */
  readonly split?: readonly SplitBackend[];
  /** undefined: not delivered yet (pending); [] is "delivered, none". */
  readonly endpoints: readonly ServiceEndpoint[] | undefined;
}

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

/** A snapshot with some services added, replaced or (null) removed; the others are shared. */
export function withServices(s: MeshSnapshot, changes: ReadonlyMap<string, ServiceSnapshot | null>, meta: { version: string; source: string }): MeshSnapshot {
  const services = new Map(s.services);
  for (const [name, svc] of changes) {
    if (svc === null) services.delete(name);
    else services.set(name, svc);
  }
  return { ...s, ...meta, services };
}
