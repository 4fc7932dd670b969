/**
 * `sidecarless stat --admin URL [--watch] [--interval 2s]`: golden signals per peer and route, like
 * `linkerd viz stat`. Scrapes the admin endpoint's `/metrics` twice, `interval` apart, and prints
 * requests per second, success rate (not 5xx, not failed), p50/p95/p99 latency (from the histogram
 * buckets, as Prometheus' histogram_quantile), retries and denials, inbound and outbound.
 */
import { parseDuration } from '../duration.js';
import { type PromScrape, parsePrometheus } from '../telemetry/prometheus.js';
import { bucketQuantile } from '../telemetry/stats.js';
import { ScrapeError } from '../errors.js';
import { type Io, UsageError, defineCommand } from './args.js';
import { renderXds } from './stat-xds.js';
import type { XdsStatus } from '../control-plane/xds/xds-status.js';

interface Totals {
  direction: string;
  service: string;
  peer: string;
  route: string;
  requests: number;
  failures: number;
  /** Finite bucket bounds (from the scrape's `le` labels) and non-cumulative counts per bucket, +Inf last. */
  bounds: number[];
  buckets: number[];
  retries: number;
  denials: number;
}

export interface Snapshot {
  readonly at: number;
  readonly rows: ReadonlyMap<string, Totals>;
}

const keyOf = (l: Readonly<Record<string, string>>) => `${l.direction ?? ''}\u0000${l.service ?? ''}\u0000${l.peer ?? ''}\u0000${l.route ?? ''}`;

/** Totals per (direction, service, peer, route) from one scrape of /metrics. */
export function totalsFrom(scrape: PromScrape, at: number): Snapshot {
  const rows = new Map<string, Totals>();
  const row = (l: Readonly<Record<string, string>>, direction = l.direction ?? 'outbound') => {
    const k = keyOf({ ...l, direction });
    let r = rows.get(k);
    if (!r) {
      r = { direction, service: l.service ?? '', peer: l.peer ?? '', route: l.route ?? '', requests: 0, failures: 0, bounds: [], buckets: [], retries: 0, denials: 0 };
      rows.set(k, r);
    }
    return r;
  };
  const cumulative = new Map<string, Array<{ le: number; v: number }>>();
  for (const s of scrape.samples) {
    switch (s.name) {
      case 'sidecarless_requests_total': {
        const r = row(s.labels);
        r.requests += s.value;
        if (s.labels.status_class === '5xx' || s.labels.status_class === 'error') r.failures += s.value;
        break;
      }
      case 'sidecarless_request_duration_seconds_bucket': {
        const k = keyOf(s.labels);
        row(s.labels);
        const list = cumulative.get(k) ?? [];
        list.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), v: s.value });
        cumulative.set(k, list);
        break;
      }
      case 'sidecarless_retries_total':
        row(s.labels, 'outbound').retries += s.value;
        break;
      case 'sidecarless_denials_total':
        row(s.labels).denials += s.value;
        break;
    }
  }
  for (const [k, list] of cumulative) {
    const r = rows.get(k)!;
    list.sort((a, b) => a.le - b.le);
    let prev = 0;
    for (const b of list) {
      if (b.le !== Infinity) r.bounds.push(b.le);
      r.buckets.push(Math.max(0, b.v - prev));
      prev = b.v;
    }
  }
  return { at, rows };
}

export interface StatRow {
  direction: string;
  service: string;
  peer: string;
  route: string;
  rps: number;
  successRate: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  retries: number;
  denials: number;
  requests: number;
}

/** Rates between two snapshots (a counter that went down — a restart — counts from zero). */
export function statRows(before: Snapshot | undefined, after: Snapshot): StatRow[] {
  const seconds = before ? Math.max(0.001, (after.at - before.at) / 1000) : 1;
  const out: StatRow[] = [];
  for (const [k, a] of after.rows) {
    const b = before?.rows.get(k);
    const reset = b !== undefined && a.requests < b.requests;
    const d = (x: number, y: number | undefined) => (reset || y === undefined ? x : Math.max(0, x - y));
    const requests = d(a.requests, b?.requests);
    const failures = d(a.failures, b?.failures);
    const sameBounds = b !== undefined && b.bounds.length === a.bounds.length && b.bounds.every((x, i) => x === a.bounds[i]);
    const buckets = a.buckets.map((v, i) => (sameBounds ? d(v, b.buckets[i]) : v));
    out.push({
      direction: a.direction,
      service: a.service,
      peer: a.peer,
      route: a.route,
      requests,
      rps: requests / seconds,
      successRate: requests > 0 ? (requests - failures) / requests : null,
      p50: bucketQuantile(0.5, buckets, a.bounds),
      p95: bucketQuantile(0.95, buckets, a.bounds),
      p99: bucketQuantile(0.99, buckets, a.bounds),
      retries: d(a.retries, b?.retries),
      denials: d(a.denials, b?.denials),
    });
  }
  return out.sort((x, y) => x.direction.localeCompare(y.direction) || x.service.localeCompare(y.service) || x.peer.localeCompare(y.peer) || x.route.localeCompare(y.route));
}

function ms(s: number | null): string {
  if (s === null) return '-';
  const v = s * 1000;
  return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : v >= 10 ? `${Math.round(v)}ms` : `${v.toFixed(1)}ms`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The stat table: an INBOUND and an OUTBOUND section. */
export function renderStat(rows: StatRow[], seconds: number): string {
  const out: string[] = [];
  for (const direction of ['inbound', 'outbound']) {
    const mine = rows.filter((r) => r.direction === direction);
    out.push(`${direction.toUpperCase()} (over ${seconds.toFixed(1)} s)`);
    if (mine.length === 0) {
      out.push('  no requests', '');
      continue;
    }
    const header = [direction === 'inbound' ? 'FROM (PEER)' : 'TO (PEER)', 'SERVICE', 'ROUTE', 'RPS', 'SUCCESS', 'P50', 'P95', 'P99', 'RETRIES', 'DENIALS'];
    const cells = mine.map((r) => [
      r.peer || 'unauthenticated',
      r.service,
      r.route || '[default]',
      r.rps.toFixed(1),
      r.successRate === null ? '-' : `${(r.successRate * 100).toFixed(2)}%`,
      ms(r.p50),
      ms(r.p95),
      ms(r.p99),
      direction === 'outbound' ? String(r.retries) : '-',
      direction === 'inbound' ? String(r.denials) : '-',
    ]);
    out.push(...table(header, cells).map((l) => `  ${l}`), '');
  }
  return out.join('\n');
}

/** One scrape of `<admin>/metrics`. Throws ScrapeError saying why (unreachable, status, not Prometheus text). */
export async function scrapeAdmin(admin: string, fetchFn: typeof fetch = fetch): Promise<Snapshot> {
  let url: URL;
  try {
    url = new URL('/metrics', admin.includes('://') ? admin : `http://${admin}`);
  } catch {
    throw new UsageError(`--admin "${admin}" is not a URL or host:port (e.g. http://127.0.0.1:9990)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--admin "${admin}": the admin endpoint speaks http://`);
  let body: string;
  try {
    const res = await fetchFn(url, { signal: AbortSignal.timeout(5_000) });
    body = await res.text();
    if (res.status !== 200) throw new ScrapeError(`${url.href} answered ${res.status}: is ${url.origin} a sidecarless admin endpoint?`);
  } catch (e) {
    if (e instanceof ScrapeError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why =
      (e as Error).name === 'TimeoutError' ? 'no answer within 5 s'
      : cause?.message === 'bad port' ? `port ${url.port} is one the Fetch standard blocks; give the admin endpoint another port`
      : (cause?.code ?? cause?.message ?? (e as Error).message);
    throw new ScrapeError(`cannot reach the admin endpoint ${url.origin}: ${why}`, { cause: e });
  }
  try {
    return totalsFrom(parsePrometheus(body), Date.now());
  } catch (e) {
    throw new ScrapeError(`${url.href} is not Prometheus text (${(e as Error).message}): is ${url.origin} a sidecarless admin endpoint?`, { cause: e });
  }
}

/**
 * The xDS section, when the mesh has a control plane: `/config`'s `xds` part rendered; '' when it
 * has none or /config cannot be read (the traffic table was printed already; this is extra).
 */
export async function xdsSection(admin: string, fetchFn: typeof fetch = fetch): Promise<string> {
  try {
    const url = new URL('/config', admin.includes('://') ? admin : `http://${admin}`);
    const res = await fetchFn(url, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) return '';
    const body = (await res.json()) as { xds?: XdsStatus };
    return body.xds && Array.isArray(body.xds.ads?.types) ? renderXds(body.xds) : '';
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `--watch`: a table every interval, forever. A failed scrape prints one line (why, and that it
 * keeps trying) and starts the rates afresh from the next good scrape, so an outage or a restart
 * (counters back to zero) never shows as a rate.
 */
async function watch(admin: string, intervalMs: number, io: Io): Promise<never> {
  let before: Snapshot | undefined;
  let failing = false;
  for (;;) {
    try {
      const after = await scrapeAdmin(admin);
      if (before) {
        io.stdout(`\n${new Date(after.at).toISOString()}  ${admin}`);
        io.stdout(renderStat(statRows(before, after), (after.at - before.at) / 1000));
        const xds = await xdsSection(admin);
        if (xds) io.stdout(xds);
      } else if (failing) {
        io.stdout(`\n${new Date(after.at).toISOString()}  ${admin}  answers again; rates start from this scrape`);
      }
      before = after;
      failing = false;
    } catch (e) {
      if (!(e instanceof ScrapeError)) throw e;
      io.stderr(`sidecarless: ${new Date().toISOString()} scrape failed: ${e.message}; still watching, next try in ${(intervalMs / 1000).toFixed(1)} s [${e.code}]`);
      before = undefined;
      failing = true;
    }
    await sleep(intervalMs);
  }
}

export const statCommand = defineCommand({
  name: 'stat',
  summary: 'requests/s, success rate, p50/p95/p99, retries and denials per peer and route, from an admin endpoint',
  description:
    'Golden signals per peer and route, like "linkerd viz stat": scrapes the admin endpoint\'s /metrics\n' +
    '(createMesh({ admin: { port } })) twice, --interval apart, and prints requests per second, success\n' +
    'rate (not 5xx, not failed), p50/p95/p99 latency, retries (outbound) and denials (inbound).\n' +
    'With a controlPlane, also its xDS resources (version, ACK/NACK state, last error) and discovered hosts.\n' +
    'With --watch it prints a table every interval and keeps going through failed scrapes (one line each).',
  options: {
    admin: { type: 'string', required: true, value: 'URL', help: 'the admin endpoint, e.g. http://127.0.0.1:9990 or 127.0.0.1:9990' },
    watch: { type: 'boolean', help: 'print a table every interval until interrupted (Ctrl-C)' },
    interval: { type: 'string', value: '2s', help: 'time between scrapes, at least 100ms (default 2s)' },
  },
  exits: '0 printed, 1 the admin endpoint could not be scraped (without --watch), 2 usage error',
  examples: ['sidecarless stat --admin 127.0.0.1:9990', 'sidecarless stat --admin http://127.0.0.1:9990 --watch --interval 5s'],
  async run(v, io) {
    let intervalMs: number;
    try {
      intervalMs = parseDuration(v.interval ?? '2s');
    } catch (e) {
      throw new UsageError(`--interval: ${(e as Error).message}`);
    }
    if (intervalMs < 100) throw new UsageError(`--interval must be at least 100ms, got "${v.interval}"`);
    if (intervalMs > 86_400_000) throw new UsageError(`--interval must be at most 1d, got "${v.interval}"`);
    const admin = v.admin!;
    if (v.watch) return watch(admin, intervalMs, io);
    const before = await scrapeAdmin(admin);
    await sleep(intervalMs);
    const after = await scrapeAdmin(admin);
    io.stdout(renderStat(statRows(before, after), (after.at - before.at) / 1000));
    const xds = await xdsSection(admin);
    if (xds) io.stdout(xds);
    return 0;
  },
});
