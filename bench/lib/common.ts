/**
 * Shared by the bench orchestrator (bench/index.ts) and its child processes (bench/server.ts,
 * bench/client.ts): the payload, the payments policy, argument parsing and summary statistics.
 */

/** The response body of every scenario: 1 KiB. */
export const PAYLOAD = Buffer.alloc(1024, 'x');

/** The request every client sends (allowed by PAYMENTS_POLICY for orders). */
export const REQUEST_PATH = '/api/orders/42';

export const TRUST_DOMAIN = 'cluster.local';
export const ORDERS_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/orders`;
export const PAYMENTS_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/payments`;

/** A realistic payments policy: orders may read and create orders and charge; nobody reaches /admin. */
export const PAYMENTS_POLICY = {
  rules: [
    { name: 'deny-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
    {
      name: 'orders-read',
      action: 'allow',
      from: { identities: [ORDERS_ID] },
      to: { methods: ['GET', 'HEAD'], paths: ['/api/orders/{id}', '/api/orders', '/api/charges/{id}'] },
    },
    {
      name: 'orders-write',
      action: 'allow',
      from: { identities: [ORDERS_ID] },
      to: { methods: ['POST'], paths: ['/api/orders', '/api/charge', '/api/refund'] },
    },
    { name: 'probes', action: 'allow', from: { unauthenticated: true, ipBlocks: ['127.0.0.0/8'] }, to: { methods: ['GET'], paths: ['/healthz'] } },
  ],
};

export const quietLogger = { info() {}, warn() {}, error() {}, debug() {} };

export function arg(name: string, argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function flag(name: string, argv: readonly string[] = process.argv): boolean {
  return argv.includes(name);
}

/** Value at quantile q (0..1) of an ascending array (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Interquartile range (q1, q3). */
  q1: number;
  q3: number;
  n: number;
  values: number[];
}

export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  const s = [...v].sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, q1: NaN, q3: NaN, n: 0, values: [] };
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: med, min: s[0]!, max: s[s.length - 1]!, q1: quantile(s, 0.25), q3: quantile(s, 0.75), n: s.length, values: v.map((x) => round(x, 4)) };
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** "median (min–max)" with a fixed number of digits. */
export function fmt(s: Spread, digits = 2): string {
  if (s.n === 0) return '—';
  if (s.n === 1) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

// ---- IPC messages between the orchestrator and its children ----

export interface Usage {
  /** process.cpuUsage(): user + system, µs. */
  cpuUs: number;
  /** Peak resident set size (process.resourceUsage().maxRSS), bytes. */
  maxRss: number;
  rss: number;
  /** Requests the server answered so far. */
  requests: number;
  /** TLS handshakes on the server: full and resumed. */
  handshakes?: { full: number; resumed: number };
  extra?: unknown;
}

export interface RunSpec {
  /** Which client API: undici.fetch / mesh.fetch, or undici.request (with the scenario's dispatcher). */
  path: 'fetch' | 'request';
  /** closed: `concurrency` requests always in flight; open: `rate` req/s on a fixed schedule. */
  mode: 'closed' | 'open';
  concurrency: number;
  rate: number;
  warmupMs: number;
  durationMs: number;
  /** Close the connection after each response (new connection, new handshake, every request). */
  reset?: boolean;
  /** Which target: the normal one, or the one that refuses TLS session resumption. */
  target?: 'main' | 'full';
}

export interface RunResult {
  /** Requests completed inside the measured window. */
  count: number;
  windowMs: number;
  /** Requests completed during the whole command (warm-up included): CPU is divided by this. */
  total: number;
  errors: number;
  firstError?: string;
  /** Open loop: requests not sent because too many were in flight. */
  dropped: number;
  /** Client process CPU over the whole command, µs. */
  cpuUs: number;
  /** Client process RSS at the end of the command, bytes. */
  rss: number;
  /** Open loop: latency from the intended send time (coordinated-omission free), ms. */
  latency?: { p50: number; p90: number; p99: number; max: number; n: number };
  /** Open loop: latency from the actual send time (service time), ms. */
  service?: { p50: number; p90: number; p99: number; max: number };
  /** Open loop: how late requests were sent against the schedule (client timer slack), ms. */
  sendLag?: { p50: number; p99: number };
}
