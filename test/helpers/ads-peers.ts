// What the control plane's real-peer test needs besides the server: grpc-js backends that answer
// their name (plaintext, or mTLS with a certificate the caller gives, client certificates required), and gRPC C-core (Debian /usr/bin/python3 with grpcio, py/xds_client.py) as an
// xDS client driven phase by phase like grpc-xds-child.ts drives grpc-js-xds.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { PY_DIR, PYTHON } from './py/stack.js';
import type { SetResult } from './xds/grpc-xds-child.js';
import { tempDirFor } from './tmp.js';

export interface GrpcBackend {
  readonly name: string;
  /** `127.0.0.1:<port>`, as EDS carries it. */
  readonly address: string;
  readonly hits: () => number;
}

const raw = (b: Buffer) => b;

/** A backend's mTLS: its certificate chain and key, and the root its callers' certificates must chain to. */
export interface BackendTls {
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly rootPem: string;
}

/** grpc-js servers, each answering its name to unary calls of `method` (mTLS when `tls` gives it a certificate); closed by `t.after`. */
export async function grpcBackends(t: { after(fn: () => Promise<void> | void): void }, names: readonly string[], method: string, tls?: (name: string) => Promise<BackendTls>): Promise<GrpcBackend[]> {
  return Promise.all(
    names.map(async (name) => {
      const creds = tls
        ? await tls(name).then((c) => grpc.ServerCredentials.createSsl(Buffer.from(c.rootPem), [{ cert_chain: Buffer.from(c.certChainPem), private_key: Buffer.from(c.keyPem) }], true))
        : grpc.ServerCredentials.createInsecure();
      const server = new grpc.Server();
      let hits = 0;
      server.register(method, (_c: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        hits++;
        done(null, Buffer.from(name));
      }, raw, raw, 'unary');
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
      t.after(() => server.forceShutdown());
      return { name, address: `127.0.0.1:${port}`, hits: () => hits };
    }),
  );
}

export interface PyCallSet {
  readonly target: string;
  readonly method: string;
  readonly n: number;
  /** This set's deadline per call (default 3 s); the first call waits for ready that long. */
  readonly deadlineS?: number;
}

export interface PeerRun {
  readonly nodeId: string;
  next(): Promise<SetResult[]>;
  proceed(): void;
  stop(): Promise<void>;
  readonly stderr: () => string;
}

/**
 * Starts py/xds_client.py with a bootstrap (insecure channel creds to `server`, istiod's proxyless
 * node shape, `certificateProviders` when given); `xdsCredentials`: its channels take the Clusters'
 * TLS contexts (grpc.xds_channel_credentials).
 */
export function runCoreXdsClient(t: { after(fn: () => Promise<void> | void): void }, o: { server: string; pod: string; phases: readonly (readonly PyCallSet[])[]; certificateProviders?: object; xdsCredentials?: boolean }): PeerRun {
  const nodeId = `sidecar~127.0.0.1~${o.pod}.default~default.svc.cluster.local`;
  const file = join(tempDirFor(t, 'sidecarless-cxds-'), 'bootstrap.json');
  writeFileSync(file, JSON.stringify({
    ...(o.certificateProviders && { certificate_providers: o.certificateProviders }),
    xds_servers: [{ server_uri: o.server, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'core-client.default', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', SERVICE_ACCOUNT: 'core-client', INSTANCE_IPS: '127.0.0.1', NAME: o.pod } },
  }));
  const child = spawn(PYTHON, [join(PY_DIR, 'xds_client.py'), JSON.stringify({ deadlineS: 3, phases: o.phases, xdsCredentials: o.xdsCredentials === true })], {
    // With no RPC in flight (between phases) nothing in the Python process polls C-core's sockets but
    // its backup poller, every 5 s by default: an xDS push would wait that long to be read.
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: file, GRPC_VERBOSITY: 'ERROR', PYTHONUNBUFFERED: '1', GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS: '20' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines: string[] = [];
  const readers: Array<(line: string | null) => void> = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => (readers.length ? readers.shift()!(line) : lines.push(line)));
  rl.on('close', () => readers.splice(0).forEach((r) => r(null)));
  const stop = async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) await stop();
  });
  return {
    nodeId,
    next: async () => {
      const line = lines.length ? lines.shift()! : await new Promise<string | null>((r) => readers.push(r));
      if (line === null) throw new Error(`xds_client.py ended without a result; stderr: ${stderr}`);
      return (JSON.parse(line) as { results: SetResult[] }).results;
    },
    proceed: () => child.stdin!.write('next\n'),
    stop,
    stderr: () => stderr,
  };
}
