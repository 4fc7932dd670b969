// Canary release and a slow replica, with nothing in the app but mesh.fetch.
//
//   npx tsx examples/traffic/canary.ts
//
// Three payments-v1 replicas (one slowed by 150 ms) and one payments-v2 replica run in process with
// a shared dev CA. `payments` is split 90/10 across v1 and v2, then shifted live to 50/50 and to v2
// only; the slow v1 replica drains under P2C over peak-EWMA; a replica answering 503 is retried
// around within the retry budget.
import { createDevCa, createMesh, type Mesh } from 'sidecarless';

const quiet = { info() {}, warn() {}, error() {} };
const ca = await createDevCa();
const meshes: Mesh[] = [];
const closers: Array<() => void> = [];

async function replica(service: string, name: string, behaviour: { delayMs?: number; status?: number } = {}): Promise<string> {
  const mesh = await createMesh({ service, identity: { ca }, logger: quiet });
  meshes.push(mesh);
  const server = mesh.createServer((_req, res) => {
    setTimeout(() => {
      res.statusCode = behaviour.status ?? 200;
      res.end(name);
    }, behaviour.delayMs ?? 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

const v1 = [await replica('payments-v1', 'v1-a'), await replica('payments-v1', 'v1-b'), await replica('payments-v1', 'v1-slow', { delayMs: 150 })];
const v1Broken = await replica('payments-v1', 'v1-broken', { status: 503 });
const v2 = [await replica('payments-v2', 'v2-a')];

const orders = await createMesh({
  service: 'orders',
  identity: { ca },
  logger: quiet,
  outbound: {
    services: {
      'payments-v1': { endpoints: [...v1, v1Broken] },
      'payments-v2': { endpoints: v2 },
      payments: { split: [{ service: 'payments-v1', weight: 90 }, { service: 'payments-v2', weight: 10 }] },
    },
  },
});

async function burst(label: string, n = 200, concurrency = 8): Promise<void> {
  const counts = new Map<string, number>();
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const res = await orders.fetch('http://payments/charge');
        const who = await res.text();
        if (res.status !== 200) failed++;
        else counts.set(who, (counts.get(who) ?? 0) + 1);
      }
    }),
  );
  const spread = [...counts].sort().map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`${label.padEnd(22)} ${n - failed}/${n} ok — ${spread}`);
}

await burst('split 90/10');
orders.setSplit('payments', [{ service: 'payments-v1', weight: 50 }, { service: 'payments-v2', weight: 50 }]);
await burst('shifted live to 50/50');
orders.setSplit('payments', [{ service: 'payments-v2', weight: 1 }]);
await burst('all to v2');

const v1Stats = orders.stats().outbound.services['payments-v1']!;
console.log(`payments-v1: ${v1Stats.retries} retries within the budget, ${v1Stats.ejections} ejection(s) of the 503 replica`);

await orders.close();
for (const c of closers) c();
for (const m of meshes) await m.close();
