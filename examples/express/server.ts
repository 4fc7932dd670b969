// Express behind sidecarless: mutual TLS with SPIFFE identities, identity on every request.
//
//   npx tsx examples/express/server.ts
//
// With SIDECARLESS_IDENTITY_DIR set (svid.pem, svid_key.pem, svid_bundle.pem, e.g. from
// `sidecarless svid issue`) it serves on PORT (default 8443) until stopped. Without it, it uses an
// in-process dev CA, calls itself once through the mesh to show the round trip, and exits.
import { createServer } from 'node:https';
import express from 'express';
import { createDevCa, createMesh, peerOf } from 'sidecarless';

const standalone = !process.env.SIDECARLESS_IDENTITY_DIR;
const ca = standalone ? await createDevCa() : undefined;

const mesh = await createMesh({
  service: process.env.SIDECARLESS_SERVICE ?? 'payments',
  ...(ca && { identity: { ca } }),
});

const app = express();
app.use(mesh.express()); // first: authenticate (and, with a policy, authorize) before any route
app.get('/whoami', (req, res) => {
  res.json({ server: mesh.spiffeId, caller: peerOf(req)?.spiffeId ?? null });
});
app.post('/charge', express.json(), (req, res) => {
  res.json({ charged: req.body?.amount ?? 0, by: peerOf(req)?.spiffeId });
});

const server = createServer(mesh.serverTlsOptions(), app);
server.listen(Number(process.env.PORT ?? (standalone ? 0 : 8443)), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`express: listening on https://127.0.0.1:${port} as ${mesh.spiffeId}`);
  if (!standalone) return;
  const client = await createMesh({
    service: 'orders',
    identity: { ca: ca! },
    outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } },
  });
  const res = await client.fetch('http://payments/whoami');
  console.log(`orders → payments: ${res.status} ${await res.text()}`);
  await client.close();
  server.close();
  await mesh.close();
});
