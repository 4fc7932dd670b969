// Cold start: a new process that creates a mesh and gets its first mTLS response from the R2
// payments server, then closes the mesh and exits by itself (nothing may keep the loop alive).
//   node bench/cold/mesh.mjs devca <ports> <caDir>   identity issued by a dev CA in this process
//   node bench/cold/mesh.mjs dir <ports> <svidDir>    identity read from SVID files
// Prints its own timings (ms since process start) as JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [mode, ports, dir] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, error() {} };
const { createMesh, DevCa } = await import('sidecarless');
const imported = performance.now();
const identity =
  mode === 'devca' ? { ca: await DevCa.fromPem(readFileSync(join(dir, 'ca.pem'), 'utf8'), readFileSync(join(dir, 'ca_key.pem'), 'utf8')) } : { dir };
const mesh = await createMesh({
  service: 'orders',
  identity,
  outbound: { services: { payments: { endpoints: ports.split(',').map((p) => `127.0.0.1:${p}`) } } },
  logger: quiet,
});
const meshReady = performance.now();
const res = await mesh.fetch('http://payments/api/orders/42');
await res.arrayBuffer();
const firstResponse = performance.now();
await mesh.close();
process.stdout.write(JSON.stringify({ status: res.status, imported, meshReady, firstResponse, closed: performance.now(), maxRss: process.resourceUsage().maxRSS * 1024 }) + '\n');
