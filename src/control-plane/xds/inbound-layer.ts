/**
 * The control plane's inbound policy layer and mode, from the inbound Listeners of the ports the
 * mesh serves (`xds.istio.io/grpc/lds/inbound/<IP>:<port>`, translate/inbound.ts). Pure.
 *
 * - Each port is its own section (a policy `Server` over that port): its Listener's DENY rules, its
 *   ALLOW rules with Istio's meaning (when any exists, a request must match one; allow-nothing
 *   denies all), LOG as audit. A port whose Listener has no ALLOW rule allows what its DENY rules do
 *   not refuse (no AuthorizationPolicy: allow), so ports never leak rules into each other.
 * - Fail closed: a port whose Listener has not been decided yet (asked for, neither delivered nor
 *   known not to exist) denies every request (Envoy and gRFC A36 servers do not serve before their
 *   Listener). A port whose Listener does not exist has no section: the local policy alone decides.
 * - The mode: strict when any delivered Listener requires a client certificate; the caller combines
 *   it with the local mode (the stricter wins).
 */
import { type Policy, type Rule, type Server, parsePolicy } from '../../policy/index.js';
import { type InboundSpec } from './translate/inbound.js';
import { pendingPortRule } from '../../inbound/pending-port.js';

export type PortState = { readonly kind: 'present'; readonly spec: InboundSpec } | { readonly kind: 'absent' } | { readonly kind: 'pending'; readonly listener: string };

export interface MeshLayer {
  /** undefined: no port is served yet, or none has a Listener (no control-plane layer). */
  readonly policy: Policy | undefined;
  /** Some delivered Listener requires a client certificate. */
  readonly strict: boolean;
}

/**
 * The name of the section that holds a port until its Listener is decided, and of its one rule (a
 * deny of everything): decisions, `stats().inbound.authz.byRule`, metrics and audit records name it,
 * never the local layer's `default:deny`.
 */
export const pendingSection = pendingPortRule;

function sectionOf(port: number, st: PortState): Server | undefined {
  if (st.kind === 'absent') return undefined;
  if (st.kind === 'pending') {
    const name = pendingSection(port);
    return { name, ports: [port], accessPolicy: 'deny', routes: [], rules: [{ name, action: 'deny', from: [], to: [], when: [] }] };
  }
  const own: readonly Rule[] = st.spec.policy.rules;
  const hasAllow = own.some((r) => r.action === 'allow');
  // STRICT on this port: a peer without a verified certificate is never served here, also on a
  // connection admitted while the mesh was permissive (Istio drains those; each of their requests is refused).
  const rules = st.spec.mode === 'strict' ? [strictRule(port), ...own] : own;
  return { name: st.spec.name, ports: [port], accessPolicy: hasAllow ? 'deny' : 'all-unauthenticated', routes: [], rules };
}

/** The rule a STRICT inbound Listener adds to its port's section: decisions and audit records name it. */
export const strictRuleName = (port: number) => `xds-strict-mtls:${port}`;

function strictRule(port: number): Rule {
  return { name: strictRuleName(port), action: 'deny', from: [{ unauthenticated: true }], to: [], when: [] };
}

export class MeshLayerBuilder {
  #lastKey: unknown[] = [];
  #last: MeshLayer = { policy: undefined, strict: false };

  /** The layer for `ports`; the same object as last time when nothing changed (the reconciler then compiles nothing). */
  build(ports: ReadonlyMap<number, PortState>): MeshLayer {
    const key = [...ports].sort(([a], [b]) => a - b).flatMap(([p, st]) => [p, st.kind, st.kind === 'present' ? st.spec : undefined]);
    if (key.length === this.#lastKey.length && key.every((k, i) => k === this.#lastKey[i])) return this.#last;
    const servers: Server[] = [];
    let strict = false;
    for (const [port, st] of [...ports].sort(([a], [b]) => a - b)) {
      const section = sectionOf(port, st);
      if (section) servers.push(section);
      if (st.kind === 'present' && st.spec.mode === 'strict') strict = true;
    }
    // Through the same validation as every policy document (a section the evaluator would read differently is an error here, not at run time).
    const policy = servers.length === 0 ? undefined : parsePolicy({ rules: [], servers });
    this.#lastKey = key;
    this.#last = { policy, strict };
    return this.#last;
  }
}
