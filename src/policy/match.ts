/**
 * Compiled clauses (one `from`/`to`/`when` entry) and the allocation-free test of a request
 * against one. Every field present must hold; absent fields match anything.
 */
import { type IpRange, type ParsedIp, inRanges, parseCidr, parseIp } from './cidr.js';
import type { PeerIdentity } from '../identity/peer-identity.js';
import { type Alike, routerDecode } from './router-semantics.js';
import type { Condition, PolicyRequest } from './model.js';
import { splitIdentityPatterns } from './identity-patterns.js';
import { type PathMatcher, type StringMatcher, compilePaths, compileStrings, matchPath, matchString } from './patterns.js';

/** `namespace → Set of service accounts`, or `'*'` for every service account of the namespace. */
type SaIndex = ReadonlyMap<string, ReadonlySet<string> | '*'>;

/** One compiled clause; only the fields the policy used are present. */
export interface CompiledClause {
  readonly ports?: ReadonlySet<number>;
  readonly notPorts?: ReadonlySet<number>;
  readonly methods?: StringMatcher;
  readonly notMethods?: StringMatcher;
  readonly unauthenticated?: boolean;
  /** The `identities` patterns that judge SPIFFE peers (identity-patterns.ts); with `dnsIdentities`, for DNS-like peers. */
  readonly identities?: StringMatcher;
  readonly notIdentities?: StringMatcher;
  /** Present exactly when `identities` is: the patterns that judge DNS-like peers (maybe none). */
  readonly dnsIdentities?: StringMatcher;
  readonly notDnsIdentities?: StringMatcher;
  readonly trustDomains?: ReadonlySet<string>;
  readonly notTrustDomains?: ReadonlySet<string>;
  readonly namespaces?: StringMatcher;
  readonly notNamespaces?: StringMatcher;
  readonly serviceAccounts?: SaIndex;
  readonly notServiceAccounts?: SaIndex;
  readonly paths?: PathMatcher;
  readonly notPaths?: PathMatcher;
  /**
   * `paths` / `notPaths` as written and as a decoding router reads them (`/caf%C3%A9` is also
   * `/café`): matched against a request's alike spellings, which include decoded ones.
   */
  readonly alikePaths?: PathMatcher;
  readonly alikeNotPaths?: PathMatcher;
  /** The same lower-cased: matched against the lower-cased alike spellings of a request. */
  readonly foldedPaths?: PathMatcher;
  readonly foldedNotPaths?: PathMatcher;
  readonly hosts?: StringMatcher;
  readonly notHosts?: StringMatcher;
  readonly sni?: StringMatcher;
  readonly notSni?: StringMatcher;
  readonly headers?: ReadonlyArray<readonly [string, StringMatcher]>;
  readonly notHeaders?: ReadonlyArray<readonly [string, StringMatcher]>;
  readonly ipBlocks?: readonly IpRange[];
  readonly notIpBlocks?: readonly IpRange[];
}

/** Per-evaluation scratch values computed at most once per request, reused across requests. */
export interface EvalScratch {
  req: PolicyRequest | null;
  ipDone: boolean;
  ip: ParsedIp | null;
  host: string | undefined;
}

/** A fresh scratch object (one per compiled policy; evaluation is synchronous). */
export function newScratch(): EvalScratch {
  return { req: null, ipDone: false, ip: null, host: undefined };
}

function ranges(list: readonly string[]): IpRange[] {
  return list.map((c) => {
    const r = parseCidr(c);
    if (typeof r === 'string') throw new Error(r);
    return r;
  });
}

function saIndex(list: readonly string[]): SaIndex {
  const m = new Map<string, Set<string> | '*'>();
  for (const item of list) {
    const slash = item.indexOf('/');
    const ns = item.slice(0, slash);
    const sa = item.slice(slash + 1);
    const cur = m.get(ns);
    if (sa === '*' || cur === '*') m.set(ns, '*');
    else if (cur) cur.add(sa);
    else m.set(ns, new Set([sa]));
  }
  return m;
}

function headerList(h: Readonly<Record<string, readonly string[]>> | undefined) {
  return h ? Object.entries(h).map(([k, v]) => [k.toLowerCase(), compileStrings(v)] as const) : undefined;
}

/** Compiles one clause (Source, Operation or Condition fields). Patterns must be validated already. */
export function compileClause(c: Condition): CompiledClause {
  const out: { -readonly [K in keyof CompiledClause]: CompiledClause[K] } = {};
  if (c.ports) out.ports = new Set(c.ports);
  if (c.notPorts) out.notPorts = new Set(c.notPorts);
  if (c.methods) out.methods = compileStrings(c.methods);
  if (c.notMethods) out.notMethods = compileStrings(c.notMethods);
  if (c.unauthenticated !== undefined) out.unauthenticated = c.unauthenticated;
  if (c.identities) {
    const { spiffe, dns } = splitIdentityPatterns(c.identities);
    out.identities = compileStrings(spiffe);
    out.dnsIdentities = compileStrings(dns);
  }
  if (c.notIdentities) {
    const { spiffe, dns } = splitIdentityPatterns(c.notIdentities);
    out.notIdentities = compileStrings(spiffe);
    out.notDnsIdentities = compileStrings(dns);
  }
  if (c.trustDomains) out.trustDomains = new Set(c.trustDomains);
  if (c.notTrustDomains) out.notTrustDomains = new Set(c.notTrustDomains);
  if (c.namespaces) out.namespaces = compileStrings(c.namespaces);
  if (c.notNamespaces) out.notNamespaces = compileStrings(c.notNamespaces);
  if (c.serviceAccounts) out.serviceAccounts = saIndex(c.serviceAccounts);
  if (c.notServiceAccounts) out.notServiceAccounts = saIndex(c.notServiceAccounts);
  if (c.paths) {
    out.paths = compilePaths(c.paths);
    const alike = withDecoded(c.paths);
    out.alikePaths = alike === c.paths ? out.paths : compilePaths(alike);
    out.foldedPaths = compilePaths(alike.map(lowerCase));
  }
  if (c.notPaths) {
    out.notPaths = compilePaths(c.notPaths);
    const alike = withDecoded(c.notPaths);
    out.alikeNotPaths = alike === c.notPaths ? out.notPaths : compilePaths(alike);
    out.foldedNotPaths = compilePaths(alike.map(lowerCase));
  }
  if (c.hosts) out.hosts = compileStrings(c.hosts.map(hostPattern), true);
  if (c.notHosts) out.notHosts = compileStrings(c.notHosts.map(hostPattern), true);
  if (c.sni) out.sni = compileStrings(c.sni, true);
  if (c.notSni) out.notSni = compileStrings(c.notSni, true);
  const h = headerList(c.headers);
  if (h) out.headers = h;
  const nh = headerList(c.notHeaders);
  if (nh) out.notHeaders = nh;
  if (c.ipBlocks) out.ipBlocks = ranges(c.ipBlocks);
  if (c.notIpBlocks) out.notIpBlocks = ranges(c.notIpBlocks);
  return out;
}

const lowerCase = (p: string) => p.toLowerCase();

/**
 * The patterns plus their router-decoded forms (policy/router-semantics.ts), or `list` itself when no
 * pattern decodes to something else. A decoding router serves `/CAF%C3%89` and `/caf%C3%A9` (and
 * `/a|b` and `/a%7Cb`) from one handler, so alike spellings are compared with decoded patterns too.
 * A form whose decoding made pattern syntax (`%2A` → `*`, `%7B` → `{`) is left out: it would be a
 * different pattern, not a spelling.
 */
function withDecoded(list: readonly string[]): readonly string[] {
  let out: string[] | undefined;
  for (const p of list) {
    const d = routerDecode(p);
    if (d === undefined || d === p || list.includes(d) || syntaxOf(d) !== syntaxOf(p)) continue;
    (out ??= [...list]).push(d);
  }
  return out ?? list;
}

const syntaxOf = (p: string) => p.replace(/[^*{}]/g, '');

function hostPattern(h: string): string {
  return h.endsWith('.') && h !== '.' ? h.slice(0, -1) : h;
}

/** The request host, lower-cased, without port and trailing dot. */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    if (end > 0) h = h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0 && h.indexOf(':', colon + 1) < 0) h = h.slice(0, colon);
  }
  if (h.length > 1 && h.charCodeAt(h.length - 1) === 46) h = h.slice(0, -1);
  return h.toLowerCase();
}

function sourceIp(s: EvalScratch, req: PolicyRequest): ParsedIp | null {
  if (!s.ipDone) {
    s.ip = parseIp(req.sourceIp);
    s.ipDone = true;
  }
  return s.ip;
}

function reqHost(s: EvalScratch, req: PolicyRequest): string {
  if (s.host === undefined) s.host = normalizeHost(req.host);
  return s.host;
}

function inSa(idx: SaIndex, p: PeerIdentity | null, trustDomain: string): boolean {
  if (p === null || p.trustDomain !== trustDomain || p.namespace === undefined || p.serviceAccount === undefined) return false;
  const e = idx.get(p.namespace);
  return e !== undefined && (e === '*' || e.has(p.serviceAccount));
}

function headersMatch(list: ReadonlyArray<readonly [string, StringMatcher]>, req: PolicyRequest): boolean {
  for (let i = 0; i < list.length; i++) {
    const [name, m] = list[i]!;
    if (!matchString(m, req.header(name))) return false;
  }
  return true;
}

function anyHeaderMatches(list: ReadonlyArray<readonly [string, StringMatcher]>, req: PolicyRequest): boolean {
  for (let i = 0; i < list.length; i++) {
    const [name, m] = list[i]!;
    if (matchString(m, req.header(name))) return true;
  }
  return false;
}

/**
 * Whether `peer` satisfies the peer fields of `c` (everything but operation fields, `ipBlocks` and
 * `notIpBlocks`): a clause can only match requests from peers for which this holds. Positive
 * identity fields require an authenticated peer; `not*` identity fields hold for an
 * unauthenticated peer. `matchClause` uses it, so the rule index's per-peer filter and request
 * matching cannot disagree.
 */
export function matchPeer(c: CompiledClause, peer: PeerIdentity | null, trustDomain: string): boolean {
  if (c.unauthenticated !== undefined && c.unauthenticated !== (peer === null)) return false;
  if (c.identities !== undefined && (peer === null || !matchString(peer.kind === 'dns' ? c.dnsIdentities! : c.identities, peer.id))) return false;
  if (c.notIdentities !== undefined && peer !== null && matchString(peer.kind === 'dns' ? c.notDnsIdentities! : c.notIdentities, peer.id)) return false;
  if (c.trustDomains !== undefined && (peer === null || peer.trustDomain === undefined || !c.trustDomains.has(peer.trustDomain))) return false;
  if (c.notTrustDomains !== undefined && peer !== null && peer.trustDomain !== undefined && c.notTrustDomains.has(peer.trustDomain)) return false;
  if (c.namespaces !== undefined && (peer === null || !matchString(c.namespaces, peer.namespace))) return false;
  if (c.notNamespaces !== undefined && peer !== null && matchString(c.notNamespaces, peer.namespace)) return false;
  if (c.serviceAccounts !== undefined && !inSa(c.serviceAccounts, peer, trustDomain)) return false;
  if (c.notServiceAccounts !== undefined && inSa(c.notServiceAccounts, peer, trustDomain)) return false;
  return true;
}

/** Whether any alike spelling of the request's path matches `m` (or, lower-cased, `folded`). */
function anyAlikePath(m: PathMatcher, folded: PathMatcher | undefined, a: Alike): boolean {
  const p = a.paths;
  for (let i = 0; i < p.length; i++) if (matchPath(m, p[i]!)) return true;
  const f = a.folded;
  if (folded !== undefined) for (let i = 0; i < f.length; i++) if (matchPath(folded, f[i]!)) return true;
  return false;
}

function anyAlikeMethod(m: StringMatcher, a: Alike): boolean {
  const ms = a.methods;
  for (let i = 0; i < ms.length; i++) if (matchString(m, ms[i]!)) return true;
  return false;
}

/**
 * How a clause uses the alike spellings of a request (policy/router-semantics.ts), always in the
 * direction that fails closed: WIDEN_DENY (deny and audit rules) — positive `paths`/`methods`
 * hold when any alike spelling matches; NARROW_ALLOW (allow rules, server routes) — `notPaths`/
 * `notMethods` exclude when any alike spelling is listed. Every other field judges what was sent.
 */
export const WIDEN_DENY = 1;
export const NARROW_ALLOW = 0;
export type AlikeMode = typeof WIDEN_DENY | typeof NARROW_ALLOW;

function methodsHold(c: CompiledClause, req: PolicyRequest, mode: AlikeMode): boolean {
  const a = req.alike;
  if (c.methods !== undefined && !(a !== undefined && mode === WIDEN_DENY ? anyAlikeMethod(c.methods, a) : matchString(c.methods, req.method))) return false;
  if (c.notMethods !== undefined && (a !== undefined && mode === NARROW_ALLOW ? anyAlikeMethod(c.notMethods, a) : matchString(c.notMethods, req.method))) return false;
  return true;
}

function pathsHold(c: CompiledClause, req: PolicyRequest, mode: AlikeMode): boolean {
  const a = req.alike;
  if (c.paths !== undefined && !(a !== undefined && mode === WIDEN_DENY ? anyAlikePath(c.alikePaths ?? c.paths, c.foldedPaths, a) : matchPath(c.paths, req.path))) return false;
  if (c.notPaths !== undefined && (a !== undefined && mode === NARROW_ALLOW ? anyAlikePath(c.alikeNotPaths ?? c.notPaths, c.foldedNotPaths, a) : matchPath(c.notPaths, req.path))) return false;
  return true;
}

/**
 * Whether `req` satisfies every field of `c`. Positive identity fields require an authenticated
 * peer; `not*` identity fields hold for an unauthenticated peer (it has none of the listed identities).
 * `mode` says how the request's alike spellings count (see {@link WIDEN_DENY}).
 */
export function matchClause(c: CompiledClause, req: PolicyRequest, s: EvalScratch, trustDomain: string, mode: AlikeMode = NARROW_ALLOW): boolean {
  if (c.ports !== undefined && !c.ports.has(req.port)) return false;
  if (c.notPorts !== undefined && c.notPorts.has(req.port)) return false;
  if ((c.methods !== undefined || c.notMethods !== undefined) && !methodsHold(c, req, mode)) return false;
  if (!matchPeer(c, req.peer, trustDomain)) return false;
  if ((c.paths !== undefined || c.notPaths !== undefined) && !pathsHold(c, req, mode)) return false;
  if (c.hosts !== undefined && !matchString(c.hosts, reqHost(s, req))) return false;
  if (c.notHosts !== undefined && matchString(c.notHosts, reqHost(s, req))) return false;
  if (c.sni !== undefined && !matchString(c.sni, req.sni?.toLowerCase())) return false;
  if (c.notSni !== undefined && matchString(c.notSni, req.sni?.toLowerCase())) return false;
  if (c.headers !== undefined && !headersMatch(c.headers, req)) return false;
  if (c.notHeaders !== undefined && anyHeaderMatches(c.notHeaders, req)) return false;
  if (c.ipBlocks !== undefined && !inRanges(c.ipBlocks, sourceIp(s, req))) return false;
  if (c.notIpBlocks !== undefined && inRanges(c.notIpBlocks, sourceIp(s, req))) return false;
  return true;
}

/** Parses CIDR strings into ranges (pre-validated input). */
export function compileRanges(list: readonly string[]): IpRange[] {
  return ranges(list);
}

/** Re-exported for the evaluator's default policies. */
export { inRanges, sourceIp as scratchIp };
