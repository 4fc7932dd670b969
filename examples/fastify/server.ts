// Fastify behind sidecarless: mutual TLS with SPIFFE identities, `request.peer` on every request.
//
//   npx tsx examples/fastify/server.ts
//
// With SIDECARLESS_IDENTITY_DIR set it serves on PORT (default 8443) until stopped. Without it, it
// uses an in-process dev CA, calls itself once through the mesh, and exits.
import Fastify from 'fastify';
import { createDevCa, createMesh } from 'sidecarless';

const standalone = !process.env.SIDECARLESS_IDENTITY_DIR;
const ca = standalone ? await createDevCa() : undefined;

const mesh = await createMesh({
  service: process.env.SIDECARLESS_SERVICE ?? 'payments',
  ...(ca && { identity: { ca } }),
});

const app = Fastify({ https: mesh.serverTlsOptions() });
await app.register(mesh.fastify);
app.get('/whoami', async (request) => ({ server: mesh.spiffeId, caller: request.peer?.spiffeId ?? null }));

const address = await app.listen({ port: Number(process.env.PORT ?? (standalone ? 0 : 8443)), host: '127.0.0.1' });
console.log(`fastify: listening on ${address} as ${mesh.spiffeId}`);

if (standalone) {
  const client = await createMesh({
    service: 'orders',
    identity: { ca: ca! },
    outbound: { services: { payments: { endpoints: [address.replace('https://', '')] } } },
  });
  const res = await client.fetch('http://payments/whoami');
  console.log(`orders → payments: ${res.status} ${await res.text()}`);
  await client.close();
  await app.close();
  await mesh.close();
}
