/**
 * Istio `security.istio.io/v1` and `v1beta1` `AuthorizationPolicy` → native rules.
 *
 * - ALLOW/DENY/AUDIT map to allow/deny/audit rules; CUSTOM, `provider`, `targetRef(s)`, JWT
 *   (`requestPrincipals`, `request.auth.*`) are refused with what to do instead.
 * - `spec: {}` / an ALLOW policy without rules becomes an allow rule that matches nothing (so the
 *   workload is deny-by-default); a DENY or AUDIT policy without rules matches nothing and is dropped.
 * - A policy in the root namespace (default `istio-system`) applies mesh-wide; elsewhere only when
 *   the mesh's namespace equals it. `selector.matchLabels` is matched against the mesh's labels.
 * - Principals `td/ns/x/sa/y` become `spiffe://td/ns/x/sa/y` (prefix/suffix `*` kept).
 * - `remoteIpBlocks`/`remote.ip` equal the socket source address (no trusted proxies in process).
 */
import { z } from 'zod';
import { parseCidr } from '../cidr.js';
import { at, policyError, type PolicyIssue } from '../issues.js';
import { checkPathPattern, type Condition, type Operation, type RuleAction, type Source } from '../model.js';
import { checkStarPattern } from '../patterns.js';
import { MetadataSchema, strictParse, type K8sDoc } from './k8s.js';
import type { NativeRule } from './native.js';

export type { NativeRule };

const strings = z.array(z.string()).optional();
const SourceSchema = z.strictObject({
  principals: strings,
  notPrincipals: strings,
  requestPrincipals: strings,
  notRequestPrincipals: strings,
  namespaces: strings,
  notNamespaces: strings,
  ipBlocks: strings,
  notIpBlocks: strings,
  remoteIpBlocks: strings,
  notRemoteIpBlocks: strings,
});
const OperationSchema = z.strictObject({
  hosts: strings,
  notHosts: strings,
  ports: strings,
  notPorts: strings,
  methods: strings,
  notMethods: strings,
  paths: strings,
  notPaths: strings,
});
const ConditionSchema = z.strictObject({ key: z.string().min(1), values: strings, notValues: strings });
const RuleSchema = z.strictObject({
  from: z.array(z.strictObject({ source: SourceSchema.optional() })).optional(),
  to: z.array(z.strictObject({ operation: OperationSchema.optional() })).optional(),
  when: z.array(ConditionSchema).optional(),
});
const SpecSchema = z.strictObject({
  selector: z.strictObject({ matchLabels: z.record(z.string(), z.string()).optional() }).optional(),
  targetRef: z.unknown().optional(),
  targetRefs: z.unknown().optional(),
  action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
  provider: z.unknown().optional(),
  rules: z.array(RuleSchema).optional(),
});
const PolicySchema = z.strictObject({
  apiVersion: z.enum(['security.istio.io/v1', 'security.istio.io/v1beta1']),
  kind: z.literal('AuthorizationPolicy'),
  metadata: MetadataSchema,
  spec: SpecSchema.optional(),
  status: z.unknown().optional(),
});

const JWT = 'JWT is not supported: terminate and verify JWT in the app, or authorize by workload identity (principals)';

class Issues {
  readonly list: PolicyIssue[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

function nonEmpty(v: string[] | undefined): v is string[] {
  return v !== undefined && v.length > 0;
}

/** `cluster.local/ns/a/sa/b` → `spiffe://cluster.local/ns/a/sa/b`, keeping `*` forms. */
export function istioPrincipal(p: string): string {
  if (p === '*' || p.startsWith('*') || p.startsWith('spiffe://')) return p;
  return `spiffe://${p}`;
}

function principals(v: string[], path: string, issues: Issues): string[] {
  v.forEach((p, i) => {
    const e = checkStarPattern(p);
    if (e) issues.add(at(path, i), e);
  });
  return v.map(istioPrincipal);
}

function patterns(v: string[], path: string, issues: Issues): string[] {
  v.forEach((p, i) => {
    const e = checkStarPattern(p);
    if (e) issues.add(at(path, i), e);
  });
  return v;
}

function cidrs(v: string[], path: string, issues: Issues): string[] {
  v.forEach((c, i) => {
    const r = parseCidr(c);
    if (typeof r === 'string') issues.add(at(path, i), r);
  });
  return v;
}

function ports(v: string[], path: string, issues: Issues): number[] {
  return v.map((p, i) => {
    const n = /^[0-9]{1,5}$/.test(p) ? Number(p) : NaN;
    if (!(n >= 1 && n <= 65535)) issues.add(at(path, i), `"${p}" is not a port number (1-65535)`);
    return n;
  });
}

function methods(v: string[], path: string, issues: Issues): string[] {
  v.forEach((m, i) => {
    if (m !== '*' && m.includes('*')) issues.add(at(path, i), `"${m}": method wildcards are not supported; list the methods`);
  });
  return v;
}

function paths(v: string[], path: string, issues: Issues): string[] {
  v.forEach((p, i) => {
    const e = checkPathPattern(p);
    if (e) issues.add(at(path, i), e);
  });
  return v;
}

function hosts(v: string[], path: string, issues: Issues): string[] {
  v.forEach((h, i) => {
    const e = checkStarPattern(h);
    if (e) issues.add(at(path, i), e);
    else if (/:[0-9]+$/.test(h)) issues.add(at(path, i), `"${h}": a host with a port is not supported; use the host alone and "ports"`);
  });
  return v;
}

function source(s: z.output<typeof SourceSchema>, path: string, issues: Issues): Source {
  if (nonEmpty(s.requestPrincipals)) issues.add(at(path, 'requestPrincipals'), JWT);
  if (nonEmpty(s.notRequestPrincipals)) issues.add(at(path, 'notRequestPrincipals'), JWT);
  const out: { -readonly [K in keyof Source]: Source[K] } = {};
  if (nonEmpty(s.principals)) out.identities = principals(s.principals, at(path, 'principals'), issues);
  if (nonEmpty(s.notPrincipals)) out.notIdentities = principals(s.notPrincipals, at(path, 'notPrincipals'), issues);
  if (nonEmpty(s.namespaces)) out.namespaces = patterns(s.namespaces, at(path, 'namespaces'), issues);
  if (nonEmpty(s.notNamespaces)) out.notNamespaces = patterns(s.notNamespaces, at(path, 'notNamespaces'), issues);
  const ipAllow = [...(s.ipBlocks ?? [])];
  if (nonEmpty(s.ipBlocks) && nonEmpty(s.remoteIpBlocks)) {
    issues.add(at(path, 'remoteIpBlocks'), 'ipBlocks and remoteIpBlocks together are not supported: in process both are the socket address; use one');
  }
  ipAllow.push(...(s.remoteIpBlocks ?? []));
  const ipDeny = [...(s.notIpBlocks ?? []), ...(s.notRemoteIpBlocks ?? [])];
  if (ipAllow.length) out.ipBlocks = cidrs(ipAllow, at(path, nonEmpty(s.ipBlocks) ? 'ipBlocks' : 'remoteIpBlocks'), issues);
  if (ipDeny.length) out.notIpBlocks = cidrs(ipDeny, at(path, nonEmpty(s.notIpBlocks) ? 'notIpBlocks' : 'notRemoteIpBlocks'), issues);
  return out;
}

function operation(o: z.output<typeof OperationSchema>, path: string, issues: Issues): Operation {
  const out: { -readonly [K in keyof Operation]: Operation[K] } = {};
  if (nonEmpty(o.hosts)) out.hosts = hosts(o.hosts, at(path, 'hosts'), issues);
  if (nonEmpty(o.notHosts)) out.notHosts = hosts(o.notHosts, at(path, 'notHosts'), issues);
  if (nonEmpty(o.ports)) out.ports = ports(o.ports, at(path, 'ports'), issues);
  if (nonEmpty(o.notPorts)) out.notPorts = ports(o.notPorts, at(path, 'notPorts'), issues);
  if (nonEmpty(o.methods)) out.methods = methods(o.methods, at(path, 'methods'), issues);
  if (nonEmpty(o.notMethods)) out.notMethods = methods(o.notMethods, at(path, 'notMethods'), issues);
  if (nonEmpty(o.paths)) out.paths = paths(o.paths, at(path, 'paths'), issues);
  if (nonEmpty(o.notPaths)) out.notPaths = paths(o.notPaths, at(path, 'notPaths'), issues);
  return out;
}

const HEADER_KEY = /^request\.headers\[([!#$%&'*+.^_`|~0-9A-Za-z-]+)\]$/;

function condition(c: z.output<typeof ConditionSchema>, path: string, issues: Issues): Condition {
  const values = c.values ?? [];
  const notValues = c.notValues ?? [];
  if (values.length === 0 && notValues.length === 0) issues.add(path, 'a condition needs values or notValues');
  const vp = at(path, 'values');
  const np = at(path, 'notValues');
  const out: Record<string, unknown> = {};
  const pair = (pos: string, neg: string, f: (v: string[], p: string) => unknown) => {
    if (values.length) out[pos] = f(values, vp);
    if (notValues.length) out[neg] = f(notValues, np);
  };
  const h = HEADER_KEY.exec(c.key);
  if (h) {
    const name = h[1]!.toLowerCase();
    if (values.length) out.headers = { [name]: patterns(values, vp, issues) };
    if (notValues.length) out.notHeaders = { [name]: patterns(notValues, np, issues) };
    return out as Condition;
  }
  switch (c.key) {
    case 'source.ip':
    case 'remote.ip':
      pair('ipBlocks', 'notIpBlocks', (v, p) => cidrs(v, p, issues));
      break;
    case 'source.namespace':
      pair('namespaces', 'notNamespaces', (v, p) => patterns(v, p, issues));
      break;
    case 'source.principal':
      pair('identities', 'notIdentities', (v, p) => principals(v, p, issues));
      break;
    case 'destination.port':
      pair('ports', 'notPorts', (v, p) => ports(v, p, issues));
      break;
    case 'connection.sni':
      pair('sni', 'notSni', (v, p) => patterns(v, p, issues));
      break;
    default:
      if (c.key.startsWith('request.auth.')) issues.add(at(path, 'key'), `"${c.key}": ${JWT}`);
      else {
        issues.add(
          at(path, 'key'),
          `condition key "${c.key}" is not supported (supported: request.headers[name], source.ip, remote.ip, source.namespace, source.principal, destination.port, connection.sni)`,
        );
      }
  }
  return out as Condition;
}

/**
 * Translates one Istio AuthorizationPolicy document into native rules.
 * @param rootNamespace Istio's root namespace (mesh-wide policies), default `istio-system`.
 * @throws PolicyError naming every unsupported or invalid field.
 */
export function importIstio(doc: K8sDoc, rootNamespace = 'istio-system'): NativeRule[] {
  const base = doc.path;
  const ap = strictParse(PolicySchema, doc.body, base);
  const spec = ap.spec ?? {};
  const issues = new Issues();
  const sp = at(base, 'spec');
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' || spec.provider !== undefined) {
    issues.add(
      at(sp, action === 'CUSTOM' ? 'action' : 'provider'),
      'CUSTOM (external authorization) is not supported: call your authorizer from the app, or express the rule as ALLOW/DENY',
    );
  }
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) {
    issues.add(
      at(sp, spec.targetRef !== undefined ? 'targetRef' : 'targetRefs'),
      'targetRef(s) attach policies to gateways and waypoints; in process use selector.matchLabels (or none)',
    );
  }
  const ns = ap.metadata.namespace;
  const id = `${ns ?? 'default'}/${ap.metadata.name}`;
  const scope: Pick<NativeRule, 'namespace' | 'selector'> = {};
  if (ns !== undefined && ns !== rootNamespace) scope.namespace = ns;
  if (spec.selector !== undefined) scope.selector = { matchLabels: spec.selector.matchLabels ?? {} };
  const nativeAction: RuleAction = action === 'DENY' ? 'deny' : action === 'AUDIT' ? 'audit' : 'allow';
  const rules: NativeRule[] = [];
  const list = spec.rules ?? [];
  list.forEach((r, i) => {
    const rp = at(at(sp, 'rules'), i);
    const rule: NativeRule = { name: `${id}#${i}`, action: nativeAction, ...scope };
    const from = (r.from ?? []).map((f, j) => source(f.source ?? {}, at(at(at(rp, 'from'), j), 'source'), issues));
    const to = (r.to ?? []).map((t, j) => operation(t.operation ?? {}, at(at(at(rp, 'to'), j), 'operation'), issues));
    const when = (r.when ?? []).map((c, j) => condition(c, at(at(rp, 'when'), j), issues));
    if (from.length) rule.from = from;
    if (to.length) rule.to = to;
    if (when.length) rule.when = when;
    rules.push(rule);
  });
  if (issues.list.length) throw policyError(issues.list);
  if (list.length === 0 && nativeAction === 'allow') {
    // Istio: an ALLOW policy without rules allows nothing, and its presence makes the workload deny-by-default.
    rules.push({ name: id, action: 'allow', matchNothing: true, ...scope });
  }
  return rules;
}
