/**
 * The control plane's inbound layer from Linkerd: each port the mesh serves has the policy its
 * `InboundServerPolicies.WatchPort` stream last delivered (translated by translate/inbound.ts),
 * as its own section of one Policy (sections never leak rules into each other's ports). Pure.
 *
 * Fail closed, as with xDS (control-plane/xds/inbound-layer.ts): a port whose first Server has not
 * been taken yet denies every request with the pending rule (503 + Retry-After, inbound/pending-port.ts).
 * A refused update leaves the port's last good policy in force (the caller keeps it).
 */
import { type Policy, type Rule, type Server, parsePolicy } from '../../policy/index.js';
import { pendingPortRule } from '../../inbound/pending-port.js';

export type LinkerdPortState = { readonly kind: 'pending' } | { readonly kind: 'present'; readonly policy: Policy };

/** The sections of one port's translated policy, every one scoped to that port. */
function sectionsOf(port: number, p: Policy): Server[] {
  const servers = p.servers.map((s) => ({ ...s, ports: [port] }));
  if (p.rules.length > 0) servers.unshift({ name: `linkerd-port:${port}`, ports: [port], accessPolicy: 'deny', routes: [], rules: [...p.rules] as Rule[] });
  return servers;
}

function pendingSection(port: number): Server {
  const name = pendingPortRule(port);
  return { name, ports: [port], accessPolicy: 'deny', routes: [], rules: [{ name, action: 'deny', from: [], to: [], when: [] }] };
}

export class LinkerdLayerBuilder {
  #key: unknown[] = [];
  #last: Policy | undefined;

  /** The layer for `ports` (undefined: no port served); the same object when nothing changed. */
  build(ports: ReadonlyMap<number, LinkerdPortState>): Policy | undefined {
    const sorted = [...ports].sort(([a], [b]) => a - b);
    const key = sorted.flatMap(([p, st]) => [p, st.kind === 'present' ? st.policy : 'pending']);
    if (key.length === this.#key.length && key.every((k, i) => k === this.#key[i])) return this.#last;
    const servers = sorted.flatMap(([port, st]) => (st.kind === 'pending' ? [pendingSection(port)] : sectionsOf(port, st.policy)));
    this.#last = servers.length === 0 ? undefined : parsePolicy({ rules: [], servers });
    this.#key = key;
    return this.#last;
  }
}
