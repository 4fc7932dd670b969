/**
 * InboundServerPolicies.WatchPort(port) → the native Policy for that port (policy/model.ts): one
 * server section on `port` whose fallback is `deny`, so that Linkerd's "if unset, no connections
 * are permitted" holds — no authorization, no allow rule, nothing allowed.
 *
 * - the Server's authorizations → allow rules without a route: they admit requests on every route
 *   (linkerd2-proxy chains them after each route's own);
 * - each route's authorizations → allow rules scoped to that route (`Rule.route`): they admit only
 *   requests classified into it; classification follows linkerd2-proxy's precedence
 *   (inbound-routes.ts); when the Server names routes, a request matching none is denied;
 * - protocol: detect (its http_routes), http1, http2 and grpc carry routes; opaque and tls carry
 *   none (their authorizations then judge every request, as Linkerd judges every connection);
 *   local rate limits are refused (the mesh has none);
 * - authorizations: authz.ts (networks, unauthenticated, meshTLS, identities and suffixes).
 * The result is validated by parsePolicy (a bad one refused whole, the last good kept). Pure.
 */
import { PolicyError } from '../../../errors.js';
import { parsePolicy, type Policy, type Rule, type ServerRoute } from '../../../policy/model.js';
import type { Authz, GrpcRoute, HttpRoute, Server } from '../../../proto/linkerd/inbound.js';
import { authzName, authzSources } from './authz.js';
import { Findings, type Translation } from './findings.js';
import { routeName } from './outbound.js';
import { serverRoutes } from './inbound-routes.js';

export interface InboundContext {
  readonly port: number;
  /** The server section's name. Default `linkerd:<port>`. */
  readonly name?: string;
}

export interface InboundTranslation {
  readonly policy: Policy;
  /** Protocol Linkerd declared for the port (what the app serves there is the app's). */
  readonly protocol: 'detect' | 'opaque' | 'tls' | 'http1' | 'http2' | 'grpc';
}

export const MAX_AUTHORIZATIONS = 1000;

function rulesOf(authzs: readonly Authz[], prefix: string, route: string | undefined, f: Findings, at: string): Rule[] {
  if (authzs.length > MAX_AUTHORIZATIONS) f.refuse(at, `more than ${MAX_AUTHORIZATIONS} authorizations`);
  const out: Rule[] = [];
  authzs.slice(0, MAX_AUTHORIZATIONS).forEach((a, i) => {
    const from = authzSources(a, f, `${at}[${i}]`);
    if (from.length === 0) return; // admits nobody
    const rule: { -readonly [K in keyof Rule]: Rule[K] } = { name: `${prefix}${authzName(a, `authz-${i}`)}#${i}`, action: 'allow', from, to: [], when: [] };
    if (route !== undefined) rule.route = route;
    out.push(rule);
  });
  return out;
}

function routesOf(s: Server, f: Findings): { routes: readonly (HttpRoute | GrpcRoute)[]; grpc: boolean; at: string; protocol: InboundTranslation['protocol'] } | undefined {
  const k = s.protocol?.kind;
  if (!k) {
    f.refuse('protocol', 'is missing');
    return undefined;
  }
  const limit = k.kind === 'detect' ? k.detect.httpLocalRateLimit : k.kind === 'http1' ? k.http1.localRateLimit : k.kind === 'http2' ? k.http2.localRateLimit : undefined;
  if (limit) f.refuse(`protocol.${k.kind}.local_rate_limit`, 'local rate limits are not supported');
  switch (k.kind) {
    case 'detect':
      return { routes: k.detect.httpRoutes, grpc: false, at: 'protocol.detect.http_routes', protocol: 'detect' };
    case 'http1':
      return { routes: k.http1.routes, grpc: false, at: 'protocol.http1', protocol: 'http1' };
    case 'http2':
      return { routes: k.http2.routes, grpc: false, at: 'protocol.http2', protocol: 'http2' };
    case 'grpc':
      return { routes: k.grpc.routes, grpc: true, at: 'protocol.grpc', protocol: 'grpc' };
    default:
      f.note(`protocol.${k.kind}`, 'no routes: the authorizations judge every request, as Linkerd judges every connection');
      return { routes: [], grpc: false, at: `protocol.${k.kind}`, protocol: k.kind };
  }
}

/** Translates one Server for `ctx.port`; refused whole on any reason. */
export function translateInbound(s: Server, ctx: InboundContext): Translation<InboundTranslation> {
  const f = new Findings(`Server port ${ctx.port}`);
  const r = routesOf(s, f);
  if (!r) return f.result(undefined as never);
  const names = r.routes.map((rt, i) => `${routeName(rt.metadata, i)}#${i}`);
  const routes: ServerRoute[] = serverRoutes(r.routes, r.grpc, names, f, r.at);
  const rules: Rule[] = rulesOf(s.authorizations, '', undefined, f, 'authorizations');
  r.routes.forEach((rt, i) => rules.push(...rulesOf(rt.authorizations, `${names[i]}:`, names[i], f, `${r.at}.routes[${i}].authorizations`)));
  if (f.failed) return f.result(undefined as never);
  const name = ctx.name ?? `linkerd:${ctx.port}`;
  let policy: Policy;
  try {
    policy = parsePolicy({ rules: [], servers: [{ name, ports: [ctx.port], accessPolicy: 'deny', routes, rules }] });
  } catch (e) {
    const issues = e instanceof PolicyError && e.issues.length ? e.issues : undefined;
    for (const i of issues ?? [{ path: '', message: (e as Error).message }]) f.refuse(i.path || 'policy', i.message);
    return f.result(undefined as never);
  }
  return f.result({ policy, protocol: r.protocol });
}
