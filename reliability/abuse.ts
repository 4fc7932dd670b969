/**
 * `npm run abuse` (issue 17 item 4): the server's resource use under abuse, and what a
 * well-behaved client sees meanwhile. On loopback; stops by itself.
 *
 *   server: reliability/abuse-server.ts (one mesh, payments, another process)
 *   well-behaved client (this process): a mesh, orders, CONCURRENCY GETs in flight all the time
 *   phases, PHASE_MS each: baseline; 10,000 idle TCP connections that never send a ClientHello
 *     plus 500 mTLS connections that never send a request; a handshake flood (an untrusted client
 *     certificate, as fast as 16 loops can); 200 slow-body uploads (1 byte a second of a 1 MiB
 *     body); 1 MiB of request headers on 50 connections at a time; recovery
 *
 * Reports per phase the well-behaved client's p50/p99 and failures, and the server's peak RSS and
 * open descriptors; writes reliability/results/abuse-latest.json. Goals: no failed well-behaved
 * request, the server's peak RSS under the documented bound (docs/reliability.md), recovery.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { DevCa, createDevCa } from '../src/identity/dev-ca.js';
import { createMesh } from '../src/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const PHASE_MS = arg('phase-ms', 10_000);
const CONCURRENCY = 4;
const IDLE_TCP = arg('idle', 10_000);
const HERE = new URL('.', import.meta.url).pathname;
const RSS_BOUND_MB = 400;

interface Sample { readonly phase: string; readonly ms: number; readonly ok: boolean }
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-abuse-'));
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const { certPem, keyPem } = await ca.exportPem();
  writeFileSync(join(dir, 'ca.pem'), certPem);
  writeFileSync(join(dir, 'ca_key.pem'), keyPem, { mode: 0o600 });
  const server = fork(join(HERE, 'abuse-server.ts'), [dir], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((r) => server.once('message', (m: { port: number }) => r(m.port)));
  let asked = 0;
  const stats = () =>
    new Promise<{ rss: number; peak: number; fds: number }>((resolve) => {
      const id = ++asked;
      const on = (m: { id?: number; rss: number; peak: number; fds: number }) => m.id === id && (server.off('message', on), resolve(m));
      server.on('message', on);
      server.send({ op: 'rss', id });
    });
  const devCa = await DevCa.fromPem(certPem, keyPem);
  const orders = await createMesh({ service: 'orders', identity: { ca: devCa }, outbound: { services: { payments: { endpoints: [`127.0.0.1:${port}`] } } }, logger: { info() {}, warn() {}, error() {} } });
  const client = await devCa.issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/abuser' });
  const stranger = await (await createDevCa({ trustDomain: 'cluster.local' })).issue({ spiffeId: 'spiffe://cluster.local/ns/default/sa/stranger' });
  const tls = (svid: typeof client): Promise<TLSSocket> =>
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, cert: svid.certChainPem, key: svid.keyPem, ca: svid.bundlePem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
      s.on('error', () => {});
      s.once('secureConnect', () => resolve(s));
      s.once('close', () => resolve(s));
    });

  const samples: Sample[] = [];
  let phase = 'baseline';
  let running = true;
  const load = Array.from({ length: CONCURRENCY }, async () => {
    while (running) {
      const t0 = performance.now();
      const p = phase;
      try {
        const res = await orders.fetch('http://payments/work');
        await res.arrayBuffer();
        samples.push({ phase: p, ms: performance.now() - t0, ok: res.status === 200 });
      } catch {
        samples.push({ phase: p, ms: performance.now() - t0, ok: false });
      }
      await wait(5);
    }
  });
  const server_: Record<string, { peakMb: number; fds: number }> = {};
  const endPhase = async () => {
    const s = await stats();
    server_[phase] = { peakMb: s.peak / 2 ** 20, fds: s.fds };
  };
  const sockets: Socket[] = [];
  const stopAll = () => {
    for (const s of sockets.splice(0)) s.destroy();
  };

  await wait(PHASE_MS);
  await endPhase();

  phase = `${IDLE_TCP} idle TCP + 500 idle mTLS`;
  for (let i = 0; i < IDLE_TCP; i++) {
    const s = netConnect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    sockets.push(s);
    if (i % 500 === 499) await wait(10);
  }
  for (let i = 0; i < 500; i += 25) sockets.push(...(await Promise.all(Array.from({ length: 25 }, () => tls(client)))));
  await wait(PHASE_MS);
  await endPhase();
  stopAll();

  phase = 'handshake flood';
  let flooding = true;
  const flood = Array.from({ length: 16 }, async () => {
    while (flooding) (await tls(stranger)).destroy();
  });
  await wait(PHASE_MS);
  flooding = false;
  await Promise.all(flood);
  await endPhase();

  phase = '200 slow-body uploads';
  const slow = await Promise.all(Array.from({ length: 200 }, () => tls(client)));
  for (const s of slow) s.write(`POST /upload HTTP/1.1\r\nHost: payments\r\nContent-Length: ${1 << 20}\r\n\r\n`);
  const drip = setInterval(() => slow.forEach((s) => s.writable && s.write('x')), 1000);
  sockets.push(...slow);
  await wait(PHASE_MS);
  clearInterval(drip);
  await endPhase();
  stopAll();

  phase = '1 MiB headers x 50';
  let big = true;
  const header = `X-Big: ${'a'.repeat(1 << 20)}\r\n`;
  const bigs = Array.from({ length: 50 }, async () => {
    while (big) {
      const s = await tls(client);
      await new Promise<void>((r) => {
        s.once('close', () => r());
        s.on('data', () => {});
        s.write(`GET /work HTTP/1.1\r\nHost: payments\r\n${header}\r\n`, () => {});
      });
    }
  });
  await wait(PHASE_MS);
  big = false;
  await Promise.all(bigs);
  await endPhase();

  phase = 'recovered';
  await wait(PHASE_MS);
  await endPhase();
  running = false;
  await Promise.all(load);
  await orders.close();
  server.send({ op: 'stop' });
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = report(samples, server_) ? 0 : 1;
}

function report(samples: readonly Sample[], server: Record<string, { peakMb: number; fds: number }>): boolean {
  const rows = Object.keys(server).map((phase) => {
    const of = samples.filter((s) => s.phase === phase);
    const ms = of.map((s) => s.ms).sort((a, b) => a - b);
    const pick = (q: number) => ms[Math.min(ms.length - 1, Math.floor(ms.length * q))] ?? 0;
    return { phase, requests: of.length, failed: of.filter((s) => !s.ok).length, p50Ms: pick(0.5), p99Ms: pick(0.99), serverPeakRssMb: server[phase]!.peakMb, serverFds: server[phase]!.fds };
  });
  console.log('\nphase                               requests  failed   p50 ms   p99 ms   server peak RSS   fds');
  for (const r of rows) console.log(`${r.phase.padEnd(35)} ${String(r.requests).padStart(8)}  ${String(r.failed).padStart(6)}  ${r.p50Ms.toFixed(1).padStart(7)}  ${r.p99Ms.toFixed(1).padStart(7)}  ${r.serverPeakRssMb.toFixed(0).padStart(10)} MB  ${String(r.serverFds).padStart(6)}`);
  const ok = rows.every((r) => r.failed === 0 && r.serverPeakRssMb <= RSS_BOUND_MB && r.requests > 0);
  writeFileSync(join(HERE, 'results', 'abuse-latest.json'), JSON.stringify({ phaseMs: PHASE_MS, rssBoundMb: RSS_BOUND_MB, rows, met: ok }, null, 2) + '\n');
  console.log(ok ? `every goal met (no failed request, server peak RSS ≤ ${RSS_BOUND_MB} MB)` : 'a goal was missed');
  return ok;
}

await main();
