// A warm invocation (issue 14): one process holding a Lambda handler wrapped by withMesh (its mesh's
// identity from files) and an undici Agent with the same client certificate, both warmed,
// alternating one invocation / request each against the same server; prints the per-request
// latencies (ms) of each as JSON. The mesh side includes the wrapper's per-invocation work (the
// thaw check).
//   node bench/cold/warm.mjs <port> <svidDir> <requests>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { withMesh } from 'sidecarless/serverless';

const [port, dir, n] = process.argv.slice(2);
const read = (f) => readFileSync(join(dir, f));
const quiet = { info() {}, warn() {}, error() {} };
let mesh;
const handler = withMesh(
  async (_event, _context, m) => {
    mesh = m;
    const res = await m.fetch('http://payments/api/orders/42');
    await res.arrayBuffer();
  },
  { service: 'orders', identity: { dir }, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } }, logger: quiet },
);
const EVENT = { source: 'aws.events', 'detail-type': 'Scheduled Event' }; // not HTTP: nothing to judge
const agent = new Agent({ connect: { cert: read('svid.pem'), key: read('svid_key.pem'), ca: read('svid_bundle.pem'), servername: 'localhost', checkServerIdentity: () => undefined } });

/** One warm invocation of the wrapped handler: the thaw check, then one mesh.fetch. */
export async function meshWarmInvocation() {
  await handler(EVENT, {});
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
  await meshWarmInvocation();
  await plainWarmInvocation();
}
const out = { mesh: [], plain: [] };
for (let i = 0; i < Number(n); i++) {
  // Alternate which goes first: neither always runs right after the other's GC or timer work.
  if (i % 2) {
    out.mesh.push(await time(meshWarmInvocation));
    out.plain.push(await time(plainWarmInvocation));
  } else {
    out.plain.push(await time(plainWarmInvocation));
    out.mesh.push(await time(meshWarmInvocation));
  }
}
await mesh.close();
await agent.close();
process.stdout.write(JSON.stringify(out) + '\n');
