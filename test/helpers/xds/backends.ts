// Backends that both clients of the differential test reach at the SAME EDS address: one loopback
// TCP port per backend that looks at the first byte of each connection and hands it on:
//   0x16 (a TLS ClientHello)  → the backend's mesh server (createMesh, mTLS, HTTP/1.1: our client)
//   'P' (`PRI * HTTP/2.0`)    → a plaintext grpc-js server (grpc-js-xds's client)
// anything else, or nothing within 5 s, closes the connection. Each side answers the backend's name
// (HTTP body / gRPC response bytes) and counts the hit under it. A peer can only ever close its own
// connection: every socket error is swallowed, never thrown.
import { type Server as NetServer, type Socket, connect, createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { DevCa } from '../../../src/identity/dev-ca.js';
import { closeServer, listen, LOOPBACK } from '../net.js';
import { type Replica, ok, startReplica } from '../../outbound/e2e/replicas.js';

export interface Backend {
  readonly name: string;
  /** `127.0.0.1:<port>`: what EDS carries. */
  readonly address: string;
  /** Calls answered over gRPC (grpc-js-xds). */
  readonly grpcHits: () => number;
  /** Requests answered over mTLS HTTP/1.1 (our client). */
  readonly httpHits: () => number;
  close(): Promise<void>;
}

const FIRST_BYTE_MS = 5_000;
const raw = (b: Buffer) => b;

/** A grpc-js server answering its `name` to unary calls on each of `methods` (raw bytes, no codegen). */
async function grpcBackend(name: string, methods: readonly string[]) {
  const server = new grpc.Server();
  let hits = 0;
  for (const path of methods) {
    const ok = server.register(path, (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      hits++;
      done(null, Buffer.from(name));
    }, raw, raw, 'unary');
    if (!ok) throw new Error(`method ${path} registered twice`);
  }
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${LOOPBACK}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, hits: () => hits, close: () => new Promise<void>((resolve) => { server.forceShutdown(); resolve(); }) };
}

/** Pipes `socket` (its first bytes already read as `head`) to a loopback port. */
function forward(socket: Socket, head: Buffer, port: number, live: Set<Socket>): void {
  const upstream = connect({ port, host: LOOPBACK, noDelay: true });
  live.add(upstream);
  const drop = () => {
    socket.destroy();
    upstream.destroy();
  };
  upstream.on('error', drop).on('close', () => { live.delete(upstream); drop(); });
  socket.on('close', drop);
  upstream.write(head);
  socket.pipe(upstream).pipe(socket);
  socket.resume();
}

function demux(ports: { tls: number; h2: number }): { server: NetServer; live: Set<Socket> } {
  const live = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    live.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => live.delete(socket));
    const timer = setTimeout(() => socket.destroy(), FIRST_BYTE_MS);
    timer.unref();
    socket.once('data', (head: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      if (head[0] === 0x16) forward(socket, head, ports.tls, live);
      else if (head[0] === 0x50) forward(socket, head, ports.h2, live);
      else socket.destroy();
    });
  });
  server.on('error', () => {});
  return { server, live };
}

/** One backend: a mesh server for `service` (SVID from `ca`) and a grpc-js server behind one port. */
export async function startBackend(name: string, o: { ca: DevCa; methods: readonly string[]; service?: string }): Promise<Backend> {
  const replica: Replica = await startReplica(name, ok, { ca: o.ca, service: o.service ?? 'payments' });
  const g = await grpcBackend(name, o.methods);
  const { server, live } = demux({ tls: Number(replica.address.split(':')[1]), h2: g.port });
  const port = await listen(server);
  return {
    name,
    address: `${LOOPBACK}:${port}`,
    grpcHits: g.hits,
    httpHits: () => replica.hits,
    close: async () => {
      const closed = closeServer(server);
      for (const s of live) s.destroy();
      await Promise.all([closed, g.close(), replica.close()]);
    },
  };
}

/** Backends by name; all closed by `t.after`. */
export async function startBackends(t: { after(fn: () => Promise<void>): void }, names: readonly string[], o: { ca: DevCa; methods: readonly string[] }): Promise<Record<string, Backend>> {
  const list = await Promise.all(names.map((n) => startBackend(n, o)));
  t.after(() => Promise.all(list.map((b) => b.close())).then(() => {}));
  return Object.fromEntries(list.map((b) => [b.name, b]));
}
