/**
 * The admin endpoint: plain HTTP (node:http) on loopback, off unless `admin: { port }` is set.
 *
 *   /live      200 while the process serves this endpoint
 *   /ready     200 with a valid SVID and a policy loaded; 503 with the reason otherwise
 *   /metrics   the golden signals as Prometheus text (kept by the mesh: no OpenTelemetry SDK needed)
 *   /stats     mesh.stats() as JSON
 *   /config    the effective configuration and policy, without key material or functions
 *   /identity  SPIFFE ID, serial, validity, trust bundles as subject + fingerprint + notAfter
 *
 * It is UNAUTHENTICATED: it binds 127.0.0.1 unless told otherwise and must never be exposed beyond
 * the host (or pod). It never serves private keys, PEM blocks or CA objects. Its listener does not
 * keep the process alive by itself (unref'd); `mesh.close()` closes it.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, isIPv4 } from 'node:net';
import { SidecarlessError } from '../errors.js';
import { PROMETHEUS_CONTENT_TYPE } from '../telemetry/prometheus.js';

/** The admin endpoint could not listen on `admin.host`:`admin.port`. The Node error is its `cause`. */
export class AdminListenError extends SidecarlessError {
  constructor(
    readonly host: string,
    readonly port: number,
    cause: NodeJS.ErrnoException,
  ) {
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const why =
      cause.code === 'EADDRINUSE'
        ? `admin.port ${port} is already in use on ${host} (EADDRINUSE): choose another admin.port (0 picks a free one), or stop the process that holds it`
        : cause.code === 'EACCES'
          ? `not allowed to listen on admin.port ${port} (${cause.code}; ports below 1024 need privileges): choose a port above 1023`
          : cause.code === 'EADDRNOTAVAIL' || cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN'
            ? `admin.host "${host}" is not an address of this machine (${cause.code}): use 127.0.0.1 (the default)`
            : `${cause.message}: check admin.host and admin.port`;
    super('ERR_SIDECARLESS_ADMIN_LISTEN', `the admin endpoint cannot listen on ${where}: ${why}.`, { cause });
  }
}

/** Whether `host` binds loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || /^(0+:){7}0*1$/.test(h)) return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

export interface AdminHandlers {
  ready(): { ok: true } | { ok: false; reason: string };
  metrics(): string;
  stats(): unknown;
  config(): unknown;
  identity(): unknown;
}

export interface AdminEndpoint {
  /** The bound address, e.g. `{ address: '127.0.0.1', port: 9990 }`. */
  address(): { address: string; port: number };
}

export interface AdminServer extends AdminEndpoint {
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

function handle(h: AdminHandlers, req: IncomingMessage, res: ServerResponse): void {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, TEXT_TYPE, 'Method Not Allowed\n', false);
    return;
  }
  const path = (req.url ?? '/').split('?', 1)[0];
  const json = (v: unknown) => send(res, 200, JSON_TYPE, JSON.stringify(v, null, 2) + '\n', head);
  try {
    switch (path) {
      case '/live':
        send(res, 200, TEXT_TYPE, 'live\n', head);
        return;
      case '/ready': {
        const r = h.ready();
        if (r.ok) send(res, 200, TEXT_TYPE, 'ready\n', head);
        else send(res, 503, TEXT_TYPE, `not ready: ${r.reason}\n`, head);
        return;
      }
      case '/metrics':
        send(res, 200, PROMETHEUS_CONTENT_TYPE, h.metrics(), head);
        return;
      case '/stats':
        json(h.stats());
        return;
      case '/config':
        json(h.config());
        return;
      case '/identity':
        json(h.identity());
        return;
      default:
        send(res, 404, TEXT_TYPE, 'Not Found: try /live /ready /metrics /stats /config /identity\n', head);
    }
  } catch (e) {
    send(res, 500, TEXT_TYPE, `admin error: ${(e as Error).message}\n`, head);
  }
}

/**
 * Starts the admin endpoint; resolves once it listens. Rejects with AdminListenError (port in use,
 * no permission, not a local address). Bound beyond loopback, it warns once through `logger`.
 */
export async function startAdmin(
  opts: { port: number; host: string },
  handlers: AdminHandlers,
  logger: { warn(msg: string): void } = { warn: (m) => process.stderr.write(`sidecarless: ${m}\n`) },
): Promise<AdminServer> {
  const server: Server = createServer((req, res) => handle(handlers, req, res));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) => reject(new AdminListenError(opts.host, opts.port, e));
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  server.unref();
  if (!isLoopbackHost(opts.host)) {
    const a = server.address() as AddressInfo;
    logger.warn(
      `the admin endpoint listens on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} (admin.host "${opts.host}"), beyond loopback, ` +
        `and it is UNAUTHENTICATED: anyone who can reach it reads /stats, /config (the configuration and the policy in force), ` +
        `/identity (SPIFFE ID, certificate serial and validity, trust bundles) and /metrics (every peer and route). ` +
        `Keep it behind a network policy, or set admin.host to 127.0.0.1.`,
    );
  }
  return {
    address() {
      const a = server.address() as AddressInfo;
      return { address: a.address, port: a.port };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;
const SECRET_KEY = /(key|secret|password|token|credential)s?$/i;

/**
 * A JSON-safe copy of configuration for display: functions dropped, class instances (dev CA, X509Source,
 * logger) replaced by their kind, PEM blocks and secret-looking keys redacted, Maps and Sets as plain data.
 */
export function redactConfig(value: unknown, depth = 0): unknown {
  if (depth > 32) return '[too deep]';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return PEM.test(value) ? '[redacted PEM]' : value;
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'function' || typeof value === 'symbol' || value === undefined) return undefined;
  if (value instanceof RegExp) return String(value);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return '[binary]';
  if (value instanceof Map) return redactConfig(Object.fromEntries(value), depth + 1);
  if (value instanceof Set) return redactConfig([...value], depth + 1);
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, depth + 1) ?? null);
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return `[${(value as object).constructor?.name ?? 'object'}]`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string' && SECRET_KEY.test(k)) {
      out[k] = '[redacted]';
      continue;
    }
    // createMesh({ grpc }): the app's grpc-js module, not configuration (its enums are noise here).
    if (depth === 0 && k === 'grpc' && v !== null && typeof v === 'object') {
      out[k] = '[@grpc/grpc-js module]';
      continue;
    }
    const r = redactConfig(v, depth + 1);
    if (r !== undefined) out[k] = r;
  }
  return out;
}
