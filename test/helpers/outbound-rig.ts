// A real Outbound (pools made, not connected) over a dev-CA identity, for reconcile-level tests,
// and the snapshot builders those tests share.
import { type Clock, VirtualClock, systemClock } from '../../src/clock.js';
import { serviceSchema } from '../../src/config.js';
import { serviceFromConfig } from '../../src/control-plane/from-options.js';
import type { MeshSnapshot, ServiceSnapshot } from '../../src/control-plane/snapshot.js';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { Outbound } from '../../src/outbound/outbound.js';
import { type Policy, loadPolicy } from '../../src/policy/index.js';
import { createDevCaSource } from '../../src/sources/dev-ca.js';
import { MeshEvents } from '../../src/telemetry/events.js';
import { TrafficStats } from '../../src/telemetry/stats.js';
import { ClientTls } from '../../src/tls/connect.js';
import { PeerVerifier } from '../../src/tls/peer.js';

const CTX = { trustDomain: 'cluster.local', namespace: 'default' };
const EMPTY = loadPolicy({});
const quiet = { info() {}, warn() {}, error() {} };

/** A service as the options would spell it, converted as the options are. */
export const svc = (name: string, cfg: object = {}): ServiceSnapshot => serviceFromConfig(name, serviceSchema.parse(cfg), CTX);

let serial = 0;
/** A live (not complete, unless said) snapshot of `services`, each call a new version. */
export function snap(services: ServiceSnapshot[], o: { complete?: boolean; policy?: Policy; source?: string } = {}): MeshSnapshot {
  return {
    version: String(++serial),
    source: o.source ?? 'test',
    complete: o.complete ?? false,
    inbound: { mode: 'strict', defaultPolicy: 'all-authenticated', defaultPolicyExplicit: false, policy: o.policy ?? EMPTY },
    services: new Map(services.map((s) => [s.name, s])),
  };
}

export interface OutboundRig {
  clock: VirtualClock;
  outbound: Outbound;
  close(): Promise<void>;
}

/** An Outbound on a virtual clock (balancer, pending waits), its TLS on the system clock. */
export async function outboundRig(o: { pendingTimeoutMs?: number; clock?: Clock } = {}): Promise<OutboundRig> {
  const clock = new VirtualClock(1_000_000);
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const source = await createDevCaSource({ ca, spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' });
  const tls = new ClientTls(source, new PeerVerifier(() => source.getBundles(), systemClock));
  const outbound = new Outbound({ tls, clock: o.clock ?? clock, traffic: new TrafficStats(), events: new MeshEvents('test'), logger: quiet, egress: 'allow', pendingTimeoutMs: o.pendingTimeoutMs ?? 100, checkIdentity: () => {}, source: () => 'test' });
  return {
    clock,
    outbound,
    async close() {
      await outbound.destroy();
      tls.close();
      await source.close();
    },
  };
}
