/**
 * Linkerd policy resources → native server sections.
 *
 * - `Server` (policy.linkerd.io v1beta1-3) → a server section: its numeric port, `podSelector`
 *   as selector, `accessPolicy` (default `deny`) as the fallback. A Server with no
 *   AuthorizationPolicy therefore denies everything.
 * - `HTTPRoute` (policy.linkerd.io v1beta1-3, gateway.networking.k8s.io v1/v1beta1) whose
 *   parentRefs name a Server → that server's routes (requests matching no route are denied).
 * - `AuthorizationPolicy` (targetRef Server, HTTPRoute or Namespace) → an allow rule; its
 *   `requiredAuthenticationRefs` must all hold (AND); an empty list allows any client.
 * - `MeshTLSAuthentication` identities (`sa.ns.serviceaccount.identity.linkerd.<td>`, `*.ns…`,
 *   `*`, SPIFFE IDs) and identityRefs (ServiceAccount, Namespace) → identities/serviceAccounts.
 * - `NetworkAuthentication` networks (cidr, except) → ipBlocks/notIpBlocks.
 */
import { z } from 'zod';
import { isDnsName } from '../../identity/dns-id.js';
import { parseCidr } from '../cidr.js';
import { at, fail, policyError, type PolicyIssue } from '../issues.js';
import { LabelSelectorSchema } from '../schema.js';
import { checkPathPattern, DEFAULT_POLICIES, type DefaultPolicy, type LabelSelector, type Operation, type ServerRoute, type Source } from '../model.js';
import type { NativeRule } from './native.js';
import { MetadataSchema, strictParse, type K8sDoc } from './k8s.js';

/** A native server section before validation (the importer's output). */
export interface NativeServer {
  name: string;
  ports: number[];
  accessPolicy: DefaultPolicy;
  routes: ServerRoute[];
  rules: Array<NativeRule & { route?: string }>;
  namespace?: string;
  selector?: LabelSelector;
}

const LINKERD = 'policy.linkerd.io';
const GATEWAY = 'gateway.networking.k8s.io';

const SelectorSchema = LabelSelectorSchema;
const doc = <T extends z.ZodType>(spec: T) =>
  z.strictObject({ apiVersion: z.string(), kind: z.string(), metadata: MetadataSchema, spec, status: z.unknown().optional() });

const ServerSchema = doc(
  z.strictObject({
    podSelector: SelectorSchema,
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]),
    proxyProtocol: z.enum(['unknown', 'HTTP/1', 'HTTP/2', 'gRPC', 'opaque', 'TLS']).optional(),
    accessPolicy: z.enum(DEFAULT_POLICIES as unknown as [DefaultPolicy, ...DefaultPolicy[]]).optional(),
  }),
);
const Ref = z.strictObject({
  group: z.string().optional(),
  kind: z.string().min(1),
  name: z.string().min(1),
  namespace: z.string().min(1).optional(),
});
const AuthzSchema = doc(z.strictObject({ targetRef: Ref, requiredAuthenticationRefs: z.array(Ref) }));
const MeshTlsSchema = doc(
  z.strictObject({
    identities: z.array(z.string().min(1)).optional(),
    identityRefs: z
      .array(z.strictObject({ group: z.string().optional(), kind: z.string().min(1), name: z.string().min(1).optional(), namespace: z.string().optional() }))
      .optional(),
  }),
);
const NetworkSchema = doc(z.strictObject({ networks: z.array(z.strictObject({ cidr: z.string(), except: z.array(z.string()).optional() })).min(1) }));
const RouteSchema = doc(
  z.strictObject({
    parentRefs: z
      .array(
        z.strictObject({
          group: z.string().optional(),
          kind: z.string().optional(),
          name: z.string().min(1),
          namespace: z.string().optional(),
          port: z.number().optional(),
          sectionName: z.string().optional(),
        }),
      )
      .min(1),
    hostnames: z.array(z.string().min(1)).optional(),
    rules: z
      .array(
        z.strictObject({
          name: z.string().optional(),
          matches: z
            .array(
              z.strictObject({
                path: z.strictObject({ type: z.string().optional(), value: z.string().optional() }).optional(),
                headers: z.array(z.strictObject({ type: z.string().optional(), name: z.string().min(1), value: z.string() })).optional(),
                queryParams: z.unknown().optional(),
                method: z.string().optional(),
              }),
            )
            .optional(),
          filters: z.unknown().optional(),
          backendRefs: z.unknown().optional(),
          timeouts: z.unknown().optional(),
        }),
      )
      .optional(),
  }),
);

const key = (ns: string | undefined, name: string) => `${ns ?? ''}/${name}`;

/**
 * A MeshTLSAuthentication identity → the native patterns that admit it: the DNS-like pattern
 * itself (exact, or `*.` label-wise suffix), which DNS peers (Linkerd's own proxies) are judged by,
 * and — for the Linkerd shape — today's SPIFFE translation, which SPIFFE peers are judged by.
 * `*` and SPIFFE IDs pass through.
 */
export function linkerdIdentityPatterns(id: string): string[] | { error: string } {
  if (id === '*') return ['*'];
  const spiffe = linkerdIdentity(id);
  const dnsForm = id.startsWith('*.') ? id.slice(2) : id;
  const dnsOk = !id.startsWith('spiffe://') && isDnsName(dnsForm);
  if (typeof spiffe === 'string') return dnsOk ? [spiffe, id] : [spiffe];
  if (dnsOk) return [id];
  return {
    error: `"${id}" is not a Linkerd identity this mesh understands: use a DNS-like identity ("<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>"), "*." + a DNS name ("*.<ns>.serviceaccount.identity.linkerd.<trust-domain>"), "*" or a SPIFFE ID`,
  };
}

/** Linkerd identity string → SPIFFE ID pattern. Returns an error message for unsupported forms. */
export function linkerdIdentity(id: string): string | { error: string } {
  if (id === '*') return '*';
  if (id.startsWith('spiffe://')) {
    return id.includes('*') ? { error: `"${id}": wildcards in SPIFFE IDs are not supported here` } : id;
  }
  const full = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|\*)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.serviceaccount\.identity\.linkerd\.([a-z0-9.-]+)$/.exec(id);
  if (full) {
    const [, sa, , ns, , td] = full;
    return sa === '*' ? `spiffe://${td}/ns/${ns}/sa/*` : `spiffe://${td}/ns/${ns}/sa/${sa}`;
  }
  const domain = /^\*\.(?:serviceaccount\.)?identity\.linkerd\.([a-z0-9.-]+)$/.exec(id);
  if (domain) return `spiffe://${domain[1]}/*`;
  return {
    error: `"${id}" is not a Linkerd identity this mesh understands: use "<sa>.<ns>.serviceaccount.identity.linkerd.<trust-domain>", "*.<ns>.serviceaccount.identity.linkerd.<trust-domain>", "*" or a SPIFFE ID`,
  };
}

function mergeSources(a: Source, b: Source, path: string): Source {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (k in out) fail(path, `two required authentications both constrain "${k}"; combining them is not supported (use one)`);
    out[k] = v;
  }
  return out as Source;
}

interface Loaded<T> {
  readonly doc: K8sDoc;
  readonly value: T;
}

type ServerDoc = Loaded<z.output<typeof ServerSchema>>;
type RouteDoc = Loaded<z.output<typeof RouteSchema>>;
type RouteMatch = { path?: { type?: string; value?: string }; headers?: { type?: string; name: string; value: string }[]; queryParams?: unknown; method?: string };

/** The documents of a load, by kind (and `namespace/name`). */
interface Collected {
  readonly servers: Map<string, ServerDoc>;
  readonly routes: Map<string, RouteDoc>;
  readonly meshTls: Map<string, Loaded<z.output<typeof MeshTlsSchema>>>;
  readonly networks: Map<string, Loaded<z.output<typeof NetworkSchema>>>;
  readonly authz: Loaded<z.output<typeof AuthzSchema>>[];
}

function collect(docs: readonly K8sDoc[]): Collected {
  const c: Collected = { servers: new Map(), routes: new Map(), meshTls: new Map(), networks: new Map(), authz: [] };
  for (const d of docs) {
    const k = key(d.namespace, d.name);
    switch (d.kind) {
      case 'Server':
        c.servers.set(k, { doc: d, value: strictParse(ServerSchema, d.body, d.path) });
        break;
      case 'HTTPRoute':
        c.routes.set(k, { doc: d, value: strictParse(RouteSchema, d.body, d.path) });
        break;
      case 'MeshTLSAuthentication':
        c.meshTls.set(k, { doc: d, value: strictParse(MeshTlsSchema, d.body, d.path) });
        break;
      case 'NetworkAuthentication':
        c.networks.set(k, { doc: d, value: strictParse(NetworkSchema, d.body, d.path) });
        break;
      case 'AuthorizationPolicy':
        c.authz.push({ doc: d, value: strictParse(AuthzSchema, d.body, d.path) });
        break;
      case 'ServerAuthorization':
        fail(at(d.path, 'kind'), 'ServerAuthorization is deprecated and not supported: use an AuthorizationPolicy with a MeshTLSAuthentication or NetworkAuthentication');
        break;
      default:
        fail(at(d.path, 'kind'), `${d.apiVersion} ${d.kind} is not a supported policy resource`);
    }
  }
  return c;
}

/** A route match's path as operation paths (Exact → the path; PathPrefix → by segment), or an issue. */
function matchPaths(m: RouteMatch, mp: string, issues: PolicyIssue[]): string[] | undefined {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  const pathAt = at(mp, 'path');
  if (type === 'RegularExpression') {
    issues.push({ path: at(pathAt, 'type'), message: 'RegularExpression path matches are not supported: use Exact or PathPrefix' });
  } else if (type !== 'Exact' && type !== 'PathPrefix') {
    issues.push({ path: at(pathAt, 'type'), message: `path match type "${type}" is not supported: use Exact or PathPrefix` });
  } else if (/[*{}]/.test(value)) {
    issues.push({ path: at(pathAt, 'value'), message: `"${value}": "*", "{" and "}" are not supported in route paths` });
  } else {
    const e = checkPathPattern(value);
    if (e) issues.push({ path: at(pathAt, 'value'), message: e });
    else if (type === 'Exact') return [value];
    else if (value !== '/') {
      const base = value.endsWith('/') ? value.slice(0, -1) : value;
      return [base, `${base}/*`];
    } else return ['/*'];
  }
  return undefined;
}

function matchHeaders(list: NonNullable<RouteMatch['headers']>, mp: string, issues: PolicyIssue[]): Record<string, string[]> {
  const h: Record<string, string[]> = {};
  list.forEach((hm, hi) => {
    const hp = at(at(mp, 'headers'), hi);
    const name = hm.name.toLowerCase();
    if ((hm.type ?? 'Exact') !== 'Exact') issues.push({ path: at(hp, 'type'), message: `header match type "${hm.type}" is not supported: use Exact` });
    else if (hm.value.includes('*')) issues.push({ path: at(hp, 'value'), message: '"*" in an Exact header value is not supported' });
    else if (h[name]) issues.push({ path: at(hp, 'name'), message: `header "${name}" is matched twice` });
    else h[name] = [hm.value];
  });
  return h;
}

/**
 * A match's precedence as one number (higher wins), as linkerd2-proxy picks one HTTPRoute per
 * request: the host first (an exact hostname over a `*.` wildcard, a longer wildcard over a shorter
 * one, any hostname over none), then Gateway API's path rules (an Exact path over any prefix, then
 * the longer prefix — a trailing `/` not counted), then a method, then more header matches. Ties
 * are not broken here: every tied route must admit the request (creation times are not known in
 * process; see evaluate.ts). All parts fit one safe integer.
 */
export function matchRank(m: RouteMatch, hostname?: string): number {
  const hostClass = hostname === undefined ? 0 : hostname.startsWith('*.') ? 1 : 2;
  const host = hostClass * 300 + Math.min(hostname?.length ?? 0, 253);
  const exact = (m.path?.type ?? 'PathPrefix') === 'Exact' ? 1 : 0;
  const value = m.path?.value ?? '/';
  const length = Math.min((exact ? value : value.replace(/\/+$/, '')).length, 99_999);
  return host * 1e13 + exact * 1e12 + length * 1e6 + (m.method !== undefined ? 1e5 : 0) + Math.min(m.headers?.length ?? 0, 99_999);
}

/** One HTTPRoute match as an operation. */
function matchOperation(m: RouteMatch, mp: string, issues: PolicyIssue[]): Operation {
  const op: { -readonly [K in keyof Operation]: Operation[K] } = {};
  if (m.queryParams !== undefined) issues.push({ path: at(mp, 'queryParams'), message: 'query parameter matches are not supported: query strings never affect policy' });
  const paths = matchPaths(m, mp, issues);
  if (paths) op.paths = paths;
  if (m.method !== undefined) op.methods = [m.method];
  if (m.headers?.length) op.headers = matchHeaders(m.headers, mp, issues);
  return op;
}

/** Routes → the Servers they attach to, and their operations (each named by its route, with its rank). */
function routeOperations(routes: ReadonlyMap<string, RouteDoc>, issues: PolicyIssue[]) {
  const routeOps = new Map<string, ServerRoute[]>();
  const routeParents = new Map<string, string[]>();
  for (const [k, { doc: d, value: r }] of routes) {
    const sp = at(d.path, 'spec');
    const parents: string[] = [];
    r.spec.parentRefs.forEach((p, i) => {
      const pp = at(at(sp, 'parentRefs'), i);
      if (p.kind !== 'Server' || (p.group !== undefined && p.group !== LINKERD)) {
        issues.push({ path: pp, message: `parentRef ${p.group ?? GATEWAY}/${p.kind ?? 'Gateway'} is not a Server: only inbound routes attached to a policy.linkerd.io Server are policy` });
      } else parents.push(key(p.namespace ?? d.namespace, p.name));
      if (p.port !== undefined || p.sectionName !== undefined) issues.push({ path: pp, message: 'port/sectionName on a Server parentRef are not supported' });
    });
    routeParents.set(k, parents);
    const ops: ServerRoute[] = [];
    const hostnames = r.spec.hostnames?.map((h) => h.toLowerCase());
    (r.spec.rules ?? [{}]).forEach((rule, ri) => {
      const rp = at(at(sp, 'rules'), ri);
      for (const f of ['filters', 'backendRefs', 'timeouts'] as const) {
        if ((rule as Record<string, unknown>)[f] !== undefined) {
          issues.push({ path: at(rp, f), message: `${f} are traffic features, not authorization policy; remove them from the route used for policy` });
        }
      }
      const matches = (rule as { matches?: unknown[] }).matches ?? [{}];
      (matches.length ? matches : [{}]).forEach((raw, mi) => {
        const m = raw as RouteMatch;
        const op = matchOperation(m, at(at(rp, 'matches'), mi), issues);
        // One entry per hostname: each ranks by its own host (an exact name over a wildcard).
        if (!hostnames?.length) ops.push({ ...op, route: k, rank: matchRank(m) });
        else for (const h of hostnames) ops.push({ ...op, hosts: [h], route: k, rank: matchRank(m, h) });
      });
    });
    routeOps.set(k, ops);
  }
  return { routeOps, routeParents };
}

function meshTlsSources(m: Loaded<z.output<typeof MeshTlsSchema>>, ns: string | undefined): Source[] {
  const mp = at(m.doc.path, 'spec');
  const out: Source[] = [];
  const ids = (m.value.spec.identities ?? []).flatMap((id, i) => {
    const t = linkerdIdentityPatterns(id);
    if (!Array.isArray(t)) return fail(at(at(mp, 'identities'), i), t.error);
    return t;
  });
  if (ids.length) out.push({ identities: ids });
  const sas = (m.value.spec.identityRefs ?? []).map((r, i) => {
    const rp = at(at(mp, 'identityRefs'), i);
    if (r.kind === 'ServiceAccount') {
      if (!r.name) return fail(rp, 'a ServiceAccount identityRef needs a name');
      return `${r.namespace ?? m.doc.namespace ?? ns ?? 'default'}/${r.name}`;
    }
    if (r.kind === 'Namespace') {
      if (!r.name) return fail(rp, 'a Namespace identityRef needs a name');
      return `${r.name}/*`;
    }
    return fail(at(rp, 'kind'), `identityRef kind "${r.kind}" is not supported: use ServiceAccount or Namespace`);
  });
  if (sas.length) out.push({ serviceAccounts: sas });
  if (out.length === 0) fail(mp, 'a MeshTLSAuthentication needs identities or identityRefs');
  return out;
}

/** An authentication reference → the alternative sources it admits. */
function authSources(c: Collected, ref: z.output<typeof Ref>, ns: string | undefined, path: string): Source[] {
  const refNs = ref.namespace ?? ns;
  switch (ref.kind) {
    case 'MeshTLSAuthentication': {
      const m = c.meshTls.get(key(refNs, ref.name));
      if (!m) return fail(path, `MeshTLSAuthentication "${ref.name}" is not among the loaded documents`);
      return meshTlsSources(m, ns);
    }
    case 'NetworkAuthentication': {
      const n = c.networks.get(key(refNs, ref.name));
      if (!n) return fail(path, `NetworkAuthentication "${ref.name}" is not among the loaded documents`);
      return n.value.spec.networks.map((net, i) => {
        const np = at(at(at(n.doc.path, 'spec'), 'networks'), i);
        for (const cidr of [net.cidr, ...(net.except ?? [])]) {
          const r = parseCidr(cidr);
          if (typeof r === 'string') fail(np, r);
        }
        return net.except?.length ? { ipBlocks: [net.cidr], notIpBlocks: net.except } : { ipBlocks: [net.cidr] };
      });
    }
    case 'ServiceAccount':
      return [{ serviceAccounts: [`${refNs ?? 'default'}/${ref.name}`] }];
    default:
      return fail(at(path, 'kind'), `requiredAuthenticationRef kind "${ref.kind}" is not supported: use MeshTLSAuthentication, NetworkAuthentication or ServiceAccount`);
  }
}

/** Servers → native server sections with their routes (rules come from the policies). */
function serverSections(c: Collected, routeOps: Map<string, ServerRoute[]>, routeParents: Map<string, string[]>, issues: PolicyIssue[]): Map<string, NativeServer> {
  const out = new Map<string, NativeServer>();
  for (const [k, { doc: d, value: s }] of c.servers) {
    if (typeof s.spec.port === 'string') {
      issues.push({ path: at(at(d.path, 'spec'), 'port'), message: `named port "${s.spec.port}" cannot be resolved in process: use the port number` });
      continue;
    }
    const srv: NativeServer = {
      name: `${d.namespace ?? 'default'}/${d.name}`,
      ports: [s.spec.port],
      accessPolicy: s.spec.accessPolicy ?? 'deny',
      routes: [],
      rules: [],
      selector: s.spec.podSelector,
    };
    if (d.namespace !== undefined) srv.namespace = d.namespace;
    for (const [rk, parents] of routeParents) if (parents.includes(k)) srv.routes.push(...routeOps.get(rk)!);
    out.set(k, srv);
  }
  return out;
}

/** One AuthorizationPolicy → an allow rule on the Servers its target reaches. */
function attachPolicy(c: Collected, a: Loaded<z.output<typeof AuthzSchema>>, out: Map<string, NativeServer>, routeOps: Map<string, ServerRoute[]>, routeParents: Map<string, string[]>): void {
  const d = a.doc;
  const sp = at(d.path, 'spec');
  const t = a.value.spec.targetRef;
  const tp = at(sp, 'targetRef');
  let from: Source[] = [{}];
  a.value.spec.requiredAuthenticationRefs.forEach((ref, i) => {
    const alts = authSources(c, ref, d.namespace, at(at(sp, 'requiredAuthenticationRefs'), i));
    const next: Source[] = [];
    for (const f of from) for (const alt of alts) next.push(mergeSources(f, alt, at(at(sp, 'requiredAuthenticationRefs'), i)));
    from = next;
  });
  const rule: NativeRule = { name: `${d.namespace ?? 'default'}/${d.name}`, action: 'allow' };
  if (from.some((f) => Object.keys(f).length > 0)) rule.from = from;
  if (t.kind === 'Server' && (t.group ?? LINKERD) === LINKERD) {
    const srv = out.get(key(t.namespace ?? d.namespace, t.name));
    if (!srv) fail(tp, `Server "${t.name}" is not among the loaded documents`);
    srv.rules.push(rule);
  } else if (t.kind === 'HTTPRoute' && (t.group === undefined || t.group === LINKERD || t.group === GATEWAY)) {
    const rk = key(t.namespace ?? d.namespace, t.name);
    const ops = routeOps.get(rk);
    if (!ops) fail(tp, `HTTPRoute "${t.name}" is not among the loaded documents`);
    for (const parent of routeParents.get(rk) ?? []) {
      const srv = out.get(parent);
      if (!srv) fail(tp, `HTTPRoute "${t.name}" is attached to Server "${parent.split('/')[1]}", which is not among the loaded documents`);
      // Only for requests Linkerd would classify into this route (evaluate.ts: decideInServer): the
      // route scopes the rule, so it needs no `to` of its own (a spelling classified into the route
      // through an alike twin is then judged by the route's policy, not refused by its matches).
      srv.rules.push({ ...rule, route: rk });
    }
  } else if (t.kind === 'Namespace') {
    if (t.name !== (d.namespace ?? t.name)) fail(at(tp, 'name'), 'a Namespace targetRef must name the policy\'s own namespace');
    for (const srv of out.values()) if ((srv.namespace ?? t.name) === t.name) srv.rules.push({ ...rule });
  } else {
    fail(at(tp, 'kind'), `targetRef ${t.group ?? ''}/${t.kind} is not supported: target a Server, an HTTPRoute or the Namespace`);
  }
}

/**
 * Translates every Linkerd (and Gateway API HTTPRoute) document of a load into server sections.
 * References are resolved within the loaded documents; a missing one is an error.
 */
export function importLinkerd(docs: readonly K8sDoc[]): NativeServer[] {
  const c = collect(docs);
  const issues: PolicyIssue[] = [];
  const { routeOps, routeParents } = routeOperations(c.routes, issues);
  const out = serverSections(c, routeOps, routeParents, issues);
  if (issues.length) throw policyError(issues);
  for (const a of c.authz) attachPolicy(c, a, out, routeOps, routeParents);
  return [...out.values()];
}
