// An Istio AuthorizationPolicy, loaded as it is, enforced before the app.
//
//   npx tsx examples/policy/istio.ts
//
// payments admits orders for POST /charge and nobody for /admin; web is refused. The same YAML
// would go to `inbound.policy` as a file path (watched) in production.
import { createDevCa, createMesh, loadPolicy } from 'sidecarless';

const ISTIO = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: payments, namespace: default }
spec:
  selector: { matchLabels: { app: payments } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/default/sa/orders"] } }]
      to: [{ operation: { methods: ["POST"], paths: ["/charge"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: istio-system }
spec:
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/admin", "/admin/*"] } }]
`;

const quiet = { info() {}, warn() {}, error() {} };
const ca = await createDevCa();
const payments = await createMesh({
  service: 'payments',
  labels: { app: 'payments' },
  identity: { ca },
  logger: quiet,
  inbound: { policy: loadPolicy(ISTIO) },
});
const server = payments.createServer((req, res) => res.end(`charged by ${req.method} ${req.url}\n`));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const endpoint = `127.0.0.1:${(server.address() as { port: number }).port}`;

for (const [service, method, path] of [
  ['orders', 'POST', '/charge'],
  ['orders', 'POST', '/admin/refund'],
  ['orders', 'POST', '/public/../admin'],
  ['web', 'POST', '/charge'],
] as const) {
  const client = await createMesh({ service, identity: { ca }, logger: quiet, outbound: { services: { payments: { endpoints: [endpoint] } } } });
  const res = await client.fetch(`http://payments${path}`, { method, body: '{}' });
  console.log(`${service.padEnd(6)} ${method} ${path.padEnd(18)} → ${res.status} ${(await res.text()).trim()}`);
  await client.close();
}
console.log('decisions by rule:', JSON.stringify(payments.stats().inbound.authz.byRule));
server.close();
await payments.close();
