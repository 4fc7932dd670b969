/**
 * What the orchestrator reads from its control plane while the demo runs: who is registered, and
 * whether a client has taken (ACKed) what a change made the control plane send it.
 */
import type { RunningControlPlane } from '../../server/control-plane-server.js';
import type { StatusDoc } from '../control-plane-status.js';

export const statusOf = (cp: RunningControlPlane) => cp.status() as unknown as StatusDoc;

/** Registered endpoints of `service` (addresses), up or leaving. */
export function registered(cp: RunningControlPlane, service: string): string[] {
  return statusOf(cp).services.find((s) => s.name === service)?.endpoints.filter((e) => e.source === 'registered').map((e) => e.address) ?? [];
}

/** The ACKed version of every type each client of `clusters` subscribes to, by client id. */
export type Acked = Map<string, string>;

export function ackedBy(cp: RunningControlPlane, clusters: readonly string[]): Acked {
  const out: Acked = new Map();
  for (const c of statusOf(cp).clients) {
    if (!clusters.includes(c.cluster)) continue;
    for (const t of c.types) out.set(`${c.id} ${t.typeUrl}`, t.acked?.version ?? '');
  }
  return out;
}

/** Every client of `clusters` has ACKed all it was sent, and something changed since `before`. */
export function tookChange(cp: RunningControlPlane, clusters: readonly string[], before: Acked): boolean {
  let changed = false;
  for (const c of statusOf(cp).clients) {
    if (!clusters.includes(c.cluster)) continue;
    for (const t of c.types) {
      if (t.sent && t.acked?.version !== t.sent.version) return false;
      if (before.get(`${c.id} ${t.typeUrl}`) !== (t.acked?.version ?? '')) changed = true;
    }
  }
  return changed;
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`demo: timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}
