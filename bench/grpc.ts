/**
 * HTTP/2 and gRPC (issue 15): the mesh against the same traffic without it, in the same run, as
 * ratios. The servers run in a child process of their own (this file with --serve), the clients
 * here; scenarios alternate round by round and every figure is a median over rounds (min–max).
 *   G1  grpc-js unary → grpc-js server, plain TLS credentials (server-authenticated, P-256)  baseline
 *   G2  the same with mesh.grpc: channelCredentials('payments') ⇄ serverCredentials() + interceptor()
 *       (mutual TLS, SPIFFE checks both ways, the policy judged per call, golden metrics)
 *   H1  undici (allowH2, 64 streams in flight on one connection) → node:http2 createSecureServer, TLS  baseline
 *   H2  the same client with the orders SVID → mesh.createServer(handler, { http2: true })
 * Goals (issue 15): G2 ÷ G1 ≥ 0.95 calls/s; H2 ÷ H1 ≥ 0.9 requests/s. The machine is shared: goals
 * are reported, never asserted.
 *   node --import tsx bench/grpc.ts [--quick]
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Client, type Dispatcher } from 'undici';
import { createMesh } from '../src/index.js';
import { ORDERS_ID, PAYMENTS_ID, PAYLOAD, arg, flag, quietLogger, round } from './lib/common.js';
import { BENCH_DIR, ROOT } from './lib/proc.js';

type Row = Record<string, number | string>;
const GOALS = { grpc: 0.95, h2: 0.9 };
const IN_FLIGHT = { grpc: 32, h2: 64 };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const codec = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const SERVICE: grpc.ServiceDefinition = {
  Charge: { path: '/bench.Pay/Charge', requestStream: false, responseStream: false, requestSerialize: codec.serialize, requestDeserialize: codec.deserialize, responseSerialize: codec.serialize, responseDeserialize: codec.deserialize },
};
const POLICY = {
  rules: [
    { name: 'orders-charge', action: 'allow', from: { identities: [ORDERS_ID] }, to: { methods: ['POST'], paths: ['/bench.Pay/Charge', '/api/charge'] } },
  ],
};

// ---------------------------------------------------------------------------------------------
// The server child: four servers, the same handler body.

async function serve(certs: string): Promise<void> {
  const file = (who: string, f: string) => readFileSync(join(certs, who, f));
  const pay = { cert: file('payments', 'svid.pem'), key: file('payments', 'svid_key.pem') };
  const mesh = await createMesh({ service: 'payments', identity: { dir: join(certs, 'payments') }, inbound: { policy: POLICY }, logger: quietLogger });
  const impl = { Charge: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, PAYLOAD) };
  const bind = (server: grpc.Server, creds: grpc.ServerCredentials) =>
    new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  const g1 = new grpc.Server();
  g1.addService(SERVICE, impl);
  const g2 = new grpc.Server({ interceptors: [mesh.grpc.interceptor()] });
  g2.addService(SERVICE, impl);
  const handler = (req: Http2ServerRequest, res: Http2ServerResponse) => {
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': PAYLOAD.length });
      res.end(PAYLOAD);
    });
  };
  const h1 = createSecureServer({ ...pay, allowHTTP1: true }, handler);
  const h2 = mesh.createServer(handler as never, { http2: true });
  const listen = (s: { listen(p: number, h: string, cb: () => void): unknown; address(): unknown }) =>
    new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));
  const ports = {
    G1: await bind(g1, grpc.ServerCredentials.createSsl(null, [{ cert_chain: pay.cert, private_key: pay.key }], false)),
    G2: await bind(g2, mesh.grpc.serverCredentials()),
    H1: await listen(h1),
    H2: await listen(h2 as never),
  };
  process.stdout.write(JSON.stringify(ports) + '\n');
  process.stdin.once('end', async () => {
    g1.forceShutdown();
    g2.forceShutdown();
    h1.close();
    (h2 as unknown as { close(): void }).close();
    await mesh.close();
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// The client side.

/** Calls per second of `send` kept `inFlight` at a time for `ms`. */
async function rate(ms: number, inFlight: number, send: () => Promise<unknown>): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      await send();
      done++;
    }
  }));
  return done / ((performance.now() - t0) / 1000);
}

function grpcSender(port: number, creds: grpc.ChannelCredentials): { send: () => Promise<unknown>; close: () => void } {
  const Ctor = grpc.makeGenericClientConstructor(SERVICE, 'bench.Pay');
  const client = new Ctor(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'payments', 'grpc.default_authority': 'payments' }) as unknown as Record<string, (req: Buffer, cb: (e: Error | null, r: Buffer) => void) => void>;
  const body = Buffer.alloc(64, 1);
  return {
    send: () => new Promise((resolve, reject) => client.Charge!(body, (e, r) => (e ? reject(e) : resolve(r)))),
    close: () => (client as unknown as grpc.Client).close(),
  };
}

function h2Sender(port: number, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): { send: () => Promise<unknown>; close: () => Promise<void> } {
  const client: Dispatcher = new Client(`https://127.0.0.1:${port}`, { allowH2: true, pipelining: IN_FLIGHT.h2, connect: { ...tls, servername: 'payments' } } as never);
  const body = Buffer.alloc(64, 1);
  return {
    send: async () => {
      const r = await client.request({ method: 'POST', path: '/api/charge', body, headers: { host: 'payments', 'content-type': 'application/octet-stream' } });
      if (r.statusCode !== 200) throw new Error(`HTTP/2 request: status ${r.statusCode}`);
      await r.body.arrayBuffer();
    },
    close: () => client.close(),
  };
}

function makeCerts(dir: string): void {
  const cli = join(ROOT, 'dist', 'cli.js');
  const run = (args: string[]) => execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['ca', 'init', '--trust-domain', 'cluster.local', '--out', join(dir, 'ca')]);
  // A DNS SAN for the baselines' host name check (identity is still only the URI SAN).
  run(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', PAYMENTS_ID, '--out', join(dir, 'payments'), '--dns', 'payments']);
  run(['svid', 'issue', '--ca', join(dir, 'ca'), '--spiffe-id', ORDERS_ID, '--out', join(dir, 'orders')]);
}

export async function benchGrpc(opts: { quick: boolean }): Promise<{ name: string; rows: Row[] }> {
  const rounds = opts.quick ? 3 : 7;
  const ms = opts.quick ? 400 : 1_500;
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-grpc-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'grpc.ts'), '--serve', dir], { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    makeCerts(dir);
    child.stdin.write('\n');
    const lines = createInterface({ input: child.stdout });
    const next = () => new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (c) => reject(new Error(`bench/grpc.ts server exited (${c})`)));
    });
    const ports = JSON.parse(await next()) as Record<'G1' | 'G2' | 'H1' | 'H2', number>;
    const bundle = readFileSync(join(dir, 'orders', 'svid_bundle.pem'));
    const mesh = await createMesh({ service: 'orders', identity: { dir: join(dir, 'orders') }, logger: quietLogger });
    const senders = {
      G1: grpcSender(ports.G1, grpc.credentials.createSsl(bundle)),
      G2: grpcSender(ports.G2, mesh.grpc.channelCredentials('payments')),
      H1: h2Sender(ports.H1, { ca: bundle }),
      H2: h2Sender(ports.H2, { ca: bundle, cert: readFileSync(join(dir, 'orders', 'svid.pem')), key: readFileSync(join(dir, 'orders', 'svid_key.pem')) }),
    };
    const ids = ['G1', 'G2', 'H1', 'H2'] as const;
    const results: Record<(typeof ids)[number], number[]> = { G1: [], G2: [], H1: [], H2: [] };
    for (const id of ids) await rate(300, id.startsWith('G') ? IN_FLIGHT.grpc : IN_FLIGHT.h2, senders[id].send); // warm-up
    for (let r = 0; r < rounds; r++) {
      // Alternate the order every round: neither side always runs on a warmer or calmer machine.
      for (const id of r % 2 === 0 ? ids : [...ids].reverse()) results[id].push(await rate(ms, id.startsWith('G') ? IN_FLIGHT.grpc : IN_FLIGHT.h2, senders[id].send));
    }
    for (const id of ['G1', 'G2'] as const) senders[id].close();
    await Promise.all([senders.H1.close(), senders.H2.close()]);
    await mesh.close();
    const spreadOf = (xs: number[]) => `${round(Math.min(...xs), 0)}–${round(Math.max(...xs), 0)}`;
    const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
    const g = ratio(results.G2, results.G1);
    const h = ratio(results.H2, results.H1);
    const verdict = (x: number, goal: number) => (x >= goal ? 'PASS' : `under by ${round(goal - x, 3)}`);
    return {
      name: `HTTP/2 and gRPC: grpc-js unary (${IN_FLIGHT.grpc} in flight) and undici h2 (${IN_FLIGHT.h2} streams on one connection), ${rounds} rounds of ${ms} ms, server in its own process`,
      rows: [
        { what: 'G1 grpc-js, plain TLS credentials', callsPerS: round(median(results.G1), 0), range: spreadOf(results.G1) },
        { what: 'G2 grpc-js, mesh.grpc credentials + interceptor (mTLS, SPIFFE, policy per call)', callsPerS: round(median(results.G2), 0), range: spreadOf(results.G2), ratio: round(g, 3), 'G2 ÷ G1 ≥ 0.95': verdict(g, GOALS.grpc) },
        { what: 'H1 undici h2 → node:http2 createSecureServer (TLS)', requestsPerS: round(median(results.H1), 0), range: spreadOf(results.H1) },
        { what: 'H2 undici h2 with the orders SVID → mesh.createServer(handler, { http2: true })', requestsPerS: round(median(results.H2), 0), range: spreadOf(results.H2), ratio: round(h, 3), 'H2 ÷ H1 ≥ 0.9': verdict(h, GOALS.h2) },
      ],
    };
  } finally {
    child.stdin.end();
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const certs = arg('--serve');
  if (certs) {
    // The parent writes a line once the certificates exist.
    await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));
    await serve(certs);
  } else {
    const res = await benchGrpc({ quick: flag('--quick') });
    console.log(res.name);
    for (const r of res.rows) console.log(r);
    process.exit(0);
  }
}
