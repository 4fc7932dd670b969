/**
 * The workloads registered with the embedded control plane, as Istio's auto-registration keeps
 * WorkloadEntries: a workload becomes an endpoint of its service once its ADS stream has ACKed the
 * inbound Listener of an address it serves (its policy is in force before any traffic is sent to
 * it), stays one while the stream is up, and is removed `graceMs` (default 10 s) after the stream
 * ends unless a stream of the same workload takes the address again first. Registrations restored
 * from `--state` after a restart get `restoreGraceMs` (default 60 s) to reconnect. Pure: the clock
 * is injected, persistence is the caller's (list() / restore()).
 */
import { type Clock, type Timer } from '../../clock.js';
import type { WorkloadLocality } from './workload-node.js';

export const DEFAULT_REGISTRATION_GRACE_MS = 10_000;
export const DEFAULT_RESTORE_GRACE_MS = 60_000;
/** Registrations kept at most (a bound on what a set of authenticated workloads can make us hold). */
export const MAX_REGISTRATIONS = 10_000;
/**
 * Registrations one identity holds at most: a single compromised workload (any declared service's
 * token) cannot fill MAX_REGISTRATIONS and keep every other service's replicas out.
 */
export const MAX_REGISTRATIONS_PER_IDENTITY = 1_000;

export interface Registration {
  readonly service: string;
  readonly namespace: string;
  /** `host:port` clients connect to. */
  readonly address: string;
  /** The SPIFFE ID the workload authenticated with: the identity clients require of it. */
  readonly identity: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality?: WorkloadLocality;
  /** The workload's name (NAME metadata), for status. */
  readonly name?: string;
}

export interface RegistrationStatus extends Registration {
  /** `up`: its stream is connected; `leaving`: removed at `removeAt` unless it comes back. */
  readonly state: 'up' | 'leaving';
  readonly since: number;
  readonly removeAt?: number;
  /** The ADS stream holding it (absent while leaving). */
  readonly client?: string;
}

export interface RegistryOptions {
  readonly clock: Clock;
  readonly graceMs?: number;
  readonly restoreGraceMs?: number;
  /** Called (synchronously) after every change of the endpoint set. */
  readonly onChange?: () => void;
}

interface Entry {
  reg: Registration;
  client: string | undefined;
  since: number;
  removeAt?: number;
  timer?: Timer;
}

const keyOf = (r: { service: string; namespace: string; address: string }) => `${r.namespace}/${r.service}/${r.address}`;

export class Registry {
  #entries = new Map<string, Entry>();
  /** Registrations held, by identity (MAX_REGISTRATIONS_PER_IDENTITY). */
  #perIdentity = new Map<string, number>();
  #version = 0;

  constructor(private readonly o: RegistryOptions) {}

  /** Bumped on every change: a cheap cache key for what is derived from the set. */
  get version(): number {
    return this.#version;
  }

  /**
   * `client` serves `reg.address`. Returns false (nothing changes) when the registry is full. A
   * registration another stream holds moves to this one (the newest stream of a workload wins).
   */
  register(client: string, reg: Registration): boolean {
    const key = keyOf(reg);
    const old = this.#entries.get(key);
    if (!old && this.#entries.size >= MAX_REGISTRATIONS) return false;
    if (old?.reg.identity !== reg.identity && (this.#perIdentity.get(reg.identity) ?? 0) >= MAX_REGISTRATIONS_PER_IDENTITY) return false;
    old?.timer?.cancel();
    const same = old !== undefined && old.client === client && sameRegistration(old.reg, reg);
    this.#set(key, { reg, client, since: same ? old.since : this.o.clock.now() });
    if (!same) this.#changed();
    return true;
  }

  /** The stream `client` ended: what it held leaves after the grace period. */
  disconnected(client: string): void {
    for (const [key, e] of this.#entries) if (e.client === client) this.#leave(key, e, this.o.graceMs ?? DEFAULT_REGISTRATION_GRACE_MS);
  }

  /** `client` no longer serves `address` (it unsubscribed its inbound Listener): it leaves at once. */
  withdraw(client: string, service: string, namespace: string, address: string): void {
    const key = keyOf({ service, namespace, address });
    const e = this.#entries.get(key);
    if (e?.client !== client) return;
    this.#remove(key);
  }

  /** Registrations saved before a restart: kept as leaving until their workloads reconnect. */
  restore(saved: readonly Registration[]): void {
    for (const reg of saved) {
      const key = keyOf(reg);
      if (this.#entries.has(key) || this.#entries.size >= MAX_REGISTRATIONS || (this.#perIdentity.get(reg.identity) ?? 0) >= MAX_REGISTRATIONS_PER_IDENTITY) continue;
      const e: Entry = { reg, client: undefined, since: this.o.clock.now() };
      this.#set(key, e);
      this.#leave(key, e, this.o.restoreGraceMs ?? DEFAULT_RESTORE_GRACE_MS);
    }
    if (saved.length > 0) this.#changed();
  }

  /** The registered endpoints of one service, up and leaving alike (a leaving one still serves), by address. */
  endpoints(service: string, namespace: string): Registration[] {
    const out: Registration[] = [];
    for (const e of this.#entries.values()) if (e.reg.service === service && e.reg.namespace === namespace) out.push(e.reg);
    return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  /** Every registration, for status and for saving under --state. */
  list(): RegistrationStatus[] {
    return [...this.#entries.values()].map((e) => ({
      ...e.reg,
      state: e.client === undefined ? 'leaving' : 'up',
      since: e.since,
      ...(e.removeAt !== undefined && { removeAt: e.removeAt }),
      ...(e.client !== undefined && { client: e.client }),
    }));
  }

  close(): void {
    for (const e of this.#entries.values()) e.timer?.cancel();
  }

  #leave(key: string, e: Entry, graceMs: number): void {
    e.client = undefined;
    e.timer?.cancel();
    e.removeAt = this.o.clock.now() + graceMs;
    e.timer = this.o.clock.setTimeout(() => this.#entries.get(key) === e && this.#remove(key), graceMs);
  }

  #remove(key: string): void {
    const e = this.#entries.get(key);
    e?.timer?.cancel();
    if (e) this.#count(e.reg.identity, -1);
    this.#entries.delete(key);
    this.#changed();
  }

  #set(key: string, e: Entry): void {
    const old = this.#entries.get(key);
    if (old) this.#count(old.reg.identity, -1);
    this.#count(e.reg.identity, 1);
    this.#entries.set(key, e);
  }

  #count(identity: string, by: 1 | -1): void {
    const n = (this.#perIdentity.get(identity) ?? 0) + by;
    if (n > 0) this.#perIdentity.set(identity, n);
    else this.#perIdentity.delete(identity);
  }

  #changed(): void {
    this.#version++;
    this.o.onChange?.();
  }
}

function sameRegistration(a: Registration, b: Registration): boolean {
  return (
    a.identity === b.identity &&
    a.name === b.name &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels) &&
    JSON.stringify(a.locality ?? null) === JSON.stringify(b.locality ?? null)
  );
}
