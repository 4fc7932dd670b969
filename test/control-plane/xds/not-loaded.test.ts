// The xDS stack costs nothing when `controlPlane` is not set (issue 12, DESIGN.md defaults: cold
// start): a fresh process imports the package from src, creates a mesh without a control plane,
// serves and calls one request, and lists the modules it loaded: none of src/control-plane/xds/,
// none of the Envoy codecs (src/proto/envoy/), no @grpc/grpc-js. The same process then creates a
// mesh with `controlPlane` (an address nobody listens on: the mesh starts all the same), which must
// load them: the check can see them. The built package keeps the same boundary: its bundle holds the
// xDS code behind lazy initialisers, and test/sources/workload-api-lazy.test.ts checks grpc-js there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RECORD_MODULES, xdsModules } from '../../helpers/loaded-modules.js';
import { tempDirFor } from '../../helpers/tmp.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
const src = (p: string) => pathToFileURL(join(ROOT, 'src', p)).href;

const CHILD = `${RECORD_MODULES}
const { createMesh } = await import(${JSON.stringify(src('index.ts'))});
const { createDevCa } = await import(${JSON.stringify(src('identity/dev-ca.ts'))});
const { writeFileSync } = await import('node:fs');
const silent = { info() {}, warn() {}, error() {} };
const [root] = process.argv.slice(-1);
const ca = await createDevCa({ trustDomain: 'cluster.local' });
writeFileSync(root, ca.bundlePem);
const mesh = await createMesh({ service: 'orders', identity: { ca }, logger: silent,
  outbound: { services: { self: { endpoints: [], identity: 'spiffe://cluster.local/ns/default/sa/orders' } } } });
const server = mesh.createServer((req, res) => res.end('ok'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
mesh.setEndpoints('self', ['127.0.0.1:' + server.address().port]);
const res = await mesh.fetch('http://self/');
const out = { status: res.status, body: await res.text(), without: await loaded() };
server.close();
await mesh.close();
const cp = await createMesh({ service: 'orders', identity: { ca }, logger: silent, controlPlane: { address: '127.0.0.1:1', root, token: 't' } });
out.with = await loaded();
await cp.close();
console.log(JSON.stringify(out));
process.exit(0);
`;

test('a mesh without controlPlane loads no xDS module, no Envoy codec and no grpc-js; one with controlPlane loads them', { timeout: 60_000 }, async (t) => {
  const root = join(tempDirFor(t), 'root.pem');
  await writeFile(root, '');
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, '--', root], { cwd: ROOT, timeout: 50_000 }, (err, out, stderr) =>
      err ? reject(new Error(`child failed: ${err.message}\n${stderr}`)) : resolve(out),
    );
  });
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as { status: number; body: string; without: string[]; with: string[] };
  assert.equal(out.status, 200);
  assert.equal(out.body, 'ok');
  assert.ok(out.without.some((u) => u.includes('/src/outbound/')), 'the recorder sees the src modules the mesh loaded');
  assert.deepEqual(xdsModules(out.without), { xds: [], envoy: [], grpc: [] }, 'a mesh without controlPlane loaded part of the xDS stack');
  const loaded = xdsModules(out.with);
  assert.ok(loaded.xds.some((u) => u.endsWith('/src/control-plane/xds/open.ts')), `with controlPlane, open.ts is loaded: ${loaded.xds.join(', ')}`);
  assert.ok(loaded.envoy.length > 0, 'with controlPlane, the Envoy codecs are loaded');
  assert.ok(loaded.grpc.length > 0, 'with controlPlane, grpc-js is loaded');
});
