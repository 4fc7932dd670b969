/**
 * `sidecarless control-plane --config mesh.yaml`: runs the embedded control plane until SIGINT or
 * SIGTERM (server/control-plane-server.ts). What it serves goes to stdout, one line each (the
 * root clients pin first); warnings and rejected mesh-file edits to stderr.
 */
import { type Io, defineCommand } from './args.js';
import type { Logger } from '../logger.js';
import { positiveTtl } from './ca-init.js';

export const controlPlaneCommand = defineCommand({
  name: 'control-plane',
  summary: 'run the embedded control plane: ADS + Istio-compatible CA on one TLS port, fed by a mesh file',
  description:
    'Serves xDS (ADS) and an Istio-compatible CA (IstioCertificateService) on one TLS port, from a mesh file\n' +
    'watched for edits (a bad edit is rejected whole; the last good one stays served). The CA, its root and the\n' +
    'token key live under --state (created on first start; every key 0600); clients pin <state>/root-cert.pem.\n' +
    'Workloads that connect with a token ("sidecarless control-plane token") get SVIDs and register themselves\n' +
    'as endpoints of their service. Stop it with Ctrl-C (SIGINT) or SIGTERM.',
  options: {
    config: { type: 'string', required: true, value: 'FILE', help: 'the mesh file (YAML): services, traffic, policies' },
    listen: { type: 'string', value: '127.0.0.1:15012', help: 'TLS address for ADS + CA (a bare port means loopback; 0 picks a free port)' },
    state: { type: 'string', value: 'DIR', help: 'where the CA, root-cert.pem, token key and registrations live (default ./sidecarless-state)' },
    'plaintext-listen': { type: 'string', value: '127.0.0.1:15010', help: 'also serve ADS only (never the CA) without TLS, for xDS clients that cannot do TLS; a bare port means loopback' },
    'admin-listen': { type: 'string', value: '127.0.0.1:15014', help: 'status endpoint (unauthenticated: keep it on loopback)' },
    grace: { type: 'string', value: '10s', help: 'how long a disconnected workload stays an endpoint (default 10s)' },
  },
  examples: [
    'sidecarless control-plane --config mesh.yaml --state ./state',
    'sidecarless control-plane --config mesh.yaml --listen 0.0.0.0:15012 --plaintext-listen 15010',
  ],
  async run(v, io) {
    const { startControlPlane } = await import('../server/control-plane-server.js');
    const graceMs = v.grace === undefined ? undefined : positiveTtl(v.grace, 3_600_000, '1h');
    const cp = await startControlPlane({
      meshFile: v.config!,
      state: v.state ?? 'sidecarless-state',
      ...(v.listen !== undefined && { listen: v.listen }),
      ...(v['plaintext-listen'] !== undefined && { plaintextListen: v['plaintext-listen'] }),
      ...(v['admin-listen'] !== undefined && { adminListen: v['admin-listen'] }),
      ...(graceMs !== undefined && { graceMs }),
      logger: ioLogger(io),
    });
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    io.stdout('control plane stopping');
    await cp.close();
    return 0;
  },
});

function ioLogger(io: Io): Logger {
  const f = (fields?: Record<string, unknown>) => (fields ? ' ' + JSON.stringify(fields) : '');
  return {
    info: (m, fields) => io.stdout(`${m}${f(fields)}`),
    warn: (m, fields) => io.stderr(`warning: ${m}${f(fields)}`),
    error: (m, fields) => io.stderr(`error: ${m}${f(fields)}`),
  };
}
