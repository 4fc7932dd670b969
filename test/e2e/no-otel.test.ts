// Without @opentelemetry/api (pnpm's strict layout, `--legacy-peer-deps`): the packed library, ESM
// and CommonJS, serves and fetches over real mTLS with telemetry off and says so in ONE line per
// process; the CLI runs its demo (every scene checked: test/e2e/demo-scenes.ts — the one run of the
// demo in the suite). With the API installed, the same program prints no such line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertDemoScenes } from './demo-scenes.js';
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tempDir } from './process.js';
import { consumer, dependenciesOf, pack } from './pack.js';
import { TELEMETRY_OFF_MESSAGE } from '../../src/telemetry/otel.js';

// Two meshes in one process (a server and a client), three requests: still one line.
const program = (importLine: string) => `${importLine}
async function main() {
  const ca = await createDevCa();
  const payments = await createMesh({ service: 'payments', identity: { ca } });
  const server = payments.createServer((req, res) => res.end(JSON.stringify({ peer: peerOf(req)?.spiffeId ?? null })));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const orders = await createMesh({
    service: 'orders',
    identity: { ca },
    outbound: { services: { payments: { endpoints: ['127.0.0.1:' + server.address().port] } } },
  });
  const calls = [];
  for (let i = 0; i < 3; i++) {
    const res = await orders.fetch('http://payments/charge', { method: 'POST', body: '{}' });
    calls.push({ status: res.status, body: await res.json() });
  }
  const served = payments.stats().traffic.series.filter((s) => s.direction === 'inbound').reduce((a, s) => a + s.requests, 0);
  process.stdout.write(JSON.stringify({ calls, served, sent: orders.stats().outbound.services.payments.requests }) + '\\n');
  await orders.close();
  await payments.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

const ESM = program("import { createDevCa, createMesh, peerOf } from 'sidecarless';");
const CJS = program("const { createDevCa, createMesh, peerOf } = require('sidecarless');");

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

// sidecarless/serverless from the tarball, ESM and CJS: a Lambda-shaped handler invoked with a
// schedule event and an HTTP API v2 event; nothing closes the mesh: the process must end by itself.
const serverless = (importLines: string) => `${importLines}
(async () => {
  const ca = await createDevCa();
  const handler = withMesh(async (event, context, mesh) => ({ id: mesh.spiffeId, peer: context.peer, kind: event.source ?? 'http' }), {
    service: 'fn', identity: { ca }, inbound: { defaultPolicy: 'all-unauthenticated' },
  });
  const a = await handler({ source: 'aws.events' }, {});
  const b = await handler({ version: '2.0', rawPath: '/x', rawQueryString: '', headers: { host: 'fn.example' }, requestContext: { http: { method: 'GET', sourceIp: '192.0.2.1' } } }, {});
  process.stdout.write(JSON.stringify({ a, b, http: typeof withMeshHttp }) + '\\n');
})().catch((e) => { console.error(e); process.exit(1); });
`;
const SERVERLESS_ESM = serverless("import { withMesh, withMeshHttp } from 'sidecarless/serverless';\nimport { createDevCa } from 'sidecarless';");
const SERVERLESS_CJS = serverless("const { withMesh, withMeshHttp } = require('sidecarless/serverless');\nconst { createDevCa } = require('sidecarless');");

async function runApp(dir: string, file: string): Promise<{ stderr: string; result: { calls: Array<{ status: number; body: { peer: string } }>; served: number; sent: number } }> {
  const r = await run(process.execPath, [join(dir, file)], { cwd: dir, timeoutMs: 30_000, env: { NODE_OPTIONS: '' } });
  assert.equal(r.code, 0, `${file} failed:\n${r.stdout}${r.stderr}`);
  return { stderr: r.stderr, result: JSON.parse(r.stdout.trim().split('\n').at(-1)!) };
}

const linesSaying = (stderr: string) => stderr.split('\n').filter((l) => l.includes('@opentelemetry/api is not installed'));

test('without @opentelemetry/api: ESM and CJS builds serve and fetch over mTLS, one line says telemetry is off; the CLI demo (the main job) runs every scene as it should and ends by itself', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const tarball = await pack(dir);
  const deps = await dependenciesOf();
  assert.ok(!deps.includes('@opentelemetry/api'), 'the API is not a hard dependency');
  const bare = await consumer(join(dir, 'bare'), tarball, deps);
  await writeFile(join(bare, 'app.mjs'), ESM);
  await writeFile(join(bare, 'app.cjs'), CJS);
  await writeFile(join(bare, 'fn.mjs'), SERVERLESS_ESM);
  await writeFile(join(bare, 'fn.cjs'), SERVERLESS_CJS);
  const withApi = await consumer(join(dir, 'with-api'), tarball, [...deps, '@opentelemetry/api']);
  await writeFile(join(withApi, 'app.mjs'), ESM);

  // The layout really cannot resolve the API, from the app or from the package's own dist.
  for (const from of [join(bare, 'app.mjs'), join(bare, 'node_modules', 'sidecarless', 'dist', 'index.js')]) {
    assert.throws(() => createRequire(from).resolve('@opentelemetry/api'), /Cannot find module '@opentelemetry\/api'/, from);
  }

  const [fnEsm, fnCjs] = await Promise.all(['fn.mjs', 'fn.cjs'].map((f) => run(process.execPath, [join(bare, f)], { cwd: bare, timeoutMs: 30_000, env: { NODE_OPTIONS: '' } })));
  for (const [name, r] of [['serverless ESM', fnEsm!], ['serverless CJS', fnCjs!]] as const) {
    assert.equal(r.code, 0, `${name} did not end by itself with 0:\n${r.stdout}${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(out, { a: { id: 'spiffe://cluster.local/ns/default/sa/fn', kind: 'aws.events' }, b: { id: 'spiffe://cluster.local/ns/default/sa/fn', peer: null, kind: 'http' }, http: 'function' }, name);
  }
  // One mesh implementation: the serverless files import the main entry (by the package's name), they do not bundle it.
  const dist = join(bare, 'node_modules', 'sidecarless', 'dist');
  for (const f of ['serverless.js', 'serverless.cjs']) {
    const text = await readFile(join(dist, f), 'utf8');
    assert.match(text, /from "sidecarless"|require\("sidecarless"\)/, f);
    assert.ok(text.length < 40_000, `${f} is ${text.length} bytes: it bundles more than the wrappers`);
  }

  const [esm, cjs, control, demo] = await Promise.all([
    runApp(bare, 'app.mjs'),
    runApp(bare, 'app.cjs'),
    runApp(withApi, 'app.mjs'),
    run(process.execPath, [join(bare, 'node_modules', 'sidecarless', 'dist', 'cli.js'), 'demo'], { cwd: bare, timeoutMs: 60_000, env: { NODE_OPTIONS: '' } }),
  ]);
  for (const [name, r] of [['ESM', esm], ['CJS', cjs], ['with the API', control]] as const) {
    assert.deepEqual(
      r.result.calls.map((c) => [c.status, c.body.peer]),
      [[200, ORDERS], [200, ORDERS], [200, ORDERS]],
      `${name}: three mTLS calls, the server saw the client's SPIFFE ID`,
    );
    assert.equal(r.result.served, 3, `${name}: golden signals still counted inbound`);
    assert.equal(r.result.sent, 3, `${name}: and outbound`);
  }
  assert.deepEqual(linesSaying(esm.stderr), [`sidecarless: ${TELEMETRY_OFF_MESSAGE}`], `ESM stderr:\n${esm.stderr}`);
  assert.deepEqual(linesSaying(cjs.stderr), [`sidecarless: ${TELEMETRY_OFF_MESSAGE}`], `CJS stderr:\n${cjs.stderr}`);
  assert.deepEqual(linesSaying(control.stderr), [], `with the API installed, no such line:\n${control.stderr}`);

  // The demo (the main job) from the published CLI without the API: every scene as it should be.
  assertDemoScenes(demo);
});
