import { type IncomingMessage } from 'node:http';
import { type TLSSocket } from 'node:tls';
import { type PeerIdentity } from '../identity/peer-identity.js';
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
import { checkTarget } from './target.js';
import { type AuditRecord } from '../policy/audit.js';
import { type MeshEvents } from '../telemetry/events.js';

export type { AuditRecord };
export type { AuthzStats } from '../telemetry/derive.js';

export interface PolicyGateOptions {
  defaultPolicy: DefaultPolicy;
  trustDomain: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  audit: (record: AuditRecord) => void;
  /** Where every decision is published, once (telemetry/events.ts): every count derives from it. */
  events: MeshEvents;
}

/** The gate's verdict on one request: admitted, or refused with a status and why. */
export type Verdict = { readonly ok: true } | { readonly ok: false; readonly status: 400 | 403; readonly reason: string };

const ADMITTED: Verdict = Object.freeze({ ok: true });

/**
 * Authorization before the app, transport-neutral (a responder per transport writes the refusal):
 * check the target and host (400 when malformed), evaluate the compiled policy against the
 * verified peer (403 when denied). The compiled policy is swapped as one reference: a request
 * reads it once, so no request sees a mix of two versions.
 */
export class PolicyGate {
  /** One reference per policy version: swapped whole, so a request never sees a mix. */
  #state: PolicyState;
  #version = 0;

  constructor(private readonly opts: PolicyGateOptions, policy?: unknown) {
    const p = policy === undefined ? loadPolicy({}) : toPolicy(policy);
    this.#state = { policy: p, compiled: this.#compile(p) };
  }

  #compile(policy: Policy): CompiledPolicy {
    return compilePolicy(policy, {
      defaultPolicy: this.opts.defaultPolicy,
      trustDomain: this.opts.trustDomain,
      namespace: this.opts.namespace,
      labels: this.opts.labels,
    });
  }

  /** Replaces the policy. Throws PolicyError (naming paths) and keeps the previous one when invalid. */
  set(policy: unknown): void {
    const p = toPolicy(policy);
    this.#state = { policy: p, compiled: this.#compile(p) };
    this.#version++;
  }

  get policy(): Policy {
    return this.#state.policy;
  }

  get version(): number {
    return this.#version;
  }

  /**
   * Judges one request from `peer`. `routing` says which spellings the app's router serves from
   * the same handler (policy/router-semantics.ts): DENY rules judge all of them, ALLOW rules only what
   * was sent. `recheck`: the request was admitted before under narrower semantics; only a denial
   * is counted.
   */
  judge(req: IncomingMessage, peer: PeerIdentity | null, routing: RouterSemantics = EXACT_ROUTING, recheck = false): Verdict {
    const t = checkTarget(req);
    const socket = req.socket as TLSSocket;
    if (!t.ok) {
      this.opts.events.malformed({ peer, sourceIp: socket.remoteAddress ?? '', method: req.method ?? '', reason: t.reason }, req);
      return { ok: false, status: 400, reason: t.reason };
    }
    const headers = req.headers;
    const method = req.method ?? '';
    const state = this.#state;
    const alike = state.compiled.usesAlike ? alikeOf(t.path, method, routing) : undefined;
    const request: PolicyRequest = {
      peer,
      sourceIp: socket.remoteAddress ?? '',
      method,
      path: t.path,
      host: t.host,
      port: socket.localPort ?? 0,
      ...(typeof socket.servername === 'string' && { sni: socket.servername }),
      header: (name) => {
        const v = headers[name];
        return Array.isArray(v) ? v.join(',') : v;
      },
      ...(alike && { alike }),
    };
    const decision = state.compiled.evaluate(request);
    if (recheck && decision.allowed) return ADMITTED;
    this.opts.events.authz(decision, request, req);
    if (decision.audit.length > 0) this.#audit(decision, request);
    return decision.allowed ? ADMITTED : { ok: false, status: 403, reason: `denied by ${decision.rule}` };
  }

  #audit(decision: Decision, request: PolicyRequest): void {
    this.opts.audit({
      time: new Date().toISOString(),
      type: 'sidecarless.audit',
      decision: decision.result,
      rule: decision.rule,
      audit: decision.audit,
      peer: request.peer?.spiffeId ?? null,
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
}

/** A Policy from loadPolicy, or a document (text, object, array) to load. */
function toPolicy(input: unknown): Policy {
  return loadPolicy(input as Parameters<typeof loadPolicy>[0]);
}
