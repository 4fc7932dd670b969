// Cold start: a new process that creates a mesh and gets its first mTLS response from the payments
// server, then closes the mesh and exits by itself (nothing may keep the loop alive).
//   node bench/cold/mesh.mjs devca <ports> <caDir>   identity issued by a dev CA in this process
//   node bench/cold/mesh.mjs dir <ports> <svidDir>    identity read from SVID files
//   node bench/cold/mesh.mjs cp <ports> <address> <root> <tokenFile>
//                                                     identity from a control plane's CA, for a token (issue 14)
// `ESM=0` in the environment: require('sidecarless') (the CJS build) instead of import.
// Prints its own timings (ms since process start), CPU and peak RSS as JSON.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [mode, ports, dir, root, tokenFile] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, error() {} };
const { createMesh, DevCa } = process.env.ESM === '0' ? createRequire(import.meta.url)('sidecarless') : await import('sidecarless');
const imported = performance.now();
const endpoints = ports.split(',').map((p) => `127.0.0.1:${p}`);
const identity =
  mode === 'devca' ? { ca: await DevCa.fromPem(readFileSync(join(dir, 'ca.pem'), 'utf8'), readFileSync(join(dir, 'ca_key.pem'), 'utf8')) } : mode === 'dir' ? { dir } : undefined;
const mesh = await createMesh({
  service: 'orders',
  ...(identity && { identity }),
  ...(mode === 'cp' && { controlPlane: { address: dir, root, token: { file: tokenFile } } }),
  outbound: { services: { payments: { endpoints } } },
  logger: quiet,
});
const meshReady = performance.now();
const res = await mesh.fetch('http://payments/api/orders/42');
await res.arrayBuffer();
const firstResponse = performance.now();
await mesh.close();
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ status: res.status, imported, meshReady, firstResponse, closed: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000, maxRss: process.resourceUsage().maxRSS * 1024 }) + '\n');
