/**
 * xDS RouteMatch → our RouteMatch (outbound/settings.ts). Envoy's meanings, kept exactly:
 * `prefix` is a plain string prefix (our `stringPrefix`), `path_separated_prefix` a prefix on
 * segment boundaries (our `prefix`), `path` exact, `safe_regex` an RE2 full match on the path
 * without its query (regex.ts). `case_sensitive: false` turns exact and prefix matches into
 * ASCII-case-insensitive regexes (Envoy ignores it for regexes, so do we). Headers: exact, prefix,
 * suffix, contains and regex string matchers (ignore_case honoured), presence (and its inverse);
 * `:method` exact becomes the route's methods. Anything else is a reason: range and inverted value
 * matchers, other pseudo-headers, query parameters, a runtime fraction below 100 %.
 */
import type { HeaderMatcher, RouteMatch as XdsRouteMatch } from '../../../proto/envoy/config/route/v3/route.js';
import type { StringMatcher } from '../../../proto/envoy/type/matcher/v3/matcher.js';
import type { HeaderMatch, PathMatch, RouteMatch } from '../../../outbound/settings.js';
import type { Findings } from './result.js';
import { literalSource, re2ToJs } from './regex.js';
import { FRACTIONAL_PERCENT, HEADER_MATCHER, REGEX_MATCHER, ROUTE_MATCH, RUNTIME_FRACTIONAL_PERCENT, STRING_MATCHER } from './envoy-fields.js';
import { refuseUnknown } from './unknown-fields.js';

const ANY_TAIL = '[\\s\\S]*';
const METHOD = /^[A-Z][A-Z0-9-]*$/;

/** The path part of a match, or undefined (with a reason). */
function pathOf(m: XdsRouteMatch, f: Findings, at: string): PathMatch | undefined {
  const ci = m.caseSensitive === false;
  const noQuery = (field: string, v: string) => {
    if (/[?#]/.test(v)) f.refuse(`${at}.${field}`, `${JSON.stringify(v)} holds "?" or "#": sidecarless matches the path without its query`);
  };
  if (m.prefix !== undefined) {
    noQuery('prefix', m.prefix);
    return ci ? { regex: literalSource(m.prefix, true) + ANY_TAIL } : { stringPrefix: m.prefix };
  }
  if (m.path !== undefined) {
    noQuery('path', m.path);
    return ci ? { regex: literalSource(m.path, true) } : { exact: m.path };
  }
  if (m.pathSeparatedPrefix !== undefined) {
    const p = m.pathSeparatedPrefix;
    noQuery('path_separated_prefix', p);
    if (!p.startsWith('/') || (p.length > 1 && p.endsWith('/'))) {
      f.refuse(`${at}.path_separated_prefix`, `${JSON.stringify(p)} must start with "/" and not end with one (Envoy's rule)`);
      return undefined;
    }
    if (!ci) return { prefix: p };
    return { regex: p === '/' ? `/${ANY_TAIL}` : `${literalSource(p, true)}(?:/${ANY_TAIL})?` };
  }
  if (m.safeRegex !== undefined) {
    refuseUnknown(m.safeRegex, f, `${at}.safe_regex`, REGEX_MATCHER);
    const r = re2ToJs(m.safeRegex.regex);
    if (!r.ok) f.refuse(`${at}.safe_regex.regex`, r.message);
    return r.ok ? { regex: r.source } : undefined;
  }
  f.refuse(`${at}.path_specifier`, 'none of prefix, path, safe_regex, path_separated_prefix is set (a connect_matcher or a newer form sidecarless does not know)');
  return undefined;
}

/** A StringMatcher as our exact/regex header match, or undefined (with a reason). */
function stringMatch(name: string, s: StringMatcher, f: Findings, at: string): HeaderMatch | undefined {
  refuseUnknown(s, f, at, STRING_MATCHER);
  const ic = s.ignoreCase;
  if (s.exact !== undefined) return ic ? { name, regex: literalSource(s.exact, true) } : { name, exact: s.exact };
  if (s.prefix !== undefined) return { name, regex: literalSource(s.prefix, ic) + ANY_TAIL };
  if (s.suffix !== undefined) return { name, regex: ANY_TAIL + literalSource(s.suffix, ic) };
  if (s.contains !== undefined) return { name, regex: ANY_TAIL + literalSource(s.contains, ic) + ANY_TAIL };
  if (s.safeRegex !== undefined) {
    if (ic) f.refuse(`${at}.ignore_case`, 'ignore_case with safe_regex is not supported (write the case into the regex)');
    refuseUnknown(s.safeRegex, f, `${at}.safe_regex`, REGEX_MATCHER);
    const r = re2ToJs(s.safeRegex.regex);
    if (!r.ok) f.refuse(`${at}.safe_regex.regex`, r.message);
    return r.ok ? { name, regex: r.source } : undefined;
  }
  f.refuse(`${at}.match_pattern`, 'none of exact, prefix, suffix, safe_regex, contains is set');
  return undefined;
}

/** One HeaderMatcher; `methods` collects a `:method` exact match. */
function headerOf(h: HeaderMatcher, f: Findings, at: string, methods: string[]): HeaderMatch | undefined {
  refuseUnknown(h, f, at, HEADER_MATCHER);
  const name = h.name.toLowerCase();
  if (!/^:?[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
    f.refuse(`${at}.name`, `${JSON.stringify(h.name.slice(0, 100))} is not a header name`);
    return undefined;
  }
  if (h.treatMissingHeaderAsEmpty) f.refuse(`${at}.treat_missing_header_as_empty`, 'not supported: a missing header never matches a value');
  if (h.presentMatch !== undefined) return { name, present: h.invertMatch ? !h.presentMatch : h.presentMatch };
  if (h.invertMatch) {
    f.refuse(`${at}.invert_match`, 'inverted value matches are not supported (only an inverted present_match)');
    return undefined;
  }
  let m: HeaderMatch | undefined;
  if (h.exactMatch !== undefined) m = { name, exact: h.exactMatch };
  else if (h.stringMatch !== undefined) m = stringMatch(name, h.stringMatch, f, `${at}.string_match`);
  else if (h.prefixMatch !== undefined) m = { name, regex: literalSource(h.prefixMatch) + ANY_TAIL };
  else if (h.suffixMatch !== undefined) m = { name, regex: ANY_TAIL + literalSource(h.suffixMatch) };
  else if (h.containsMatch !== undefined) m = { name, regex: ANY_TAIL + literalSource(h.containsMatch) + ANY_TAIL };
  else if (h.safeRegexMatch !== undefined) {
    refuseUnknown(h.safeRegexMatch, f, `${at}.safe_regex_match`, REGEX_MATCHER);
    const r = re2ToJs(h.safeRegexMatch.regex);
    if (!r.ok) f.refuse(`${at}.safe_regex_match.regex`, r.message);
    else m = { name, regex: r.source };
  } else if (h.rangeMatch !== undefined) f.refuse(`${at}.range_match`, 'range matches are not supported');
  else f.refuse(`${at}.header_match_specifier`, 'no match form is set (a form sidecarless does not know)');
  if (m === undefined || !name.startsWith(':')) return m;
  if (name === ':method' && 'exact' in m && METHOD.test(m.exact)) methods.push(m.exact);
  else f.refuse(`${at}.name`, `${JSON.stringify(name)}: of the pseudo-headers only ":method" with an exact upper-case method is supported`);
  return undefined;
}

/** Translates a RouteMatch; `at` is its field path (`virtual_hosts[0].routes[1].match`). */
export function translateMatch(m: XdsRouteMatch | undefined, f: Findings, at: string): RouteMatch {
  if (m === undefined) {
    f.refuse(at, 'a route needs a match');
    return {};
  }
  refuseUnknown(m, f, at, ROUTE_MATCH);
  const path = pathOf(m, f, at);
  const methods: string[] = [];
  const headers: HeaderMatch[] = [];
  m.headers.forEach((h, i) => {
    const x = headerOf(h, f, `${at}.headers[${i}]`, methods);
    if (x) headers.push(x);
  });
  if (methods.length > 1 && new Set(methods).size > 1) f.refuse(`${at}.headers`, 'two different ":method" matches can never both hold');
  if (m.queryParameters.length > 0) f.refuse(`${at}.query_parameters`, 'query parameter matches are not supported');
  const rf = m.runtimeFraction;
  if (rf !== undefined) {
    refuseUnknown(rf, f, `${at}.runtime_fraction`, RUNTIME_FRACTIONAL_PERCENT);
    const d = rf.defaultValue;
    refuseUnknown(d, f, `${at}.runtime_fraction.default_value`, FRACTIONAL_PERCENT);
    const scale = [100, 10_000, 1_000_000][d?.denominator ?? 0];
    if (d === undefined || scale === undefined || d.numerator < scale) f.refuse(`${at}.runtime_fraction`, 'a route matching a fraction of requests is not supported (only 100 %)');
    else if (rf.runtimeKey !== '') f.note(`${at}.runtime_fraction.runtime_key`, 'no runtime: the default value (100 %) applies');
  }
  return { ...(path && { path }), ...(methods.length > 0 && { methods: [methods[0]!] }), ...(headers.length > 0 && { headers }) };
}
