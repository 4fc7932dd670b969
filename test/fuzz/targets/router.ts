// Router semantics against the real routers: find-my-way (Fastify's, with each option that changes
// routing) and `router` (Express 5's), in process. A set of routes is registered; for a generated
// request target, the gate's normalization runs first (as on the wire), then the real router picks
// a handler. The oracle is the gate's promise (SECURITY-CASES 35): a DENY rule written for a
// route's own path and method denies every spelling that router serves from that route's handler.
import fc from 'fast-check';
import FindMyWay from 'find-my-way';
import Router from 'router';
import { compilePolicy, loadPolicy } from '../../../src/policy/index.js';
import { normalizeTarget } from '../../../src/policy/normalize.js';
import { EXPRESS_ROUTING, type RouterSemantics, alikeOf, fastifyRouting } from '../../../src/policy/router-semantics.js';
import { type FuzzTarget } from '../harness.js';

/** Routes as the app writes them, and the policy path that names each (`{id}` for a parameter). */
const ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['/admin', '/admin'],
  ['/Admin/Panel', '/Admin/Panel'],
  ['/orders/:id', '/orders/{id}'],
  ['/report/', '/report/'],
  ['/kelvin', '/kelvin'],
  ['/a;b', '/a;b'],
  ['/caf\u00e9', '/caf\u00e9'],
  ['/', '/'],
];
const METHODS = ['GET', 'POST', 'HEAD', 'DELETE'] as const;

const SEGMENT = fc.constantFrom('admin', 'Admin', 'ADMIN', 'aDmIn', '%61dmin', '%41dmin', 'Panel', 'panel', 'orders', 'Orders', '7', '%37', 'report', 'Report', '\u212aelvin', '%E2%84%AAelvin', 'kelvin', 'KELVIN', 'a;b', 'a', 'a%3Bb', 'a;', ';b', 'caf%C3%A9', 'CAF%C3%89', 'caf%c3%a9', '', '.', '..', '%2e', 'x');
const TARGET = fc.tuple(fc.array(SEGMENT, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.option(fc.constantFrom('q=1', ''))).map(([s, slash, q]) => `/${s.join('/')}${slash ? '/' : ''}${q === null ? '' : `?${q}`}`);

type Routed = { route: string; method: string } | undefined;
interface RealRouter {
  readonly name: string;
  readonly semantics: RouterSemantics;
  find(method: string, url: string): Routed;
}

function fastify(o: { caseSensitive?: boolean; useSemicolonDelimiter?: boolean; ignoreTrailingSlash?: boolean }): RealRouter {
  // useSemicolonDelimiter is find-my-way's (Fastify passes it through) but not in its typings.
  const r = FindMyWay({ caseSensitive: o.caseSensitive ?? true, useSemicolonDelimiter: o.useSemicolonDelimiter ?? false, ignoreTrailingSlash: o.ignoreTrailingSlash ?? false } as never);
  for (const [path] of ROUTES) for (const m of METHODS) if (m !== 'HEAD') r.on(m, path, () => {}, { route: path, method: m });
  // Fastify's exposeHeadRoutes: HEAD is served by the GET route's handler.
  return {
    name: `find-my-way ${JSON.stringify(o)}`,
    semantics: fastifyRouting({ caseSensitive: o.caseSensitive ?? true, useSemicolonDelimiter: o.useSemicolonDelimiter ?? false }),
    find: (method, url) => {
      const hit = r.find((method === 'HEAD' ? 'GET' : method) as 'GET', url);
      return hit ? (hit.store as { route: string; method: string }) : undefined;
    },
  };
}

function express(): RealRouter {
  const r = Router({ caseSensitive: false, strict: false });
  let last: Routed;
  for (const [path] of ROUTES) for (const m of METHODS) if (m !== 'HEAD') (r as unknown as Record<string, (p: string, h: () => void) => void>)[m.toLowerCase()]!(path, () => (last = { route: path, method: m }));
  return {
    name: 'express 5 router',
    semantics: EXPRESS_ROUTING,
    find: (method, url) => {
      last = undefined;
      // The router is synchronous for plain handlers: it has run the matching one when handle() returns.
      r.handle({ method, url, headers: {} } as never, {} as never, () => {});
      return last;
    },
  };
}

function denyRule(route: string, method: string) {
  const policyPath = ROUTES.find(([r]) => r === route)![1];
  return compilePolicy(loadPolicy({ rules: [{ name: 'deny-own', action: 'deny', to: { methods: [method], paths: [policyPath] } }] }), { trustDomain: 'cluster.local', namespace: 'default', labels: {}, defaultPolicy: 'all-unauthenticated' });
}

export const routerSemantics: FuzzTarget = {
  name: 'router-semantics',
  oracle: 'a DENY rule for a route’s own path and method denies every spelling find-my-way (each option) or the Express 5 router serves from that route, after the gate’s normalization',
  shortRuns: 500,
  // find-my-way served `/orders/` from `/orders/:id` (id ''), which a DENY on /orders/{id} let through.
  regressions: [['/Orders/%2e', 'GET', 1], ['/orders/', 'GET', 0]],
  property: () => {
    const routers = [fastify({}), fastify({ caseSensitive: false }), fastify({ useSemicolonDelimiter: true }), fastify({ ignoreTrailingSlash: true }), fastify({ caseSensitive: false, useSemicolonDelimiter: true, ignoreTrailingSlash: true }), express()];
    const policies = new Map<string, ReturnType<typeof denyRule>>();
    return fc.property(TARGET, fc.constantFrom(...METHODS), fc.integer({ min: 0, max: routers.length - 1 }), (raw, method, which) => {
      const n = normalizeTarget(raw, method);
      if (!n.ok) return true; // refused with 400 before any router
      const router = routers[which]!;
      const hit = router.find(method, n.target);
      if (!hit) return true;
      const key = `${hit.route} ${hit.method}`;
      const policy = policies.get(key) ?? policies.set(key, denyRule(hit.route, hit.method)).get(key)!;
      const alike = alikeOf(n.path, method, router.semantics);
      const d = policy.evaluate({ peer: null, sourceIp: '127.0.0.1', method, path: n.path, host: 'payments', port: 8443, header: () => undefined, ...(alike && { alike }) });
      if (d.allowed) throw new Error(`${router.name}: ${method} ${raw} (normalized ${n.target}) runs the handler of ${hit.method} ${hit.route}, and a DENY rule for it did not deny`);
      return true;
    });
  },
};
