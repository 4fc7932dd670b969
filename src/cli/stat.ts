/**
 * `sidecarless stat --admin URL [--watch] [--interval 2s]`: golden signals per peer and route, like
 * `linkerd viz stat`. Scrapes the admin endpoint's `/metrics` twice, `interval` apart, and prints
 * requests per second, success rate (not 5xx, not failed), p50/p95/p99 latency (from the histogram
 * buckets, as Prometheus' histogram_quantile), retries and denials, inbound and outbound.
 */
import { parseDuration } from '../duration.js';
import { type PromScrape, parsePrometheus } from '../telemetry/prometheus.js';
import { bucketQuantile } from '../telemetry/stats.js';
import { type Io, UsageError, parse } from './args.js';

export const statUsage = 'usage: sidecarless stat --admin URL [--watch] [--interval 2s]   (URL: the admin endpoint, e.g. http://127.0.0.1:9990)';

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

/** One scrape of `<admin>/metrics`. */
export async function scrapeAdmin(admin: string, fetchFn: typeof fetch = fetch): Promise<Snapshot> {
  const url = new URL('/metrics', admin.includes('://') ? admin : `http://${admin}`);
  let res: Response;
  try {
    res = await fetchFn(url, { signal: AbortSignal.timeout(5_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach the admin endpoint ${url.origin}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  if (res.status !== 200) throw new Error(`${url.href} answered ${res.status}`);
  return totalsFrom(parsePrometheus(await res.text()), Date.now());
}

export async function stat(args: string[], io: Io): Promise<number> {
  const v = parse(args, { admin: { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' } }, ['admin']);
  let intervalMs: number;
  try {
    intervalMs = parseDuration(v.interval ?? '2s');
  } catch (e) {
    throw new UsageError(`--interval: ${(e as Error).message}`);
  }
  if (intervalMs < 100) throw new UsageError('--interval must be at least 100ms');
  const admin = v.admin!;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    let before = await scrapeAdmin(admin);
    for (;;) {
      await sleep(intervalMs);
      const after = await scrapeAdmin(admin);
      const seconds = (after.at - before.at) / 1000;
      if (v.watch) io.stdout(`\n${new Date(after.at).toISOString()}  ${admin}`);
      io.stdout(renderStat(statRows(before, after), seconds));
      if (!v.watch) return 0;
      before = after;
    }
  } catch (e) {
    io.stderr(`sidecarless stat: ${(e as Error).message}`);
    return 1;
  }
}
