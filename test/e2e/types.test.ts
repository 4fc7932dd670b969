// The published types, as an npm user compiles against them: `tsc` on consumer projects that
// install the `npm pack` tarball, with `skipLibCheck: false` (every .d.ts of the program checked).
// - with fastify installed: `request.peer` is typed (the module augmentation survives the bundled
//   .d.ts) and `fastify.register(mesh.fastify)` fits fastify's own plugin type;
// - Express only, fastify not installed: the .d.ts never needs fastify's types.
// Both through the ESM (`import`) and the CommonJS (`require`, .d.cts) entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, run, tempDir } from './process.js';
import { consumer, dependenciesOf, pack } from './pack.js';

const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node'],
  },
  include: ['src'],
};

const fastifyApp = `import Fastify from 'fastify';
import { createMesh, peerOf, type PeerIdentity } from 'sidecarless';

const mesh = await createMesh({ service: 'payments' });
const app = Fastify({ https: mesh.serverTlsOptions() });
await app.register(mesh.fastify);
app.get('/who', async (request) => {
  const peer: PeerIdentity | null = request.peer;
  // @ts-expect-error request.peer is PeerIdentity | null, not any
  const wrong: number = request.peer;
  return { peer, same: peerOf(request) === peer, id: request.peer?.spiffeId ?? null, wrong };
});
await app.listen({ port: 0 });
`;

const fastifyCjs = `import Fastify = require('fastify');
import sidecarless = require('sidecarless');

export async function start(): Promise<string | null> {
  const mesh = await sidecarless.createMesh({ service: 'payments' });
  const app = Fastify.fastify({ https: mesh.serverTlsOptions() });
  await app.register(mesh.fastify);
  let id: string | null = null;
  app.get('/', async (request) => (id = request.peer?.spiffeId ?? null));
  return id;
}
`;

const expressApp = `import express from 'express';
import { createServer } from 'node:https';
import { createMesh, peerOf, type Mesh, type PeerIdentity } from 'sidecarless';

const mesh: Mesh = await createMesh({ service: 'orders', outbound: { services: { payments: { endpoints: ['127.0.0.1:9001'] } } } });
const app = express();
app.use(mesh.express());
app.get('/who', (req, res) => {
  const peer: PeerIdentity | null = peerOf(req);
  res.json(peer);
});
createServer(mesh.serverTlsOptions(), app).listen(8443);
const res: Response = await mesh.fetch('http://payments/charge', { method: 'POST' });
console.log(res.status, mesh.stats().inbound.mode);
`;

const expressCjs = `import sidecarless = require('sidecarless');
import express = require('express');

export async function start(): Promise<void> {
  const mesh = await sidecarless.createMesh({ service: 'orders' });
  const app = express();
  app.use(mesh.express());
  app.get('/', (req, res) => res.json(sidecarless.peerOf(req)));
}
`;

async function project(dir: string, tarball: string, links: string[], files: Record<string, string>): Promise<string> {
  await consumer(dir, tarball, [...(await dependenciesOf()), ...links], { type: 'module' });
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  await mkdir(join(dir, 'src'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'src', name), text);
  return dir;
}

/** tsc's diagnostics for the project in `dir` ('' when it compiles). */
async function tsc(dir: string): Promise<string> {
  const r = await run(process.execPath, [TSC, '-p', dir, '--pretty', 'false'], { cwd: dir, timeoutMs: 60_000 });
  return r.code === 0 ? '' : `exit ${r.code}\n${r.stdout}${r.stderr}`;
}

test('the packed .d.ts: request.peer typed with fastify; no fastify types needed without it (skipLibCheck: false)', { timeout: 90_000 }, async (t) => {
  const dir = await tempDir(t);
  const tarball = await pack(dir);
  const withFastify = await project(join(dir, 'with-fastify'), tarball, ['typescript', '@types/node', 'fastify'], {
    'app.ts': fastifyApp,
    'app-cjs.cts': fastifyCjs,
  });
  const expressOnly = await project(join(dir, 'express-only'), tarball, ['typescript', '@types/node', 'express', '@types/express'], {
    'app.ts': expressApp,
    'app-cjs.cts': expressCjs,
  });
  // The Express-only consumer really has no fastify to find.
  assert.throws(() => createRequire(join(expressOnly, 'src', 'app.ts')).resolve('fastify'), /Cannot find module 'fastify'/);
  assert.doesNotThrow(() => createRequire(join(withFastify, 'src', 'app.ts')).resolve('fastify'));
  const [fastifyErrors, expressErrors] = await Promise.all([tsc(withFastify), tsc(expressOnly)]);
  assert.equal(fastifyErrors, '', 'the Fastify consumer compiles (request.peer typed, mesh.fastify registers)');
  assert.equal(expressErrors, '', 'the Express-only consumer compiles without fastify installed');
});
