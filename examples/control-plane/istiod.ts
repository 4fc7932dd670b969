// Join an Istio mesh with no sidecar and no istio-agent: identity from istiod's CA, and the services,
// routes, splits and endpoints of the hosts this process calls from istiod's xDS (its proxyless,
// GENERATOR=grpc flavour), over one TLS connection pinned to the mesh's root.
//
//   npx tsx examples/control-plane/istiod.ts [http://payments.default.svc.cluster.local:8080/]
//
// Run it in a pod of an Istio mesh whose spec mounts what an injected pod has (docs/control-planes.md,
// "Joining istiod"): the projected token (audience istio-ca) at /var/run/secrets/tokens/istio-token
// and the istio-ca-root-cert ConfigMap at /var/run/secrets/istio/root-cert.pem, with INSTANCE_IP and
// POD_NAME from the downward API. ISTIOD, ISTIO_ROOT, ISTIO_TOKEN, ISTIO_CLUSTER_ID, SERVICE and
// NAMESPACE override the defaults below. The first request to the target subscribes to its Listener
// and waits for the whole tree (Listener → routes → clusters → endpoints); the rest reuse it. Each
// answer is printed with the backend that gave it, then what xDS delivered.
import { createMesh } from 'sidecarless';

const service = process.env.SERVICE ?? 'orders';
const target = process.argv[2] ?? process.env.TARGET ?? 'http://payments.default.svc.cluster.local:8080/';
const controlPlane = {
  address: process.env.ISTIOD ?? 'istiod.istio-system.svc:15012',
  root: process.env.ISTIO_ROOT ?? '/var/run/secrets/istio/root-cert.pem', // pinned: the only root istiod's TLS may chain to
  token: { file: process.env.ISTIO_TOKEN ?? '/var/run/secrets/tokens/istio-token' }, // re-read for every stream and CSR
  clusterId: process.env.ISTIO_CLUSTER_ID ?? 'Kubernetes',
};
const logger = { info() {}, warn: (m: string) => console.log(`  (warning) ${m}`), error: (m: string) => console.log(`  (error) ${m}`) };

const mesh = await createMesh({ service, namespace: process.env.NAMESPACE ?? 'default', controlPlane, outbound: { egress: 'deny' }, logger });
let failed = 0;
for (let i = 0; i < Number(process.env.REQUESTS ?? 5); i++) {
  try {
    const res = await mesh.fetch(target);
    console.log(`${service} → ${target}: ${res.status} ${(await res.text()).slice(0, 80)}`);
  } catch (e) {
    failed++;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    console.log(`${service} → ${target}: failed: ${cause?.message ?? (e as Error).message} [${cause?.code ?? 'no code'}]`);
  }
}
const s = mesh.snapshot();
console.log(`snapshot ${s.version} from ${s.source}: ${[...s.services.keys()].join(', ')}`);
await mesh.close();
process.exit(failed > 0 ? 1 : 0);
