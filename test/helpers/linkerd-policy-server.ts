// Launches test/helpers/py/linkerd_policy.py (a scripted Linkerd destination + policy controller
// on Debian's grpcio, over mutual TLS) and drives it: commands on its stdin, acknowledged; its
// events (requests with their fields, ended streams) collected for assertions.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startPython } from './py/stack.js';
import { makeTempDir } from './tmp.js';

export const DESTINATION_NAME = 'linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local';
export const CLIENT_NAME = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';

export type Rpc = 'Get' | 'Watch' | 'WatchPort';

export interface ServerEvent {
  event: 'listening' | 'request' | 'ended' | 'ack';
  rpc?: Rpc;
  key?: string;
  fields?: Record<string, unknown>;
  peer?: string[];
  /** A hash of the client's certificate. */
  cert?: string;
  id?: number;
  error?: string;
  port?: number;
}

export interface Pki {
  anchorsPem: string;
  client(name: 'client-a' | 'client-b' | 'client-foreign'): { keyPem: string; certChainPem: string };
}

export interface LinkerdPolicyServer {
  readonly address: string;
  readonly pki: Pki;
  readonly events: ServerEvent[];
  /** Sends a command; resolves once the server applied it. */
  send(cmd: { cmd: 'set' | 'push' | 'raw' | 'remove' | 'close'; rpc: Rpc; key: string; json?: object; b64?: string; code?: string; details?: string }): Promise<void>;
  /** Resolves with the first event (past or future) that matches, rejects after `ms`. */
  waitFor(match: (e: ServerEvent) => boolean, ms?: number): Promise<ServerEvent>;
  requests(rpc?: Rpc): ServerEvent[];
  close(): Promise<void>;
}

/**
 * Starts the server, its certificate for `serverName` (default the destination controller's identity), on `port` (default any free one);
 * `pkiDir`: a scripted identity service's directory (linkerd-identity-server.ts): the same anchor and issuer.
 */
export async function startLinkerdPolicyServer(serverName = DESTINATION_NAME, port?: number, pkiDir?: string): Promise<LinkerdPolicyServer> {
  const tmp = makeTempDir('sidecarless-linkerd-pki-');
  const child = startPython('linkerd_policy.py', [tmp.dir, serverName, String(port ?? 0), ...(pkiDir === undefined ? [] : [pkiDir])]);
  const events: ServerEvent[] = [];
  const waiters = new Set<(e: ServerEvent) => void>();
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as ServerEvent;
    events.push(e);
    for (const w of [...waiters]) w(e);
  });
  const waitFor = (match: (e: ServerEvent) => boolean, ms = 5000): Promise<ServerEvent> =>
    new Promise((resolve, reject) => {
      const past = events.find(match);
      if (past) return resolve(past);
      const timer = setTimeout(() => (waiters.delete(w), reject(new Error(`no matching event in ${ms} ms; events: ${JSON.stringify(events)}; stderr: ${stderr}`))), ms);
      const w = (e: ServerEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        waiters.delete(w);
        resolve(e);
      };
      waiters.add(w);
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listening = await Promise.race([waitFor((e) => e.event === 'listening', 15000), exited.then(() => Promise.reject(new Error(`linkerd_policy.py exited: ${stderr}`)))]);
  const read = (f: string) => readFileSync(join(tmp.dir, f), 'utf8');
  const pki: Pki = { anchorsPem: read('anchors.pem'), client: (n) => ({ keyPem: read(`${n}.key`), certChainPem: read(`${n}.pem`) }) };
  let id = 0;
  return {
    address: `127.0.0.1:${listening.port}`,
    pki,
    events,
    waitFor,
    requests: (rpc) => events.filter((e) => e.event === 'request' && (rpc === undefined || e.rpc === rpc)),
    async send(cmd) {
      const n = ++id;
      const ack = waitFor((e) => e.event === 'ack' && e.id === n);
      child.stdin!.write(JSON.stringify({ ...cmd, id: n }) + '\n');
      const a = await ack;
      if (a.error) throw new Error(`linkerd_policy.py refused ${JSON.stringify(cmd)}: ${a.error}`);
    },
    async close() {
      child.stdin!.end();
      child.kill();
      await exited;
      await tmp.remove();
    },
  };
}
