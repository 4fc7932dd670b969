// A warm invocation (issue 14): one process holding a mesh (identity from files) and an undici Agent
// with the same client certificate, both warmed, alternating one request each against the same
// server; prints the per-request latencies (ms) of each as JSON.
//   node bench/cold/warm.mjs <port> <svidDir> <requests>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { createMesh } from 'sidecarless';

const [port, dir, n] = process.argv.slice(2);
const read = (f) => readFileSync(join(dir, f));
const quiet = { info() {}, warn() {}, error() {} };
const mesh = await createMesh({ service: 'orders', identity: { dir }, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } }, logger: quiet });
const agent = new Agent({ connect: { cert: read('svid.pem'), key: read('svid_key.pem'), ca: read('svid_bundle.pem'), servername: 'localhost', checkServerIdentity: () => undefined } });

/**
 * One warm invocation through the mesh: what a function's handler does per event once the instance
 * is up. When the serverless wrappers exist (src/serverless/), this is where the bench calls the
 * handler withMesh wraps, so the figure includes the wrapper's per-invocation work (the thaw check).
 */
export async function meshWarmInvocation(m) {
  const res = await m.fetch('http://payments/api/orders/42');
  await res.arrayBuffer();
}

async function plainWarmInvocation() {
  const res = await fetch(`https://127.0.0.1:${port}/api/orders/42`, { dispatcher: agent });
  await res.arrayBuffer();
}

const time = async (fn) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
for (let i = 0; i < 200; i++) {
  await meshWarmInvocation(mesh);
  await plainWarmInvocation();
}
const out = { mesh: [], plain: [] };
for (let i = 0; i < Number(n); i++) {
  // Alternate which goes first: neither always runs right after the other's GC or timer work.
  if (i % 2) {
    out.mesh.push(await time(() => meshWarmInvocation(mesh)));
    out.plain.push(await time(plainWarmInvocation));
  } else {
    out.plain.push(await time(plainWarmInvocation));
    out.mesh.push(await time(() => meshWarmInvocation(mesh)));
  }
}
await mesh.close();
await agent.close();
process.stdout.write(JSON.stringify(out) + '\n');
