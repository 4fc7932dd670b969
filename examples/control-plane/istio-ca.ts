// Identity straight from istiod's CA, as istio-agent would get it: no sidecar, no istio-agent.
//
//   npx tsx examples/control-plane/istio-ca.ts
//
// Run it in a pod of an Istio mesh whose spec mounts what an injected pod has (docs/identity.md,
// "Istio CA (istiod)"): the projected service-account token with audience istio-ca at
// /var/run/secrets/tokens/istio-token and the istio-ca-root-cert ConfigMap at
// /var/run/secrets/istio/root-cert.pem. ISTIOD, ISTIO_ROOT, ISTIO_TOKEN and ISTIO_CLUSTER_ID
// override the defaults below. (SIDECARLESS_CONTROL_PLANE, _ROOT and _TOKEN_FILE do the same
// with no code at all.) The service serves over mTLS with the SVID istiod issued for its service
// account, calls itself through the mesh, and shows when it will renew (at half-life, ± 10 %).
import { createMesh, peerOf } from 'sidecarless';

const service = process.env.SERVICE ?? 'orders';
const controlPlane = {
  address: process.env.ISTIOD ?? 'istiod.istio-system.svc:15012',
  root: process.env.ISTIO_ROOT ?? '/var/run/secrets/istio/root-cert.pem', // pinned: the only root istiod's TLS may chain to
  token: { file: process.env.ISTIO_TOKEN ?? '/var/run/secrets/tokens/istio-token' }, // re-read for every request
  clusterId: process.env.ISTIO_CLUSTER_ID ?? 'Kubernetes',
};
const logger = { info() {}, warn: (m: string) => console.log(`  (warning) ${m}`), error: (m: string) => console.log(`  (error) ${m}`) };

let mesh;
try {
  mesh = await createMesh({ service, namespace: process.env.NAMESPACE ?? 'default', controlPlane, logger });
} catch (e) {
  console.error(`no identity from ${controlPlane.address}: ${(e as Error).message}`);
  process.exit(1);
}
const server = mesh.createServer((req, res) => res.end(JSON.stringify({ caller: peerOf(req)?.spiffeId ?? null })));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;
mesh.setService(service, { endpoints: [`127.0.0.1:${port}`] });
// The port's inbound policy comes from the control plane: until its inbound Listener is decided
// (delivered, or the control plane says it serves no xDS) the port denies every request — fail
// closed, as Envoy and gRFC A36 servers do. A self-call right after listen() waits for that.
const pending = `xds-inbound-pending:${port}`;
for (let i = 0; i < 500 && mesh.snapshot().inbound.meshPolicy?.servers.some((s) => s.name === pending); i++) await new Promise((r) => setTimeout(r, 10));

const s = mesh.stats().identity;
console.log(`${service} ${s.spiffeId} from ${s.from} (serial ${s.serialNumber}, valid until ${s.notAfter}, next renewal ${s.nextRefresh})`);
const res = await mesh.fetch(`http://${service}/whoami`);
console.log(`${service} → ${service}: ${res.status} ${await res.text()}`);
server.close();
await mesh.close();
