// A `(req, res)` HTTP function with a mesh: the shape of Google Cloud Functions / Cloud Run
// functions (the functions-framework calls `orders(req, res)` with an Express request), and of any
// node:http server. The platform terminated TLS; the mesh judges each request by its policy
// (method, path, Host) before the handler, and calls `payments` over mTLS.
//
//   SIDECARLESS_IDENTITY_DIR=./orders PAYMENTS_ENDPOINTS=127.0.0.1:8443 node --import tsx examples/serverless/http-function.ts
//
// Run directly, it serves on PORT (default 8080) with a plain node:http server that calls the
// function as the functions-framework does (`npx @google-cloud/functions-framework --target=orders`
// serves the same export).
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { withMeshHttp } from 'sidecarless/serverless';

export const orders = withMeshHttp(
  async (req, res, mesh) => {
    const r = await mesh.fetch('http://payments/whoami');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ function: mesh.spiffeId, caller: req.peer?.spiffeId ?? null, path: req.url, payments: await r.json() }));
  },
  {
    service: process.env.SIDECARLESS_SERVICE ?? 'orders',
    inbound: {
      defaultPolicy: 'all-unauthenticated', // behind the platform's HTTPS front end: no client certificate here
      policy: { rules: [{ name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } }] },
    },
    outbound: { services: { payments: { endpoints: (process.env.PAYMENTS_ENDPOINTS ?? '127.0.0.1:8443').split(',') } } },
  },
);

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // As the framework does: a handler that throws is a 500, not a crashed process.
  const server = createServer((req, res) => {
    orders(req, res).catch((e: unknown) => {
      console.error(e);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
    console.log(`http-function: listening on http://127.0.0.1:${(server.address() as { port: number }).port}`);
  });
}
