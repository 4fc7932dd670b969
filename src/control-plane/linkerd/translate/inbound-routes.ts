/**
 * Linkerd inbound route matches → native server routes (policy/model.ts ServerRoute): an
 * operation per (route, rule, match, host), named by its route and ranked so that the native
 * evaluator classifies a request into the route linkerd2-proxy would pick (specificity.ts), ties
 * going to the route sent first (the rank carries the order). Policy operations match on
 * normalized paths, exact or by segment prefix, exact header values, methods and hosts; so:
 *
 * - path exact → that path; prefix → the path and everything under it (`/*` for `/`); a path with
 *   `*`, `{` or `}` (pattern characters) or a regex → refused (policy cannot express it safely);
 * - headers: exact values without `*` → the value; a regex → refused;
 * - query-parameter matches → refused (policy never reads the query);
 * - hosts: exact → the host, `*.suffix` → the wildcard; none → any host;
 * - gRPC: POST; service + method → `/service/method`, a service alone → `/service/*`; a method
 *   alone → refused (policy has no "any first segment");
 * - rule filters → refused (policy cannot redirect, inject failures or modify headers).
 * Pure.
 */
import { checkPathPattern, type Operation, type ServerRoute } from '../../../policy/model.js';
import type { GrpcRoute, HttpRoute } from '../../../proto/linkerd/inbound.js';
import type { GrpcRouteMatch } from '../../../proto/linkerd/grpc_route.js';
import type { HeaderMatch, HostMatch, HttpRouteMatch } from '../../../proto/linkerd/http_route.js';
import { type Findings, quote } from './findings.js';
import { methodOf } from './http-match.js';
import { grpcSpecificity, httpSpecificity, compareSpecificity, type Specificity } from './specificity.js';

export const MAX_ROUTE_OPERATIONS = 1000;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function pathsOf(m: HttpRouteMatch, f: Findings, at: string): string[] | undefined {
  const k = m.path?.kind;
  if (!k) return undefined;
  if (k.kind === 'regex') {
    f.refuse(`${at}.path.regex`, 'regex path matches are not supported in inbound policy: use exact or prefix');
    return undefined;
  }
  const v = k.kind === 'exact' ? k.exact : k.prefix;
  if (/[*{}]/.test(v)) {
    f.refuse(`${at}.path.${k.kind}`, `${quote(v)}: "*", "{" and "}" are not supported in route paths`);
    return undefined;
  }
  const base = k.kind === 'prefix' ? v.replace(/\/+$/, '') : v;
  if (k.kind === 'prefix' && base === '') return ['/*'];
  const e = checkPathPattern(base);
  if (e) {
    f.refuse(`${at}.path.${k.kind}`, `${quote(v)}: ${e}`);
    return undefined;
  }
  return k.kind === 'exact' ? [base] : [base, `${base}/*`];
}

function headersOf(list: readonly HeaderMatch[], f: Findings, at: string): Record<string, string[]> | undefined {
  if (list.length === 0) return undefined;
  const h: Record<string, string[]> = {};
  list.forEach((hm, i) => {
    const hat = `${at}.headers[${i}]`;
    const name = hm.name.toLowerCase();
    const v = hm.value;
    if (v?.kind !== 'exact') return f.refuse(hat, 'only exact header matches are supported in inbound policy');
    let value: string;
    try {
      value = UTF8.decode(v.exact);
    } catch {
      return f.refuse(`${hat}.exact`, 'is not UTF-8');
    }
    if (value.includes('*')) return f.refuse(`${hat}.exact`, '"*" in an exact header value is not supported (it is a pattern character)');
    if (h[name]) return f.refuse(`${hat}.name`, `header ${quote(name)} is matched twice`);
    h[name] = [value];
  });
  return h;
}

function httpOperation(m: HttpRouteMatch, f: Findings, at: string): Operation {
  const op: { -readonly [K in keyof Operation]: Operation[K] } = {};
  const paths = pathsOf(m, f, at);
  if (paths) op.paths = paths;
  const headers = headersOf(m.headers, f, at);
  if (headers) op.headers = headers;
  if (m.queryParams.length) f.refuse(`${at}.query_params`, 'query-parameter matches are not supported: policy never reads the query');
  if (m.method) {
    const method = methodOf(m.method, f, `${at}.method`);
    if (method) op.methods = [method];
  }
  return op;
}

function grpcOperation(m: GrpcRouteMatch, f: Findings, at: string): Operation {
  const op: { -readonly [K in keyof Operation]: Operation[K] } = { methods: ['POST'] };
  const service = m.rpc?.service ?? '';
  const method = m.rpc?.method ?? '';
  if (/[*{}/?#\s]/.test(service + method)) f.refuse(`${at}.rpc`, `${quote(`${service}/${method}`)} is not a gRPC service and method`);
  else if (service && method) op.paths = [`/${service}/${method}`];
  else if (service) op.paths = [`/${service}/*`];
  else if (method) f.refuse(`${at}.rpc.method`, 'a method without its service is not supported in inbound policy');
  const headers = headersOf(m.headers, f, at);
  if (headers) op.headers = headers;
  return op;
}

function hostOf(h: HostMatch, f: Findings, at: string): string | undefined {
  const m = h.match;
  if (m?.kind === 'exact' && /^[a-z0-9.-]+$/i.test(m.exact)) return m.exact.toLowerCase().replace(/\.$/, '');
  if (m?.kind === 'suffix' && m.suffix.reverseLabels.length > 0 && m.suffix.reverseLabels.every((l) => /^[a-z0-9-]+$/i.test(l))) {
    return `*.${[...m.suffix.reverseLabels].reverse().join('.').toLowerCase()}`;
  }
  f.refuse(at, 'is not a host name or a *.suffix');
  return undefined;
}

interface Entry {
  readonly op: Operation;
  readonly key: Specificity;
  readonly route: string;
  readonly order: number;
}

/**
 * Every route's operations, each named by `names[i]` (the caller's route name) and ranked. The
 * rank: the position of its precedence key among the distinct keys (higher wins), times the route
 * count, plus the route's reverse position (an earlier route wins a tie, as in Linkerd).
 */
export function serverRoutes(routes: readonly (HttpRoute | GrpcRoute)[], grpc: boolean, names: readonly string[], f: Findings, at: string): ServerRoute[] {
  const entries: Entry[] = [];
  routes.forEach((r, ri) => {
    const rat = `${at}.routes[${ri}]`;
    const hosts = r.hosts.map((h, hi) => ({ h, s: hostOf(h, f, `${rat}.hosts[${hi}]`) }));
    r.rules.forEach((rule, ki) => {
      const kat = `${rat}.rules[${ki}]`;
      rule.filters.forEach((x, i) => f.refuse(`${kat}.filters[${i}]`, `the ${x.kind?.kind ?? 'unknown'} filter is not supported in inbound policy`));
      const matches: readonly (HttpRouteMatch | GrpcRouteMatch | undefined)[] = rule.matches.length ? rule.matches : [undefined];
      matches.forEach((m, mi) => {
        const mat = `${kat}.matches[${mi}]`;
        const op = m === undefined ? (grpc ? { methods: ['POST'] } : {}) : grpc ? grpcOperation(m as GrpcRouteMatch, f, mat) : httpOperation(m as HttpRouteMatch, f, mat);
        for (const { h, s } of hosts.length ? hosts : [{ h: undefined, s: undefined }]) {
          const key = grpc ? grpcSpecificity(m as GrpcRouteMatch | undefined, h) : httpSpecificity(m as HttpRouteMatch | undefined, h);
          if (entries.length >= MAX_ROUTE_OPERATIONS) return f.refuse(mat, `more than ${MAX_ROUTE_OPERATIONS} route matches`);
          entries.push({ op: s === undefined ? op : { ...op, hosts: [s] }, key, route: names[ri]!, order: ri });
        }
      });
    });
  });
  const keys = entries.map((e) => e.key).sort((a, b) => -compareSpecificity(a, b));
  const dense = (k: Specificity) => keys.findIndex((x) => compareSpecificity(x, k) === 0);
  const n = routes.length;
  return entries.map((e) => ({ ...e.op, route: e.route, rank: dense(e.key) * n + (n - 1 - e.order) }));
}
