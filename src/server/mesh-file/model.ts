/**
 * A validated mesh file as the control plane serves it: immutable, with what the outbound
 * generator takes (static endpoints joined by the workloads that registered) and the policy that
 * applies to one workload. Pure.
 */
import { isIP } from 'node:net';
import type { Policy, Rule, Server } from '../../policy/index.js';
import { selectorMatches } from '../../policy/model.js';
import type { ServiceEndpoint, ServiceSpec, SplitBackend } from '../../outbound/settings.js';
import type { OutboundServiceInput } from '../xds/outbound-model.js';
import type { MeshProtocol } from './schema.js';
import type { ExternalIssuerConfig } from '../ca/issuers.js';

/** One service of the mesh file. */
export interface MeshServiceModel {
  readonly name: string;
  readonly namespace: string;
  /** `<name>.<namespace>`: how a split or the generator names it. */
  readonly key: string;
  readonly port: number;
  readonly protocol: MeshProtocol;
  /** spiffe://<trustDomain>/ns/<namespace>/sa/<name> unless the file gives one. */
  readonly identity: string;
  /** The static endpoints the file lists (possibly none: workloads register themselves). */
  readonly endpoints: readonly ServiceEndpoint[];
  readonly split?: readonly SplitBackend[];
  /** The typed service (control-plane/from-options.ts), endpoints = the static ones. */
  readonly spec: ServiceSpec;
}

/** The workload a policy is asked for. */
export interface WorkloadRef {
  readonly namespace: string;
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Gives the endpoints that registered for a service (the control plane's registry). */
export type RegisteredEndpoints = (service: MeshServiceModel) => readonly ServiceEndpoint[] | undefined;

/** Told of a registered endpoint left out of its service (the rest is served). */
export type RefusedEndpoint = (service: MeshServiceModel, endpoint: ServiceEndpoint, reason: string) => void;

/**
 * Why a registered endpoint cannot join `s`, or undefined. The Cluster names one set of SPIFFE IDs
 * for all its endpoints (the service's identity): a workload presenting another would make the
 * whole generation fail (one bad registration would take every service down), so it is left out.
 */
export function registrationProblem(s: MeshServiceModel, e: ServiceEndpoint): string | undefined {
  const ids = e.identities ?? [e.identity];
  if (ids.length !== 1 || ids[0] !== s.identity || e.identity !== s.identity) {
    return `presents ${JSON.stringify(ids)}, not the service's identity ${s.identity}: run it with that identity, or set the service's identity in the mesh file`;
  }
  // As the generator reads an endpoint (server/xds/outbound-cluster.ts socketOf): an IP literal and a port.
  const m = /^(?:\[([^\]%]+)\]|([^:[\]%]+)):([1-9]\d{0,4})$/.exec(e.address);
  const host = m?.[1] ?? m?.[2] ?? '';
  const family = isIP(host);
  if (!m || family === 0 || (m[1] !== undefined) !== (family === 6) || Number(m[3]) > 65535 || /^[0.:]+$/.test(host)) {
    return `registered at ${JSON.stringify(e.address.slice(0, 100))}, not ip:port or [ipv6]:port of a reachable address: register the address it listens on`;
  }
  if (!Number.isInteger(e.weight) || e.weight < 1) return `has weight ${e.weight}: an endpoint's weight is a whole number from 1`;
  return undefined;
}

export interface MeshModel {
  /** Content hash of the mesh file and its policy files: the same text gives the same version. */
  readonly version: string;
  /** The mesh file as it was named (for status and messages). */
  readonly file: string;
  readonly trustDomain: string;
  readonly services: readonly MeshServiceModel[];
  /** Every policy file's rules, merged (rule names made unique across files). */
  readonly policy: Policy;
  /** The policy files the mesh file names, as the loader resolved them. */
  readonly policyFiles: readonly string[];
  /** External token issuers (tokenIssuers), jwksFile resolved as the policy files are. */
  readonly tokenIssuers: readonly ExternalIssuerConfig[];
  /**
   * What generateOutboundResources takes: every service, endpoints = static ∪ registered (static
   * first, one per address). A registered endpoint that could not be served (another identity than
   * the service's, weight 0, not ip:port) is left out and passed to `refused`.
   */
  outbound(registered?: RegisteredEndpoints, refused?: RefusedEndpoint): OutboundServiceInput[];
  /** The rules and servers that apply to `workload` (namespace and label selectors decided as compilePolicy decides them). */
  policyFor(workload: WorkloadRef): Policy;
  service(name: string, namespace: string): MeshServiceModel | undefined;
}

function applies(x: Pick<Rule | Server, 'namespace' | 'selector'>, w: WorkloadRef): boolean {
  if (x.namespace !== undefined && x.namespace !== w.namespace) return false;
  return x.selector === undefined || selectorMatches(x.selector, w.labels);
}

/** Static endpoints first; a registered endpoint at an address already listed is left out. */
export function joinEndpoints(statics: readonly ServiceEndpoint[], registered: readonly ServiceEndpoint[] | undefined): readonly ServiceEndpoint[] {
  if (!registered || registered.length === 0) return statics;
  const seen = new Set(statics.map((e) => e.address));
  const out = [...statics];
  for (const e of registered) {
    if (seen.has(e.address)) continue;
    seen.add(e.address);
    out.push(e);
  }
  return out;
}

export interface ModelParts {
  readonly version: string;
  readonly file: string;
  readonly trustDomain: string;
  readonly services: readonly MeshServiceModel[];
  readonly policy: Policy;
  readonly policyFiles: readonly string[];
  readonly tokenIssuers?: readonly ExternalIssuerConfig[];
}

export function meshModel(p: ModelParts): MeshModel {
  const byKey = new Map(p.services.map((s) => [s.key, s]));
  const model: MeshModel = {
    version: p.version,
    file: p.file,
    trustDomain: p.trustDomain,
    services: Object.freeze([...p.services]),
    policy: p.policy,
    policyFiles: Object.freeze([...p.policyFiles]),
    tokenIssuers: Object.freeze([...(p.tokenIssuers ?? [])]),
    outbound(registered, refused) {
      return p.services.map((s) => {
        const ok = registered?.(s)?.filter((e) => {
          const why = registrationProblem(s, e);
          if (why !== undefined) refused?.(s, e, why);
          return why === undefined;
        });
        return { spec: { ...s.spec, endpoints: joinEndpoints(s.endpoints, ok) }, port: s.port };
      });
    },
    policyFor(w) {
      return { rules: p.policy.rules.filter((r) => applies(r, w)), servers: p.policy.servers.filter((s) => applies(s, w)) };
    },
    service(name, namespace) {
      return byKey.get(`${name}.${namespace}`);
    },
  };
  return Object.freeze(model);
}
