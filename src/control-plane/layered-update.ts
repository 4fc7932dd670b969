/**
 * A `mesh.set*` update on a control plane that composes its own layer over the options' snapshot
 * (xDS, Linkerd): the update is computed from the composed `current()`, so before the options' part
 * takes it, the control plane's share is taken back out — the services it delivered (by object,
 * against every build, not only the latest: `next` may hold an older build when the latest one was
 * refused), and its inbound layer (meshPolicy, and what the composition derived from it), which the
 * options would otherwise keep after the control plane took it back (a port pending forever once
 * its policy was decided). Pure.
 */
import type { InboundSnapshot, MeshSnapshot } from './snapshot.js';

type SnapshotInput = Omit<MeshSnapshot, 'version' | 'source'>;

/** The options' part of `next`: `composed` is the control plane's current snapshot, `base` the options' one. */
export function optionsPartOf(next: SnapshotInput, composed: MeshSnapshot, base: MeshSnapshot, delivered: { has(svc: object): boolean }): SnapshotInput {
  const services = new Map(next.services);
  for (const [name, svc] of next.services) if (delivered.has(svc)) services.delete(name);
  return { ...next, services, inbound: ownInbound(next.inbound, composed.inbound, base.inbound) };
}

/** What the update changed in the inbound part, applied to the options' own inbound; never meshPolicy. */
function ownInbound(next: InboundSnapshot, composed: InboundSnapshot, base: InboundSnapshot): InboundSnapshot {
  const was = composed as unknown as Record<string, unknown>;
  const own: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(next)) if (k !== 'meshPolicy' && v !== was[k]) own[k] = v;
  delete own.meshPolicy;
  return own as unknown as InboundSnapshot;
}
