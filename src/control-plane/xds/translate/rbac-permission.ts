/**
 * RBAC Permissions (what) → formulas over native Operation fields, in the shapes istiod writes
 * (pilot/pkg/security/authz/model: `:method` and `:authority` header matchers, `url_path`,
 * `destination_port`). Exact, except the Host: Envoy compares `:authority` as sent (its port
 * included), the native `hosts` field without port, trailing dot or case. So a host matcher has
 * two forms (rbac-formula.ts): the Host header compared as sent (never more than Envoy) and
 * `hosts` (never less); an ALLOW policy gets the first, a DENY policy the second. Pure.
 */
import type { Permission, Permission_Set } from '../../../proto/envoy/config/rbac/v3/rbac.js';
import type { CidrRange } from '../../../proto/envoy/config/core/v3/address.js';
import type { HeaderMatcher } from '../../../proto/envoy/config/route/v3/route.js';
import type { PathMatcher, StringMatcher } from '../../../proto/envoy/type/matcher/v3/matcher.js';
import { parseCidr } from '../../../policy/cidr.js';
import { checkPathPattern } from '../../../policy/model.js';
import { type Findings, quote } from './result.js';
import { type Formula, FALSE, MAX_DEPTH, TRUE, exact, field } from './rbac-formula.js';
import { refuseUnknown } from './unknown-fields.js';
import { CIDR_RANGE, HEADER_MATCHER, PATH_MATCHER, PERMISSION, PERMISSION_SET, REGEX_MATCHER, STRING_MATCHER } from './envoy-fields.js';

/** A StringMatcher's own undeclared fields and its regex's. */
export function refuseUnknownString(m: StringMatcher, f: Findings, at: string): void {
  refuseUnknown(m, f, at, STRING_MATCHER);
  refuseUnknown(m.safeRegex, f, `${at}.safe_regex`, REGEX_MATCHER);
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A CidrRange as `address/len` (an unset length is 0, as in Envoy), or undefined with a reason. */
export function cidrOf(c: CidrRange, f: Findings, at: string): string | undefined {
  refuseUnknown(c, f, at, CIDR_RANGE);
  const text = `${c.addressPrefix}/${c.prefixLen ?? 0}`;
  const r = parseCidr(text);
  if (typeof r === 'string') {
    f.refuse(at, `${quote(text)}: ${r}`);
    return undefined;
  }
  return text;
}

/** A string matcher as one sidecarless pattern (exact, `prefix*`, `*suffix`), for values where `*` never occurs literally. */
function starPattern(m: StringMatcher, f: Findings, at: string, what: string): string | undefined {
  const kind = m.exact !== undefined ? 'exact' : m.prefix !== undefined ? 'prefix' : m.suffix !== undefined ? 'suffix' : undefined;
  const v = m.exact ?? m.prefix ?? m.suffix;
  if (kind === undefined || v === undefined) {
    const which = m.safeRegex !== undefined ? 'safe_regex' : m.contains !== undefined ? 'contains' : undefined;
    f.refuse(which ? `${at}.${which}` : at, which ? `${which} is not supported for ${what}` : 'holds a matcher sidecarless does not declare');
    return undefined;
  }
  if (v.includes('*')) {
    f.refuse(`${at}.${kind}`, `${quote(v)}: "*" is literal here but a wildcard in sidecarless patterns`);
    return undefined;
  }
  if (v === '' && kind !== 'exact') {
    f.refuse(`${at}.${kind}`, 'must not be empty');
    return undefined;
  }
  return kind === 'exact' ? v : kind === 'prefix' ? `${v}*` : `*${v}`;
}

/** The string matcher of a HeaderMatcher (string_match or the deprecated forms), or a refusal. */
function headerString(h: HeaderMatcher, f: Findings, at: string): StringMatcher | 'present' | 'absent' | undefined {
  refuseUnknown(h, f, at, HEADER_MATCHER);
  if (h.stringMatch !== undefined) refuseUnknownString(h.stringMatch, f, `${at}.string_match`);
  if (h.treatMissingHeaderAsEmpty) {
    f.refuse(`${at}.treat_missing_header_as_empty`, 'is not supported');
    return undefined;
  }
  if (h.stringMatch !== undefined) return h.stringMatch;
  if (h.presentMatch !== undefined) return h.presentMatch ? 'present' : 'absent';
  if (h.exactMatch !== undefined) return { exact: h.exactMatch, ignoreCase: false };
  if (h.prefixMatch !== undefined) return { prefix: h.prefixMatch, ignoreCase: false };
  if (h.suffixMatch !== undefined) return { suffix: h.suffixMatch, ignoreCase: false };
  const which = h.safeRegexMatch !== undefined ? 'safe_regex_match' : h.rangeMatch !== undefined ? 'range_match' : h.containsMatch !== undefined ? 'contains_match' : undefined;
  f.refuse(which ? `${at}.${which}` : at, which ? `is not supported in RBAC header matchers` : 'holds a match sidecarless does not declare');
  return undefined;
}

function methodFormula(m: StringMatcher | 'present' | 'absent', f: Findings, at: string): Formula | undefined {
  if (m === 'present' || m === 'absent') return exact(m === 'present' ? TRUE : FALSE);
  if (m.exact === undefined || m.ignoreCase) {
    f.refuse(at, 'a :method matcher must be an exact, case-sensitive method (as istiod writes methods)');
    return undefined;
  }
  if (!METHOD.test(m.exact) || m.exact.includes('*')) {
    f.refuse(`${at}.exact`, `${quote(m.exact)} is not an HTTP method`);
    return undefined;
  }
  return exact([[field('methods', [m.exact])]]);
}

function hostFormula(m: StringMatcher | 'present' | 'absent', f: Findings, at: string): Formula | undefined {
  if (m === 'present' || m === 'absent') return exact(m === 'present' ? TRUE : FALSE);
  const p = starPattern(m, f, at, 'hosts');
  if (p === undefined) return undefined;
  if (/:[0-9]*$/.test(p) && !p.endsWith(']')) {
    f.refuse(at, `${quote(p)}: a host with a port is not supported (sidecarless matches hosts without their port; use destination_port)`);
    return undefined;
  }
  // Below: the Host header as sent (case, port and all) — Envoy's match, or less when it ignores case.
  // Above: `hosts`, which drops the port and the trailing dot and ignores case.
  return { t: 'dnf', under: [[{ kind: 'header', name: 'host', negated: false, values: [p] }]], over: [[field('hosts', [p])]] };
}

/** A HeaderMatcher (permission or principal) → its formula; `:method` and `:authority`/`host` map to methods and hosts. */
export function headerFormula(h: HeaderMatcher, f: Findings, at: string): Formula | undefined {
  const name = h.name.toLowerCase();
  const m = headerString(h, f, at);
  if (m === undefined) return undefined;
  let x: Formula | undefined;
  if (name === ':method') x = methodFormula(m, f, at);
  else if (name === ':authority' || name === 'host') x = hostFormula(m, f, at);
  else if (name.startsWith(':')) {
    f.refuse(`${at}.name`, `${quote(h.name)}: only :method and :authority are supported among pseudo-headers (paths come as url_path, matched without the query)`);
  } else if (!TOKEN.test(name)) f.refuse(`${at}.name`, `${quote(h.name)} is not a header name`);
  else if (m === 'present' || m === 'absent') x = exact([[{ kind: 'header', name, negated: m === 'absent', values: ['*'] }]]);
  else if (m.ignoreCase) f.refuse(`${at}.string_match.ignore_case`, 'header values are compared case-sensitively; ignore_case is not supported');
  else {
    const p = starPattern(m, f, `${at}.string_match`, 'header values');
    if (p !== undefined) x = exact([[{ kind: 'header', name, negated: false, values: [p] }]]);
  }
  if (x === undefined) return undefined;
  return h.invertMatch ? { t: 'not', x } : x;
}

/** `url_path` → `paths` (matched against the normalized path, without the query, as Envoy's url_path). */
export function pathFormula(pm: PathMatcher, f: Findings, at: string): Formula | undefined {
  refuseUnknown(pm, f, at, PATH_MATCHER);
  const m = pm.path;
  if (m === undefined) {
    f.refuse(at, 'holds a rule sidecarless does not declare');
    return undefined;
  }
  const pat = `${at}.path`;
  refuseUnknownString(m, f, pat);
  if (m.ignoreCase) {
    f.refuse(`${pat}.ignore_case`, 'paths are compared case-sensitively; ignore_case is not supported');
    return undefined;
  }
  if (m.safeRegex !== undefined) {
    if (m.safeRegex.regex === '.+') return exact([[field('paths', ['*'])]]);
    f.refuse(`${pat}.safe_regex.regex`, `${quote(m.safeRegex.regex)}: only ".+" (istiod's "*") is supported; write exact, prefix or suffix paths`);
    return undefined;
  }
  const p = starPattern(m, f, pat, 'paths');
  if (p === undefined) return undefined;
  if (p.includes('{')) {
    f.refuse(pat, `${quote(p)}: "{" is literal here but a template in sidecarless paths`);
    return undefined;
  }
  const e = checkPathPattern(p);
  if (e !== undefined) {
    f.refuse(pat, `${e} (requests are judged by their normalized path)`);
    return undefined;
  }
  return exact([[field('paths', [p])]]);
}

function rules(set: Permission_Set, t: 'and' | 'or', f: Findings, at: string, depth: number): Formula | undefined {
  refuseUnknown(set, f, at, PERMISSION_SET);
  if (set.rules.length === 0) {
    f.refuse(`${at}.rules`, 'must not be empty');
    return undefined;
  }
  const xs = set.rules.map((p, i) => permissionFormula(p, f, `${at}.rules[${i}]`, depth + 1));
  return xs.every((x): x is Formula => x !== undefined) ? { t, xs } : undefined;
}

/** One Permission → its formula, or undefined with the reasons recorded. */
export function permissionFormula(p: Permission, f: Findings, at: string, depth = 0): Formula | undefined {
  if (depth > MAX_DEPTH) {
    f.refuse(at, `nested deeper than ${MAX_DEPTH} levels`);
    return undefined;
  }
  refuseUnknown(p, f, at, PERMISSION);
  if (p.andRules !== undefined) return rules(p.andRules, 'and', f, `${at}.and_rules`, depth);
  if (p.orRules !== undefined) return rules(p.orRules, 'or', f, `${at}.or_rules`, depth);
  if (p.notRule !== undefined) {
    const x = permissionFormula(p.notRule, f, `${at}.not_rule`, depth + 1);
    return x === undefined ? undefined : { t: 'not', x };
  }
  if (p.any !== undefined) {
    if (!p.any) f.refuse(`${at}.any`, 'must be true');
    return exact(p.any ? TRUE : FALSE);
  }
  if (p.header !== undefined) return headerFormula(p.header, f, `${at}.header`);
  if (p.urlPath !== undefined) return pathFormula(p.urlPath, f, `${at}.url_path`);
  if (p.destinationPort !== undefined) {
    if (p.destinationPort < 1 || p.destinationPort > 65535) {
      f.refuse(`${at}.destination_port`, `${p.destinationPort} is not a port (1-65535)`);
      return undefined;
    }
    return exact([[field('ports', [p.destinationPort])]]);
  }
  if (p.destinationIp !== undefined) f.refuse(`${at}.destination_ip`, 'is not supported: the native policy has no destination address (Istio: when destination.ip)');
  else if (p.destinationPortRange !== undefined) f.refuse(`${at}.destination_port_range`, 'is not supported: list the ports');
  else if (p.requestedServerName !== undefined) f.refuse(`${at}.requested_server_name`, 'is not supported (Istio: when connection.sni)');
  else if (p.metadata !== undefined) f.refuse(`${at}.metadata`, 'metadata permissions are not supported (a proxyless client has no Envoy metadata; gRFC A41: it never matches)');
  else f.refuse(at, 'holds a rule sidecarless does not declare (uri_template, matcher, …)');
  return undefined;
}
