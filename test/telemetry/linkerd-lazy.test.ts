// The Linkerd dialect costs nothing when off: a fresh process creates a mesh without it, serves and
// calls one request, and has not loaded src/telemetry/linkerd.ts; a mesh with
// `telemetry: { dialect: 'linkerd' }` in the same process loads it (the check can see it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RECORD_MODULES } from '../helpers/loaded-modules.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const src = (p: string) => pathToFileURL(join(ROOT, 'src', p)).href;

const CHILD = `${RECORD_MODULES}
const { createMesh } = await import(${JSON.stringify(src('index.ts'))});
const { createDevCa } = await import(${JSON.stringify(src('identity/dev-ca.ts'))});
const silent = { info() {}, warn() {}, error() {} };
const ca = await createDevCa({ trustDomain: 'cluster.local' });
const mesh = await createMesh({ service: 'orders', identity: { ca }, logger: silent, admin: { port: 0 },
  outbound: { services: { self: { endpoints: [], identity: 'spiffe://cluster.local/ns/default/sa/orders' } } } });
const server = mesh.createServer((req, res) => res.end('ok'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
mesh.setEndpoints('self', ['127.0.0.1:' + server.address().port]);
const res = await mesh.fetch('http://self/');
await res.text();
await (await fetch('http://127.0.0.1:' + mesh.admin.address().port + '/metrics')).text();
const out = { status: res.status, without: await loaded() };
server.close();
await mesh.close();
const l = await createMesh({ service: 'orders', identity: { ca }, logger: silent, telemetry: { dialect: 'linkerd' } });
out.with = await loaded();
await l.close();
console.log(JSON.stringify(out));
process.exit(0);
`;

test('a mesh without the Linkerd dialect never loads src/telemetry/linkerd.ts; one with it does', { timeout: 60_000 }, async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, timeout: 50_000 }, (err, o, stderr) =>
      err ? reject(new Error(`child failed: ${err.message}\n${stderr}`)) : resolve(o),
    );
  });
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as { status: number; without: string[]; with: string[] };
  assert.equal(out.status, 200);
  const isLinkerd = (u: string) => u.includes('/src/telemetry/linkerd.ts');
  assert.ok(out.without.some((u) => u.includes('/src/telemetry/prometheus.ts')), 'the recorder sees the telemetry modules the mesh loaded');
  assert.deepEqual(out.without.filter(isLinkerd), []);
  assert.ok(out.with.some(isLinkerd), 'with the dialect on, linkerd.ts is loaded');
});
