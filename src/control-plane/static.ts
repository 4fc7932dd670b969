/**
 * The control plane of a mesh configured by its options: the first snapshot comes from
 * `createMesh` options, later ones from the watched policy file and the `mesh.set*` calls.
 *
 * Updates are synchronous and go through the listeners before they count: a listener that throws
 * (the mesh, rejecting an invalid snapshot) rejects the update, and `current()` stays the last
 * good snapshot. So `mesh.setSplit(...)` throws to its caller, and a rejected policy file keeps the
 * previous policy in force.
 */
import { type Clock, systemClock } from '../clock.js';
import type { Logger, MeshConfig } from '../config.js';
import { configModule } from '../config/zod.js';
import { ConfigError } from '../errors.js';
import { MeshClosedError } from '../outbound/errors.js';
import { PolicyFile, isPolicyPath } from '../inbound/policy-file.js';
import { type Policy, loadPolicy } from '../policy/index.js';
import { type ControlPlane, type ControlPlaneStatus, type LocalUpdates, type UpdateHint } from './control-plane.js';
import { serviceFromConfig } from './from-options.js';
import { type InboundSnapshot, type MeshSnapshot, type ServiceSnapshot } from './snapshot.js';
import { validateSnapshot } from './validate.js';

export type StaticStatus = ControlPlaneStatus;

/** The first snapshot of a mesh: its options, complete (a split to a service not listed is a typo). */
export function snapshotFromOptions(config: MeshConfig, policy: Policy): MeshSnapshot {
  const ctx = { trustDomain: config.trustDomain, namespace: config.namespace };
  const services = new Map<string, ServiceSnapshot>();
  for (const [name, svc] of Object.entries(config.outbound.services)) services.set(name, serviceFromConfig(name, svc, ctx));
  const inbound: InboundSnapshot = {
    mode: config.inbound.mode,
    defaultPolicy: config.inbound.defaultPolicy,
    defaultPolicyExplicit: config.inbound.defaultPolicyExplicit,
    policy,
  };
  return { version: '1', source: 'options', complete: true, inbound, services };
}

/** How the first snapshot's issues read: as options (`outbound.services.payments.split.0.service`). */
export function asOptionPath(p: string): string {
  return p.startsWith('inbound.') ? p : `outbound.services.${p}`;
}

/** Throws a ConfigError worded as an options error when the first snapshot is not valid. */
export function checkOptionsSnapshot(s: MeshSnapshot): void {
  const { issues } = validateSnapshot(s);
  if (issues.length === 0) return;
  const mapped = issues.map((i) => ({ path: asOptionPath(i.path), message: i.message }));
  throw new ConfigError(`invalid sidecarless options:\n${configModule().issueLines(mapped)}`, mapped);
}

/** A policy given inline (a Policy, a document), or none. A path is loaded by the control plane. */
function inlinePolicy(input: unknown): Policy {
  return input === undefined ? loadPolicy({}) : loadPolicy(input as Parameters<typeof loadPolicy>[0]);
}

export class StaticControlPlane implements ControlPlane, LocalUpdates {
  readonly name = 'options';
  #current: MeshSnapshot | undefined;
  #serial = 1;
  readonly #listeners = new Set<(s: MeshSnapshot, hint?: UpdateHint) => void>();
  #policyFile: PolicyFile | undefined;
  #lastPolicyError: string | undefined;
  #closed = false;

  private constructor(
    private readonly config: MeshConfig,
    private readonly logger: Logger,
  ) {}

  /** Builds the first snapshot; a policy file must load (else it rejects, leaving nothing open). */
  static async create(config: MeshConfig, logger: Logger, clock: Clock = systemClock): Promise<StaticControlPlane> {
    const cp = new StaticControlPlane(config, logger);
    const policy = config.inbound.policy;
    if (!isPolicyPath(policy)) {
      cp.#current = snapshotFromOptions(config, inlinePolicy(policy));
      checkOptionsSnapshot(cp.#current);
      return cp;
    }
    checkOptionsSnapshot(snapshotFromOptions(config, loadPolicy({})));
    cp.#policyFile = new PolicyFile(policy, {
      clock,
      apply: (text) => {
        const p = loadPolicy(text);
        if (cp.#current === undefined) cp.#current = snapshotFromOptions(config, p);
        else cp.update({ ...cp.#current, inbound: { ...cp.#current.inbound, policy: p } }, 'policy-file');
      },
      onApplied: () => {
        cp.#lastPolicyError = undefined;
        cp.logger.info(`policy reloaded from ${cp.#policyFile!.path}`);
      },
      onError: (err) => {
        cp.#lastPolicyError = err.message;
        cp.logger.error(err.message);
      },
    });
    await cp.#policyFile.start();
    return cp;
  }

  current(): MeshSnapshot {
    if (!this.#current) throw new Error('StaticControlPlane.current() before create() resolved');
    return this.#current;
  }

  /**
   * Offers `next` to the listeners; it becomes current only if none throws. `source` names who
   * asked ('api', 'policy-file'); the version is this control plane's next serial.
   */
  update(next: Omit<MeshSnapshot, 'version' | 'source'>, source: string, hint?: UpdateHint): MeshSnapshot {
    if (this.#closed) throw new MeshClosedError({ action: source === 'api' ? 'the update' : `the ${source} update` });
    const snapshot: MeshSnapshot = { ...next, version: String(this.#serial + 1), source };
    for (const l of this.#listeners) l(snapshot, hint);
    this.#serial++;
    this.#current = snapshot;
    return snapshot;
  }

  onUpdate(listener: (s: MeshSnapshot, hint?: UpdateHint) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  status(): StaticStatus {
    const file = this.#policyFile?.path;
    return { ...(file && { policyFile: file }), ...(this.#lastPolicyError !== undefined && { lastPolicyError: this.#lastPolicyError }) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#policyFile?.close();
    this.#listeners.clear();
  }
}
