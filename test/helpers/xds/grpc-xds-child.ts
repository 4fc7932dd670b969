// Runs grpc-xds-client.mjs (@grpc/grpc-js-xds in a child process: its import costs ~1 s) against
// an xDS server's plaintext port, with a bootstrap whose node is shaped as ours (istiod's proxyless
// id and metadata) plus the locality grpc-js-xds requires (research §6.1 trap 5).
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LISTENER_NAME } from './resources.js';

const SCRIPT = fileURLToPath(new URL('./grpc-xds-client.mjs', import.meta.url));

export interface CallSet {
  readonly method: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly n: number;
  /** Another xds:/// target than the run's (one channel per target). */
  readonly target?: string;
}

export interface SetResult {
  readonly counts: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
}

/** The node id the child introduces itself with (one per run, so the server tells runs apart). */
export const childNodeId = (pod: string) => `sidecar~127.0.0.1~${pod}.default~default.svc.cluster.local`;

export function bootstrap(serverAddress: string, pod: string, certificateProviders?: object): object {
  return {
    ...(certificateProviders && { certificate_providers: certificateProviders }),
    xds_servers: [{ server_uri: serverAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    // istio-agent's template: what an XdsServer asks LDS for (`%s` = the ip:port it binds)
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
    node: {
      id: childNodeId(pod),
      cluster: 'grpc-client.default',
      locality: { region: 'us-central1', zone: 'us-central1-a' },
      metadata: {
        GENERATOR: 'grpc',
        NAMESPACE: 'default',
        SERVICE_ACCOUNT: 'grpc-client',
        INSTANCE_IPS: '127.0.0.1',
        NAME: pod,
        LABELS: { app: 'grpc-client' },
      },
    },
  };
}

/** An XdsServer the child starts before its first phase (answering `name` to each of `methods`). */
export interface XdsServe {
  readonly address: string;
  readonly name: string;
  readonly methods: readonly string[];
}

export interface GrpcXdsRun {
  readonly nodeId: string;
  /** The result line of the next phase. */
  next(): Promise<SetResult[]>;
  /** Lets the child start its next phase. */
  proceed(): void;
  /** Resolves with the exit code; closes stdin first (the child then exits). */
  stop(): Promise<number | null>;
  readonly stderr: () => string;
}

/** Starts the child; `t.after` makes sure it is gone. */
export function runGrpcXdsClient(
  t: { after(fn: () => Promise<void>): void },
  o: { server: string; pod: string; phases: readonly (readonly CallSet[])[]; deadlineMs?: number; timeoutMs?: number; target?: string; certificateProviders?: object; xdsCredentials?: boolean; serve?: XdsServe; env?: Readonly<Record<string, string>> },
): GrpcXdsRun {
  const plan = { target: o.target ?? `xds:///${LISTENER_NAME}`, deadlineMs: o.deadlineMs ?? 3_000, timeoutMs: o.timeoutMs ?? 20_000, phases: o.phases, ...(o.xdsCredentials && { xdsCredentials: true }), ...(o.serve && { serve: o.serve }) };
  const child: ChildProcess = spawn(process.execPath, [SCRIPT, JSON.stringify(plan)], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: '', GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap(o.server, o.pod, o.certificateProviders)), GRPC_VERBOSITY: 'NONE', ...o.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const readers: Array<(line: string | null) => void> = [];
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => (readers.length ? readers.shift()!(line) : lines.push(line)));
  rl.on('close', () => readers.splice(0).forEach((r) => r(null)));
  const stop = async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) await stop();
  });
  return {
    nodeId: childNodeId(o.pod),
    next: async () => {
      const line = lines.length ? lines.shift()! : await new Promise<string | null>((r) => readers.push(r));
      if (line === null) throw new Error(`grpc-xds-client ended without a result; stderr: ${stderr}`);
      return (JSON.parse(line) as { results: SetResult[] }).results;
    },
    proceed: () => child.stdin!.write('next\n'),
    stop,
    stderr: () => stderr,
  };
}
