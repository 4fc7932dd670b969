/**
 * The Prometheus text exposition format (version 0.0.4) of the mesh's own golden signals, and a
 * strict parser for it (used by `sidecarless stat` and by tests). No dependencies.
 */
import { type SourceStatus } from '../sources/source.js';
import { ISTIO_BUCKETS, type IstioStats } from './istio.js';
import type { LinkerdStats } from './linkerd.js';
import { LATENCY_BUCKETS, type TrafficStats } from './stats.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface PrometheusInput {
  readonly service: string;
  readonly traffic: TrafficStats;
  readonly identity: SourceStatus;
  readonly handshakes: { authenticated: number; unauthenticated: number; rejected: number; tlsErrors: number };
  /** The mesh clock's now (ms), for times shown as seconds from now. */
  readonly now: number;
}

const IDENTITY_STATES = ['starting', 'ready', 'stale', 'expired', 'closed'] as const;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

class Writer {
  readonly lines: string[] = [];
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, l: Record<string, string>, v: number): void {
    this.lines.push(`${name}${labels(l)} ${num(v)}`);
  }
}

/** Renders the golden signals as Prometheus text. */
export function renderPrometheus(input: PrometheusInput): string {
  const w = new Writer();
  const t = input.traffic;
  const series = [...t.allSeries()];
  const key = (s: { direction: string; service: string; peer: string; route: string }) => ({ direction: s.direction, service: s.service, peer: s.peer, route: s.route });

  w.family('sidecarless_requests_total', 'counter', 'Requests that ended, by direction, peer SPIFFE ID, route and status class (error: no response).');
  for (const s of series) {
    for (const [cls, n] of Object.entries(s.byClass)) if (n > 0) w.sample('sidecarless_requests_total', { ...key(s), status_class: cls }, n);
  }
  w.family('sidecarless_request_duration_seconds', 'histogram', 'Request latency: inbound until the response ended, outbound for all tries of a logical request.');
  for (const s of series) {
    let cum = 0;
    LATENCY_BUCKETS.forEach((b, i) => {
      cum += s.buckets[i]!;
      w.sample('sidecarless_request_duration_seconds_bucket', { ...key(s), le: String(b) }, cum);
    });
    cum += s.buckets[LATENCY_BUCKETS.length]!;
    w.sample('sidecarless_request_duration_seconds_bucket', { ...key(s), le: '+Inf' }, cum);
    w.sample('sidecarless_request_duration_seconds_sum', key(s), s.sum);
    w.sample('sidecarless_request_duration_seconds_count', key(s), s.count);
  }
  if (series.some((s) => s.grpc)) {
    w.family('sidecarless_grpc_responses_total', 'counter', 'Inbound gRPC calls that ended, by peer, method (route) and grpc_response_status.');
    for (const s of series) for (const [code, n] of s.grpc ?? []) w.sample('sidecarless_grpc_responses_total', { ...key(s), grpc_response_status: String(code) }, n);
  }
  w.family('sidecarless_retries_total', 'counter', 'Outbound retries, by service, peer, route and reason (failure kind or status).');
  for (const s of series) for (const [reason, n] of s.retries) w.sample('sidecarless_retries_total', { service: s.service, peer: s.peer, route: s.route, reason }, n);
  w.family('sidecarless_denials_total', 'counter', 'Inbound requests refused by the authorization policy.');
  for (const s of series) if (s.denials > 0) w.sample('sidecarless_denials_total', key(s), s.denials);
  w.family('sidecarless_authz_decisions_total', 'counter', 'Authorization decisions, by decision, rule and the rule action (audit: an audit rule matched).');
  for (const e of t.authzEntries()) w.sample('sidecarless_authz_decisions_total', { decision: e.decision, rule: e.rule, action: e.action }, e.count);
  w.family('sidecarless_retry_budget_exhausted_total', 'counter', 'Retries refused because the service retry budget was exhausted.');
  for (const [service, n] of t.budgetExhausted) w.sample('sidecarless_retry_budget_exhausted_total', { service }, n);
  w.family('sidecarless_endpoint_ejections_total', 'counter', 'Endpoints ejected by failure accrual.');
  for (const [service, m] of t.ejections) for (const [endpoint, n] of m) w.sample('sidecarless_endpoint_ejections_total', { service, endpoint }, n);
  w.family('sidecarless_snapshot_applications_total', 'counter', 'Mesh snapshots offered to the mesh, by source and result (accepted: applied whole; rejected: the previous one stays).');
  for (const [source, c] of t.snapshots) {
    for (const result of ['accepted', 'rejected'] as const) if (c[result] > 0) w.sample('sidecarless_snapshot_applications_total', { source, result }, c[result]);
  }
  w.family('sidecarless_active_requests', 'gauge', 'Requests in flight.');
  for (const d of ['inbound', 'outbound'] as const) w.sample('sidecarless_active_requests', { direction: d, service: input.service }, t.active[d]);

  const id = input.identity;
  const spiffeId = id.spiffeId ?? '';
  w.family('sidecarless_identity_ready', 'gauge', '1 when the workload holds a valid X.509-SVID.');
  w.sample('sidecarless_identity_ready', { spiffe_id: spiffeId }, id.state === 'ready' || id.state === 'stale' ? 1 : 0);
  w.family('sidecarless_identity_expiry_seconds', 'gauge', 'Seconds until the workload X.509-SVID expires.');
  if (id.secondsLeft !== undefined) w.sample('sidecarless_identity_expiry_seconds', { spiffe_id: spiffeId }, id.secondsLeft);
  w.family('sidecarless_identity_rotations_total', 'counter', 'Workload X.509-SVID rotations.');
  w.sample('sidecarless_identity_rotations_total', { spiffe_id: spiffeId }, id.rotations);
  w.family('sidecarless_identity_info', 'gauge', 'The workload X.509-SVID in use (always 1): its source kind, serial number and Workload API hint.');
  if (id.serialNumber !== undefined) w.sample('sidecarless_identity_info', { spiffe_id: spiffeId, source: id.kind, serial: id.serialNumber, hint: id.hint ?? '' }, 1);
  w.family('sidecarless_identity_state', 'gauge', '1 for the state the identity source is in (starting, ready, stale: last refresh failed, expired, closed).');
  for (const state of IDENTITY_STATES) w.sample('sidecarless_identity_state', { spiffe_id: spiffeId, source: id.kind, state }, id.state === state ? 1 : 0);
  w.family('sidecarless_identity_refresh_seconds', 'gauge', 'Seconds until the identity source next asks its CA for an SVID (absent for sources that are pushed to).');
  if (id.nextRefresh !== undefined) w.sample('sidecarless_identity_refresh_seconds', { spiffe_id: spiffeId, source: id.kind }, Math.max(0, (Date.parse(id.nextRefresh) - input.now) / 1000));
  w.family('sidecarless_identity_refresh_failures_total', 'counter', 'Identity refreshes that failed (each kept the last good SVID; the last error is in /identity).');
  w.sample('sidecarless_identity_refresh_failures_total', { spiffe_id: spiffeId, source: id.kind }, id.failures ?? 0);
  w.family('sidecarless_tls_handshakes_total', 'counter', 'Inbound TLS connections, by result.');
  const h = input.handshakes;
  for (const [result, n] of [['authenticated', h.authenticated], ['unauthenticated', h.unauthenticated], ['rejected', h.rejected], ['tls_error', h.tlsErrors]] as const) {
    w.sample('sidecarless_tls_handshakes_total', { result }, n);
  }
  if (t.istio) renderIstio(w, t.istio);
  if (t.linkerd) renderLinkerd(w, t.linkerd);
  return w.lines.join('\n') + '\n';
}

/**
 * Istio's standard metrics (istio.ts says where names, labels and buckets come from). Each series'
 * 25 labels are escaped and joined once, then shared by its 3 × 21 histogram lines: at the series
 * cap that is the difference between a scrape that takes a fraction of a second and several.
 */
function renderIstio(w: Writer, istio: IstioStats): void {
  const series = [...istio.allSeries()];
  const base = series.map((s) => labels(istio.labels(s)).slice(1, -1));
  w.family('istio_requests_total', 'counter', 'Requests handled, with Istio\'s standard labels (reporter=destination: inbound, source: outbound).');
  series.forEach((s, i) => w.lines.push(`istio_requests_total{${base[i]}} ${s.count}`));
  const bounds = ISTIO_BUCKETS.map((b) => `,le="${b}"} `);
  const histogram = (name: string, help: string, pick: (s: (typeof series)[number]) => { buckets: Float64Array; sum: number }) => {
    w.family(name, 'histogram', help);
    series.forEach((s, i) => {
      const l = base[i]!;
      const { buckets, sum } = pick(s);
      let cum = 0;
      for (let j = 0; j < bounds.length; j++) {
        cum += buckets[j]!;
        w.lines.push(`${name}_bucket{${l}${bounds[j]}${cum}`);
      }
      cum += buckets[ISTIO_BUCKETS.length]!;
      w.lines.push(`${name}_bucket{${l},le="+Inf"} ${cum}`, `${name}_sum{${l}} ${num(sum)}`, `${name}_count{${l}} ${s.count}`);
    });
  };
  histogram('istio_request_duration_milliseconds', 'Request duration (ms).', (s) => ({ buckets: s.duration, sum: s.durationSum }));
  histogram('istio_request_bytes', 'Request body sizes (bytes; inbound: as declared by Content-Length).', (s) => ({ buckets: s.requestBytes, sum: s.requestBytesSum }));
  histogram('istio_response_bytes', 'Response body sizes (bytes; inbound over HTTP/1.1: bytes written after the head).', (s) => ({ buckets: s.responseBytes, sum: s.responseBytesSum }));
}

/**
 * linkerd2-proxy's HTTP metrics (linkerd.ts says where names, labels and buckets come from), in
 * the proxy's order: request_total, response_latency_ms, response_total, with its HELP texts.
 */
function renderLinkerd(w: Writer, linkerd: LinkerdStats): void {
  const targets = [...linkerd.allTargets()];
  w.family('request_total', 'counter', 'Total count of HTTP requests.');
  for (const t of targets) w.lines.push(`request_total{${t.labels}} ${t.requests}`);
  w.family('response_latency_ms', 'histogram', "Elapsed times between a request's headers being received and its response stream completing");
  const bounds = linkerd.bounds.map((b) => `,le="${b}"} `);
  for (const t of targets) {
    for (const s of t.statuses.values()) {
      const l = s.status === undefined ? t.labels : `${t.labels},status_code="${s.status}"`;
      let cum = 0;
      for (let j = 0; j < bounds.length; j++) {
        cum += s.latency[j]!;
        w.lines.push(`response_latency_ms_bucket{${l}${bounds[j]}${cum}`);
      }
      cum += s.latency[bounds.length]!;
      w.lines.push(`response_latency_ms_bucket{${l},le="+Inf"} ${cum}`, `response_latency_ms_count{${l}} ${s.count}`, `response_latency_ms_sum{${l}} ${s.sum}`);
    }
  }
  w.family('response_total', 'counter', 'Total count of HTTP responses.');
  for (const t of targets) {
    for (const s of t.statuses.values()) {
      const l = s.status === undefined ? t.labels : `${t.labels},status_code="${s.status}"`;
      for (const c of s.classes.values()) w.lines.push(`response_total{${l},${c.labels}} ${c.n}`);
    }
  }
}

/** One sample of a scrape. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromScrape {
  readonly samples: PromSample[];
  /** Declared family types. */
  readonly types: ReadonlyMap<string, string>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: number): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(s)) throw new SyntaxError(`line ${line}: invalid value "${s}"`);
  return Number(s);
}

/**
 * Parses Prometheus text exposition strictly: every line is a comment (`# HELP`, `# TYPE`, other),
 * blank, or `name{label="value",…} value [timestamp]`; a family's TYPE comes at most once and
 * before its samples. Throws SyntaxError naming the line.
 */
export function parsePrometheus(text: string): PromScrape {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const seenSamples = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) return; // other comments are allowed
      if (!METRIC_NAME.test(m[2]!)) throw new SyntaxError(`line ${n}: invalid metric name "${m[2]}"`);
      if (m[1] === 'TYPE') {
        if (!TYPES.has((m[3] ?? '').trim())) throw new SyntaxError(`line ${n}: invalid type "${m[3]}"`);
        if (types.has(m[2]!)) throw new SyntaxError(`line ${n}: second TYPE for ${m[2]}`);
        if (seenSamples.has(m[2]!)) throw new SyntaxError(`line ${n}: TYPE for ${m[2]} after its samples`);
        types.set(m[2]!, m[3]!.trim());
      }
      return;
    }
    const nm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!nm) throw new SyntaxError(`line ${n}: expected a metric name: ${line}`);
    const name = nm[1]!;
    let pos = name.length;
    const lbl: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const ln = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(pos));
        if (!ln || !LABEL_NAME.test(ln[1]!)) throw new SyntaxError(`line ${n}: invalid label at column ${pos + 1}`);
        pos += ln[0].length;
        let v = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) throw new SyntaxError(`line ${n}: unterminated label value`);
          pos++;
          if (c === '"') break;
          if (c === '\\') {
            const e = line[pos++];
            if (e === 'n') v += '\n';
            else if (e === '\\' || e === '"') v += e;
            else throw new SyntaxError(`line ${n}: invalid escape \\${e}`);
          } else v += c;
        }
        if (ln[1]! in lbl) throw new SyntaxError(`line ${n}: label ${ln[1]} repeated`);
        lbl[ln[1]!] = v;
        while (line[pos] === ' ') pos++;
        if (line[pos] === ',') pos++;
        else if (line[pos] !== '}') throw new SyntaxError(`line ${n}: expected , or } at column ${pos + 1}`);
      }
    }
    const rest = line.slice(pos);
    const vm = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
    if (!vm) throw new SyntaxError(`line ${n}: expected a value after ${name}`);
    const family = [...types.keys()].find((f) => name === f || (types.get(f) === 'histogram' && (name === `${f}_bucket` || name === `${f}_sum` || name === `${f}_count`)));
    seenSamples.add(family ?? name);
    if (types.get(family ?? '') === 'histogram' && name.endsWith('_bucket') && lbl.le === undefined) throw new SyntaxError(`line ${n}: histogram bucket without le`);
    samples.push({ name, labels: lbl, value: parseValue(vm[1]!, n) });
  });
  return { samples, types };
}
