/**
 * Cost of applying snapshots (control-plane/reconcile.ts over a real Outbound): the first snapshot
 * of a mesh of 1,000 services × 10 endpoints, then a change of one service's endpoints in that
 * mesh, then a change to 1 % of the services. Goals (issue 10): first apply ≤ 50 ms, one service
 * ≤ 1 ms (cost grows with what changed, not with the mesh).
 *
 *   node --import tsx bench/snapshot.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { serviceSchema } from '../src/config.js';
import { serviceFromConfig } from '../src/control-plane/from-options.js';
import { Reconciler } from '../src/control-plane/reconcile.js';
import * as updates from '../src/control-plane/updates.js';
import type { MeshSnapshot, ServiceSnapshot } from '../src/control-plane/snapshot.js';
import { createDevCa } from '../src/identity/dev-ca.js';
import { Outbound } from '../src/outbound/outbound.js';
import { loadPolicy } from '../src/policy/index.js';
import { createDevCaSource } from '../src/sources/dev-ca.js';
import { MeshEvents } from '../src/telemetry/events.js';
import { TrafficStats } from '../src/telemetry/stats.js';
import { ClientTls } from '../src/tls/connect.js';
import { PeerVerifier } from '../src/tls/peer.js';
import { systemClock } from '../src/clock.js';

const ctx = { trustDomain: 'cluster.local', namespace: 'default' };
const quiet = { info() {}, warn() {}, error() {} };

function services(n: number, perService: number, salt = 0): ServiceSnapshot[] {
  return Array.from({ length: n }, (_, i) =>
    serviceFromConfig(`svc-${i}`, serviceSchema.parse({ endpoints: Array.from({ length: perService }, (_, j) => `10.${(i >> 8) & 255}.${i & 255}.${j + 1 + salt}:8443`) }), ctx),
  );
}

export function snapshot(list: Iterable<ServiceSnapshot> | Map<string, ServiceSnapshot>, version: number): MeshSnapshot {
  const map = list instanceof Map ? list : new Map([...list].map((s) => [s.name, s]));
  return { version: String(version), source: 'bench', complete: false, inbound: { mode: 'strict', defaultPolicy: 'all-authenticated', defaultPolicyExplicit: false, policy: POLICY }, services: map };
}
const POLICY = loadPolicy({});

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A real Outbound (a dev-CA client identity, no traffic) and a Reconciler over it, made anew by `fresh()`. */
export async function outboundRig(): Promise<{ fresh(): { outbound: Outbound; rec: Reconciler }; close(): Promise<void> }> {
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const source = await createDevCaSource({ ca, spiffeId: 'spiffe://cluster.local/ns/default/sa/bench' });
  const tls = new ClientTls(source, new PeerVerifier(() => source.getBundles(), systemClock));
  return {
    fresh() {
      const outbound = new Outbound({ tls, clock: systemClock, traffic: new TrafficStats(), events: new MeshEvents('bench'), logger: quiet, egress: 'allow', pendingTimeoutMs: 3000, checkIdentity: () => {}, source: () => 'bench' });
      return { outbound, rec: new Reconciler({ setPolicy() {}, setMode() {} }, outbound) };
    },
    async close() {
      tls.close();
      await source.close();
    },
  };
}

export async function benchSnapshot(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const rounds = opts.quick ? 3 : 7;
  const rig = await outboundRig();
  const first: number[] = [];
  const one: number[] = [];
  const onePct: number[] = [];
  const base = services(1000, 10);
  for (let r = 0; r < rounds; r++) {
    const { outbound, rec } = rig.fresh();
    let v = 1;
    let t0 = process.hrtime.bigint();
    rec.apply(snapshot(base, v++));
    first.push(ms(t0));
    for (let k = 0; k < 20; k++) {
      // The whole mesh.setEndpoints path: the user's list validated (zod), the next snapshot made
      // (the service map copied, the rest shared), validated and applied.
      const target = base[(k * 37) % base.length]!;
      const list = Array.from({ length: 10 }, (_, j) => `10.99.${k}.${j + 1}:8443`);
      t0 = process.hrtime.bigint();
      const draft = updates.setEndpoints(rec.current!, target.name, list);
      rec.apply({ ...draft, version: String(v++), source: 'bench' });
      one.push(ms(t0));
    }
    const cur = rec.current!;
    const map = new Map(cur.services);
    for (let i = 0; i < 10; i++) {
      const target = base[i * 100]!;
      map.set(target.name, { ...target, endpoints: target.endpoints!.slice(1) });
    }
    t0 = process.hrtime.bigint();
    rec.apply(snapshot(map, v++));
    onePct.push(ms(t0));
    await outbound.destroy();
  }
  await rig.close();
  const row = (what: string, xs: number[], goal: number) => ({ apply: what, medianMs: Math.round(median(xs) * 1000) / 1000, maxMs: Math.round(Math.max(...xs) * 1000) / 1000, goalMs: goal, ok: median(xs) <= goal ? 'yes' : 'NO' });
  return {
    name: 'snapshot: applying a mesh of 1,000 services × 10 endpoints, and changes to it',
    rows: [row('first snapshot (10,000 endpoints)', first, 50), row("one service's endpoints (mesh.setEndpoints path)", one, 1), row('10 services (1 %)', onePct, 10)],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchSnapshot({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
