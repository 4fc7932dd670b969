/**
 * What the demo's control plane serves: the mesh file and the payments policy, written into the
 * demo's temp directory and edited live (the control plane watches both). Pure text, plus the
 * writes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const TD = 'cluster.local';
export const idOf = (sa: string) => `spiffe://${TD}/ns/default/sa/${sa}`;
export const PORT = 8443;

/** The mesh file: three services, no endpoints (workloads register themselves); `split` optional. */
export function meshFile(split?: { v1: number; v2: number }): string {
  return `trustDomain: ${TD}
services:
  - name: payments
    port: ${PORT}
${split ? `    split: [{ service: payments, weight: ${split.v1} }, { service: payments-v2, weight: ${split.v2} }]\n` : ''}  - name: payments-v2
    port: ${PORT}
  - name: orders
    port: 8080
policies:
  - file: policies/payments.yaml
`;
}

const FROZEN = `  - name: charges-frozen
    action: deny
    to: { paths: ["/charge"] }
  - name: watch-charges
    action: audit
    to: { paths: ["/charge"] }
`;

/** Native rules, as loadPolicy takes them; `frozen` adds a deny of every charge. */
export function paymentsPolicy(frozen = false): string {
  return `rules:
  - name: orders-may-charge
    action: allow
    from: { identities: ["${idOf('orders')}"] }
    to: { methods: ["POST"], paths: ["/charge"] }
  - name: nobody-reaches-admin
    action: deny
    to: { paths: ["/admin", "/admin/*"] }
  - name: watch-admin
    action: audit
    to: { paths: ["/admin", "/admin/*"] }
${frozen ? FROZEN : ''}`;
}

export interface DemoFiles {
  readonly dir: string;
  readonly mesh: string;
  readonly policy: string;
}

export async function writeMeshFiles(dir: string): Promise<DemoFiles> {
  await mkdir(join(dir, 'policies'), { recursive: true });
  const files = { dir, mesh: join(dir, 'mesh.yaml'), policy: join(dir, 'policies', 'payments.yaml') };
  await writeFile(files.policy, paymentsPolicy());
  await writeFile(files.mesh, meshFile());
  return files;
}
