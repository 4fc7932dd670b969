// A client that calls a mesh service by name with mesh.fetch: the app writes http://payments/…,
// the mesh connects with mutual TLS and requires the server to prove it is payments.
//
//   npx tsx examples/fetch-client/client.ts
//
// With SIDECARLESS_IDENTITY_DIR and PAYMENTS_ENDPOINTS (host:port,host:port) set, it calls those
// endpoints. Without them, it starts a payments server in process (same dev CA) and calls it.
import { createDevCa, createMesh, peerOf } from 'sidecarless';

const endpoints = process.env.PAYMENTS_ENDPOINTS?.split(',');
let cleanup = async () => {};

let ca;
if (!endpoints) {
  ca = await createDevCa();
  const payments = await createMesh({ service: 'payments', identity: { ca } });
  const server = payments.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ server: payments.spiffeId, caller: peerOf(req)?.spiffeId ?? null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  cleanup = async () => {
    server.close();
    await payments.close();
  };
  process.env.PAYMENTS_ENDPOINTS = `127.0.0.1:${port}`;
}

const mesh = await createMesh({
  service: process.env.SIDECARLESS_SERVICE ?? 'orders',
  ...(ca && { identity: { ca } }),
  outbound: { services: { payments: { endpoints: (endpoints ?? [process.env.PAYMENTS_ENDPOINTS!]) } } },
});

const res = await mesh.fetch('http://payments/whoami');
console.log(`orders → payments: ${res.status} ${await res.text()}`);

// The dispatcher works with undici's other APIs too.
const { request } = await import('undici');
const r2 = await request('http://payments/whoami', { dispatcher: mesh.dispatcher });
console.log(`undici.request → payments: ${r2.statusCode} ${await r2.body.text()}`);

await mesh.close();
await cleanup();
