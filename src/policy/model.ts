/**
 * The native policy: what every importer produces and what `compilePolicy` accepts. Validated with
 * zod; unknown fields are errors that name their path. See docs/policy.md for the format.
 *
 * Matching semantics: within one clause (a `from`, `to` or `when` entry) every field must match
 * (AND) and a field matches when any of its values matches (OR). A rule matches when any `from`
 * entry matches, any `to` entry matches, and every `when` entry matches (omitted = anything).
 */
import { z } from 'zod';
import type { PeerIdentity } from '../identity/peer-identity.js';
import type { Alike } from './router-semantics.js';
import { parseCidr } from './cidr.js';
import { formatPath, policyError, type PolicyIssue } from './issues.js';
import { normalizePath } from './normalize.js';
import { checkStarPattern, isTemplate, parseTemplate } from './patterns.js';
import { readableIssues } from '../zod-issues.js';

/** What happens when no rule decides. Names follow Linkerd's default inbound policies. */
export type DefaultPolicy =
  | 'all-authenticated'
  | 'all-unauthenticated'
  | 'cluster-authenticated'
  | 'cluster-unauthenticated'
  | 'deny'
  | 'audit';

/** Every valid {@link DefaultPolicy}. */
export const DEFAULT_POLICIES: readonly DefaultPolicy[] = Object.freeze([
  'all-authenticated',
  'all-unauthenticated',
  'cluster-authenticated',
  'cluster-unauthenticated',
  'deny',
  'audit',
] as const);

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
  /** SPIFFE ID patterns: `spiffe://td/ns/a/sa/b`, `spiffe://td/ns/a/*` (prefix), `*` + `/sa/b` (suffix), `*` (any authenticated peer). */
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

// ---------------------------------------------------------------------------------------------
// Schema

const nonEmpty = (s: z.ZodType) => z.array(s).min(1, 'must not be empty (omit the field to match anything)');

const starPattern = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) ctx.addIssue({ code: 'custom', message: e });
});

const identity = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) return ctx.addIssue({ code: 'custom', message: e });
  if (!v.startsWith('*') && !v.startsWith('spiffe://')) {
    ctx.addIssue({ code: 'custom', message: `"${v}" must be a SPIFFE ID (spiffe://…), or start with "*"` });
  }
});

const trustDomain = z.string().regex(/^[a-z0-9._-]+$/, 'must be a trust domain: lower-case letters, digits, ".", "-", "_"');

const serviceAccount = z.string().regex(/^[^/*\s]+\/([^/*\s]+|\*)$/, 'must be "namespace/serviceAccount" (serviceAccount may be "*")');

const cidr = z.string().superRefine((v, ctx) => {
  const r = parseCidr(v);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

const method = z.string().superRefine((v, ctx) => {
  if (v === '*') return;
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) || v.includes('*')) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not an HTTP method (wildcards other than "*" are not supported)` });
  }
});

/** Validates a path pattern: templates parse, literal parts are already normalized. */
export function checkPathPattern(v: string): string | undefined {
  if (v === '*') return undefined;
  if (isTemplate(v)) {
    const t = parseTemplate(v);
    return typeof t === 'string' ? t : undefined;
  }
  const e = checkStarPattern(v);
  if (e) return e;
  if (v.startsWith('*')) return undefined; // suffix: any string end
  const literal = v.endsWith('*') ? v.slice(0, -1) : v;
  if (!literal.startsWith('/')) return `"${v}" must start with "/" (or be a "*suffix" pattern)`;
  const n = normalizePath(literal);
  if (!n.startsWith('/')) return `"${v}": ${n}`;
  if (n !== literal) {
    return `"${v}" is not in normalized form; requests are matched after normalization, write "${n}${v.endsWith('*') ? '*' : ''}"`;
  }
  return undefined;
}

const pathPattern = z.string().superRefine((v, ctx) => {
  const e = checkPathPattern(v);
  if (e) ctx.addIssue({ code: 'custom', message: e });
});

const host = z.string().superRefine((v, ctx) => {
  const e = checkStarPattern(v);
  if (e) return ctx.addIssue({ code: 'custom', message: e });
  if (/:[0-9]*$/.test(v) && !v.endsWith(']')) {
    ctx.addIssue({ code: 'custom', message: `"${v}": hosts are matched without their port; use "ports" for the port` });
  }
});

const port = z.number().int().min(1).max(65535);
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name');
const headerMap = z.record(headerName, nonEmpty(starPattern));

const sourceShape = {
  identities: nonEmpty(identity).optional(),
  notIdentities: nonEmpty(identity).optional(),
  trustDomains: nonEmpty(trustDomain).optional(),
  notTrustDomains: nonEmpty(trustDomain).optional(),
  namespaces: nonEmpty(starPattern).optional(),
  notNamespaces: nonEmpty(starPattern).optional(),
  serviceAccounts: nonEmpty(serviceAccount).optional(),
  notServiceAccounts: nonEmpty(serviceAccount).optional(),
  unauthenticated: z.boolean().optional(),
  ipBlocks: nonEmpty(cidr).optional(),
  notIpBlocks: nonEmpty(cidr).optional(),
};
const operationShape = {
  methods: nonEmpty(method).optional(),
  notMethods: nonEmpty(method).optional(),
  paths: nonEmpty(pathPattern).optional(),
  notPaths: nonEmpty(pathPattern).optional(),
  hosts: nonEmpty(host).optional(),
  notHosts: nonEmpty(host).optional(),
  ports: nonEmpty(port).optional(),
  notPorts: nonEmpty(port).optional(),
  headers: headerMap.optional(),
  notHeaders: headerMap.optional(),
  sni: nonEmpty(starPattern).optional(),
  notSni: nonEmpty(starPattern).optional(),
};

const SourceSchema = z.strictObject(sourceShape);
const OperationSchema = z.strictObject(operationShape);
const ConditionSchema = z.strictObject({ ...sourceShape, ...operationShape });

const oneOrMany = (s: z.ZodType) =>
  z.preprocess((v) => (v === undefined || Array.isArray(v) ? v : [v]), z.array(s).min(1, 'must not be empty (omit the field to match anything)'));

/** Kubernetes label selector schema (shared by the native form and the importers). */
export const LabelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const defaultPolicy = z.enum(DEFAULT_POLICIES as unknown as [DefaultPolicy, ...DefaultPolicy[]]);

const RuleSchema = z.strictObject({
  name: z.string().min(1).optional(),
  action: z.enum(['allow', 'deny', 'audit']),
  from: oneOrMany(SourceSchema).optional(),
  to: oneOrMany(OperationSchema).optional(),
  when: oneOrMany(ConditionSchema).optional(),
  matchNothing: z.boolean().optional(),
  namespace: z.string().min(1).optional(),
  selector: LabelSelectorSchema.optional(),
});

const ServerRouteSchema = z.strictObject({
  ...operationShape,
  route: z.string().min(1).optional(),
  rank: z.number().int().min(0).optional(),
});

const ServerRuleSchema = z.strictObject({ ...RuleSchema.shape, route: z.string().min(1).optional() });

const ServerSchema = z.strictObject({
  name: z.string().min(1),
  ports: nonEmpty(port),
  accessPolicy: defaultPolicy.optional(),
  routes: z.array(ServerRouteSchema).optional(),
  rules: z.array(ServerRuleSchema).optional(),
  namespace: z.string().min(1).optional(),
  selector: LabelSelectorSchema.optional(),
});

/** The zod schema of the native document (`apiVersion`/`kind` optional: `sidecarless.dev/v1`, `Policy`). */
export const PolicySchema = z.strictObject({
  apiVersion: z.literal('sidecarless.dev/v1').optional(),
  kind: z.literal('Policy').optional(),
  rules: z.array(RuleSchema).optional(),
  servers: z.array(ServerSchema).optional(),
});

/** The native document as written (before canonicalization). */
export type PolicyInput = z.input<typeof PolicySchema>;

/** Readable issues (see zod-issues.ts): what was given, what would be right, the closest known field. */
function zodIssues(err: z.ZodError, input: unknown): PolicyIssue[] {
  return readableIssues(err.issues, input, PolicySchema, { noun: 'field' }).map((i) => ({ path: formatPath(i.path), message: i.message }));
}

type RawRule = z.output<typeof RuleSchema> & { route?: string };

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
  const r = PolicySchema.safeParse(value);
  if (!r.success) throw policyError(zodIssues(r.error, value));
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
