// The Linkerd stack costs nothing when `controlPlane.linkerd` is not set (issue 16): a fresh
// process creates a mesh without it, serves and calls one request, and lists the modules it
// loaded: none of src/control-plane/linkerd/, none of the Linkerd codecs (src/proto/linkerd/), not
// the Linkerd identity source, no grpc-js. The same process then creates a mesh with
// `controlPlane.linkerd` (controllers nobody listens on; a dev CA identity so it starts at once),
// which must load them — and none of the xDS client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RECORD_MODULES } from '../../helpers/loaded-modules.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
const src = (p: string) => pathToFileURL(join(ROOT, 'src', p)).href;

const CHILD = `${RECORD_MODULES}
const { createMesh } = await import(${JSON.stringify(src('index.ts'))});
const { createDevCa } = await import(${JSON.stringify(src('identity/dev-ca.ts'))});
const silent = { info() {}, warn() {}, error() {} };
const ca = await createDevCa({ trustDomain: 'cluster.local' });
const mesh = await createMesh({ service: 'orders', identity: { ca }, logger: silent,
  outbound: { services: { self: { endpoints: [], identity: 'spiffe://cluster.local/ns/default/sa/orders' } } } });
const server = mesh.createServer((req, res) => res.end('ok'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
mesh.setEndpoints('self', ['127.0.0.1:' + server.address().port]);
const res = await mesh.fetch('http://self/');
const out = { status: res.status, body: await res.text(), without: await loaded() };
server.close();
await mesh.close();
const cp = await createMesh({ service: 'orders', identity: { ca }, logger: silent, controlPlane: { linkerd: {
  trustAnchors: { pem: ca.bundlePem }, destination: { address: '127.0.0.1:1' }, policy: { address: '127.0.0.1:1' } } } });
out.source = cp.snapshot().source;
out.with = await loaded();
await cp.close();
console.log(JSON.stringify(out));
process.exit(0);
`;

const linkerd = (urls: readonly string[]) => ({
  controlPlane: urls.filter((u) => u.includes('/src/control-plane/linkerd/')),
  proto: urls.filter((u) => u.includes('/src/proto/linkerd/')),
  identity: urls.filter((u) => /\/src\/sources\/(issuers\/)?linkerd/.test(u)),
  grpc: urls.filter((u) => u.includes('/@grpc/grpc-js/')),
});

test('a mesh without controlPlane.linkerd loads no Linkerd module and no grpc-js; one with it loads them, and no xDS code', { timeout: 60_000 }, async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: ROOT, timeout: 50_000 }, (err, out, stderr) =>
      err ? reject(new Error(`child failed: ${err.message}\n${stderr}`)) : resolve(out),
    );
  });
  const out = JSON.parse(stdout.trim().split('\n').pop()!) as { status: number; body: string; source: string; without: string[]; with: string[] };
  assert.equal(out.status, 200);
  assert.equal(out.body, 'ok');
  assert.ok(out.without.some((u) => u.includes('/src/outbound/')), 'the recorder sees the src modules the mesh loaded');
  assert.deepEqual(linkerd(out.without), { controlPlane: [], proto: [], identity: [], grpc: [] }, 'a mesh without controlPlane.linkerd loaded part of the Linkerd stack');
  const loaded = linkerd(out.with);
  assert.ok(loaded.controlPlane.some((u) => u.endsWith('/src/control-plane/linkerd/open.ts')), `with controlPlane.linkerd, open.ts is loaded: ${loaded.controlPlane.join(', ')}`);
  assert.ok(loaded.proto.length > 0, 'the Linkerd codecs are loaded');
  assert.ok(loaded.grpc.length > 0, 'grpc-js is loaded');
  // (The translators share xds/translate/regex.ts, the safe-regex check; nothing of the xDS client.)
  assert.deepEqual(out.with.filter((u) => /\/src\/control-plane\/xds\/(open|ads-|xds-|resource-cache|decode)/.test(u) || u.includes('/src/proto/envoy/')), [], 'a Linkerd mesh loads no xDS client code');
  assert.equal(out.source, 'linkerd:127.0.0.1:1');
});
