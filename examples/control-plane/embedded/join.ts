// What the three services share: how a workload joins the embedded control plane. CONTROL_PLANE is
// its TLS address, ROOT the root it pins (<state>/root-cert.pem), TOKEN a file holding what
// `sidecarless control-plane token` printed for this workload (re-read on every certificate request).
import { createMesh, type Mesh } from 'sidecarless';

export function join(service: string): Promise<Mesh> {
  const need = (name: string): string => {
    const value = process.env[name];
    if (value) return value;
    console.error(`${service}: set ${name} (run.sh does)`);
    process.exit(2);
  };
  return createMesh({
    service,
    labels: { app: service }, // what the policies' selectors match
    controlPlane: { address: need('CONTROL_PLANE'), root: need('ROOT'), token: { file: need('TOKEN') } },
    logger: { info() {}, warn: (m: string) => console.log(`${service}: (warning) ${m}`), error: (m: string) => console.log(`${service}: (error) ${m}`) },
  });
}

/** Listens on a free loopback port: the control plane learns it when the workload registers. */
export async function serve(mesh: Mesh, handler: Parameters<Mesh['createServer']>[0]): Promise<number> {
  const server = mesh.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stop = () => {
    setTimeout(() => process.exit(0), 2_000).unref();
    void mesh.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return (server.address() as { port: number }).port;
}
