// Services added, changed and removed at run time, with nothing in the app but mesh.fetch.
//
//   npx tsx examples/traffic/live-services.ts
//
// `orders` starts knowing no services. A canary split is set before its backend exists (pending: the
// request waits for it), then the backend is delivered; a service's retry settings change without
// dropping its connections; a service is removed while a request is in flight (it finishes); and
// mesh.snapshot() shows what the mesh runs on at each step.
import { createDevCa, createMesh, type Mesh } from 'sidecarless';

const quiet = { info() {}, warn() {}, error() {} };
const ca = await createDevCa();
const meshes: Mesh[] = [];
const closers: Array<() => void> = [];

async function replica(service: string, name: string, delayMs = 0): Promise<string> {
  const mesh = await createMesh({ service, identity: { ca }, logger: quiet });
  meshes.push(mesh);
  const server = mesh.createServer((_req, res) => void setTimeout(() => res.end(name), delayMs));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

const inventory = await replica('inventory', 'inventory-1');
const v1 = await replica('payments', 'payments-v1');
const v2 = await replica('payments-v2', 'payments-v2');
const slow = await replica('reports', 'reports-1', 300);

const orders = await createMesh({ service: 'orders', identity: { ca }, logger: quiet, outbound: { pendingTimeout: '2s' } });
const show = (step: string) => {
  const s = orders.snapshot();
  const pending = orders.stats().snapshot.pending.map((p) => `${p.missing} (for ${p.service})`);
  console.log(`${step.padEnd(37)} snapshot ${s.version} from ${s.source}: ${[...s.services.keys()].join(', ') || '(no services)'}${pending.length ? `; pending ${pending.join(', ')}` : ''}`);
};
const get = async (url: string) => {
  const res = await orders.fetch(url);
  return `${res.status} ${await res.text()}`;
};

show('start');
orders.setService('inventory', { endpoints: [inventory] });
show('inventory added');
console.log(`  GET http://inventory/items → ${await get('http://inventory/items')}`);

orders.setService('payments', { endpoints: [v1], split: [{ service: 'payments-v2', weight: 1 }, { service: 'payments', weight: 1 }] });
show('canary split set before its backend');
const waiting = get('http://payments/charge').then((r) => get('http://payments/charge').then((r2) => [r, r2]));
setTimeout(() => orders.setService('payments-v2', { endpoints: [v2], identity: 'spiffe://cluster.local/ns/default/sa/payments-v2' }), 200);
console.log(`  two charges, the first waiting for payments-v2 → ${(await waiting).join(' / ')}`);
show('payments-v2 delivered');

const before = orders.stats().outbound.services.inventory!.requests;
orders.setService('inventory', { endpoints: [inventory], retry: { maxRetries: 1 }, timeout: { request: '2s' } });
console.log(`  GET http://inventory/items → ${await get('http://inventory/items')} (same service: ${orders.stats().outbound.services.inventory!.requests - before} more request on its counters)`);
show('inventory retry settings changed');

orders.setService('reports', { endpoints: [slow] });
const inFlight = get('http://reports/monthly');
while (orders.stats().outbound.services.reports!.routed === 0) await new Promise((r) => setTimeout(r, 5)); // dispatched
orders.setService('reports', null);
show('reports removed (request in flight)');
console.log(`  the in-flight report → ${await inFlight}`);
try {
  await orders.fetch('http://reports/monthly');
} catch (e) {
  console.log(`  a new request to reports → ${((e as Error).cause as { code?: string }).code}`);
}

try {
  orders.setService('bad', { endpoints: ['nowhere'] });
} catch (e) {
  console.log(`  a bad update is refused whole → ${(e as { code: string }).code}; snapshot still ${orders.snapshot().version}`);
}

await orders.close();
for (const c of closers) c();
for (const m of meshes) await m.close();
