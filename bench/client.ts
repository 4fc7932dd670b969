/**
 * A bench client process (spawned by bench/index.ts with an IPC channel): a load generator that
 * sends the same GET (1 KiB response) through one scenario's client stack.
 *   plain    undici Agent → http://       (R0; also the app's hop to the local haproxy in R3)
 *   tls      undici Agent → https://, verifies the server (R1)
 *   mtls     undici Agent → https:// with a client certificate (plain Node mTLS, handshake bench)
 *   mesh     createMesh: mesh.fetch / undici.request with mesh.dispatcher → http://payments (R2)
 * Message { op: 'run', spec: RunSpec } → RunResult; { op: 'usage' } → Usage; { op: 'close' }.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { Agent, type Dispatcher, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { REQUEST_PATH, type RunResult, type RunSpec, type Usage, arg, quantile, quietLogger } from './lib/common.js';

const kind = arg('--kind') ?? 'plain';
const ports = (arg('--ports') ?? '').split(',').filter(Boolean).map(Number);
const fullPort = arg('--full-port') ? Number(arg('--full-port')) : undefined;
const certDir = arg('--certs') ?? '';

type Send = (reset: boolean) => Promise<number>;
let fetchSend: Send;
let requestSend: Send;
let fullSend: Send | undefined;
let close: () => Promise<void>;
let requests = 0;

async function consumeFetch(p: Promise<Response>): Promise<number> {
  const r = await p;
  await r.arrayBuffer();
  return r.status;
}

async function consumeRequest(p: ReturnType<typeof undiciRequest>): Promise<number> {
  const r = await p;
  await r.body.arrayBuffer();
  return r.statusCode;
}

function viaAgent(agent: Dispatcher, base: string, fullBase?: string): void {
  const url = base + REQUEST_PATH;
  fetchSend = (reset) => consumeFetch(undiciFetch(url, { dispatcher: agent, ...(reset && { headers: { connection: 'close' } }) }) as unknown as Promise<Response>);
  requestSend = (reset) => consumeRequest(undiciRequest(url, { dispatcher: agent, reset }));
  if (fullBase) fullSend = (reset) => consumeRequest(undiciRequest(fullBase + REQUEST_PATH, { dispatcher: agent, reset }));
  close = () => agent.close();
}

const agentOptions = { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 };
if (kind === 'plain') {
  viaAgent(new Agent(agentOptions), `http://127.0.0.1:${ports[0]}`);
} else if (kind === 'tls') {
  viaAgent(new Agent({ ...agentOptions, connect: { ca: readFileSync(join(certDir, 'ca.pem')) } }), `https://127.0.0.1:${ports[0]}`);
} else if (kind === 'mtls') {
  const ca = readFileSync(join(certDir, 'svid_bundle.pem'));
  const cert = readFileSync(join(certDir, 'svid.pem'));
  const key = readFileSync(join(certDir, 'svid_key.pem'));
  // Plain Node mTLS, done well: a strong per-origin session cache, as the mesh keeps one (undici's own
  // cache holds sessions through WeakRefs, which the GC clears under load, so most of its
  // "resumed" connections would be full handshakes: measured 26 of 269 resumed).
  // One SecureContext for every connection (as the mesh does), not one parsed per tls.connect.
  const secureContext = createSecureContext({ ca, cert, key, minVersion: 'TLSv1.2' });
  const sessions = new Map<string, Buffer>();
  const connector = (opts: { hostname: string; port: string }, cb: (err: Error | null, socket: TLSSocket | null) => void) => {
    const k = `${opts.hostname}:${opts.port}`;
    const session = sessions.get(k);
    const socket = tlsConnect({
      host: opts.hostname,
      port: Number(opts.port),
      secureContext,
      ...(session && { session }),
      ALPNProtocols: ['http/1.1'],
      // The SVID names a SPIFFE ID, not a host: plain mTLS checks the chain only.
      checkServerIdentity: () => undefined,
    });
    socket.setNoDelay(true);
    let done = false;
    socket.on('session', (s: Buffer) => sessions.set(k, s));
    socket.once('secureConnect', () => {
      if (!done) cb(null, socket);
      done = true;
    });
    socket.once('error', (e) => {
      if (!done) cb(e, null);
      done = true;
    });
  };
  const agent = new Agent({ ...agentOptions, connect: connector as never });
  viaAgent(agent, `https://127.0.0.1:${ports[0]}`, fullPort ? `https://127.0.0.1:${fullPort}` : undefined);
} else if (kind === 'mesh') {
  const { createMesh } = await import('sidecarless');
  const services: Record<string, { endpoints: string[]; identity?: string }> = {
    payments: { endpoints: ports.map((p) => `127.0.0.1:${p}`) },
  };
  // Handshake bench only: the same server identity behind a listener that refuses resumption.
  if (fullPort) services['payments-full'] = { endpoints: [`127.0.0.1:${fullPort}`], identity: 'spiffe://cluster.local/ns/default/sa/payments' };
  const mesh = await createMesh({ service: 'orders', identity: { dir: certDir }, outbound: { services }, logger: quietLogger });
  const url = 'http://payments' + REQUEST_PATH;
  fetchSend = (reset) => consumeFetch(mesh.fetch(url, reset ? { headers: { connection: 'close' } } : undefined));
  requestSend = (reset) => consumeRequest(undiciRequest(url, { dispatcher: mesh.dispatcher, reset }));
  if (fullPort) fullSend = (reset) => consumeRequest(undiciRequest('http://payments-full' + REQUEST_PATH, { dispatcher: mesh.dispatcher, reset }));
  close = () => mesh.close();
} else {
  throw new Error(`unknown client kind ${kind}`);
}

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function run(spec: RunSpec): Promise<RunResult> {
  const send = spec.target === 'full' ? fullSend! : spec.path === 'fetch' ? fetchSend : requestSend;
  const reset = spec.reset ?? false;
  const cpu0 = cpuUs();
  const t0 = performance.now();
  const windowStart = t0 + spec.warmupMs;
  const windowEnd = windowStart + spec.durationMs;
  let count = 0;
  let total = 0;
  let errors = 0;
  let dropped = 0;
  let firstError: string | undefined;
  const onError = (e: unknown) => {
    errors++;
    firstError ??= e instanceof Error ? `${e.name}: ${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''}` : String(e);
  };

  if (spec.mode === 'closed') {
    const worker = async () => {
      while (performance.now() < windowEnd) {
        try {
          const status = await send(reset);
          if (status !== 200) throw new Error(`status ${status}`);
          total++;
          const now = performance.now();
          if (now >= windowStart && now <= windowEnd) count++;
        } catch (e) {
          onError(e);
          await sleep(1);
        }
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
    requests += total;
    return { count, windowMs: spec.durationMs, total, errors, dropped, cpuUs: cpuUs() - cpu0, rss: process.memoryUsage.rss(), ...(firstError && { firstError }) };
  }

  // Open loop: request i is due at t0 + i/rate whatever happened to the others; its latency is
  // measured from that due time (no coordinated omission: a stall delays the sends behind it, and
  // that delay is counted).
  const interval = 1000 / spec.rate;
  const n = Math.ceil(((spec.warmupMs + spec.durationMs) * spec.rate) / 1000);
  const lat = new Float64Array(n);
  const svc = new Float64Array(n);
  const lag = new Float64Array(n);
  let recorded = 0;
  let inflight = 0;
  let sent = 0;
  const maxInflight = Math.max(256, spec.rate);
  await new Promise<void>((resolve) => {
    let finished = 0;
    const done = () => {
      if (++finished === n) resolve();
    };
    const fire = (due: number) => {
      const start = performance.now();
      inflight++;
      send(reset).then(
        (status) => {
          inflight--;
          const end = performance.now();
          if (status !== 200) onError(new Error(`status ${status}`));
          else {
            total++;
            if (due >= windowStart) {
              lat[recorded] = end - due;
              svc[recorded] = end - start;
              lag[recorded] = start - due;
              recorded++;
            }
          }
          done();
        },
        (e) => {
          inflight--;
          onError(e);
          done();
        },
      );
    };
    const tick = () => {
      const now = performance.now();
      while (sent < n && t0 + sent * interval <= now) {
        const due = t0 + sent * interval;
        sent++;
        if (inflight >= maxInflight) {
          dropped++;
          done();
        } else fire(due);
      }
      if (sent < n) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
    };
    tick();
  });
  requests += total;
  const pct = (a: Float64Array) => {
    const s = a.subarray(0, recorded).sort();
    return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
  };
  const l = pct(lat);
  const sl = pct(lag);
  return {
    count: recorded,
    windowMs: spec.durationMs,
    total,
    errors,
    dropped,
    cpuUs: cpuUs() - cpu0, rss: process.memoryUsage.rss(),
    latency: { ...l, n: recorded },
    service: pct(svc),
    sendLag: { p50: sl.p50, p99: sl.p99 },
    ...(firstError && { firstError }),
  };
}

function usage(): Usage {
  return { cpuUs: cpuUs(), maxRss: process.resourceUsage().maxRSS * 1024, rss: process.memoryUsage.rss(), requests };
}

process.on('message', async (m: { id: number; op: string; spec?: RunSpec }) => {
  let reply: unknown;
  if (m.op === 'run') reply = await run(m.spec!);
  else if (m.op === 'usage') reply = usage();
  else if (m.op === 'close') {
    await close().catch(() => {});
    process.send?.({ id: m.id, reply: null }, () => process.exit(0));
    return;
  }
  process.send?.({ id: m.id, reply });
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true, rss: process.memoryUsage.rss() });
