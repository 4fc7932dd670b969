/**
 * validateSnapshot at the cost of what changed. It keeps an index of the last accepted snapshot
 * (hostname → owner, backend → the services whose splits name it, pending references per
 * service) and, for the next snapshot, re-checks only the services that are new or changed and
 * those whose splits name one of them or a removed one. The verdict is the same as
 * validateSnapshot's on the whole snapshot (test/control-plane/validate-incremental.test.ts
 * checks this on random update sequences); the first snapshot, and any complete one, is checked
 * whole. Pure; no I/O.
 */
import type { MeshSnapshot, ServiceSnapshot } from './snapshot.js';
import { type PendingReference, type SnapshotCheck, type SnapshotIssue, backendsOf, checkService, hostnameTaken, validateSnapshot } from './validate.js';

export interface IncrementalCheck extends SnapshotCheck {
  /** Makes `next` the base of the next check (call once it has been applied). */
  commit(): void;
}

export class SnapshotValidator {
  #base: MeshSnapshot | undefined;
  #owners = new Map<string, string>();
  #referrers = new Map<string, Set<string>>();
  #pendingBy = new Map<string, readonly PendingReference[]>();

  check(next: MeshSnapshot): IncrementalCheck {
    const base = this.#base;
    if (!base || next.complete) return this.#whole(next);
    const changed: ServiceSnapshot[] = [];
    const dirty = new Set<string>();
    for (const [name, svc] of next.services) {
      if (base.services.get(name) !== svc) {
        changed.push(svc);
        dirty.add(name);
      }
    }
    for (const name of base.services.keys()) if (!next.services.has(name)) dirty.add(name);
    const issues: SnapshotIssue[] = [];
    this.#checkHostnames(next, changed, dirty, issues);
    // Re-checked: what changed, and whoever names (or named) it in a split.
    const recheck = new Set<string>(changed.map((s) => s.name));
    for (const d of dirty) for (const r of this.#referrers.get(d) ?? []) if (next.services.has(r)) recheck.add(r);
    const pendingBy = new Map<string, readonly PendingReference[]>();
    for (const name of recheck) {
      const p: PendingReference[] = [];
      checkService(next, name, next.services.get(name)!, issues, p);
      pendingBy.set(name, p);
    }
    const pending = [...this.#pendingBy].filter(([name]) => !recheck.has(name) && next.services.has(name)).flatMap(([, p]) => p);
    for (const p of pendingBy.values()) pending.push(...p);
    return { issues, pending, commit: () => this.#commit(next, changed, dirty, pendingBy) };
  }

  /** A changed service's names must be free: not held by a service that stays, nor by another changed one. */
  #checkHostnames(next: MeshSnapshot, changed: readonly ServiceSnapshot[], dirty: ReadonlySet<string>, issues: SnapshotIssue[]): void {
    const claimed = new Map<string, string>();
    for (const svc of changed) {
      svc.hostnames.forEach((h, i) => {
        const stays = this.#owners.get(h);
        const other = stays !== undefined && stays !== svc.name && !dirty.has(stays) && next.services.has(stays) ? stays : claimed.get(h);
        if (other !== undefined && other !== svc.name) issues.push(hostnameTaken(svc.name, i, h, other));
        else claimed.set(h, svc.name);
      });
    }
  }

  #whole(next: MeshSnapshot): IncrementalCheck {
    const check = validateSnapshot(next);
    return {
      ...check,
      commit: () => {
        this.#owners = new Map();
        this.#referrers = new Map();
        this.#pendingBy = new Map();
        for (const [name, svc] of next.services) this.#index(name, svc);
        for (const p of check.pending) this.#pendingBy.set(p.service, [...(this.#pendingBy.get(p.service) ?? []), p]);
        this.#base = next;
      },
    };
  }

  #index(name: string, svc: ServiceSnapshot): void {
    for (const h of svc.hostnames) if (!this.#owners.has(h)) this.#owners.set(h, name);
    for (const b of backendsOf(svc)) {
      let set = this.#referrers.get(b);
      if (!set) this.#referrers.set(b, (set = new Set()));
      set.add(name);
    }
  }

  #unindex(name: string, svc: ServiceSnapshot): void {
    for (const h of svc.hostnames) if (this.#owners.get(h) === name) this.#owners.delete(h);
    for (const b of backendsOf(svc)) this.#referrers.get(b)?.delete(name);
  }

  #commit(next: MeshSnapshot, changed: readonly ServiceSnapshot[], dirty: ReadonlySet<string>, pendingBy: ReadonlyMap<string, readonly PendingReference[]>): void {
    const base = this.#base!;
    for (const name of dirty) {
      const old = base.services.get(name);
      if (old) this.#unindex(name, old);
      this.#pendingBy.delete(name);
    }
    for (const svc of changed) this.#index(svc.name, svc);
    for (const [name, p] of pendingBy) {
      if (p.length > 0) this.#pendingBy.set(name, p);
      else this.#pendingBy.delete(name);
    }
    this.#base = next;
  }
}
