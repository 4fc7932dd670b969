// SECURITY-CASES 35 as a matrix: policies with ALLOW exact and template paths, DENY rules, Istio
// paths and Linkerd Exact/PathPrefix routes, through node:http, Express (defaults, strict and
// case-sensitive settings, createServer without the middleware) and Fastify (defaults and every
// router option that changes routing), with a corpus of spellings (case, trailing slash, `;`,
// percent-encoding, the Kelvin sign, `//`) and methods (HEAD runs GET handlers).
// Two properties, checked on every cell:
// - no bypass: whenever a handler ran, the policy allows that handler's own path and method
//   (judged exactly, as the policy's author wrote it);
// - an ALLOW admits what it names: POST /charge and GET /orders/7 are served everywhere.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, compilePolicy, createDevCa, createMesh, loadPolicy } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const quiet: Logger = { info() {}, warn() {}, error() {} };
const LABELS = { app: 'payments' };

type Route = 'charge' | 'orders' | 'report' | 'admin' | 'kelvin' | 'none';
/** Each route's own path and method, as the policy's author thinks of it. */
const CANONICAL: Record<Exclude<Route, 'none'>, { method: string; path: string }> = {
  charge: { method: 'POST', path: '/charge' },
  orders: { method: 'GET', path: '/orders/7' },
  report: { method: 'GET', path: '/report' },
  admin: { method: 'GET', path: '/admin' },
  kelvin: { method: 'GET', path: '/kelvin' },
};

const NATIVE = {
  rules: [
    { name: 'charge', action: 'allow', to: { methods: ['POST'], paths: ['/charge'] } },
    { name: 'orders', action: 'allow', to: { methods: ['GET'], paths: ['/orders/{id}'] } },
    { name: 'reads', action: 'allow', to: { methods: ['GET', 'HEAD'], paths: ['/report', '/admin', '/kelvin'] } },
    { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/kelvin'] } },
    { name: 'no-report-get', action: 'deny', to: { methods: ['GET'], paths: ['/report'] } },
  ],
};

const ISTIO = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: payments-allow, namespace: default }
spec:
  selector: { matchLabels: { app: payments } }
  action: ALLOW
  rules:
    - to: [{ operation: { methods: ["POST"], paths: ["/charge"] } }]
    - to: [{ operation: { methods: ["GET"], paths: ["/orders/*"] } }]
    - to: [{ operation: { methods: ["GET", "HEAD"], paths: ["/report", "/admin", "/kelvin"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: payments-deny, namespace: default }
spec:
  selector: { matchLabels: { app: payments } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin", "/kelvin"] } }]
    - to: [{ operation: { methods: ["GET"], paths: ["/report"] } }]
`;

const linkerd = (port: number) => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: { name: payments, namespace: default }
spec:
  podSelector: { matchLabels: { app: payments } }
  port: ${port}
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: { name: charge, namespace: default }
spec:
  parentRefs: [{ name: payments, kind: Server, group: policy.linkerd.io }]
  rules:
    - matches:
        - { path: { type: Exact, value: /charge }, method: POST }
        - { path: { type: PathPrefix, value: /orders/ }, method: GET }
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: charge, namespace: default }
spec:
  targetRef: { group: policy.linkerd.io, kind: HTTPRoute, name: charge }
  requiredAuthenticationRefs: [{ name: everyone, kind: MeshTLSAuthentication, group: policy.linkerd.io }]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: { name: everyone, namespace: default }
spec:
  identities: ["*"]
`;

interface Setup {
  name: string;
  /** HEAD runs the GET handler here. */
  headAsGet: boolean;
  build(mesh: Mesh, ran: Route[]): Promise<{ port: number; close(): Promise<void> }>;
}

function nodeRoute(url: string): Route {
  const path = url.split('?')[0]!;
  if (path === '/charge') return 'charge';
  if (/^\/orders\/[^/]+$/.test(path)) return 'orders';
  if (path === '/report' || path === '/admin' || path === '/kelvin') return path.slice(1) as Route;
  return 'none';
}

function expressSetup(name: string, settings: Record<string, boolean>, via: 'options+middleware' | 'createServer'): Setup {
  return {
    name,
    headAsGet: true,
    async build(mesh, ran) {
      const app = express();
      for (const [k, v] of Object.entries(settings)) app.set(k, v);
      if (via === 'options+middleware') app.use(mesh.express());
      const h = (r: Route) => (_req: unknown, res: express.Response) => void (ran.push(r), res.json({ route: r }));
      app.post('/charge', h('charge'));
      app.get('/orders/:id', h('orders'));
      app.get('/report', h('report'));
      // A router inside the app folds case and trailing slashes whatever the app's settings.
      const admin = express.Router();
      admin.get('/', h('admin'));
      app.use('/admin', admin);
      app.get('/kelvin', h('kelvin'));
      app.use(h('none'));
      const server: Server = via === 'createServer' ? mesh.createServer(app) : createHttpsServer(mesh.serverTlsOptions(), app);
      return { port: await listen(server), close: () => closeServer(server) };
    },
  };
}

function fastifySetup(name: string, options: Record<string, unknown>, headAsGet = true, prefixedAdmin = false): Setup {
  return {
    name,
    headAsGet,
    async build(mesh, ran) {
      const app: FastifyInstance = Fastify({ https: mesh.serverTlsOptions(), ...options });
      await app.register(mesh.fastify);
      const h = (r: Route) => async () => (ran.push(r), { route: r });
      app.post('/charge', h('charge'));
      app.get('/orders/:id', h('orders'));
      app.get('/report', h('report'));
      if (prefixedAdmin) await app.register(async (p) => void p.get('/', h('admin')), { prefix: '/admin' });
      else app.get('/admin', h('admin'));
      app.get('/kelvin', h('kelvin'));
      app.setNotFoundHandler(h('none'));
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as { port: number }).port, close: () => app.close() };
    },
  };
}

const SETUPS: Setup[] = [
  {
    name: 'node:http (the app routes the normalized path exactly)',
    headAsGet: false,
    async build(mesh, ran) {
      const server = mesh.createServer((req: IncomingMessage, res: ServerResponse) => {
        const r = nodeRoute(req.url ?? '');
        ran.push(r);
        res.end(JSON.stringify({ route: r }));
      });
      return { port: await listen(server), close: () => closeServer(server) };
    },
  },
  expressSetup('Express defaults, https + serverTlsOptions + mesh.express()', {}, 'options+middleware'),
  expressSetup('Express strict and case-sensitive routing', { 'strict routing': true, 'case sensitive routing': true }, 'options+middleware'),
  expressSetup('Express app passed to mesh.createServer (no middleware)', {}, 'createServer'),
  fastifySetup('Fastify defaults', {}),
  fastifySetup('Fastify caseSensitive: false', { routerOptions: { caseSensitive: false } }),
  fastifySetup('Fastify ignoreTrailingSlash + ignoreDuplicateSlashes', { routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } }),
  fastifySetup('Fastify useSemicolonDelimiter', { routerOptions: { useSemicolonDelimiter: true } }),
  fastifySetup('Fastify everything loose (deprecated top-level options)', { caseSensitive: false, ignoreTrailingSlash: true, useSemicolonDelimiter: true }),
  fastifySetup('Fastify exposeHeadRoutes: false', { exposeHeadRoutes: false }, false),
  fastifySetup('Fastify prefixed plugin (prefixTrailingSlash: both)', {}, true, true),
];

const BASES = ['/charge', '/orders/7', '/report', '/admin', '/kelvin'];
function spellings(base: string): string[] {
  const upper = base.toUpperCase();
  const encodedFirst = `/%${base.charCodeAt(1).toString(16)}${base.slice(2)}`;
  const out = [base, upper, `${base}/`, `${upper}/`, `${base};jsessionid=1`, `${upper};x`, `/${base}`, encodedFirst];
  if (base === '/kelvin') out.push('/%E2%84%AAelvin', '/%E2%84%AAELVIN/', '/%e2%84%aaelvin;x');
  return out;
}
const METHODS = ['GET', 'HEAD', 'POST'];

let ca: DevCa;
let web: IssuedSvid;
before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  web = await ca.issue({ spiffeId: WEB });
});

for (const [policyName, policyOf] of [
  ['native', () => NATIVE],
  ['Istio AuthorizationPolicy', () => ISTIO],
  ['Linkerd Server + HTTPRoute (Exact, PathPrefix)', (port: number) => linkerd(port)],
] as Array<[string, (port: number) => unknown]>) {
  describe(`${policyName} policy`, () => {
    for (const setup of SETUPS) {
      test(setup.name, async () => {
        const mesh = await createMesh({ service: 'payments', identity: { ca }, labels: LABELS, logger: quiet });
        const ran: Route[] = [];
        const s = await setup.build(mesh, ran);
        mesh.setPolicy(policyOf(s.port));
        const compiled = compilePolicy(loadPolicy(policyOf(s.port) as never), { trustDomain: TD, namespace: 'default', labels: LABELS });
        const allowedExactly = (method: string, path: string) =>
          compiled.evaluate({ peer: { id: WEB, kind: 'spiffe', spiffeId: WEB, trustDomain: TD, namespace: 'default', serviceAccount: 'web' }, sourceIp: '127.0.0.1', method, path, host: 'payments', port: s.port, header: () => undefined }).allowed;
        const bypasses: string[] = [];
        // One full handshake per cell, then resumed sessions: the matrix judges routing, not TLS (test/tls covers resumption's own rules).
        let session: Buffer | undefined;
        const send = async (request: string) => {
          const r = await rawTlsRequest({ port: s.port, cert: web.certChainPem, key: web.keyPem, request, ...(session && { session }) });
          session = r.session ?? session;
          return r;
        };
        try {
          for (const base of BASES) {
            for (const target of spellings(base)) {
              for (const method of METHODS) {
                const from = ran.length;
                const r = await send(`${method} ${target} HTTP/1.1\r\nHost: payments\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
                const route = ran[from];
                if (route === undefined || route === 'none') continue;
                const own = CANONICAL[route];
                const ownMethod = method === 'HEAD' && setup.headAsGet ? 'GET' : method;
                if (!allowedExactly(ownMethod, own.path)) bypasses.push(`${method} ${target} → ${route} (${r.status}): the policy denies ${ownMethod} ${own.path}`);
              }
            }
          }
          assert.deepEqual(bypasses, [], `${setup.name}: requests reached a handler the policy denies`);
          for (const [method, target, route] of [['POST', '/charge', 'charge'], ['GET', '/orders/7', 'orders']] as const) {
            const from = ran.length;
            const r = await send(`${method} ${target} HTTP/1.1\r\nHost: payments\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
            assert.equal(r.status, 200, `${setup.name}: ${method} ${target} is named by an ALLOW: ${r.response.slice(0, 160)}`);
            assert.equal(ran[from], route);
          }
        } finally {
          await s.close();
          await mesh.close();
        }
      });
    }
  });
}

describe('the same corpus without the mesh is not safe (the matrix can fail)', () => {
  test('Fastify caseSensitive: false really routes /ADMIN and the Kelvin sign to the denied handlers', async () => {
    const app = Fastify({ routerOptions: { caseSensitive: false } });
    app.get('/admin', async () => 'admin');
    app.get('/kelvin', async () => 'kelvin');
    for (const url of ['/ADMIN', '/%E2%84%AAelvin']) {
      const r = await app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 200, url);
    }
    const head = await app.inject({ method: 'HEAD', url: '/admin' });
    assert.equal(head.statusCode, 200, 'HEAD is served by the GET route');
    await app.close();
  });
});

