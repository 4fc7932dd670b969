import { EXACT_ROUTING, type RouterSemantics, alikeOf } from '../policy/router-semantics.js';
import {
  type CompiledPolicy,
  type Decision,
  type DefaultPolicy,
  type Policy,
  type PolicyRequest,
  compilePolicy,
  loadPolicy,
} from '../policy/index.js';
import { type AuditRecord } from '../policy/audit.js';
import { at, policyError } from '../policy/issues.js';
import { PolicyError } from '../errors.js';
import { type MalformedSubject, type MeshEvents } from '../telemetry/events.js';

export type { AuditRecord };
export type { AuthzStats } from '../telemetry/derive.js';

/**
 * `S`: what a transport publishes with each decision (its request object, for the request's
 * span); the gate itself never looks at it.
 */
export interface PolicyGateOptions<S = unknown> {
  defaultPolicy: DefaultPolicy;
  trustDomain: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  audit: (record: AuditRecord) => void;
  /** Where every decision is published, once (telemetry/events.ts): every count derives from it. */
  events: MeshEvents;
}

export interface DecideOptions<S = unknown> {
  /**
   * Which spellings the app's router serves from the same handler (policy/router-semantics.ts):
   * DENY rules judge all of them, ALLOW rules only what was sent. Default: exact.
   */
  routing?: RouterSemantics;
  /** The request was admitted before under narrower semantics: only a denial is counted and told. */
  recheck?: boolean;
  /** Handed to onDecision with the decision (the transport's request). */
  subject?: S;
}

/**
 * Authorization before the app, transport-neutral: `decide(PolicyRequest)` evaluates the compiled
 * policy against the verified peer of a request every transport describes the same way (peer,
 * method, normalized path, host, port, SNI, headers). Checking the request's own shape and writing
 * a refusal are the transport's (http1/ for node:http: 400 for a malformed target, 403 for a
 * denial). The compiled policy is swapped as one reference: a request reads it once, so no request
 * sees a mix of two versions (or of two default policies).
 */
export class PolicyGate<S = unknown> {
  /** One reference per policy version: swapped whole, so a request never sees a mix. */
  #state: PolicyState;
  #version = 0;
  #defaultPolicy: DefaultPolicy;

  constructor(private readonly opts: PolicyGateOptions<S>, policy?: unknown) {
    this.#defaultPolicy = opts.defaultPolicy;
    const p = policy === undefined ? loadPolicy({}) : toPolicy(policy);
    this.#state = { policy: p, compiled: this.#compile(p, this.#defaultPolicy) };
  }

  #compile(policy: Policy, defaultPolicy: DefaultPolicy): CompiledPolicy {
    return compilePolicy(policy, {
      defaultPolicy,
      trustDomain: this.opts.trustDomain,
      namespace: this.opts.namespace,
      labels: this.opts.labels,
    });
  }

  /**
   * Replaces the policy and, when `meshPolicy` is given, the control plane's layer beside it (both
   * must allow a request); without it the gate has one layer, as before. Both are compiled before
   * either is swapped: throws PolicyError (naming paths; under `meshPolicy` for that layer) and
   * keeps the previous state when either is invalid.
   */
  set(policy: unknown, meshPolicy?: Policy): void {
    const p = toPolicy(policy);
    const compiled = this.#compile(p, this.#defaultPolicy);
    const mesh = meshPolicy === undefined ? undefined : this.#meshLayer(meshPolicy);
    this.#state = mesh === undefined ? { policy: p, compiled } : { policy: p, compiled, mesh };
    this.#version++;
  }

  /** The control plane's layer, compiled with its own default: allow when no rule decides. */
  #meshLayer(policy: Policy): MeshLayer {
    try {
      const p = loadPolicy(policy);
      return { policy: p, compiled: this.#compile(p, MESH_DEFAULT_POLICY), memo: new Map(), memoSize: { n: 0 } };
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      throw policyError(e.issues.map((i) => ({ ...i, path: at('meshPolicy', i.path) })), 'invalid control-plane policy (inbound.meshPolicy)');
    }
  }

  /** What decides when no rule applies (all-authenticated, deny, …). */
  get defaultPolicy(): DefaultPolicy {
    return this.#defaultPolicy;
  }

  /**
   * Replaces the default policy: the policy in force is compiled again with it and swapped as one
   * reference (the policy version stays: the document did not change). Throws and keeps the
   * previous state when it does not compile.
   */
  setDefaultPolicy(defaultPolicy: DefaultPolicy): void {
    if (defaultPolicy === this.#defaultPolicy) return;
    const { policy, mesh } = this.#state;
    const compiled = this.#compile(policy, defaultPolicy);
    this.#state = mesh === undefined ? { policy, compiled } : { policy, compiled, mesh };
    this.#defaultPolicy = defaultPolicy;
  }

  get policy(): Policy {
    return this.#state.policy;
  }

  /** The control plane's policy in force beside the local one, if any. */
  get meshPolicy(): Policy | undefined {
    return this.#state.mesh?.policy;
  }

  get version(): number {
    return this.#version;
  }

  /**
   * Decides one request: allowed or denied, by which rule, which audit rules matched. Counted,
   * told to onDecision and audited (a recheck that still admits is neither: it was counted when
   * first admitted). When the policy uses router semantics and the request carries no `alike`,
   * the spellings `routing` serves alike are derived here from its path and method.
   */
  decide(request: PolicyRequest, options: DecideOptions<S> = {}): Decision {
    const state = this.#state;
    const mesh = state.mesh;
    const routing = options.routing ?? EXACT_ROUTING;
    const usesAlike = state.compiled.usesAlike || mesh?.compiled.usesAlike === true;
    const alike = request.alike === undefined && usesAlike ? alikeOf(request.path, request.method, routing) : undefined;
    const req: PolicyRequest = alike ? { ...request, alike } : request;
    const local = state.compiled.evaluate(req);
    const decision = mesh === undefined ? local : combine(local, mesh.compiled.evaluate(req), mesh);
    if (options.recheck && decision.allowed) return decision;
    this.opts.events.authz(decision, req, options.subject as object | undefined);
    if (decision.audit.length > 0) this.#audit(decision, req);
    return decision;
  }

  /**
   * The spellings `routing` serves alike for this path and method, when the policy in force needs
   * them (undefined otherwise): a transport that builds its PolicyRequest with them saves `decide`
   * a copy of the request.
   */
  alikeFor(path: string, method: string, routing: RouterSemantics): PolicyRequest['alike'] {
    const { compiled, mesh } = this.#state;
    return compiled.usesAlike || mesh?.compiled.usesAlike === true ? alikeOf(path, method, routing) : undefined;
  }

  /** A request its transport refused as malformed before it could be judged (published as such). */
  malformed(subject: MalformedSubject, req?: S): void {
    this.opts.events.malformed(subject, req as object | undefined);
  }


  #audit(decision: Decision, request: PolicyRequest): void {
    this.opts.audit({
      time: new Date().toISOString(),
      type: 'sidecarless.audit',
      decision: decision.result,
      rule: decision.rule,
      ...(decision.layer !== undefined && { layer: decision.layer, meshRule: decision.meshRule }),
      audit: decision.audit,
      peer: request.peer?.id ?? null,
      ...(request.peer?.authenticatedBy && { authenticatedBy: request.peer.authenticatedBy }),
      sourceIp: request.sourceIp,
      method: request.method,
      path: request.path,
      host: request.host,
    });
  }

}

interface PolicyState {
  readonly policy: Policy;
  readonly compiled: CompiledPolicy;
  /** The control plane's layer, when one is in force: read from the same state as the local one. */
  readonly mesh?: MeshLayer;
}

/** The control plane's layer: no rule decides → allow (Istio: no AuthorizationPolicy allows). */
const MESH_DEFAULT_POLICY: DefaultPolicy = 'all-unauthenticated';

interface MeshLayer {
  readonly policy: Policy;
  readonly compiled: CompiledPolicy;
  /** Combined decisions by (local, mesh) decision pair: decisions are precomputed, so are these (up to MEMO_LIMIT). */
  readonly memo: Map<Decision, Map<Decision, Decision>>;
  readonly memoSize: { n: number };
}

const MEMO_LIMIT = 4096;

/**
 * One decision from both layers: the first that denied decides (local, then mesh), else the local
 * allow; `layer` names which, `meshRule` the control plane's deciding rule, `audit` both layers'.
 * Frozen, and memoized when neither carries audit names (those are per request).
 */
function combine(local: Decision, mesh: Decision, layer: MeshLayer): Decision {
  const cacheable = local.audit.length === 0 && mesh.audit.length === 0;
  const byMesh = cacheable ? layer.memo.get(local) : undefined;
  const hit = byMesh?.get(mesh);
  if (hit !== undefined) return hit;
  const base = !local.allowed || mesh.allowed ? local : mesh;
  const audit = local.audit.length === 0 ? mesh.audit : mesh.audit.length === 0 ? local.audit : Object.freeze([...local.audit, ...mesh.audit]);
  const d: Decision = Object.freeze({ ...base, audit, layer: base === local ? 'local' : 'mesh', meshRule: mesh.rule });
  if (cacheable && layer.memoSize.n < MEMO_LIMIT) {
    let m = byMesh;
    if (m === undefined) layer.memo.set(local, (m = new Map()));
    m.set(mesh, d);
    layer.memoSize.n++;
  }
  return d;
}

/** A Policy from loadPolicy, or a document (text, object, array) to load. */
function toPolicy(input: unknown): Policy {
  return loadPolicy(input as Parameters<typeof loadPolicy>[0]);
}
