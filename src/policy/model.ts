/**
 * The native policy: what every importer produces and what `compilePolicy` accepts. Validated with
 * zod; unknown fields are errors that name their path. See docs/policy.md for the format.
 *
 * Matching semantics: within one clause (a `from`, `to` or `when` entry) every field must match
 * (AND) and a field matches when any of its values matches (OR). A rule matches when any `from`
 * entry matches, any `to` entry matches, and every `when` entry matches (omitted = anything).
 */
import type { PeerIdentity } from '../identity/peer-identity.js';
import type { Alike } from './router-semantics.js';
import { policyError, type PolicyIssue } from './issues.js';
import type { PolicyInput, RawRule } from './schema.js';
import { policySchema } from './zod.js';

export type { PolicyInput };

export { DEFAULT_POLICIES, type DefaultPolicy, checkPathPattern } from './basics.js';
import type { DefaultPolicy } from './basics.js';

/** A rule's action. `audit` rules never decide; their names are recorded in the decision. */
export type RuleAction = 'allow' | 'deny' | 'audit';

/** Kubernetes label selector (matchLabels AND matchExpressions). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: ReadonlyArray<{
    readonly key: string;
    readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    readonly values?: readonly string[];
  }>;
}

/** Who sent the request. Positive identity fields never match an unauthenticated peer; `not*` fields do. */
export interface Source {
  /**
   * SPIFFE ID patterns: `spiffe://td/ns/a/sa/b`, `spiffe://td/ns/a/*` (prefix), `*` + `/sa/b` (suffix), `*` (any authenticated peer);
   * DNS-like (Linkerd) patterns: `sa.ns.serviceaccount.identity.linkerd.td` (exact), `*.ns.serviceaccount.identity.linkerd.td`
   * (label-wise suffix). Each judges peers of its own kind only; `*` judges both (identity-patterns.ts).
   */
  readonly identities?: readonly string[];
  readonly notIdentities?: readonly string[];
  /** Peer trust domains (exact, lower-case). */
  readonly trustDomains?: readonly string[];
  readonly notTrustDomains?: readonly string[];
  /** Peer namespace patterns (from `/ns/<ns>/sa/<sa>` IDs). */
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  /** `namespace/serviceAccount` (serviceAccount may be `*`) in the mesh's own trust domain. */
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  /** true: only peers without a verified identity; false: only authenticated peers. */
  readonly unauthenticated?: boolean;
  /** Source address blocks (CIDR or single address, IPv4 or IPv6). */
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
}

/** What the request asks for. */
export interface Operation {
  /** Exact methods, case-sensitive (`GET` never matches `get`); `*` any. */
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  /** Normalized paths: exact, `prefix*`, `*suffix`, `*`, templates `/users/{id}/orders`, `{*}`, final `{**}`. */
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
  /** Hosts, case-insensitive, without port: exact, `*.example.com`, `prefix*`, `*`. */
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  /** Destination ports. */
  readonly ports?: readonly number[];
  readonly notPorts?: readonly number[];
  /** Header name (lower-case) → value patterns (exact, `prefix*`, `*suffix`, `*` = present). */
  readonly headers?: Readonly<Record<string, readonly string[]>>;
  /** Header name → value patterns that must not match; an absent header matches. */
  readonly notHeaders?: Readonly<Record<string, readonly string[]>>;
  /** TLS server name patterns. */
  readonly sni?: readonly string[];
  readonly notSni?: readonly string[];
}

/** A `when` entry: any Source and Operation fields, all of which must hold. */
export interface Condition extends Source, Operation {}

/** One rule, canonical form (arrays, generated names). */
export interface Rule {
  readonly name: string;
  readonly action: RuleAction;
  /** Any entry may match; empty = any source. */
  readonly from: readonly Source[];
  /** Any entry may match; empty = any operation. */
  readonly to: readonly Operation[];
  /** Every entry must match. */
  readonly when: readonly Condition[];
  /** Never matches, yet counts as an allow rule (Istio's "allow nothing", `spec: {}`). */
  readonly matchNothing?: boolean;
  /** Applies only when the mesh's namespace equals this (omitted: any namespace). */
  readonly namespace?: string;
  /** Applies only when the mesh's labels satisfy this selector. */
  readonly selector?: LabelSelector;
  /**
   * Server allow rules only: applies only to requests classified into this route (a `route` of the
   * server's routes). Omitted: applies to every request to the server.
   */
  readonly route?: string;
}

/**
 * One entry of a server's routes: an operation, optionally naming the route it belongs to and its
 * precedence. When entries are named, a request is classified into ONE route — the matching entry
 * with the highest `rank` (as Linkerd picks one HTTPRoute); on a tie, every tied route must admit it —
 * and only that route's rules (and the server's unrouted ones) apply.
 */
export interface ServerRoute extends Operation {
  readonly route?: string;
  readonly rank?: number;
}

/**
 * A port-scoped section (a Linkerd `Server`): requests to its ports are decided by its rules and,
 * when none decides, by its `accessPolicy` (not by the mesh default).
 */
export interface Server {
  readonly name: string;
  readonly ports: readonly number[];
  /** Applied when no rule of this server decides (default `deny`). */
  readonly accessPolicy: DefaultPolicy;
  /** When non-empty, a request matching none of these is denied (`no-route`). */
  readonly routes: readonly ServerRoute[];
  readonly rules: readonly Rule[];
  readonly namespace?: string;
  readonly selector?: LabelSelector;
}

/** A validated policy in canonical form. Produce one with `parsePolicy` or `loadPolicy`. */
export interface Policy {
  readonly rules: readonly Rule[];
  readonly servers: readonly Server[];
}

/** The request the evaluator judges. */
export interface PolicyRequest {
  /** The verified peer identity, or null for a plaintext/unauthenticated peer. */
  readonly peer: PeerIdentity | null;
  /** Socket source address (IPv4-mapped IPv6 is treated as IPv4). */
  readonly sourceIp: string;
  /** Method exactly as sent. */
  readonly method: string;
  /** Normalized path (see `normalizeTarget`), no query. */
  readonly path: string;
  /** Host (or absolute-form authority); the port and a trailing dot are ignored, case-insensitive. */
  readonly host: string;
  /** Local (destination) port. */
  readonly port: number;
  /** TLS SNI, when the connection had one. */
  readonly sni?: string;
  /** Header lookup by lower-case name. */
  header(name: string): string | undefined;
  /**
   * The other spellings the protected router serves from this request's handler (see
   * policy/router-semantics.ts, `alikeOf`); absent: judged exactly as sent.
   */
  readonly alike?: Alike;
}

/**
 * The outcome of evaluating a request.
 * - `rule`: the deciding rule's name; `default:<policy>` when the default policy decided;
 *   `no-allow-match` when allow rules exist and none matched; `no-route` when a server has routes
 *   and none matched.
 * - `action`: the deciding rule's action, or `default` for the three non-rule outcomes.
 * - `audit`: names of matched audit rules, plus `default:audit` when the `audit` default allowed.
 * - `server`: the server section that decided, when one did.
 */
export interface Decision {
  readonly allowed: boolean;
  readonly result: 'allow' | 'deny';
  readonly rule: string;
  readonly action: 'allow' | 'deny' | 'default';
  readonly audit: readonly string[];
  readonly server?: string;
  /**
   * Only with a control plane's policy in force beside the local one (two layers, both must
   * allow): the layer whose decision this is — the one that denied (`local` is judged first), or
   * `local` when both allowed — and the control-plane layer's own deciding rule.
   */
  readonly layer?: 'local' | 'mesh';
  readonly meshRule?: string;
}

/** Options for `compilePolicy`: the mesh's own place, which rules apply to it and the default. */
export interface CompileOptions {
  /** Default `all-authenticated`. */
  readonly defaultPolicy?: DefaultPolicy;
  /** The mesh's own trust domain (for `cluster-authenticated` and `serviceAccounts`). */
  readonly trustDomain: string;
  /** The mesh's own namespace (rules and servers scoped to another namespace are dropped). */
  readonly namespace: string;
  /** The workload's labels, matched against rule/server selectors. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Networks for `cluster-*` defaults; default RFC 1918 + loopback + IPv6 ULA. */
  readonly clusterNetworks?: readonly string[];
}

function lowerKeys(m: Record<string, readonly string[]> | undefined): Record<string, readonly string[]> | undefined {
  if (!m) return undefined;
  const out: Record<string, readonly string[]> = {};
  for (const [k, v] of Object.entries(m)) out[k.toLowerCase()] = [...(out[k.toLowerCase()] ?? []), ...v];
  return out;
}

function clause<T extends Operation>(c: T): T {
  if (!c.headers && !c.notHeaders) return c;
  const out = { ...c } as Record<string, unknown>;
  if (c.headers) out.headers = lowerKeys(c.headers as Record<string, readonly string[]>);
  if (c.notHeaders) out.notHeaders = lowerKeys(c.notHeaders as Record<string, readonly string[]>);
  return out as T;
}

function canonicalRule(r: RawRule, index: number, prefix: string): Rule {
  const rule: {
    -readonly [K in keyof Rule]: Rule[K];
  } = {
    name: r.name ?? `${prefix}rule-${index}`,
    action: r.action,
    from: (r.from ?? []) as Source[],
    to: ((r.to ?? []) as Operation[]).map(clause),
    when: ((r.when ?? []) as Condition[]).map(clause),
  };
  if (r.matchNothing) rule.matchNothing = true;
  if (r.namespace !== undefined) rule.namespace = r.namespace;
  if (r.selector !== undefined) rule.selector = r.selector as LabelSelector;
  if (r.route !== undefined) rule.route = r.route;
  return rule;
}

const isList = (v: unknown): v is unknown[] => Array.isArray(v);

/**
 * A document with no rule and no server (`{}`, what the mesh loads when no policy is given): its
 * parse is known without the schema, so zod is not loaded for it. Anything else goes to schema.ts.
 */
function isEmptyNative(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Object.getOwnPropertySymbols(v).length > 0) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const o = v as Record<string, unknown>;
  const empty = (x: unknown) => x === undefined || (Array.isArray(x) && x.length === 0);
  return Object.keys(o).every(
    (k) =>
      (k === 'apiVersion' && (o[k] === undefined || o[k] === 'sidecarless.dev/v1')) ||
      (k === 'kind' && (o[k] === undefined || o[k] === 'Policy')) ||
      ((k === 'rules' || k === 'servers') && empty(o[k])),
  );
}
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The canonical shape: `rules` and `servers` lists, every rule with its name and all three lists, every server with routes and rules. */
function isCanonical(input: unknown): input is { rules: unknown[]; servers: unknown[] } {
  if (!isRecord(input) || !isList(input.rules) || !isList(input.servers)) return false;
  const canonicalRule = (r: unknown) => isRecord(r) && typeof r.name === 'string' && isList(r.from) && isList(r.to) && isList(r.when);
  return (
    input.rules.every(canonicalRule) &&
    input.servers.every((s) => isRecord(s) && isList(s.routes) && isList(s.rules) && s.rules.every(canonicalRule))
  );
}

/**
 * The canonical form (what loadPolicy returns) writes every list, empty ones included; the native
 * schema refuses empty lists (omit a field to match anything). Dropping the empty ones of a policy in
 * canonical shape (only: hand-written documents still get the error) makes loading a loaded policy a no-op: `createMesh({ inbound: { policy: loadPolicy(text) } })` works.
 */
export function fromCanonical(input: unknown): unknown {
  if (!isCanonical(input)) return input;
  const dropEmpty = (o: unknown, keys: readonly string[]): unknown => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return o;
    const out: Record<string, unknown> = { ...(o as Record<string, unknown>) };
    for (const k of keys) if (Array.isArray(out[k]) && (out[k] as unknown[]).length === 0) delete out[k];
    return out;
  };
  const rules = (list: unknown): unknown => (Array.isArray(list) ? list.map((r) => dropEmpty(r, ['from', 'to', 'when'])) : list);
  const p: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  if ('rules' in p) p.rules = rules(p.rules);
  if (Array.isArray(p.servers)) {
    p.servers = p.servers.map((srv: unknown) => {
      const s = dropEmpty(srv, ['routes']);
      return s !== null && typeof s === 'object' && 'rules' in s ? { ...s, rules: rules((s as { rules: unknown }).rules) } : s;
    });
  }
  return p;
}

/**
 * Validates a native policy object and returns its canonical form (lists everywhere, rule names
 * generated as `rule-<index>`, header names lower-cased).
 * @throws PolicyError listing every problem with its path.
 */
export function parsePolicy(input: unknown): Policy {
  const value = fromCanonical(input);
  if (isEmptyNative(value)) return { rules: [], servers: [] };
  const r = { data: policySchema().parseNative(value) };
  const issues: PolicyIssue[] = [];
  const rules = (r.data.rules ?? []).map((x, i) => canonicalRule(x, i, ''));
  const servers: Server[] = (r.data.servers ?? []).map((s, si) => {
    const srv: { -readonly [K in keyof Server]: Server[K] } = {
      name: s.name,
      ports: s.ports as number[],
      accessPolicy: s.accessPolicy ?? 'deny',
      routes: ((s.routes ?? []) as ServerRoute[]).map(clause),
      rules: (s.rules ?? []).map((x, i) => canonicalRule(x, i, `${s.name}:`)),
    };
    issues.push(...routeIssues(srv, si));
    if (s.namespace !== undefined) srv.namespace = s.namespace;
    if (s.selector !== undefined) srv.selector = s.selector as LabelSelector;
    if (srv.rules.some((x) => x.namespace !== undefined || x.selector !== undefined)) {
      issues.push({ path: `servers[${si}].rules`, message: 'rules inside a server are scoped by the server; remove namespace/selector' });
    }
    return srv;
  });
  if (issues.length) throw policyError(issues);
  return { rules, servers };
}

/** A rule's `route` names one of its server's routes, and only allow rules are routed. */
function routeIssues(srv: Server, si: number): PolicyIssue[] {
  const names = new Set(srv.routes.map((r) => r.route).filter((n): n is string => n !== undefined));
  const issues: PolicyIssue[] = [];
  srv.rules.forEach((r, ri) => {
    if (r.route === undefined) return;
    const path = `servers[${si}].rules[${ri}].route`;
    if (r.action !== 'allow') issues.push({ path, message: 'only allow rules can be scoped to a route' });
    else if (!names.has(r.route)) issues.push({ path, message: `"${r.route}" is not the route of any of this server's routes` });
  });
  return issues;
}

/** Whether `labels` satisfy `selector` (Kubernetes semantics; an empty selector matches everything). */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const val = labels[e.key];
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(val!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(val!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
