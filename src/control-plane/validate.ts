/**
 * Every cross-reference of a snapshot, checked once, whoever produced it (options, `mesh.set*`,
 * xDS, the mesh file). Pure.
 *
 * - A split backend is the service itself, or another service that has no split of its own (one
 *   level: no cycles, no chains). A backend the snapshot does not hold is an error in a complete
 *   snapshot (a typo in the options) and *pending* in a live one (the control plane has not
 *   delivered it yet): requests that need it wait for it, bounded (docs/control-planes.md).
 * - A service whose endpoints have not been delivered is pending likewise.
 * - A hostname belongs to one service; an endpoint (address + identity) is listed once; route
 *   regexes compile; a split has a backend with weight > 0.
 */
import { parseWorkloadName } from '../identity/name.js';
import { parseAddress } from '../outbound/address.js';
import { serverNameProblem } from '../outbound/server-name.js';
import type { SplitBackend } from '../outbound/settings.js';
import type { MeshSnapshot, ServiceSnapshot } from './snapshot.js';

export interface SnapshotIssue {
  /** Dotted path inside the snapshot, from the service: `payments.split.0.service`. */
  readonly path: string;
  readonly message: string;
}

/** Something a live control plane has not delivered yet. */
export interface PendingReference {
  /** The service that needs it. */
  readonly service: string;
  /** What is missing: a service (split backend), or the endpoints of `service` itself. */
  readonly kind: 'service' | 'endpoints';
  readonly missing: string;
  readonly path: string;
}

export interface SnapshotCheck {
  readonly issues: readonly SnapshotIssue[];
  readonly pending: readonly PendingReference[];
}

export function validateSnapshot(s: MeshSnapshot): SnapshotCheck {
  const issues: SnapshotIssue[] = [];
  const pending: PendingReference[] = [];
  const owners = new Map<string, string>();
  for (const [name, svc] of s.services) {
    checkService(s, name, svc, issues, pending);
    svc.hostnames.forEach((h, i) => {
      const owner = owners.get(h);
      if (owner === undefined) owners.set(h, name);
      else if (owner !== name) issues.push(hostnameTaken(name, i, h, owner));
    });
  }
  return { issues, pending };
}

export function hostnameTaken(name: string, i: number, h: string, owner: string): SnapshotIssue {
  return { path: `${name}.hostnames.${i}`, message: `"${h}" is also a hostname of "${owner}": a name routes to one service` };
}

/**
 * Everything about one service of `s` but hostname ownership (the caller's, across services): its
 * own checks (cached per object), its endpoints' delivery, and its splits' references.
 */
export function checkService(s: MeshSnapshot, name: string, svc: ServiceSnapshot, issues: SnapshotIssue[], pending: PendingReference[]): void {
  if (svc.name !== name) issues.push({ path: name, message: `is keyed "${name}" but named "${svc.name}"` });
  issues.push(...localIssues(svc));
  if (svc.endpoints === undefined) {
    if (s.complete) issues.push({ path: `${name}.endpoints`, message: 'are missing' });
    else pending.push({ service: name, kind: 'endpoints', missing: name, path: `${name}.endpoints` });
  }
  if (svc.split) checkSplit(s, name, svc.split, `${name}.split`, issues, pending);
  svc.routes.forEach((r, i) => {
    if (r.split) checkSplit(s, name, r.split, `${name}.routes.${i}.split`, issues, pending);
  });
}

/** The services `svc`'s splits name (itself excluded). */
export function backendsOf(svc: ServiceSnapshot): string[] {
  const out: string[] = [];
  const add = (split: ServiceSnapshot['split']) => split?.forEach((b) => b.service !== svc.name && !out.includes(b.service) && out.push(b.service));
  add(svc.split);
  for (const r of svc.routes) add(r.split);
  return out;
}

/**
 * What can be checked from one service alone (hostname syntax, endpoints, regexes, split
 * weights), remembered per ServiceSnapshot object: a snapshot that shares a service with the
 * previous one does not check it again, so validation costs what changed.
 */
const localCache = new WeakMap<ServiceSnapshot, readonly SnapshotIssue[]>();

function localIssues(svc: ServiceSnapshot): readonly SnapshotIssue[] {
  let issues = localCache.get(svc);
  if (issues) return issues;
  const out: SnapshotIssue[] = [];
  svc.hostnames.forEach((h, i) => {
    if (!validHostname(h)) out.push({ path: `${svc.name}.hostnames.${i}`, message: `"${h}" is not a host name (lower case, optional :port, none after ".*"; "*." prefix, ".*" suffix or "*" as wildcards)` });
  });
  checkEndpoints(svc, out);
  svc.routes.forEach((r, i) => checkRegexes(r.match, `${svc.name}.routes.${i}.match`, out));
  if (svc.split) checkWeights(svc.split, `${svc.name}.split`, out);
  svc.routes.forEach((r, i) => r.split && checkWeights(r.split, `${svc.name}.routes.${i}.split`, out));
  issues = out;
  localCache.set(svc, issues);
  return issues;
}

/** True when the service sends (some of) its traffic to other services. */
export function hasSplit(svc: ServiceSnapshot): boolean {
  return svc.split !== undefined || svc.routes.some((r) => r.split !== undefined);
}

function checkWeights(split: readonly SplitBackend[], base: string, issues: SnapshotIssue[]): void {
  if (split.length === 0 || !split.some((b) => b.weight > 0)) issues.push({ path: base, message: 'at least one backend needs a weight > 0' });
  const seen = new Set<string>();
  split.forEach((b, i) => {
    if (seen.has(b.service)) issues.push({ path: `${base}.${i}.service`, message: `"${b.service}" is listed twice` });
    seen.add(b.service);
    if (!(b.weight >= 0) || !Number.isInteger(b.weight)) issues.push({ path: `${base}.${i}.weight`, message: 'must be an integer >= 0' });
  });
}

function checkSplit(s: MeshSnapshot, name: string, split: readonly SplitBackend[], base: string, issues: SnapshotIssue[], pending: PendingReference[]): void {
  split.forEach((b, i) => {
    if (b.service === name) return;
    const path = `${base}.${i}.service`;
    const backend = s.services.get(b.service);
    if (!backend) {
      if (s.complete) issues.push({ path, message: `"${b.service}" is not a mesh service; add it to outbound.services` });
      else pending.push({ service: name, kind: 'service', missing: b.service, path });
    } else if (hasSplit(backend)) {
      issues.push({ path, message: `"${b.service}" has a split itself: a backend must be a service with endpoints` });
    }
  });
}

const LABELS = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

/** `name[:port]`, `*.suffix[:port]`, `prefix.*`, `*`. */
export function validHostname(h: string): boolean {
  if (h === '*') return true;
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(h)!;
  let name = m[1]!;
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return false;
  if (name.startsWith('*')) name = name.slice(1).replace(/^[.-]/, '');
  else if (name.endsWith('.*')) {
    // Envoy takes no port after a prefix wildcard ("shop.*:8080"): the router would read it literally.
    if (m[2] !== undefined) return false;
    name = name.slice(0, -2);
  }
  return name.length > 0 && name.length <= 253 && LABELS.test(name);
}

function checkEndpoints(svc: ServiceSnapshot, issues: SnapshotIssue[]): void {
  const seen = new Set<string>();
  svc.endpoints?.forEach((e, i) => {
    const path = `${svc.name}.endpoints.${i}`;
    if (parseAddress(e.address) === undefined) issues.push({ path: `${path}.address`, message: 'must be host:port (IPv6 as [::1]:port), port 1-65535' });
    const idProblem = nameProblem(e.identity);
    if (idProblem) issues.push({ path: `${path}.identity`, message: idProblem });
    if (e.serverName !== undefined) {
      const sni = serverNameProblem(e.serverName);
      if (sni) issues.push({ path: `${path}.serverName`, message: sni });
    }
    const key = `${e.address} ${e.identity}${e.serverName !== undefined ? ` ${e.serverName}` : ''}`;
    if (seen.has(key)) issues.push({ path: `${path}.address`, message: `${e.address} is listed twice` });
    seen.add(key);
    if (!(e.weight >= 0) || !Number.isInteger(e.weight)) issues.push({ path: `${path}.weight`, message: 'must be an integer >= 0' });
  });
}

function checkRegexes(m: ServiceSnapshot['routes'][number]['match'], base: string, issues: SnapshotIssue[]): void {
  const tryRegex = (re: string, path: string) => {
    try {
      new RegExp(re);
    } catch (e) {
      issues.push({ path, message: `invalid regular expression: ${(e as Error).message}` });
    }
  };
  if (m.path && 'regex' in m.path) tryRegex(m.path.regex, `${base}.path.regex`);
  m.headers?.forEach((h, i) => {
    if ('regex' in h) tryRegex(h.regex, `${base}.headers.${i}.regex`);
  });
}

/** Why an endpoint identity is not a workload SPIFFE ID or DNS-like identity, or undefined. */
function nameProblem(id: string): string | undefined {
  try {
    parseWorkloadName(id);
    return undefined;
  } catch (e) {
    return `must be a workload SPIFFE ID or a DNS-like identity: ${(e as Error).message}`;
  }
}
