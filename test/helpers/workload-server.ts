// The TS side of test/helpers/py/workload_server.py: a SPIFFE Workload API server on the second
// gRPC stack (C-core), started per test and scripted over its stdin. SVIDs are made here with a dev
// CA and handed over as DER (base64), as a SPIRE agent puts them on the wire.
import { type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type DevCa, type IssuedSvid } from '../../src/identity/dev-ca.js';
import { decodePem, pemToCertDers } from '../../src/identity/pem.js';
import { startPython } from './py/stack.js';
import { makeTempDir } from './tmp.js';

/** One SVID of a message, as the test states it. */
export interface WireSvid {
  readonly spiffeId?: string;
  /** DER certificates, leaf first (concatenated). */
  readonly x509Svid: Buffer;
  /** PKCS#8 DER. */
  readonly x509SvidKey: Buffer;
  /** Concatenated DER roots of the SVID's trust domain. */
  readonly bundle: Buffer;
  readonly hint?: string;
}

export interface ServerCall {
  readonly n: number;
  readonly metadata: ReadonlyArray<readonly [string, string]>;
  /** 'stream' (served), 'INVALID_ARGUMENT' (no header), or the code a `fail` command set. */
  readonly outcome: string;
}

/** The concatenated DER of every certificate in a PEM text. */
export function derOf(pem: string): Buffer {
  return Buffer.concat(pemToCertDers(pem));
}

/** An issued SVID as the Workload API sends it (bundle: its CA's roots, or `bundlePem`). */
export function wireSvid(svid: Pick<IssuedSvid, 'spiffeId' | 'certChainPem' | 'keyPem' | 'bundlePem'>, o: { hint?: string; bundlePem?: string; keyPem?: string } = {}): WireSvid {
  const key = decodePem(o.keyPem ?? svid.keyPem).find((b) => b.label === 'PRIVATE KEY');
  if (!key) throw new Error('the key PEM holds no PKCS#8 PRIVATE KEY block');
  return {
    spiffeId: svid.spiffeId,
    x509Svid: derOf(svid.certChainPem),
    x509SvidKey: key.der,
    bundle: derOf(o.bundlePem ?? svid.bundlePem),
    ...(o.hint !== undefined && { hint: o.hint }),
  };
}

/** A federated bundle entry: `spiffe://<td>` → the CA's roots. */
export function federated(...cas: DevCa[]): Record<string, Buffer> {
  return Object.fromEntries(cas.map((c) => [`spiffe://${c.trustDomain}`, derOf(c.bundlePem)]));
}

const b64 = (b: Buffer) => b.toString('base64');

export class WorkloadServer {
  readonly calls: ServerCall[] = [];
  readonly cancelled: number[] = [];
  #child: ChildProcess;
  #seq = 0;
  #acks = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #watchers = new Set<() => void>();
  #stderr = '';
  #exited = false;

  private constructor(child: ChildProcess, readonly address: string) {
    this.#child = child;
  }

  /** Starts a server on a Unix socket in a temp dir (default) or on 127.0.0.1 (`tcp: true`). */
  static async start(o: { tcp?: boolean } = {}): Promise<WorkloadServer> {
    const tmp = o.tcp ? undefined : makeTempDir('sidecarless-wl-');
    const sock = tmp && join(tmp.dir, 'agent.sock');
    const child = startPython('workload_server.py', [sock ? `unix:${sock}` : '127.0.0.1:0']);
    const server = new WorkloadServer(child, '');
    const port = await server.#listen(child);
    (server as { address: string }).address = sock ? `unix://${sock}` : `tcp://127.0.0.1:${port}`;
    if (tmp) child.once('exit', () => void tmp.remove());
    return server;
  }

  #listen(child: ChildProcess): Promise<number> {
    child.stderr!.on('data', (d) => (this.#stderr += d));
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => {
        this.#exited = true;
        const err = new Error(`workload_server.py exited ${code}: ${this.#stderr}`);
        reject(err);
        for (const a of this.#acks.values()) a.reject(err);
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const e = JSON.parse(line) as { event: string; port?: number; id?: number; error?: string; n?: number } & ServerCall;
        if (e.event === 'listening') resolve(e.port!);
        else if (e.event === 'call') this.calls.push({ n: e.n, metadata: e.metadata, outcome: e.outcome });
        else if (e.event === 'cancelled') this.cancelled.push(e.n!);
        else if (e.event === 'ack') {
          const a = this.#acks.get(e.id!);
          this.#acks.delete(e.id!);
          if (e.error) a?.reject(new Error(`workload_server.py: ${e.error}`));
          else a?.resolve();
        }
        for (const w of this.#watchers) w();
      });
    });
  }

  #command(cmd: Record<string, unknown>): Promise<void> {
    if (this.#exited) return Promise.reject(new Error(`workload_server.py has exited: ${this.#stderr}`));
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#acks.set(id, { resolve, reject });
      this.#child.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /** The new state: sent to every open stream, and to each new one. */
  state(svids: WireSvid[], federatedBundles: Record<string, Buffer> = {}): Promise<void> {
    return this.#command({
      op: 'state',
      svids: svids.map((s) => ({ spiffeId: s.spiffeId ?? '', x509Svid: b64(s.x509Svid), x509SvidKey: b64(s.x509SvidKey), bundle: b64(s.bundle), hint: s.hint ?? '' })),
      federated: Object.fromEntries(Object.entries(federatedBundles).map(([k, v]) => [k, b64(v)])),
    });
  }
  raw(bytes: Buffer): Promise<void> {
    return this.#command({ op: 'raw', b64: b64(bytes) });
  }
  clear(): Promise<void> {
    return this.#command({ op: 'clear' });
  }
  /** The next `calls` calls (-1: all until heal()) end at once with `code`. */
  fail(code: string, details: string, calls = 1): Promise<void> {
    return this.#command({ op: 'fail', code, details, calls });
  }
  heal(): Promise<void> {
    return this.#command({ op: 'heal' });
  }
  abort(code: string, details: string): Promise<void> {
    return this.#command({ op: 'abort', code, details });
  }
  end(): Promise<void> {
    return this.#command({ op: 'end' });
  }

  /** Resolves when `pred` holds (checked after every event), or rejects after `ms`. */
  waitFor(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        this.#watchers.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#watchers.delete(check);
        reject(new Error(`timed out waiting for ${what}; calls: ${JSON.stringify(this.calls)}`));
      }, ms);
      this.#watchers.add(check);
    });
  }

  /** Waits until the server has seen `n` calls. */
  waitForCalls(n: number, ms?: number): Promise<void> {
    return this.waitFor(() => this.calls.length >= n, `${n} calls`, ms);
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGKILL');
    await exited;
  }
}
