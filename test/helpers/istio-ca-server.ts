// Drives test/helpers/py/istio_ca_server.py: a test Istio CA on the second stack (Python gRPC C-core,
// python3-cryptography). It writes its mesh root to <dir>/root-cert.pem (what a pod has mounted at
// /var/run/secrets/istio/root-cert.pem) and an unrelated root to <dir>/other-root.pem, issues the
// TOKEN's identity like istiod, and reports every call it saw.
import { type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startPython } from './py/stack.js';
import { tempDirFor } from './tmp.js';

export interface IstioCaCall {
  token: string | null;
  authorization: string | null;
  clusterid: string | null;
  validity: number;
  csrSans: string[];
  csrValid: boolean;
  issued: string | null;
  serial: string | null;
  code: string;
  /** When the server saw it (ms since epoch). */
  t: number;
}

export type IstioCaFault = null | 'bad-chain' | 'other-key' | 'short-chain' | 'empty-chain' | 'expired' | 'not-pem' | 'foreign-root' | 'long-chain';

export interface IstioCaServerOptions {
  serverNames?: string[];
  serveFrom?: 'mesh' | 'other';
  intermediate?: boolean;
  plaintext?: boolean;
  trustDomain?: string;
  tokens?: Record<string, string>;
  clusterId?: string;
  /** Listen on this port (a CA restarted at the same address); default any free one. */
  port?: number;
}

export interface IstioCaServer {
  readonly port: number;
  /** `localhost:<port>`: the serving certificate names localhost (and istiod.istio-system.svc). */
  readonly address: string;
  readonly dir: string;
  /** The mesh root (pin this). */
  readonly rootFile: string;
  /** A root that has nothing to do with this CA. */
  readonly otherRootFile: string;
  /** Calls answered (or refused), in order. */
  readonly calls: IstioCaCall[];
  /** Calls that arrived (a delayed one counts before it is answered). */
  readonly received: number;
  tokens(map: Record<string, string>): Promise<void>;
  cluster(id: string | null): Promise<void>;
  fault(fault: IstioCaFault, delayMs?: number): Promise<void>;
  /** Resolves once `n` calls have been answered in all. */
  waitForCalls(n: number, timeoutMs?: number): Promise<IstioCaCall[]>;
  /** Resolves once `n` calls have arrived in all. */
  waitForReceived(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startIstioCa(t: { after(fn: () => Promise<void>): void }, o: IstioCaServerOptions = {}): Promise<IstioCaServer> {
  const dir = tempDirFor(t, 'sidecarless-istio-ca-');
  const child = startPython('istio_ca_server.py', [JSON.stringify({ dir, ...o })]);
  const calls: IstioCaCall[] = [];
  let received = 0;
  const acks: Array<() => void> = [];
  const callWaiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { event: string; port?: number } & IstioCaCall;
      if (msg.event === 'listening') resolve(msg.port!);
      else if (msg.event === 'ok') acks.shift()?.();
      else if (msg.event === 'received') {
        received++;
        for (const w of [...callWaiters]) w();
      }
      else if (msg.event === 'call') {
        const { event: _e, ...call } = msg;
        calls.push(call as IstioCaCall);
        for (const w of [...callWaiters]) w();
      }
    });
    child.once('exit', (code) => reject(new Error(`istio_ca_server.py exited ${code}: ${stderr}`)));
    child.once('error', reject);
  });
  const waitUntil = (done: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        callWaiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        callWaiters.delete(check);
        reject(new Error(`the test Istio CA did not see ${what} in ${timeoutMs} ms: ${JSON.stringify(calls)}`));
      }, timeoutMs);
      callWaiters.add(check);
      check();
    });
  const send = (cmd: object) =>
    new Promise<void>((resolve) => {
      acks.push(resolve);
      child.stdin!.write(JSON.stringify(cmd) + '\n');
    });
  const server: IstioCaServer = {
    port,
    address: `localhost:${port}`,
    dir,
    rootFile: join(dir, 'root-cert.pem'),
    otherRootFile: join(dir, 'other-root.pem'),
    calls,
    tokens: (tokens) => send({ op: 'tokens', tokens }),
    cluster: (clusterId) => send({ op: 'cluster', clusterId }),
    fault: (fault, delayMs = 0) => send({ op: 'fault', fault, delayMs }),
    get received() {
      return received;
    },
    waitForCalls: (n, timeoutMs = 10_000) => waitUntil(() => calls.length >= n, `${n} answered call(s)`, timeoutMs).then(() => calls.slice(0, n)),
    waitForReceived: (n, timeoutMs = 10_000) => waitUntil(() => received >= n, `${n} received call(s)`, timeoutMs),
    close: () => stop(child),
  };
  t.after(server.close);
  if (o.tokens) await server.tokens(o.tokens);
  if (o.clusterId !== undefined) await server.cluster(o.clusterId);
  return server;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
