/**
 * Route precedence as linkerd2-proxy picks a route (linkerd/http/route: `find`, `RouteMatch`,
 * `RequestMatch` and `HostMatch` orderings), reduced to a key known before any request arrives, so
 * that our first-match routes can be sorted into the order Linkerd would choose in.
 *
 * Linkerd compares, per request, the summaries of every route that matches and takes the greatest;
 * on a tie the first in the order the control plane sent (oldest route first, then rule order).
 * A summary compares, in this order:
 * 1. the host: none < a `*.suffix` match (longer suffix wins) < an exact host (longer wins);
 * 2. the path: the number of characters matched — an exact path its length, a prefix its length
 *    without trailing `/` (`/` and no path match: 1), a regex the whole request path;
 * 3. a method match over none; 4. more header matches; 5. more query-parameter matches.
 *
 * Static form: an exact path and a regex both match the whole request path, so between themselves
 * they tie (as in Linkerd) and they rank above every prefix (which matches at most as many
 * characters). The one place the static order differs from Linkerd's per-request one: a request
 * whose path equals a prefix exactly (`/foo` against prefix `/foo` and exact `/foo` or a regex),
 * where Linkerd sees a tie in length and goes on to the method, headers and order; here the exact
 * or regex match wins, which is Gateway API's rule ("Exact path over Prefix"). Documented in
 * docs/linkerd-mapping.md. Pure.
 */
import type { GrpcRouteMatch } from '../../../proto/linkerd/grpc_route.js';
import type { HostMatch, HttpRouteMatch, PathMatch } from '../../../proto/linkerd/http_route.js';

export interface Specificity {
  /** 0: the route names no host; 1: a `*.suffix` host; 2: an exact host. */
  readonly hostClass: 0 | 1 | 2;
  /** Characters of the host match (Linkerd: the exact name's, or `.suffix`'s length). */
  readonly hostLength: number;
  /** True for an exact or regex path (the whole path matched). */
  readonly fullPath: boolean;
  /** A prefix's length without trailing `/` (`/`, no path: 1); 0 for full paths. */
  readonly prefixLength: number;
  readonly method: boolean;
  readonly headers: number;
  readonly queryParams: number;
}

/** The precedence key of a host match (undefined: the route names no host). */
export function hostSpecificity(h: HostMatch | undefined): Pick<Specificity, 'hostClass' | 'hostLength'> {
  if (h === undefined) return { hostClass: 0, hostLength: 0 };
  if (h.match?.kind === 'exact') return { hostClass: 2, hostLength: h.match.exact.length };
  const labels = h.match?.kind === 'suffix' ? h.match.suffix.reverseLabels : [];
  return { hostClass: 1, hostLength: labels.reduce((n, l) => n + l.length + 1, 0) };
}

/** Characters a prefix match counts for (Linkerd's `PathMatch::Prefix` length). */
export function prefixLength(prefix: string): number {
  if (prefix === '/') return 1;
  return prefix.replace(/\/+$/, '').length;
}

function pathKey(p: PathMatch | undefined): Pick<Specificity, 'fullPath' | 'prefixLength'> {
  if (p?.kind === undefined) return { fullPath: false, prefixLength: 1 };
  if (p.kind.kind !== 'prefix') return { fullPath: true, prefixLength: 0 };
  return { fullPath: false, prefixLength: prefixLength(p.kind.prefix) };
}

/** The precedence key of one HTTP route match under a host match. */
export function httpSpecificity(m: HttpRouteMatch | undefined, host?: HostMatch): Specificity {
  return {
    ...hostSpecificity(host),
    ...pathKey(m?.path),
    method: m?.method !== undefined,
    headers: m?.headers.length ?? 0,
    queryParams: m?.queryParams.length ?? 0,
  };
}

/**
 * The precedence key of one gRPC route match (linkerd2-proxy `grpc::RouteMatch`: the characters
 * of service then method matched, then header count). Expressed in the HTTP key's terms: a match
 * naming both is an exact path, a service alone or a method alone a path of that many characters.
 */
export function grpcSpecificity(m: GrpcRouteMatch | undefined, host?: HostMatch): Specificity & { readonly rpcService: number; readonly rpcMethod: number } {
  return {
    ...hostSpecificity(host),
    fullPath: false,
    prefixLength: 0,
    method: false,
    headers: m?.headers.length ?? 0,
    queryParams: 0,
    rpcService: m?.rpc?.service.length ?? 0,
    rpcMethod: m?.rpc?.method.length ?? 0,
  };
}

/** Negative when `a` takes precedence over `b`, positive when `b` does, 0 on a tie (order decides). */
export function compareSpecificity(a: Specificity, b: Specificity): number {
  const ga = a as Partial<{ rpcService: number; rpcMethod: number }>;
  const gb = b as Partial<{ rpcService: number; rpcMethod: number }>;
  return (
    b.hostClass - a.hostClass ||
    b.hostLength - a.hostLength ||
    Number(b.fullPath) - Number(a.fullPath) ||
    b.prefixLength - a.prefixLength ||
    (gb.rpcService ?? 0) - (ga.rpcService ?? 0) ||
    (gb.rpcMethod ?? 0) - (ga.rpcMethod ?? 0) ||
    Number(b.method) - Number(a.method) ||
    b.headers - a.headers ||
    b.queryParams - a.queryParams
  );
}

/** `items` in precedence order; ties keep their given order (a stable sort: Linkerd's "first wins"). */
export function bySpecificity<T>(items: readonly T[], key: (t: T) => Specificity): T[] {
  return items
    .map((item, i) => ({ item, i, k: key(item) }))
    .sort((x, y) => compareSpecificity(x.k, y.k) || x.i - y.i)
    .map((x) => x.item);
}

/** Bounds of the parts of `specificityRank` (all of it stays a safe integer). */
const PART = 1000;
const COUNT = 32;

/**
 * The key as one number, higher wins (the native policy's `ServerRoute.rank`): equal keys give
 * equal ranks. Lengths above 998 and counts above 31 count as those (the translators refuse more matches than that).
 */
export function specificityRank(s: Specificity): number {
  const g = s as Partial<{ rpcService: number; rpcMethod: number }>;
  const c = (n: number) => Math.min(Math.max(0, n), PART - 1);
  let r = s.hostClass;
  const path = s.fullPath ? PART - 1 : Math.min(c(s.prefixLength), PART - 2);
  for (const part of [c(s.hostLength), path, c(g.rpcService ?? 0), c(g.rpcMethod ?? 0)]) r = r * PART + part;
  r = r * 2 + (s.method ? 1 : 0);
  r = r * COUNT + Math.min(s.headers, COUNT - 1);
  r = r * COUNT + Math.min(s.queryParams, COUNT - 1);
  return r;
}
