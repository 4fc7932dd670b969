// The public contract of DESIGN.md, as a user imports it: by package name, ESM and CommonJS (dist/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const NAMES = ['createMesh', 'peerOf', 'loadPolicy', 'createDevCa', 'parseSpiffeId', 'authorizeId', 'authorizeOneOf', 'authorizeMemberOf', 'authorizeAny'];
const MESH_MEMBERS = ['createServer', 'fetch', 'dispatcher', 'serverTlsOptions', 'express', 'fastify', 'stats', 'setPolicy', 'setEndpoints', 'close'];

test('ESM and CJS builds export the contract names', async () => {
  const esm = (await import('sidecarless')) as Record<string, unknown>;
  const cjs = createRequire(import.meta.url)('sidecarless') as Record<string, unknown>;
  for (const name of NAMES) {
    assert.equal(typeof esm[name], 'function', `ESM ${name}`);
    assert.equal(typeof cjs[name], 'function', `CJS ${name}`);
  }
});

test('a mesh has every member the contract names, and peerOf is shared by ESM and CJS copies', async () => {
  const esm = await import('sidecarless');
  const cjs = createRequire(import.meta.url)('sidecarless') as typeof esm;
  const ca = await esm.createDevCa();
  const mesh = await esm.createMesh({ service: 'orders', identity: { ca }, logger: { info() {}, warn() {}, error() {} } });
  try {
    for (const m of MESH_MEMBERS) assert.ok((mesh as unknown as Record<string, unknown>)[m] !== undefined, m);
    const undici = await import('undici');
    assert.ok(mesh.dispatcher instanceof undici.Dispatcher, 'mesh.dispatcher is an undici Dispatcher');
    assert.equal(typeof mesh.dispatcher.compose, 'function');
    const server = mesh.createServer((req, res) => res.end(JSON.stringify({ esm: esm.peerOf(req), cjs: cjs.peerOf(req) })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = await cjs.createMesh({ service: 'web', identity: { ca }, outbound: { services: { orders: { endpoints: [`127.0.0.1:${port}`] } } }, logger: { info() {}, warn() {}, error() {} } });
    const body = (await (await client.fetch('http://orders/')).json()) as { esm: { spiffeId: string }; cjs: { spiffeId: string } };
    assert.equal(body.esm.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
    assert.deepEqual(body.cjs, body.esm, 'Symbol.for keys let both copies read the same socket identity');
    await client.close();
    server.close();
  } finally {
    await mesh.close();
  }
});

// The kit a third party needs to write an X509Source (docs/identity.md, "Write your own source").
const KIT = ['buildSvid', 'bundlesFromPem', 'createBundle', 'verifySvidChain', 'validateLeaf', 'parseCertificate', 'SourceCore', 'CoreBackedSource'];

test('ESM and CJS export the source kit', async () => {
  const esm = (await import('sidecarless')) as Record<string, unknown>;
  const cjs = createRequire(import.meta.url)('sidecarless') as Record<string, unknown>;
  for (const name of KIT) {
    assert.equal(typeof esm[name], 'function', `ESM ${name}`);
    assert.equal(typeof cjs[name], 'function', `CJS ${name}`);
  }
  assert.deepEqual(esm.DIAGNOSTICS_CHANNELS, { authz: 'sidecarless:v1:authz', ejection: 'sidecarless:v1:ejection', rotation: 'sidecarless:v1:rotation', snapshot: 'sidecarless:v1:snapshot' });
});

test('the published .d.ts (ESM and CJS) has no @internal member and no @peculiar/x509 type', async () => {
  const { readFile } = await import('node:fs/promises');
  for (const file of ['index.d.ts', 'index.d.cts']) {
    const text = await readFile(new URL(`../dist/${file}`, import.meta.url), 'utf8');
    assert.ok(text.includes('declare function createMesh'), `${file} is the built declarations`);
    const internal = text.split('\n').filter((l) => l.includes('@internal'));
    assert.deepEqual(internal, [], `${file}: @internal members leak (tsup's stripInternal, or make them private)`);
    assert.doesNotMatch(text, /@peculiar\/x509|\bx509\.[A-Z]/, `${file}: @peculiar/x509 types are an implementation detail`);
    // The compiled policy's tables (policy/compiled.ts PolicyTables) are not part of CompiledPolicy.
    assert.doesNotMatch(text, /\bPolicyTables\b|\bEvalScratch\b/, `${file}: the compiled policy's internals`);
  }
});
