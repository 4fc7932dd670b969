// `sidecarless policy check --router R` and the running mesh agree on every case of a corpus:
// spellings, methods and hosts, for native and Istio policies with ALLOW exact/template paths and
// DENY rules, through node:http (a plain handler: `any`), Express and Fastify (defaults, and case-insensitive with
// `;` as a delimiter). The runtime's 403 is the CLI's DENY, its 400 the CLI's "DENY (malformed …)",
// anything the app answers the CLI's ALLOW.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { type DevCa, type IssuedSvid, type Mesh, createDevCa, createMesh } from '../../src/index.js';
import { main } from '../../src/cli/run.js';
import { closeServer, listen, rawTlsRequest } from '../helpers/net.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const quiet = { info() {}, warn() {}, error() {} };

const NATIVE = `rules:
  - { name: charge, action: allow, to: { methods: [POST], paths: ["/charge"] } }
  - { name: orders, action: allow, to: { methods: [GET], paths: ["/orders/{id}"] } }
  - { name: reads, action: allow, to: { methods: [GET, HEAD], paths: ["/report", "/admin", "/kelvin", "/healthz", "/other"] } }
  - { name: no-admin, action: deny, to: { paths: ["/admin", "/kelvin"] } }
  - { name: no-report-get, action: deny, to: { methods: [GET], paths: ["/report"] } }
  - { name: only-health, action: deny, to: { notPaths: ["/healthz", "/charge", "/orders/*", "/report", "/admin", "/kelvin"] } }
  - { name: no-evil-host, action: deny, to: { hosts: ["evil.example"] } }
`;
const ISTIO = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: default }
spec:
  action: ALLOW
  rules:
    - to: [{ operation: { methods: ["POST"], paths: ["/charge"] } }]
    - to: [{ operation: { methods: ["GET", "HEAD"], paths: ["/orders/*", "/report", "/admin"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny, namespace: default }
spec:
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin"] } }]
    - to: [{ operation: { notPaths: ["/charge", "/orders/*", "/report", "/admin"] } }]
`;

const TARGETS = ['/charge', '/CHARGE', '/charge/', '/orders/7', '/orders/7/', '/admin', '/ADMIN/', '/admin;x', '/report', '/kelvin', '/%E2%84%AAelvin', '/healthz', '/healthz/', '/HEALTHZ', '/other', '/%2e%2e/admin', '/a%2fb'];
const METHODS = ['GET', 'HEAD', 'POST'];
const HOSTS = ['payments', 'evil.example:8443', 'a:1:2'];

interface Runtime {
  router: string;
  build(mesh: Mesh): Promise<{ port: number; close(): Promise<void> }>;
}

const RUNTIMES: Runtime[] = [
  {
    router: 'any',
    async build(mesh) {
      const server = mesh.createServer((_req, res) => res.end('ok'));
      return { port: await listen(server), close: () => closeServer(server) };
    },
  },
  {
    router: 'express',
    async build(mesh) {
      const app = express();
      app.use((_req, res) => void res.send('ok'));
      const server: Server = createHttpsServer(mesh.serverTlsOptions(), app);
      return { port: await listen(server), close: () => closeServer(server) };
    },
  },
  ...[
    ['fastify', {}],
    ['fastify:case-insensitive,semicolon', { routerOptions: { caseSensitive: false, useSemicolonDelimiter: true } }],
  ].map(([router, options]) => ({
    router: router as string,
    async build(mesh: Mesh) {
      const app = Fastify({ https: mesh.serverTlsOptions(), ...(options as object) });
      await app.register(mesh.fastify);
      app.setNotFoundHandler(async () => 'ok');
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as { port: number }).port, close: () => app.close() };
    },
  })),
];

let dir: string;
let ca: DevCa;
let web: IssuedSvid;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-agree-'));
  await writeFile(join(dir, 'native.yaml'), NATIVE);
  await writeFile(join(dir, 'istio.yaml'), ISTIO);
  ca = await createDevCa({ trustDomain: TD });
  web = await ca.issue({ spiffeId: WEB });
});
after(() => rm(dir, { recursive: true, force: true }));

async function cli(file: string, router: string, method: string, target: string, host: string): Promise<'allow' | 'deny' | 'malformed'> {
  let out = '';
  const code = await main(['policy', 'check', '--policy', join(dir, file), '--from', WEB, '--method', method, '--path', target, '--host', host, '--router', router], {
    stdout: (s) => (out += s),
    stderr: (s) => (out += s),
  });
  assert.ok(code === 0 || code === 1, `${file} ${router} ${method} ${target}: exit ${code} ${out}`);
  return code === 0 ? 'allow' : /malformed/.test(out) ? 'malformed' : 'deny';
}

for (const [file, text] of [['native.yaml', NATIVE], ['istio.yaml', ISTIO]] as const) {
  describe(file, () => {
    for (const rt of RUNTIMES) {
      test(`--router ${rt.router} answers what the mesh serving that router does`, async () => {
        const mesh = await createMesh({ service: 'payments', identity: { ca }, logger: quiet, inbound: { policy: text } });
        const s = await rt.build(mesh);
        const disagreements: string[] = [];
        try {
          for (const host of HOSTS) {
            for (const target of TARGETS) {
              for (const method of METHODS) {
                const r = await rawTlsRequest({ port: s.port, cert: web.certChainPem, key: web.keyPem, request: `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n` });
                const runtime = r.status === 403 ? 'deny' : r.status === 400 ? 'malformed' : r.status !== undefined ? 'allow' : `no answer`;
                const offline = await cli(file, rt.router, method, target, host);
                if (runtime !== offline) disagreements.push(`${method} ${target} Host ${host}: mesh ${runtime} (${r.status}), CLI ${offline}`);
              }
            }
          }
        } finally {
          await s.close();
          await mesh.close();
        }
        assert.deepEqual(disagreements, []);
      });
    }
  });
}

test('--router rejects what it does not know, as a usage error', async () => {
  let err = '';
  const code = await main(['policy', 'check', '--policy', join(dir, 'native.yaml'), '--from', WEB, '--method', 'GET', '--path', '/', '--router', 'koa'], { stdout: () => {}, stderr: (s) => (err += s) });
  assert.equal(code, 2);
  assert.match(err, /unknown router "koa"/);
});
