// Drives test/helpers/py/linkerd_identity.py: a scripted Linkerd identity service on the second stack
// (Python gRPC C-core, python3-cryptography). It writes its trust anchor to <dir>/trust-anchors.pem
// (what a pod has in LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS) and an unrelated root to
// <dir>/other-anchors.pem, checks Certify requests as Linkerd's identity service does, and reports
// every call it saw.
import { type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startPython } from './py/stack.js';
import { tempDirFor } from './tmp.js';

export interface LinkerdCsrSeen {
  dns: string[];
  uri: string[];
  ip: string[];
  email: string[];
  cn: string[];
  subjectEmpty: boolean;
  key: 'ec' | 'rsa' | 'other';
  curve: string | null;
  signatureValid: boolean;
}

export interface LinkerdCertifyCall {
  identity: string;
  token: string;
  /** What the CSR held; null when it was not a DER PKCS#10 request. */
  csr: LinkerdCsrSeen | null;
  code: string;
  issued: string | null;
  notAfter: number | null;
  fault: string | null;
  t: number;
}

export type LinkerdIdentityFault =
  | null
  | 'other-identity'
  | 'rsa-leaf'
  | 'wrong-key'
  | 'foreign-chain'
  | 'expired'
  | 'garbage'
  | 'unavailable'
  | 'bad-valid-until'
  | 'nosign-intermediate'
  | 'signing-leaf';

export interface LinkerdIdentityServerOptions {
  namespace?: string;
  trustDomain?: string;
  /** DNS SANs of the serving certificate; default the identity service's own identity only. */
  serverNames?: string[];
  serveFrom?: 'mesh' | 'other';
  /** Lifetime of issued leaves (s); default 86400. */
  lifetimeS?: number;
  /** token → who it belongs to. */
  tokens?: Record<string, { ns: string; sa: string }>;
}

export interface LinkerdIdentityServer {
  readonly port: number;
  /** `localhost:<port>`: connect with serverName = `serverName` below. */
  readonly address: string;
  /** The identity service's identity: linkerd-identity.<ns>.serviceaccount.identity.<ns>.<td>. */
  readonly serverName: string;
  readonly dir: string;
  readonly anchorsFile: string;
  readonly otherAnchorsFile: string;
  readonly calls: LinkerdCertifyCall[];
  readonly received: number;
  tokens(map: Record<string, { ns: string; sa: string }>): Promise<void>;
  /** A misbehaviour, for `count` calls (default until changed), each after `delayMs`. */
  fault(fault: LinkerdIdentityFault, o?: { count?: number; delayMs?: number }): Promise<void>;
  lifetime(seconds: number): Promise<void>;
  waitForCalls(n: number, timeoutMs?: number): Promise<LinkerdCertifyCall[]>;
  close(): Promise<void>;
}

export async function startLinkerdIdentity(t: { after(fn: () => Promise<void>): void }, o: LinkerdIdentityServerOptions = {}): Promise<LinkerdIdentityServer> {
  const dir = tempDirFor(t, 'sidecarless-linkerd-identity-');
  const { tokens, ...cfg } = o;
  const child = startPython('linkerd_identity.py', [JSON.stringify({ dir, ...cfg })]);
  const calls: LinkerdCertifyCall[] = [];
  let received = 0;
  const acks: Array<() => void> = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { event: string; port?: number } & LinkerdCertifyCall;
      if (msg.event === 'listening') resolve(msg.port!);
      else if (msg.event === 'ok') acks.shift()?.();
      else if (msg.event === 'received') received++;
      else if (msg.event === 'call') {
        const { event: _e, ...call } = msg;
        calls.push(call as LinkerdCertifyCall);
      }
      for (const w of [...waiters]) w();
    });
    child.once('exit', (code) => reject(new Error(`linkerd_identity.py exited ${code}: ${stderr}`)));
    child.once('error', reject);
  });
  const send = (cmd: object) =>
    new Promise<void>((resolve) => {
      acks.push(resolve);
      child.stdin!.write(JSON.stringify(cmd) + '\n');
    });
  const ns = o.namespace ?? 'linkerd';
  const server: LinkerdIdentityServer = {
    port,
    address: `localhost:${port}`,
    serverName: `linkerd-identity.${ns}.serviceaccount.identity.${ns}.${o.trustDomain ?? 'cluster.local'}`,
    dir,
    anchorsFile: join(dir, 'trust-anchors.pem'),
    otherAnchorsFile: join(dir, 'other-anchors.pem'),
    calls,
    get received() {
      return received;
    },
    tokens: (map) => send({ op: 'tokens', tokens: map }),
    fault: (fault, f = {}) => send({ op: 'fault', fault, ...f }),
    lifetime: (seconds) => send({ op: 'lifetime', seconds }),
    waitForCalls: (n, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (calls.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(calls.slice(0, n));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`the test Linkerd identity service did not answer ${n} call(s) in ${timeoutMs} ms: ${JSON.stringify(calls)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => stop(child),
  };
  t.after(server.close);
  if (tokens) await server.tokens(tokens);
  return server;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
