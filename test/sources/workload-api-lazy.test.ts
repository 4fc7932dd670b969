// @grpc/grpc-js is loaded only when a Workload API (or control-plane) source is opened (DESIGN.md
// defaults: cold start): a child process imports the built package (ESM, and CJS), creates a mesh
// with a files identity, serves and calls one request, and reports which grpc-js modules the module
// cache holds (grpc-js is CommonJS: an ESM import of it lands in require.cache too). Then the same
// process opens a Workload API mesh, which must load it.
// The same files-identity mesh loads none of what issue 14 made lazy (cold start): zod (neither its
// modules nor the globals its core sets), @opentelemetry/api (installed here, nothing registered),
// yaml, @peculiar/x509 / reflect-metadata / tsyringe. A policy with a rule then loads zod (the check
// can see it); so would a run-time update (mesh.setEndpoints: judged by the schema).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCa } from '../../src/identity/dev-ca.js';
import { filesOf, idOf, TD, writeSvidDir } from '../helpers/certs.js';
import { tempDirFor } from '../helpers/tmp.js';
import { WorkloadServer, wireSvid } from '../helpers/workload-server.js';

const ROOT = new URL('../..', import.meta.url).pathname;

const BODY = `
  const grpcModules = () => Object.keys(require.cache).filter((k) => k.includes('/@grpc/grpc-js/')).length;
  const LAZY = ['zod', '@opentelemetry/api', 'yaml', '@peculiar/x509', 'reflect-metadata', 'tsyringe', '@grpc/grpc-js', 'protobufjs'];
  const lazyLoaded = () => [
    ...new Set(Object.keys(require.cache).flatMap((k) => LAZY.filter((p) => k.includes('/node_modules/' + p + '/')))),
    ...Object.getOwnPropertyNames(globalThis).filter((k) => k.startsWith('__zod_')),
  ];
  const silent = { info() {}, warn() {}, error() {} };
  const [dir, socket] = process.argv.slice(-2);
  const out = { afterImport: grpcModules() };
  const serving = await createMesh({ service: 'orders', identity: { dir }, logger: silent });
  const server = serving.createServer((req, res) => res.end('ok'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const mesh = await createMesh({ service: 'orders', identity: { dir }, logger: silent,
    outbound: { services: { self: { endpoints: ['127.0.0.1:' + server.address().port], identity: '${idOf('orders')}' } } } });
  const res = await mesh.fetch('http://self/');
  out.status = res.status;
  out.body = await res.text();
  out.kind = mesh.stats().identity.kind;
  out.afterDirMesh = grpcModules();
  out.lazyLoaded = lazyLoaded();
  const ruled = await createMesh({ service: 'orders', identity: { dir }, logger: silent,
    inbound: { policy: { rules: [{ action: 'allow', from: { identities: ['${idOf('orders')}'] } }] } } });
  out.afterPolicyRule = lazyLoaded();
  await ruled.close();
  server.close();
  await mesh.close();
  await serving.close();
  if (socket !== '-') {
    const wl = await createMesh({ service: 'orders', identity: { workloadApi: { socket } }, logger: silent });
    out.wlKind = wl.stats().identity.kind;
    out.afterWorkloadApiMesh = grpcModules();
    await wl.close();
  }
  console.log(JSON.stringify(out));
`;

const ESM = `import { createRequire } from 'node:module'; import { createMesh } from 'sidecarless';
const require = createRequire(import.meta.url);
${BODY}`;
const CJS = `const { createMesh } = require('sidecarless'); (async () => { ${BODY} })().catch((e) => { console.error(e); process.exit(1); });`;

function child(type: 'module' | 'commonjs', code: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [`--input-type=${type}`, '-e', code, '--', ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`child failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>);
    });
  });
}

test('a mesh with a files identity never loads @grpc/grpc-js, zod, OpenTelemetry, yaml or x509 (ESM and CJS); a Workload API mesh, a policy rule do', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const dir = join(tempDirFor(t), 'orders');
  await mkdir(dir);
  await writeSvidDir(dir, filesOf(await ca.issue({ spiffeId: idOf('orders') })));
  const agent = await WorkloadServer.start();
  t.after(() => agent.stop());
  await agent.state([wireSvid(await ca.issue({ spiffeId: idOf('orders') }))]);

  const esm = await child('module', ESM, [dir, agent.address]);
  assert.equal(esm.status, 200);
  assert.equal(esm.body, 'ok');
  assert.equal(esm.kind, 'dir');
  assert.equal(esm.afterImport, 0, 'importing the package loads no grpc-js');
  assert.equal(esm.afterDirMesh, 0, 'a files-identity mesh that served and called loads no grpc-js');
  assert.deepEqual(esm.lazyLoaded, [], 'a files-identity mesh that served and called loads none of the lazy dependencies');
  assert.ok((esm.afterPolicyRule as string[]).includes('zod') && (esm.afterPolicyRule as string[]).includes('__zod_globalConfig'), `a policy with a rule loads zod: ${esm.afterPolicyRule}`);
  assert.equal(esm.wlKind, 'workload-api');
  assert.ok((esm.afterWorkloadApiMesh as number) > 0, 'the Workload API mesh loaded grpc-js (the check can see it)');

  const cjs = await child('commonjs', CJS, [dir, '-']);
  assert.equal(cjs.status, 200);
  assert.equal(cjs.afterImport, 0);
  assert.equal(cjs.afterDirMesh, 0);
  assert.deepEqual(cjs.lazyLoaded, []);
  assert.ok((cjs.afterPolicyRule as string[]).includes('zod'));
});
