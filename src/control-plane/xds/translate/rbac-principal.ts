/**
 * RBAC Principals (who) → formulas over native Source fields. `authenticated.principal_name` is
 * matched against the peer's SPIFFE ID, the only identity the mesh verifies (an SVID has exactly
 * one URI SAN; DNS SANs and the subject are not identities here), so a matcher that could only
 * match a DNS SAN or a subject is refused. Regular expressions are accepted in the fixed shapes
 * istiod writes (pilot/pkg/security/authz/model/generator.go), never interpreted:
 *
 * - `.+`                                        any principal (`principals: ["*"]`)
 * - `spiffe://.*<quoted suffix>`                `principals: ["*suffix"]`
 * - `.*\/ns/<ns>/.*` (slash escaped here)    `namespaces: [ns]` (ns a DNS label, or `.*`)
 * - `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`   `serviceAccounts: ["ns/sa"]`
 *
 * The namespace and service-account shapes also match IDs that are not of Kubernetes shape
 * (`spiffe://td/x/ns/a/y`), which the native `namespaces` field does not: they are exact for
 * `/ns/<ns>/sa/<sa>` IDs, and for other authenticated peers `dnf` takes the side that fails closed
 * (see rbac-formula.ts). Pure.
 */
import type { Principal, Principal_Set } from '../../../proto/envoy/config/rbac/v3/rbac.js';
import type { StringMatcher } from '../../../proto/envoy/type/matcher/v3/matcher.js';
import { type Findings, quote } from './result.js';
import { type Dnf, type Formula, type Part, FALSE, MAX_DEPTH, TRUE, exact, field } from './rbac-formula.js';
import { cidrOf, headerFormula, pathFormula, refuseUnknownString } from './rbac-permission.js';
import { refuseUnknown } from './unknown-fields.js';
import { PRINCIPAL, PRINCIPAL_AUTHENTICATED, PRINCIPAL_SET } from './envoy-fields.js';

const SPIFFE = 'spiffe://';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Go's regexp.QuoteMeta escapes exactly these. */
const META = '\\.+*?()|[]{}^$';
const AUTHENTICATED: Part = { kind: 'authenticated', value: true };
/** An authenticated peer whose ID is not `/ns/<ns>/sa/<sa>` (no namespace to compare). */
const NOT_KUBERNETES: readonly Part[] = [AUTHENTICATED, field('namespaces', ['*'], true)];

/** The literal a QuoteMeta'd string stands for, or undefined when it is not one. */
export function unquoteMeta(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      const n = s[++i];
      if (n === undefined || !META.includes(n)) return undefined;
      out += n;
    } else if (META.includes(c)) return undefined;
    else out += c;
  }
  return out;
}

/** `spiffe://.*X`: IDs ending with X after the scheme. `*X` alone would also match IDs where X overlaps the scheme itself. */
function suffixAtom(x: string): Dnf {
  const overlaps: string[] = [];
  for (let k = 0; k < SPIFFE.length; k++) if (x.startsWith(SPIFFE.slice(k))) overlaps.push(SPIFFE.slice(0, k) + x);
  const parts: Part[] = [field('identities', [`*${x}`])];
  if (overlaps.length) parts.push(field('identities', overlaps, true));
  return [parts];
}

function namespaceAtom(ns: string): Formula {
  if (ns === '.*') return { t: 'dnf', under: [[field('namespaces', ['*'])]], over: [[AUTHENTICATED]] };
  const under: Dnf = [[field('namespaces', [ns])]];
  // What else contains "/ns/<ns>/": any ID not of Kubernetes shape; `spiffe://td/ns/ns/sa/x` for
  // ns "sa"; every ID of trust domain "ns" for ns "ns".
  const over: Part[][] = [[field('namespaces', [ns])], [...NOT_KUBERNETES]];
  if (ns === 'sa') over.push([field('namespaces', ['ns'])]);
  if (ns === 'ns') over.push([field('trustDomains', ['ns'])]);
  return { t: 'dnf', under, over };
}

function serviceAccountAtom(ns: string, sa: string): Formula {
  const k8s: Part[] = [field('namespaces', [ns]), field('identities', [`*/sa/${sa}`])];
  return { t: 'dnf', under: [k8s], over: [k8s, [...NOT_KUBERNETES]] };
}

const NS_REGEX = /^\.\*\/ns\/(.+)\/\.\*$/;
const SA_REGEX = /^spiffe:\/\/\.\+\/ns\/(.+)\/\(\.\+\/\|\)sa\/(.+)\(\/\.\+\)\?$/;
const SUFFIX_REGEX = /^spiffe:\/\/\.\*(.+)$/;

function regexAtom(re: string, f: Findings, at: string): Formula | undefined {
  if (re === '.+') return exact([[field('identities', ['*'])]]);
  const ns = NS_REGEX.exec(re);
  if (ns && (ns[1] === '.*' || DNS_LABEL.test(ns[1]!))) return namespaceAtom(ns[1]!);
  const sa = SA_REGEX.exec(re);
  if (sa) {
    const n = unquoteMeta(sa[1]!);
    const a = unquoteMeta(sa[2]!);
    if (n !== undefined && a !== undefined && /^[^/*]+$/.test(n) && /^[^/*]+$/.test(a)) return serviceAccountAtom(n, a);
  }
  const sx = SUFFIX_REGEX.exec(re);
  const x = sx ? unquoteMeta(sx[1]!) : undefined;
  if (x !== undefined && x !== '' && !x.includes('*')) return exact(suffixAtom(x));
  f.refuse(at, `regex ${quote(re)} is not one of the shapes istiod writes for principals (".+", "spiffe://.*<suffix>", ".*/ns/<ns>/.*", "spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?"): sidecarless does not interpret other regular expressions`);
  return undefined;
}

/** `authenticated.principal_name` → a formula over the peer's SPIFFE ID. */
function principalName(m: StringMatcher, f: Findings, at: string): Formula | undefined {
  refuseUnknownString(m, f, at);
  if (m.ignoreCase) {
    f.refuse(`${at}.ignore_case`, 'SPIFFE IDs are compared case-sensitively; ignore_case is not supported');
    return undefined;
  }
  if (m.safeRegex !== undefined) return regexAtom(m.safeRegex.regex, f, `${at}.safe_regex.regex`);
  const v = m.exact ?? m.prefix;
  if (v !== undefined) {
    const kind = m.exact !== undefined ? 'exact' : 'prefix';
    if (v.includes('*')) f.refuse(`${at}.${kind}`, `${quote(v)}: "*" is literal here but a wildcard in sidecarless patterns (and no SPIFFE ID holds one)`);
    else if (kind === 'prefix' && SPIFFE.startsWith(v)) return exact(v === '' ? TRUE : [[field('identities', ['*'])]]);
    else if (!v.startsWith(SPIFFE)) f.refuse(`${at}.${kind}`, `${quote(v)} is not a SPIFFE ID${kind === 'prefix' ? ' prefix' : ''}: the mesh matches principals against the peer's SPIFFE ID only (not DNS SANs or the subject)`);
    else return exact([[field('identities', [kind === 'exact' ? v : `${v}*`])]]);
    return undefined;
  }
  const which = m.suffix !== undefined ? 'suffix' : m.contains !== undefined ? 'contains' : undefined;
  f.refuse(which ? `${at}.${which}` : at, which ? `${which} matchers on principals are not supported (they also match DNS SANs and subjects): write a SPIFFE ID prefix, or the regex istiod writes` : 'holds a matcher sidecarless does not declare');
  return undefined;
}

function set(s: Principal_Set, t: 'and' | 'or', f: Findings, at: string, depth: number): Formula | undefined {
  refuseUnknown(s, f, at, PRINCIPAL_SET);
  if (s.ids.length === 0) {
    f.refuse(`${at}.ids`, 'must not be empty');
    return undefined;
  }
  const xs = s.ids.map((p, i) => principalFormula(p, f, `${at}.ids[${i}]`, depth + 1));
  return xs.every((x): x is Formula => x !== undefined) ? { t, xs } : undefined;
}

/** One Principal → its formula, or undefined with the reasons recorded. */
export function principalFormula(p: Principal, f: Findings, at: string, depth = 0): Formula | undefined {
  if (depth > MAX_DEPTH) {
    f.refuse(at, `nested deeper than ${MAX_DEPTH} levels`);
    return undefined;
  }
  refuseUnknown(p, f, at, PRINCIPAL);
  if (p.andIds !== undefined) return set(p.andIds, 'and', f, `${at}.and_ids`, depth);
  if (p.orIds !== undefined) return set(p.orIds, 'or', f, `${at}.or_ids`, depth);
  if (p.notId !== undefined) {
    const x = principalFormula(p.notId, f, `${at}.not_id`, depth + 1);
    return x === undefined ? undefined : { t: 'not', x };
  }
  if (p.any !== undefined) {
    if (!p.any) f.refuse(`${at}.any`, 'must be true');
    return exact(p.any ? TRUE : FALSE);
  }
  if (p.authenticated !== undefined) {
    refuseUnknown(p.authenticated, f, `${at}.authenticated`, PRINCIPAL_AUTHENTICATED);
    const m = p.authenticated.principalName;
    return m === undefined ? exact([[AUTHENTICATED]]) : principalName(m, f, `${at}.authenticated.principal_name`);
  }
  const cidr = p.directRemoteIp ?? p.remoteIp ?? p.sourceIp;
  if (cidr !== undefined) {
    const name = p.directRemoteIp ? 'direct_remote_ip' : p.remoteIp ? 'remote_ip' : 'source_ip';
    // In process there is no proxy in front: the remote address is the socket's.
    const c = cidrOf(cidr, f, `${at}.${name}`);
    return c === undefined ? undefined : exact([[field('ipBlocks', [c])]]);
  }
  if (p.header !== undefined) return headerFormula(p.header, f, `${at}.header`);
  if (p.urlPath !== undefined) return pathFormula(p.urlPath, f, `${at}.url_path`);
  if (p.metadata !== undefined) f.refuse(`${at}.metadata`, 'metadata principals are not supported (a proxyless client has no Envoy metadata; gRFC A41: it never matches)');
  else f.refuse(at, 'holds an identifier sidecarless does not declare (filter_state, custom, sourced_metadata, …)');
  return undefined;
}
