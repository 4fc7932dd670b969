// Real mesh servers for the traffic e2e tests: replicas of a service on loopback, each a
// createMesh server with an SVID from a shared dev CA, and a client mesh that calls them.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createMesh, type Mesh } from '../../../src/mesh.js';
import { createDevCa, type DevCa } from '../../../src/identity/dev-ca.js';
import type { MeshOptionsInput } from '../../../src/config.js';

export const quiet = { info() {}, warn() {}, error() {} };

export interface Replica {
  readonly name: string;
  readonly address: string;
  /** Requests that reached the app, by method. */
  hits: number;
  methods: string[];
  bodySizes: number[];
  /** Replace the behaviour at run time. */
  behave: Behaviour;
  close(): Promise<void>;
  mesh: Mesh;
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, replica: Replica) => void | Promise<void>;

export const ok: Behaviour = (_req, res, r) => {
  res.setHeader('x-replica', r.name);
  res.end(r.name);
};

export const delayed =
  (ms: number): Behaviour =>
  (req, res, r) => {
    const t = setTimeout(() => ok(req, res, r), ms);
    res.on('close', () => clearTimeout(t));
  };

export const status =
  (code: number, headers: Record<string, string> = {}): Behaviour =>
  (_req, res, r) => {
    res.writeHead(code, { 'x-replica': r.name, ...headers });
    res.end(`${r.name} says ${code}`);
  };

/** Never answers (until the connection closes). */
export const hang: Behaviour = () => {};

let sharedCa: Promise<DevCa> | undefined;
export function devCa(): Promise<DevCa> {
  sharedCa ??= createDevCa({ trustDomain: 'cluster.local' });
  return sharedCa;
}

export async function startReplica(name: string, behave: Behaviour, o: { service?: string; ca?: DevCa } = {}): Promise<Replica> {
  const ca = o.ca ?? (await devCa());
  const mesh = await createMesh({ service: o.service ?? 'payments', identity: { ca }, logger: quiet });
  const replica: Replica = {
    name,
    address: '',
    hits: 0,
    methods: [],
    bodySizes: [],
    behave,
    mesh,
    close: async () => {
      server.closeAllConnections?.();
      await mesh.close();
    },
  };
  const server = mesh.createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      replica.hits++;
      replica.methods.push(req.method ?? '');
      replica.bodySizes.push(size);
      void replica.behave(req, res, replica);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (replica as { address: string }).address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return replica;
}

export async function client(outbound: MeshOptionsInput['outbound'], ca?: DevCa, internals?: Parameters<typeof createMesh>[1]): Promise<Mesh> {
  return createMesh({ service: 'orders', identity: { ca: ca ?? (await devCa()) }, logger: quiet, outbound }, internals);
}

/** Runs `total` calls with `concurrency` workers; returns the results in order of completion. */
export async function load<T>(total: number, concurrency: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        out.push(await call(i));
      }
    }),
  );
  return out;
}

export interface CallResult {
  status: number;
  replica: string | null;
  body: string;
  error?: Error & { code?: string; cause?: Error & { code?: string } };
}

export async function call(mesh: Mesh, url: string, init?: RequestInit): Promise<CallResult> {
  try {
    const res = await mesh.fetch(url, init);
    const body = await res.text();
    return { status: res.status, replica: res.headers.get('x-replica'), body };
  } catch (e) {
    return { status: 0, replica: null, body: '', error: e as CallResult['error'] & Error };
  }
}

export function countBy<T>(xs: readonly T[], key: (x: T) => string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const k = key(x) ?? '(none)';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
