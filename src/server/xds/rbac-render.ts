/**
 * A native Policy → the RBAC HTTP filter configs istiod would write for the same rules (the
 * inverse of control-plane/xds/translate/rbac*.ts). One RBAC policy per native rule, named after
 * the rule; principals = one `and_ids` per `from` entry, permissions = one `and_rules` per `to`
 * entry, each field as `or_*` of its values and each `not*` field as `not_*(or_*(…))`
 * (pilot/pkg/security/authz/model). `when` entries are ANDed into every principal (their source
 * fields) and every permission (their operation fields): (∨from) ∧ (∨to) ∧ W = ∨(from ∧ Wsrc) ∧ ∨(to ∧ Wop).
 *
 * The shapes, as istiod writes them and our client reads them back:
 * - identities: `authenticated.principal_name` exact / prefix; `*` → regex `.+`; `*X` → regex
 *   `spiffe://.*X` OR the exact IDs where X overlaps the scheme (`spiffe://sa/web` for `*\/sa/web`).
 * - namespaces: regex `.*\/ns/<ns>/.*` (a DNS label, or `*`).
 * - serviceAccounts (the mesh's own trust domain, as the native field means): `ns/sa` → the exact
 *   ID `spiffe://<td>/ns/<ns>/sa/<sa>`; `ns/*` → prefix `spiffe://<td>/ns/<ns>/sa/` AND the
 *   namespace regex.
 * - unauthenticated → `not_id(authenticated {})` / `authenticated {}`; ipBlocks → `direct_remote_ip`.
 * - methods → `:method` header, hosts → `:authority` (ignore_case), paths → `url_path`, ports →
 *   `destination_port`, headers → header matchers (`*` = present).
 *
 * Linkerd server sections (port-scoped: their own rules, routes and `accessPolicy`) are rendered
 * for ONE port (`port`, the Listener's): the section covering it (and selecting the workload)
 * decides there, as the native evaluator does — its deny and audit rules join the top-level ones;
 * its allow rules, each ANDed with its routes (non-empty routes: a request matching none is
 * denied), and its accessPolicy (an ALLOW policy whose principal is the policy's: any, an
 * authenticated peer, the trust domain, the cluster networks) REPLACE the top-level allow rules,
 * which do not apply on that port. Named routes with allow rules of their own render only when
 * no request can fall into two of them (route-overlap.ts): RBAC has no route precedence.
 *
 * What the RBAC rendering, or our client's reading of it, cannot state exactly is refused with an
 * issue naming the rule and field (trust domains, SNI, path templates, namespace patterns other
 * than exact or `*`, headers named `host`, overlapping ranked routes, server sections without a
 * port). Pure.
 */
import { isDnsPattern } from '../../policy/identity-patterns.js';
import type { DeepPartial } from '../../proto/wire.js';
import type { Permission, Principal, Policy as RbacPolicy } from '../../proto/envoy/config/rbac/v3/rbac.js';
import { RBAC_Action } from '../../proto/envoy/config/rbac/v3/rbac.js';
import type { RBAC } from '../../proto/envoy/extensions/filters/http/rbac/v3/rbac.js';
import type { StringMatcher } from '../../proto/envoy/type/matcher/v3/matcher.js';
import type { Condition, Operation, Policy, Rule, Source } from '../../policy/index.js';
import type { DefaultPolicy, Server } from '../../policy/model.js';
import { selectorMatches } from '../../policy/model.js';
import { DEFAULT_CLUSTER_NETWORKS } from '../../policy/cidr.js';
import { routeOverlap } from './route-overlap.js';
import { SidecarlessError } from '../../errors.js';

type P = DeepPartial<Principal>;
type Perm = DeepPartial<Permission>;

/** A rule or field that cannot be rendered exactly: `path` names it (`rules[2].from[0].trustDomains`). */
export interface RenderIssue {
  readonly path: string;
  readonly message: string;
}

/** The policy (or the listener's address) cannot be served as an inbound Listener exactly. */
export class InboundRenderError extends SidecarlessError {
  readonly issues: readonly RenderIssue[];
  constructor(what: string, issues: readonly RenderIssue[]) {
    const lines = issues.map((i) => `  ${i.path}: ${i.message}`).join('\n');
    super('ERR_SIDECARLESS_XDS_INBOUND_UNRENDERABLE', `${what} cannot be served over xDS exactly; change or remove what is listed (nothing was sent):\n${lines}`);
    this.issues = issues;
  }
}

/** Where the rules apply: the workload's namespace and labels (rules scoped elsewhere are left out, as compilePolicy does). */
export interface RenderOptions {
  /** The mesh's own trust domain (what native `serviceAccounts` means). */
  readonly trustDomain: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The Listener's port: the server section covering it decides (see the module comment). Omitted:
   * a policy with a server section selecting the workload is refused (it has no port-free form).
   */
  readonly port?: number;
  /** As CompileOptions.clusterNetworks: what `cluster-*` access policies mean (omitted: the native default). */
  readonly clusterNetworks?: readonly string[];
}

/** The RBAC filter configs, by action; undefined: no filter of that action. */
export interface RenderedRbac {
  readonly deny?: DeepPartial<RBAC>;
  readonly allow?: DeepPartial<RBAC>;
  readonly audit?: DeepPartial<RBAC>;
}

const SPIFFE = 'spiffe://';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Longest RBAC policy name our client takes (translate/rbac.ts MAX_POLICY_NAME). */
const MAX_NAME = 512;

/** Go's regexp.QuoteMeta (what istiod applies, what our client's unquoteMeta reverses). */
export const quoteMeta = (s: string): string => s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');

class Issues {
  readonly list: RenderIssue[] = [];
  refuse(path: string, message: string): undefined {
    this.list.push({ path, message });
    return undefined;
  }
}

const named = (m: DeepPartial<StringMatcher>): P => ({ authenticated: { principalName: m } });
const regex = (r: string): DeepPartial<StringMatcher> => ({ safeRegex: { regex: r } });

function identity(v: string): P {
  if (v === '*') return named(regex('.+'));
  if (v.startsWith('*')) {
    const x = v.slice(1);
    // `*X` also matches `spiffe:/` + `/sa/web` (and X itself when X is a whole ID) when X begins with a tail of the scheme: the regex does not.
    const overlaps: P[] = [];
    for (let k = 0; k < SPIFFE.length; k++) if (x.startsWith(SPIFFE.slice(k))) overlaps.push(named({ exact: SPIFFE.slice(0, k) + x }));
    const re = named(regex(`${SPIFFE}.*${quoteMeta(x)}`));
    return overlaps.length === 0 ? re : { orIds: { ids: [re, ...overlaps] } };
  }
  return named(v.endsWith('*') ? { prefix: v.slice(0, -1) } : { exact: v });
}

function namespace(v: string, is: Issues, at: string): P | undefined {
  if (v === '*') return named(regex('.*/ns/.*/.*'));
  if (DNS_LABEL.test(v)) return named(regex(`.*/ns/${v}/.*`));
  return is.refuse(at, `"${v}": only an exact namespace (a DNS label) or "*" can be rendered as istiod's regex`);
}

function serviceAccount(v: string, td: string, is: Issues, at: string): P | undefined {
  const [ns, sa] = v.split('/') as [string, string];
  if (sa !== '*') return named({ exact: `${SPIFFE}${td}/ns/${ns}/sa/${sa}` });
  const n = namespace(ns, is, at);
  return n && { andIds: { ids: [named({ prefix: `${SPIFFE}${td}/ns/${ns}/sa/` }), n] } };
}

function cidr(v: string): { addressPrefix: string; prefixLen: number } {
  const [a, l] = v.split('/') as [string, string | undefined];
  return { addressPrefix: a, prefixLen: l === undefined ? (a.includes(':') ? 128 : 32) : Number(l) };
}

/** One field's values → `or_ids` (or `not_id(or_ids)`), or undefined when a value was refused. */
function anyId(xs: readonly (P | undefined)[], negated: boolean): P | undefined {
  if (!xs.every((x): x is P => x !== undefined)) return undefined;
  const or: P = { orIds: { ids: [...xs] as P[] } };
  return negated ? { notId: or } : or;
}

/** One field's values → `or_rules` (or `not_rule(or_rules)`), or undefined when a value was refused. */
function anyRule(xs: readonly (Perm | undefined)[], negated: boolean): Perm | undefined {
  if (!xs.every((x): x is Perm => x !== undefined)) return undefined;
  const or: Perm = { orRules: { rules: [...xs] as Perm[] } };
  return negated ? { notRule: or } : or;
}

/** The principal parts of one source-shaped clause (a `from` entry or a `when` entry). */
function sourceParts(s: Source, td: string, is: Issues, at: string): P[] | undefined {
  const parts: (P | undefined)[] = [];
  const field = <K extends keyof Source>(k: K, neg: boolean, one: (v: string, at: string) => P | undefined) => {
    const vs = s[k] as readonly string[] | undefined;
    if (vs !== undefined) parts.push(anyId(vs.map((v, i) => one(v, `${at}.${k}[${i}]`)), neg));
  };
  for (const k of ['trustDomains', 'notTrustDomains'] as const) {
    if (s[k] !== undefined) parts.push(is.refuse(`${at}.${k}`, 'trust-domain-only sources are not rendered: istiod has no such principal, and our client reads no trust-domain matcher back; list identities (spiffe://<td>/*) instead'));
  }
  // DNS-like patterns (identity-patterns.ts) judge DNS-like (Linkerd) peers only; an xDS client's
  // peers are SPIFFE IDs, so for them such a pattern matches nobody: left out of the rendering.
  for (const [k, neg] of [['identities', false], ['notIdentities', true]] as const) {
    const vs = s[k];
    if (vs === undefined) continue;
    const spiffe = vs.filter((v) => !isDnsPattern(v));
    if (spiffe.length > 0) parts.push(anyId(spiffe.map(identity), neg));
    else if (!neg) parts.push({ notId: { any: true } }); // only DNS-like names: no SPIFFE peer is among them
  }
  field('namespaces', false, (v, a) => namespace(v, is, a));
  field('notNamespaces', true, (v, a) => namespace(v, is, a));
  field('serviceAccounts', false, (v, a) => serviceAccount(v, td, is, a));
  field('notServiceAccounts', true, (v, a) => serviceAccount(v, td, is, a));
  if (s.unauthenticated === true) parts.push({ notId: { authenticated: {} } });
  if (s.unauthenticated === false) parts.push({ authenticated: {} });
  field('ipBlocks', false, (v) => ({ directRemoteIp: cidr(v) }));
  field('notIpBlocks', true, (v) => ({ directRemoteIp: cidr(v) }));
  return parts.every((p): p is P => p !== undefined) ? parts : undefined;
}

/** exact, `prefix*`, `*suffix` → a StringMatcher (`*` is handled by each caller). */
function starMatcher(v: string): DeepPartial<StringMatcher> {
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  return { exact: v };
}

function header(name: string, v: string, ignoreCase = false): Perm {
  if (v === '*') return { header: { name, presentMatch: true } };
  return { header: { name, stringMatch: { ...starMatcher(v), ...(ignoreCase && { ignoreCase: true }) } } };
}

function path(v: string, is: Issues, at: string): Perm | undefined {
  if (v === '*') return { urlPath: { path: regex('.+') } };
  if (v.includes('{') || v.includes('}')) return is.refuse(at, `"${v}": path templates have no RBAC form (url_path matches exact, prefix or suffix); list the paths, or use a prefix`);
  return { urlPath: { path: starMatcher(v) } };
}

function headerParts(m: Readonly<Record<string, readonly string[]>> | undefined, neg: boolean, is: Issues, at: string): (Perm | undefined)[] {
  return Object.entries(m ?? {}).map(([name, vs]) => {
    if (name === 'host') return is.refuse(`${at}.${name}`, 'a header named "host" is read back as the request\'s host (":authority"), not as a header: use hosts');
    return anyRule(vs.map((v) => header(name, v)), neg);
  });
}

/** The permission parts of one operation-shaped clause (a `to` entry or a `when` entry). */
function operationParts(o: Operation, is: Issues, at: string): Perm[] | undefined {
  const parts: (Perm | undefined)[] = [];
  const field = <K extends keyof Operation>(k: K, neg: boolean, one: (v: never, at: string) => Perm | undefined) => {
    const vs = o[k] as readonly never[] | undefined;
    if (vs !== undefined) parts.push(anyRule(vs.map((v, i) => one(v, `${at}.${k}[${i}]`)), neg));
  };
  for (const k of ['sni', 'notSni'] as const) {
    if (o[k] !== undefined) parts.push(is.refuse(`${at}.${k}`, 'TLS server names have no RBAC form our client reads (requested_server_name is refused there): remove it, or scope the listener by port'));
  }
  field('hosts', false, (v: string) => header(':authority', v, true));
  field('notHosts', true, (v: string) => header(':authority', v, true));
  field('methods', false, (v: string) => header(':method', v));
  field('notMethods', true, (v: string) => header(':method', v));
  field('paths', false, (v: string, a) => path(v, is, a));
  field('notPaths', true, (v: string, a) => path(v, is, a));
  field('ports', false, (v: number) => ({ destinationPort: v }));
  field('notPorts', true, (v: number) => ({ destinationPort: v }));
  parts.push(...headerParts(o.headers, false, is, `${at}.headers`), ...headerParts(o.notHeaders, true, is, `${at}.notHeaders`));
  return parts.every((p): p is Perm => p !== undefined) ? parts : undefined;
}

/**
 * One rule → the RBAC policy istiod would write for it, or undefined with its issues recorded.
 * `also`: a permission ANDed into every permission (a server allow rule's routes).
 */
function rulePolicy(r: Rule, o: RenderOptions, is: Issues, at: string, also?: Perm): DeepPartial<RbacPolicy> | undefined {
  const wSrc: P[] = [];
  const wOp: Perm[] = also === undefined ? [] : [also];
  let ok = true;
  r.when.forEach((c: Condition, i) => {
    const s = sourceParts(c, o.trustDomain, is, `${at}.when[${i}]`);
    const p = operationParts(c, is, `${at}.when[${i}]`);
    if (s === undefined || p === undefined) {
      ok = false;
      return;
    }
    wSrc.push(...s);
    wOp.push(...p);
  });
  const from = r.from.map((s, i) => sourceParts(s, o.trustDomain, is, `${at}.from[${i}]`));
  const to = r.to.map((x, i) => operationParts(x, is, `${at}.to[${i}]`));
  if (!ok || !from.every(Boolean) || !to.every(Boolean)) return undefined;
  const ids = (parts: P[]): P => ({ andIds: { ids: parts.length > 0 ? parts : [{ any: true }] } });
  const rules = (parts: Perm[]): Perm => ({ andRules: { rules: parts.length > 0 ? parts : [{ any: true }] } });
  return {
    permissions: to.length > 0 ? to.map((x) => rules([...x!, ...wOp])) : [rules(wOp)],
    principals: from.length > 0 ? from.map((s) => ids([...s!, ...wSrc])) : [ids(wSrc)],
  };
}

function applies(r: { namespace?: string; selector?: Rule['selector'] }, o: RenderOptions): boolean {
  if (r.namespace !== undefined && r.namespace !== o.namespace) return false;
  if (r.selector !== undefined && !selectorMatches(r.selector, o.labels ?? {})) return false;
  return true;
}

const ACTION = { allow: RBAC_Action.ALLOW, deny: RBAC_Action.DENY, audit: RBAC_Action.LOG } as const;

type Policies = Record<keyof typeof ACTION, Map<string, DeepPartial<RbacPolicy>>>;

/** The server section that decides on `o.port` for this workload, or undefined; refusals recorded. */
function serverFor(policy: Policy, o: RenderOptions, is: Issues): { server: Server; at: string } | undefined {
  const here = policy.servers.map((s, i) => ({ server: s, at: `servers[${i}] "${s.name}"` })).filter(({ server }) => applies(server, o));
  if (here.length === 0) return undefined;
  if (o.port === undefined) {
    return is.refuse('servers', 'Linkerd server sections are rendered per port: pass the Listener\'s port (a policy with server sections has no port-free form)');
  }
  const covering = here.filter(({ server }) => server.ports.includes(o.port!));
  if (covering.length > 1) {
    return is.refuse(covering[1]!.at, `port ${o.port} is already covered by server "${covering[0]!.server.name}"; servers must not overlap`);
  }
  return covering[0];
}

/** A server's route entries → one permission (any of them), or undefined when it has none (or one was refused). */
function routesPermission(s: Server, at: string, is: Issues, route?: string): Perm | undefined {
  const entries = s.routes.map((e, j) => ({ e, j })).filter(({ e }) => route === undefined || e.route === route);
  if (entries.length === 0) return undefined;
  const parts = entries.map(({ e, j }) => {
    const { route: _r, rank: _k, ...op } = e;
    const x = operationParts(op, is, `${at}.routes[${j}]`);
    return x && ({ andRules: { rules: x.length > 0 ? x : [{ any: true }] } } as Perm);
  });
  return anyRule(parts, false);
}

/** The principal an access policy admits (undefined: `deny`, nothing), as compilePolicy's applyDefault judges. */
function accessPrincipal(a: DefaultPolicy, o: RenderOptions): P | undefined {
  const networks = (list: readonly string[]): P => ({ orIds: { ids: list.map((c) => ({ directRemoteIp: cidr(c) })) } });
  switch (a) {
    case 'deny':
      return undefined;
    case 'all-unauthenticated':
    case 'audit':
      return { any: true };
    case 'all-authenticated':
      return { authenticated: {} };
    case 'cluster-authenticated': {
      const td = named({ prefix: `${SPIFFE}${o.trustDomain}/` });
      return o.clusterNetworks === undefined ? td : { andIds: { ids: [td, networks(o.clusterNetworks)] } };
    }
    case 'cluster-unauthenticated':
      return networks(o.clusterNetworks ?? DEFAULT_CLUSTER_NETWORKS);
  }
}

function add(policies: Policies, action: keyof typeof ACTION, name: string, p: DeepPartial<RbacPolicy> | undefined, is: Issues, at: string): void {
  if (name.length > MAX_NAME) is.refuse(`${at}.name`, `longer than ${MAX_NAME} characters (the RBAC policy name)`);
  else if (policies[action].has(name)) is.refuse(`${at}.name`, `another ${action} rule has this name: RBAC policies of one filter are keyed by name; rename one`);
  else if (p !== undefined) policies[action].set(name, p);
}

/**
 * The server section on this port: its deny and audit rules as they are; its allow rules ANDed
 * with their routes (a routed rule: its own route's entries); its accessPolicy as one more ALLOW
 * policy over the routes. The ALLOW filter is always present (an accessPolicy `deny` and no allow
 * rule: it allows nothing).
 */
function renderServer(s: Server, at: string, o: RenderOptions, is: Issues, policies: Policies): void {
  const overlap = routeOverlap(s);
  if (overlap !== undefined) {
    is.refuse(`${at}.routes[${overlap.b}]`, `may match the same request as routes[${overlap.a}] (route "${s.routes[overlap.a]!.route ?? ''}"): a request is classified into ONE route (the highest-ranked), and RBAC has no route precedence; make the routes' paths or methods disjoint, or state the rules without routes`);
    return;
  }
  const all = routesPermission(s, at, is);
  s.rules.forEach((r, i) => {
    const rat = `${at}.rules[${i}] "${r.name}"`;
    if (r.matchNothing) return;
    const also = r.action !== 'allow' ? undefined : r.route !== undefined ? routesPermission(s, at, is, r.route) : all;
    add(policies, r.action, r.name, rulePolicy(r, o, is, rat, also), is, rat);
  });
  const who = accessPrincipal(s.accessPolicy, o);
  if (who === undefined) return;
  const name = `${s.name}:default:${s.accessPolicy}`;
  add(policies, 'allow', name, { permissions: [all ?? { any: true }], principals: [who] }, is, `${at}.accessPolicy`);
}

/**
 * The policy's rules that apply to the workload on `o.port` → its RBAC filter configs.
 * @throws InboundRenderError listing every rule and field that has no exact rendering.
 */
export function renderRbac(policy: Policy, o: RenderOptions): RenderedRbac {
  const is = new Issues();
  const section = serverFor(policy, o, is);
  const policies: Policies = { allow: new Map(), deny: new Map(), audit: new Map() };
  let allowFilter = section !== undefined;
  policy.rules.forEach((r, i) => {
    const at = `rules[${i}] "${r.name}"`;
    if (!applies(r, o)) return;
    if (r.action === 'allow' && section !== undefined) return; // the server decides on its port, not the top-level allow rules
    if (r.action === 'allow') allowFilter = true;
    if (r.matchNothing) return; // adds nothing to its action; an ALLOW filter with no policy allows nothing
    add(policies, r.action, r.name, rulePolicy(r, o, is, at), is, at);
  });
  if (section !== undefined) renderServer(section.server, section.at, o, is, policies);
  if (is.list.length > 0) throw new InboundRenderError('The inbound policy', is.list);
  const filter = (a: keyof typeof ACTION): DeepPartial<RBAC> => ({ rules: { action: ACTION[a], policies: policies[a] } });
  return {
    ...(policies.deny.size > 0 && { deny: filter('deny') }),
    ...(allowFilter && { allow: filter('allow') }),
    ...(policies.audit.size > 0 && { audit: filter('audit') }),
  };
}
