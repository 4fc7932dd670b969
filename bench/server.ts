/**
 * A bench server process (spawned by bench/index.ts with an IPC channel). Every kind answers every
 * request with the same 1 KiB body; only the transport and what runs in front of the handler differ:
 *   plain  node:http                                    (R0, and the app behind haproxy in R3)
 *   tls    node:https, server-authenticated TLS, P-256   (R1)
 *   mtls   node:https, mutual TLS with the SVIDs, no SPIFFE checks (plain Node mTLS, handshake bench)
 *   mesh   mesh.createServer: mTLS + SPIFFE verification + policy (R2)
 * `--listeners N` opens N ports (the mesh client balances over them); `--full-listener` adds one
 * that refuses TLS session resumption (SSL_OP_NO_TICKET), for full-handshake measurements.
 * Messages: { op: 'usage' } → Usage; { op: 'stats' } → mesh.stats(); { op: 'close' }.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { constants as cryptoConstants } from 'node:crypto';
import { type AddressInfo } from 'node:net';
import { type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { PAYLOAD, PAYMENTS_POLICY, type Usage, arg, flag, quietLogger } from './lib/common.js';

const kind = arg('--kind') ?? 'plain';
const listeners = Number(arg('--listeners') ?? 1);
const certDir = arg('--certs') ?? '';
let requests = 0;
const handshakes = { full: 0, resumed: 0 };

function handler(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  const reply = () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': PAYLOAD.length });
    res.end(PAYLOAD);
  };
  if (req.method === 'POST' || req.method === 'PUT') {
    req.resume();
    req.once('end', reply);
  } else reply();
}

function countHandshakes(server: { on(ev: 'secureConnection', fn: (s: TLSSocket) => void): unknown }): void {
  server.on('secureConnection', (s: TLSSocket) => {
    if (s.isSessionReused()) handshakes.resumed++;
    else handshakes.full++;
  });
}

function tune(server: HttpServer): HttpServer {
  // Keep-alive connections outlive the pauses between rounds (other scenarios run meanwhile).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

function listen(server: HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

const servers: HttpServer[] = [];
let fullPort: number | undefined;
let stats: (() => unknown) | undefined;
let close: (() => Promise<void>) | undefined;

if (kind === 'plain') {
  for (let i = 0; i < listeners; i++) servers.push(tune(createHttpServer(handler)));
} else if (kind === 'tls') {
  const opts = { cert: readFileSync(join(certDir, 'server.pem')), key: readFileSync(join(certDir, 'server_key.pem')), ALPNProtocols: ['http/1.1'] };
  for (let i = 0; i < listeners; i++) servers.push(tune(createHttpsServer(opts, handler)));
} else if (kind === 'mtls') {
  const opts = {
    cert: readFileSync(join(certDir, 'svid.pem')),
    key: readFileSync(join(certDir, 'svid_key.pem')),
    ca: readFileSync(join(certDir, 'svid_bundle.pem')),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
    ALPNProtocols: ['http/1.1'],
  };
  for (let i = 0; i < listeners; i++) servers.push(tune(createHttpsServer(opts, handler)));
  if (flag('--full-listener')) {
    const s = tune(createHttpsServer({ ...opts, secureOptions: cryptoConstants.SSL_OP_NO_TICKET }, handler));
    fullPort = await listen(s);
    countHandshakes(s);
  }
} else if (kind === 'mesh') {
  const { createMesh } = await import('sidecarless');
  const mesh = await createMesh({ service: 'payments', identity: { dir: certDir }, inbound: { policy: PAYMENTS_POLICY }, logger: quietLogger });
  for (let i = 0; i < listeners; i++) servers.push(tune(mesh.createServer(handler)));
  if (flag('--full-listener')) {
    const s = tune(mesh.createServer(handler));
    // The mesh rebuilds the secure context on rotation (none happens during a bench run); until
    // then this context refuses session tickets, so every connection is a full handshake.
    (s as unknown as { setSecureContext(o: object): void }).setSecureContext({ ...mesh.serverTlsOptions(), secureOptions: cryptoConstants.SSL_OP_NO_TICKET });
    fullPort = await listen(s);
    countHandshakes(s);
  }
  stats = () => mesh.stats();
  close = () => mesh.close();
} else {
  throw new Error(`unknown server kind ${kind}`);
}

const ports: number[] = [];
for (const s of servers) {
  ports.push(await listen(s));
  if (kind !== 'plain') countHandshakes(s as unknown as Parameters<typeof countHandshakes>[0]);
}

function usage(): Usage {
  const cpu = process.cpuUsage();
  return { cpuUs: cpu.user + cpu.system, maxRss: process.resourceUsage().maxRSS * 1024, rss: process.memoryUsage.rss(), requests, handshakes: { ...handshakes } };
}

process.on('message', async (m: { id: number; op: string }) => {
  let reply: unknown;
  if (m.op === 'usage') reply = usage();
  else if (m.op === 'stats') reply = stats?.() ?? null;
  else if (m.op === 'close') {
    await close?.();
    for (const s of servers) s.closeAllConnections();
    process.send?.({ id: m.id, reply: null }, () => process.exit(0));
    return;
  }
  process.send?.({ id: m.id, reply });
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true, ports, fullPort, rss: process.memoryUsage.rss() });
