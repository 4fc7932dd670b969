// Identity straight from a SPIRE agent's SPIFFE Workload API: no spiffe-helper, no files, no sidecar.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent-sockets/spire-agent.sock \
//   TRUST_DOMAIN=example.org npx tsx examples/control-plane/spire.ts [--watch]
//
// Two services in one process, each taking the SVID the agent gives it under its hint (SPIRE:
// `spire-server entry create -spiffeID spiffe://example.org/ns/default/sa/payments -hint payments …`,
// and the same for orders). orders calls payments over mTLS; payments sees who called. With
// --watch it keeps running and prints each rotation the agent pushes (SPIRE rotates at half-life).
import { createMesh, peerOf } from 'sidecarless';

const trustDomain = process.env.TRUST_DOMAIN ?? 'example.org';
if (!process.env.SPIFFE_ENDPOINT_SOCKET) {
  console.error('set SPIFFE_ENDPOINT_SOCKET to the SPIRE agent socket, e.g. unix:///run/spire/agent-sockets/spire-agent.sock');
  process.exit(2);
}
const quiet = { info() {}, warn: (m: string) => console.log(`  (warning) ${m}`), error: (m: string) => console.log(`  (error) ${m}`) };

// The socket comes from SPIFFE_ENDPOINT_SOCKET; `identity: { workloadApi: { socket: 'unix:///…' } }` also works.
const payments = await createMesh({ service: 'payments', trustDomain, identity: { workloadApi: { hint: 'payments' } }, logger: quiet });
const server = payments.createServer((req, res) => res.end(JSON.stringify({ caller: peerOf(req)?.spiffeId ?? null })));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

const orders = await createMesh({
  service: 'orders',
  trustDomain,
  identity: { workloadApi: { hint: 'orders' } },
  outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } },
  logger: quiet,
});

for (const [name, mesh] of [['payments', payments], ['orders', orders]] as const) {
  const s = mesh.stats().identity;
  console.log(`${name.padEnd(8)} ${s.spiffeId} from ${s.from} (hint ${s.hint}, serial ${s.serialNumber}, valid until ${s.notAfter})`);
}
const res = await orders.fetch('http://payments/charge', { method: 'POST' });
console.log(`orders → payments: ${res.status} ${await res.text()}`);

if (process.argv.includes('--watch')) {
  console.log('watching for rotations (Ctrl-C to stop)');
  for (const [name, mesh] of [['payments', payments], ['orders', orders]] as const) {
    mesh.identity.onUpdate(() => {
      const s = mesh.stats().identity;
      void orders.fetch('http://payments/charge', { method: 'POST' }).then(async (r) => {
        console.log(`${name} rotated: serial ${s.serialNumber}, valid until ${s.notAfter}; orders → payments: ${r.status} ${await r.text()}`);
      });
    });
  }
  const stop = async () => {
    server.close();
    await Promise.all([orders.close(), payments.close()]);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
} else {
  server.close();
  await Promise.all([orders.close(), payments.close()]);
}
