// WebSockets behind sidecarless: the `ws` package on a mesh server. Every upgrade passes the same
// gate as a request — mutual TLS, the caller's SPIFFE ID, the policy — before ws sees it; a denied
// upgrade gets 403 and the socket is closed.
//
//   npx tsx examples/websocket/server.ts
//
// With SIDECARLESS_IDENTITY_DIR set it serves on PORT (default 8443) until stopped. Without it, it
// uses an in-process dev CA, connects to itself as `orders` (allowed on /chat, denied on /admin)
// and exits.
import WebSocket, { WebSocketServer } from 'ws';
import { createDevCa, createMesh, peerOf } from 'sidecarless';

const standalone = !process.env.SIDECARLESS_IDENTITY_DIR;
const ca = standalone ? await createDevCa() : undefined;

const mesh = await createMesh({
  service: process.env.SIDECARLESS_SERVICE ?? 'payments',
  ...(ca && { identity: { ca } }),
  inbound: {
    policy: {
      rules: [
        { name: 'chat', action: 'allow', from: { identities: ['spiffe://cluster.local/ns/default/sa/*'] }, to: { paths: ['/chat'] } },
        { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
      ],
    },
  },
});

// Plain HTTP requests get a hint; upgrades go to ws.
const server = mesh.createServer((_req, res) => res.end('connect with a WebSocket client to /chat\n'));
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  ws.send(`hello ${peerOf(req)?.spiffeId}`);
  ws.on('message', (m) => ws.send(`echo ${m}`));
});

server.listen(Number(process.env.PORT ?? (standalone ? 0 : 8443)), '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  console.log(`websocket: listening on wss://127.0.0.1:${port} as ${mesh.spiffeId}`);
  if (!standalone) return;
  const orders = await ca!.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/orders' });
  // The mesh's own clients check the server's SPIFFE ID; this plain ws client trusts the bundle and
  // skips the host-name check (the certificate names a SPIFFE ID, not 127.0.0.1).
  const tls = { cert: orders.certChainPem, key: orders.keyPem, ca: orders.bundlePem, checkServerIdentity: () => undefined } as unknown as WebSocket.ClientOptions;
  for (const path of ['/chat', '/admin']) {
    await new Promise<void>((done) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, tls);
      ws.on('message', (m) => {
        console.log(`orders → ${path}: ${m}`);
        ws.close();
        done();
      });
      ws.on('unexpected-response', (_req, res) => {
        console.log(`orders → ${path}: refused with ${res.statusCode} before ws saw it`);
        done();
      });
      ws.on('error', () => {});
    });
  }
  wss.close();
  server.close();
  await mesh.close();
});
