// The published types, as an npm user compiles against them: the TypeScript compiler on consumer
// projects that install the `npm pack` tarball, with `skipLibCheck: false`.
// - with fastify installed: `request.peer` is typed (the module augmentation survives the bundled
//   .d.ts) and `fastify.register(mesh.fastify)` fits fastify's own plugin type;
// - Express only, fastify not installed: the .d.ts never needs fastify's types.
// Both through the ESM (`import`) and the CommonJS (`require`, .d.cts) entry.
//
// The program is tsc's (the project's tsconfig.json, every file it pulls in); its diagnostics are
// what `tsc -p` reports for the consumer's sources and for every file of the installed package,
// checked in full as `skipLibCheck: false` does. The other packages' declarations (@types/node,
// express, fastify, zod…) are parsed and used but not checked line by line: that is 10–15 s per
// project on a 2-core machine, a minute under the whole suite, and says nothing about this package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import ts from 'typescript';
import { tempDir } from './process.js';
import { consumer, dependenciesOf, pack } from './pack.js';

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

// sidecarless/serverless, both entries: the handler's parameters are typed (context.peer, req.peer, the mesh).
const serverlessFn = `import { withMesh, withMeshHttp } from 'sidecarless/serverless';
import type { Mesh, PeerIdentity } from 'sidecarless';

const useMesh = (m: Mesh) => m.spiffeId; // the mesh handed to a handler is the main entry's Mesh
export const handler = withMesh(async (event: { rawPath?: string }, context, mesh) => {
  const peer: PeerIdentity | null | undefined = context.peer;
  useMesh(mesh);
  // @ts-expect-error the mesh is a Mesh, not any
  const wrong: number = mesh;
  return { path: event.rawPath, peer, id: mesh.spiffeId, wrong };
}, { service: 'fn' });
export const http = withMeshHttp(async (req, res, mesh) => {
  res.end(String(req.peer?.spiffeId ?? mesh.spiffeId));
}, { service: 'fn' });
`;

const serverlessCjs = `import serverless = require('sidecarless/serverless');

export const handler = serverless.withMesh(async (_event, context, mesh) => context.peer?.spiffeId ?? mesh.spiffeId, { service: 'fn' });
`;

async function project(dir: string, tarball: string, links: string[], files: Record<string, string>): Promise<string> {
  await consumer(dir, tarball, [...(await dependenciesOf()), ...links], { type: 'module' });
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  await mkdir(join(dir, 'src'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'src', name), text);
  return dir;
}

const host: ts.FormatDiagnosticsHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n' };

/** What tsc reports for the project in `dir` about its own sources and the installed package ('' when it compiles). */
function typecheck(dir: string): { errors: string; checked: string[] } {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(dir, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.formatDiagnostic(d, host)),
  })!;
  assert.equal(parsed.options.skipLibCheck, false);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options, configFileParsingDiagnostics: parsed.errors });
  const pkg = join(dir, 'node_modules', 'sidecarless') + sep;
  const ours = program.getSourceFiles().filter((f) => f.fileName.startsWith(pkg.split(sep).join('/')) || !f.fileName.includes('/node_modules/'));
  const diagnostics = [
    ...program.getConfigFileParsingDiagnostics(),
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSyntacticDiagnostics(),
    ...ours.flatMap((f) => program.getSemanticDiagnostics(f)),
  ];
  return { errors: ts.formatDiagnostics(diagnostics, host), checked: ours.map((f) => f.fileName.slice(dir.length + 1)).sort() };
}

test('the packed .d.ts: request.peer typed with fastify; no fastify types needed without it (skipLibCheck: false)', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const tarball = await pack(dir);
  const withFastify = await project(join(dir, 'with-fastify'), tarball, ['typescript', '@types/node', 'fastify'], {
    'app.ts': fastifyApp,
    'app-cjs.cts': fastifyCjs,
  });
  const expressOnly = await project(join(dir, 'express-only'), tarball, ['typescript', '@types/node', 'express', '@types/express'], {
    'app.ts': expressApp,
    'app-cjs.cts': expressCjs,
    'fn.ts': serverlessFn,
    'fn-cjs.cts': serverlessCjs,
  });
  // The Express-only consumer really has no fastify to find.
  assert.throws(() => createRequire(join(expressOnly, 'src', 'app.ts')).resolve('fastify'), /Cannot find module 'fastify'/);
  assert.doesNotThrow(() => createRequire(join(withFastify, 'src', 'app.ts')).resolve('fastify'));
  const fastify = typecheck(withFastify);
  const express = typecheck(expressOnly);
  const expected = ['node_modules/sidecarless/dist/index.d.cts', 'node_modules/sidecarless/dist/index.d.ts', 'src/app-cjs.cts', 'src/app.ts'];
  assert.deepEqual(fastify.checked, expected, 'both entries of the package are in the program, and checked');
  assert.deepEqual(express.checked, [...expected.slice(0, 2), 'node_modules/sidecarless/dist/serverless.d.cts', 'node_modules/sidecarless/dist/serverless.d.ts', 'src/app-cjs.cts', 'src/app.ts', 'src/fn-cjs.cts', 'src/fn.ts'].sort());
  assert.deepEqual(
    { fastify: fastify.errors, express: express.errors },
    { fastify: '', express: '' },
    'the Fastify consumer compiles (request.peer typed, mesh.fastify registers); the Express-only one without fastify installed',
  );
});
