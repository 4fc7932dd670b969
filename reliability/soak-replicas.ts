/**
 * The soak's three replicas of `payments` (reliability/soak.ts starts this process): three meshes
 * on one dev CA (argv: its directory, the SVID lifetime), each serving POST/GET /work behind
 * policy, the policy swapped every 5 s between two documents that admit the same traffic.
 * Answers { op: 'rss' } with its RSS and { op: 'stop' } by closing everything and exiting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevCa } from '../src/identity/dev-ca.js';
import { createMesh, type Mesh } from '../src/index.js';

const [caDir, ttl, cpAddress, cpRoot, cpToken] = process.argv.slice(2) as [string, string, string?, string?, string?];
// With the embedded control plane (npm run soak -- --control-plane): registered there, its xDS followed.
const controlPlane = cpAddress ? { controlPlane: { address: cpAddress, root: cpRoot!, token: { file: cpToken! } } } : {};
const ca = await DevCa.fromPem(readFileSync(join(caDir, 'ca.pem'), 'utf8'), readFileSync(join(caDir, 'ca_key.pem'), 'utf8'));
const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';
const POLICIES = [
  { rules: [{ name: 'orders-work', action: 'allow', from: { identities: [ORDERS] }, to: { methods: ['GET', 'POST'], paths: ['/work'] } }] },
  { rules: [{ name: 'orders-any', action: 'allow', from: { identities: [ORDERS] } }, { name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }] },
];
const quiet = { info() {}, warn: (m: string) => console.error(`replica warn: ${m}`), error: (m: string) => console.error(`replica error: ${m}`) };

const meshes: Mesh[] = [];
const servers: Array<import('node:https').Server> = [];
const ports: number[] = [];
for (let i = 0; i < 3; i++) {
  const mesh = await createMesh({ service: 'payments', identity: { ca, ttl }, inbound: { policy: POLICIES[0] }, logger: quiet, ...controlPlane });
  const server = mesh.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(`replica ${i}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ports.push((server.address() as { port: number }).port);
  meshes.push(mesh);
  servers.push(server);
}
let swap = 0;
const swapper = setInterval(() => {
  swap++;
  for (const m of meshes) m.setPolicy(POLICIES[swap % 2]);
}, 5_000);

process.on('message', async (m: { op: string; id?: number }) => {
  if (m.op === 'rss') process.send!({ id: m.id, rss: process.memoryUsage().rss });
  if (m.op === 'stop') {
    clearInterval(swapper);
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    for (const m of meshes) await m.close();
    process.exit(0);
  }
});
process.send!({ ports });
