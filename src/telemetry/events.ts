/**
 * One place per event. A mesh publishes each authorization decision, endpoint ejection, identity
 * rotation and snapshot application once, on its own bus (stats are per mesh); everything that
 * counts them is a subscriber (derive.ts: mesh.stats(), TrafficStats and so /metrics, the
 * OpenTelemetry instruments; the inbound observer's per-request span).
 *
 * Each event also goes out on a named `node:diagnostics_channel` channel, as undici publishes
 * `undici:request:create`, so a third party can watch every mesh of the process without an API of
 * ours. The message is built only when the channel has subscribers: without any, publishing costs
 * one property read. Channel names and message fields are a public, versioned contract
 * (docs/telemetry.md): fields may be added within `v1`, never renamed or removed.
 */
import { channel } from 'node:diagnostics_channel';

/** The channel names (`sidecarless:v1:<event>`). */
export const CHANNELS = Object.freeze({
  authz: 'sidecarless:v1:authz',
  ejection: 'sidecarless:v1:ejection',
  rotation: 'sidecarless:v1:rotation',
  snapshot: 'sidecarless:v1:snapshot',
} as const);

const authzChannel = channel(CHANNELS.authz);
const ejectionChannel = channel(CHANNELS.ejection);
const rotationChannel = channel(CHANNELS.rotation);
const snapshotChannel = channel(CHANNELS.snapshot);

/** A policy's decision as published (the policy's `Decision` has this shape). */
export interface AuthzDecision {
  readonly allowed: boolean;
  readonly result: 'allow' | 'deny';
  /** The deciding rule (`default:<policy>`, `no-allow-match`, `no-route` when no rule decided). */
  readonly rule: string;
  /** The deciding rule's action: 'allow' | 'deny' | 'default'. */
  readonly action: string;
  /** Audit rules that matched (they never decide). */
  readonly audit: readonly string[];
}

/** The request as judged (the policy's `PolicyRequest` has this shape): normalized path and host. */
export interface AuthzSubject {
  readonly peer: { readonly id: string } | null;
  readonly sourceIp: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
}

/** A request refused before policy because its target or Host was malformed (400). */
export interface MalformedSubject {
  readonly peer: { readonly id: string } | null;
  readonly sourceIp: string;
  readonly method: string;
  /** Why it was refused (what the 400 says). */
  readonly reason: string;
}

/** What is said of one judged request wherever it is reported (the authz channel, the audit log). */
export interface JudgedRequestFacts {
  /** The peer's SPIFFE ID, or null when unauthenticated (permissive mode). */
  readonly peer: string | null;
  readonly sourceIp: string;
  readonly method: string;
  /** The normalized path that was judged. */
  readonly path: string;
  /** The normalized host that was judged. */
  readonly host: string;
}

/** `sidecarless:v1:authz`: one message per request the gate judged (or refused as malformed). */
export interface AuthzMessage extends JudgedRequestFacts {
  /** The mesh's own service (the server side). */
  readonly mesh: string;
  readonly result: 'allow' | 'deny' | 'malformed';
  /** '' for 'malformed'. */
  readonly rule: string;
  /** '' for 'malformed'. */
  readonly action: string;
  readonly audit: readonly string[];
  /** path and host are '' for 'malformed' (it had none). Only for 'malformed': why the target or Host was refused. */
  readonly reason?: string;
}

/** An outbound endpoint ejected by failure accrual. */
export interface EjectionEvent {
  /** The outbound service the endpoint belongs to. */
  readonly service: string;
  /** Its address (`host:port`). */
  readonly endpoint: string;
  /** The balancer's key of the endpoint (address and identity). */
  readonly key: string;
  /** How long it stays out, in ms. */
  readonly penaltyMs: number;
}

/** The workload's X.509-SVID was replaced by a newer one. */
export interface RotationEvent {
  readonly spiffeId: string;
  /** The source's rotation count after this one. */
  readonly rotations: number;
}

/** A MeshSnapshot offered to the mesh: applied whole, or rejected whole (the previous one stays). */
export interface SnapshotEvent {
  readonly version: string;
  /** Who produced it: 'static', 'setService', 'xds', … */
  readonly source: string;
  /** Number of outbound services in it. */
  readonly services: number;
  readonly result: 'accepted' | 'rejected';
  /** Only for 'rejected': why (the validation error's message). */
  readonly error?: string;
}

/** Messages of the other channels: the event and the publishing mesh's service. */
export type EjectionMessage = EjectionEvent & { readonly mesh: string };
export type RotationMessage = RotationEvent & { readonly mesh: string };
export type SnapshotMessage = SnapshotEvent & { readonly mesh: string };

/** What subscribers of the bus are given (the request object too, for the per-request span). */
export interface MeshEventListeners {
  authz: (decision: AuthzDecision, subject: AuthzSubject, req: object | undefined) => void;
  malformed: (subject: MalformedSubject, req: object | undefined) => void;
  ejection: (event: EjectionEvent) => void;
  rotation: (event: RotationEvent) => void;
  snapshot: (event: SnapshotEvent) => void;
}

export type MeshEventKind = keyof MeshEventListeners;

const NONE: readonly never[] = Object.freeze([]);

/**
 * The event bus of one mesh. Publishing calls the subscribers in subscription order, then the
 * diagnostics channel (when it has subscribers). Subscribing while publishing is safe: the lists
 * are replaced, never changed in place.
 */
export class MeshEvents {
  readonly #ls: { [K in MeshEventKind]: ReadonlyArray<MeshEventListeners[K]> } = { authz: NONE, malformed: NONE, ejection: NONE, rotation: NONE, snapshot: NONE };

  /** `mesh`: the service name of the mesh that publishes (the `mesh` field of channel messages). */
  constructor(readonly mesh: string) {}

  /** Subscribes `fn` to one kind of event; returns the function that unsubscribes it. */
  on<K extends MeshEventKind>(kind: K, fn: MeshEventListeners[K]): () => void {
    if (!Object.hasOwn(this.#ls, kind)) throw new TypeError(`unknown mesh event "${String(kind)}"; one of ${Object.keys(this.#ls).join(', ')}`);
    if (typeof fn !== 'function') throw new TypeError(`a "${kind}" listener must be a function`);
    const ls = this.#ls as unknown as Record<K, ReadonlyArray<MeshEventListeners[K]>>;
    ls[kind] = [...(ls[kind] as ReadonlyArray<MeshEventListeners[K]>), fn];
    let on = true;
    return () => {
      if (!on) return;
      on = false;
      const now = ls[kind] as ReadonlyArray<MeshEventListeners[K]>;
      const i = now.indexOf(fn);
      if (i >= 0) ls[kind] = [...now.slice(0, i), ...now.slice(i + 1)];
    };
  }

  /** One authorization decision on one request (`req`: the transport's request object, if any). */
  authz(decision: AuthzDecision, subject: AuthzSubject, req?: object): void {
    const ls = this.#ls.authz;
    for (let i = 0; i < ls.length; i++) ls[i]!(decision, subject, req);
    if (authzChannel.hasSubscribers) {
      const message: AuthzMessage = {
        mesh: this.mesh,
        result: decision.result,
        rule: decision.rule,
        action: decision.action,
        audit: decision.audit,
        peer: subject.peer?.id ?? null,
        sourceIp: subject.sourceIp,
        method: subject.method,
        path: subject.path,
        host: subject.host,
      };
      authzChannel.publish(message);
    }
  }

  /** One request refused as malformed before policy (published on the authz channel as 'malformed'). */
  malformed(subject: MalformedSubject, req?: object): void {
    const ls = this.#ls.malformed;
    for (let i = 0; i < ls.length; i++) ls[i]!(subject, req);
    if (authzChannel.hasSubscribers) {
      const message: AuthzMessage = {
        mesh: this.mesh,
        result: 'malformed',
        rule: '',
        action: '',
        audit: NONE,
        peer: subject.peer?.id ?? null,
        sourceIp: subject.sourceIp,
        method: subject.method,
        path: '',
        host: '',
        reason: subject.reason,
      };
      authzChannel.publish(message);
    }
  }

  ejection(event: EjectionEvent): void {
    for (const fn of this.#ls.ejection) fn(event);
    if (ejectionChannel.hasSubscribers) ejectionChannel.publish({ mesh: this.mesh, ...event } satisfies EjectionMessage);
  }

  rotation(event: RotationEvent): void {
    for (const fn of this.#ls.rotation) fn(event);
    if (rotationChannel.hasSubscribers) rotationChannel.publish({ mesh: this.mesh, ...event } satisfies RotationMessage);
  }

  snapshot(event: SnapshotEvent): void {
    for (const fn of this.#ls.snapshot) fn(event);
    if (snapshotChannel.hasSubscribers) snapshotChannel.publish({ mesh: this.mesh, ...event } satisfies SnapshotMessage);
  }
}
