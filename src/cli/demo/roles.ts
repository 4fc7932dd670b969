/**
 * The demo's child processes, one role each: a `payments` (or `payments-v2`) replica that joins
 * the control plane and serves, and `orders`, which joins and calls payments when told. Neither
 * names an endpoint: they find each other through the control plane.
 */
import net from 'node:net';
import { peerOf } from '../../inbound/peer-of.js';
import { createMesh, type Mesh } from '../../mesh.js';
import { emit, onCommands, type DemoEvent } from './children.js';
import { PORT } from './mesh-files.js';

export interface RoleArgs {
  readonly name?: string;
  readonly service?: string;
  readonly cp?: string;
  readonly root?: string;
  readonly token?: string;
  readonly 'delay-ms'?: string;
  readonly admin?: boolean;
  readonly deferred?: boolean;
}

const quiet = { info() {}, warn() {}, error() {} };

function joinMesh(v: RoleArgs, service: string, extra: Record<string, unknown> = {}): Promise<Mesh> {
  return createMesh({ service, logger: quiet, controlPlane: { address: v.cp!, root: v.root!, token: { file: v.token! } }, ...extra });
}

export async function runRole(role: string, v: RoleArgs): Promise<number> {
  if (role === 'replica') return replica(v);
  if (role === 'orders') return orders(v);
  throw new Error(`unknown demo role ${role}`);
}

/**
 * Serves until stdin ends. `leave` drains it: it stops accepting connections (an attempt is refused,
 * a connect failure the caller retries on another replica, whatever the method), answers what its
 * open connections still send with `connection: close`, and once they are gone closes the mesh:
 * its ADS stream ends and the control plane removes its endpoint after the grace.
 */
async function replica(v: RoleArgs): Promise<number> {
  let handle: (cmd: DemoEvent) => void | Promise<void> = () => {};
  onCommands((cmd) => handle(cmd));
  if (v.deferred) {
    // Started ahead, joins when told: the process is warm (grpc-js loaded), the join is what is shown.
    await import('@grpc/grpc-js');
    await new Promise<void>((resolve) => {
      handle = (cmd) => void (cmd.cmd === 'join' && resolve());
      emit({ event: 'loaded' });
    });
  }
  const mesh = await joinMesh(v, v.service!, { inbound: { audit: (r: object) => emit({ event: 'audit', ...r }) }, ...(v.admin && { admin: { port: 0 } }) });
  const delayMs = Number(v['delay-ms'] ?? 0);
  let served = 0;
  let draining = false;
  const server = mesh.createServer((req, res) => {
    served++;
    res.setHeader('content-type', 'application/json');
    if (draining) res.setHeader('connection', 'close');
    const body = JSON.stringify({ replica: v.name, caller: peerOf(req)?.spiffeId ?? null });
    if (delayMs > 0) setTimeout(() => res.end(body), delayMs);
    else res.end(body);
  });
  handle = async (cmd) => {
    if (cmd.cmd === 'leave') {
      draining = true;
      // net.Server's close, not http.Server's: that one also drops idle keep-alive connections, which
      // races a request the caller is writing on one (a reset, not retried for a POST).
      net.Server.prototype.close.call(server);
      const connections = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n ?? 0)));
      for (let i = 0; i < 100 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
      await mesh.close();
      emit({ event: 'left', served });
    }
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  emit({ event: 'listening', port: (server.address() as { port: number }).port, ...(mesh.admin && { adminPort: mesh.admin.address().port }) });
  return new Promise(() => {});
}

export interface CallResult {
  status?: number;
  replica?: string;
  caller?: string;
  body?: string;
  error?: string;
}

async function callOnce(mesh: Mesh, path: string, method: string): Promise<CallResult> {
  try {
    const res = await mesh.fetch(`http://payments:${PORT}${path}`, { method, body: method === 'POST' ? '{"amount":10}' : undefined });
    const text = await res.text();
    if (res.status !== 200) return { status: res.status, body: text.slice(0, 200) };
    const b = JSON.parse(text) as { replica: string; caller: string };
    return { status: 200, replica: b.replica, caller: b.caller };
  } catch (e) {
    const err = e as Error & { cause?: Error };
    return { error: err.cause?.message ?? err.message };
  }
}

/**
 * Commands: `calls` {id, n, concurrency, path, method} answers `calls` {id, results}; `load`
 * {concurrency} calls until `stop`, then answers `load` {results}.
 */
async function orders(v: RoleArgs): Promise<number> {
  const mesh = await joinMesh(v, 'orders');
  let stopLoad: (() => void) | undefined;
  const run = async (cmd: DemoEvent, more: () => boolean): Promise<CallResult[]> => {
    const results: CallResult[] = [];
    const worker = async () => {
      while (more()) results.push(await callOnce(mesh, String(cmd.path ?? '/charge'), String(cmd.method ?? 'POST')));
    };
    await Promise.all(Array.from({ length: Number(cmd.concurrency ?? 1) }, worker));
    return results;
  };
  onCommands(async (cmd) => {
    if (cmd.cmd === 'calls') {
      let sent = 0;
      emit({ event: 'calls', id: cmd.id, results: await run(cmd, () => sent++ < Number(cmd.n)) });
    } else if (cmd.cmd === 'load') {
      let on = true;
      stopLoad = () => (on = false);
      emit({ event: 'load', results: await run(cmd, () => on) });
    } else if (cmd.cmd === 'stop') {
      stopLoad?.();
    }
  });
  emit({ event: 'ready' });
  return new Promise(() => {});
}
