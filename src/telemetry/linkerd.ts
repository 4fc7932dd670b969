/**
 * linkerd2-proxy's HTTP metrics (`telemetry: { dialect: 'linkerd' }`): the same requests the golden
 * signals count, also kept under the names and labels a Linkerd proxy serves on its admin port, so
 * `linkerd viz`-style PromQL (success rate, RPS, latency quantiles) reads a sidecarless workload.
 *
 * Names, labels and values as linkerd2-proxy (repository linkerd/linkerd2-proxy, checked at
 * 29637b64, 2026-08):
 * - `request_total`, `response_total` (counters) and `response_latency_ms` (histogram):
 *   linkerd/http/metrics/src/requests/report.rs. request_total carries the endpoint labels only;
 *   response_latency_ms adds `status_code`; response_total adds `status_code`, `classification`,
 *   `grpc_status` and `error` (the last two empty when they do not apply: Class' labels in
 *   linkerd/app/core/src/metrics.rs). No response: no `status_code` label.
 * - endpoint labels (linkerd/app/core/src/metrics.rs, transport/labels.rs): `direction`,
 *   `authority` (absent when the request had none), `target_addr`, `target_ip`, `target_port`,
 *   then `tls="true"` with `client_id` (inbound; `""` when the client sent no certificate) or
 *   `server_id` (outbound), then outbound the destination's `dst_*` labels.
 * - classification (linkerd/app/core/src/classify.rs with linkerd/proxy/client-policy): HTTP 500–599
 *   is a failure, anything else a success; gRPC (content-type application/grpc) by its grpc-status,
 *   a failure for UNKNOWN, DEADLINE_EXCEEDED, PERMISSION_DENIED, INTERNAL, UNAVAILABLE and DATA_LOSS
 *   (client-policy's default `Codes`), a success for the others (OK, NOT_FOUND, …); an error
 *   without a response is a failure with `error` = `timeout` or `unclassified` (h2_error).
 * - latency buckets (ms): linkerd/metrics/src/latency.rs `BOUNDS`, 1 … 50000 and +Inf; the proxy
 *   records whole milliseconds (`Ms` → u64, truncated), and so does this.
 * Workload labels (`namespace`, `pod`, `deployment`, …) are not the proxy's: linkerd-viz's
 * Prometheus adds them from the pod (viz/charts/linkerd-viz/templates/prometheus.yaml, job
 * linkerd-proxy). A sidecarless workload is not a linkerd-proxy container that job keeps, so they
 * are served here from what the mesh knows: `namespace`, `pod` when known, and the pod labels the
 * mesh was given (`labels`), mapped as that job maps them.
 *
 * Per request, with the dialect on: four nested Map lookups keyed by values the request holds, a
 * status and a class lookup, a bucket search. Off, the observers read one property (null).
 */
/** Most endpoint label sets kept (each renders about 30 lines per status); past it they fold into `_other`. */
export const MAX_LINKERD_TARGETS = 500;
/** Most (label set, status, class) cells kept; past it new label sets fold into `_other`. */
export const MAX_LINKERD_CELLS = 2000;

/** linkerd2-proxy's latency bounds (ms), linkerd/metrics/src/latency.rs. */
export const LINKERD_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
]);

/** grpc-status codes linkerd2-proxy classifies as failures by default (client-policy grpc.rs `Codes::default`). */
export const LINKERD_GRPC_FAILURES: ReadonlySet<number> = new Set([2, 4, 7, 13, 14, 15]);

const OTHER = '_other';

/** Longest authority kept as a label value (a host name is at most 253, a port 6 more, brackets 2). */
export const MAX_LINKERD_AUTHORITY = 261;
const AUTHORITY = /^[A-Za-z0-9._~-]*(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * The authority as a label value: a client writes the Host header, and every line of every series
 * of its target repeats it, so a long or malformed one (not `host[:port]`, `[v6][:port]`) is
 * labelled `_other` — a 16 KiB Host header would otherwise make each scrape hundreds of MB.
 */
export function authorityLabel(authority: string): string {
  return authority.length <= MAX_LINKERD_AUTHORITY && AUTHORITY.test(authority) ? authority : OTHER;
}

export type LinkerdDirection = 'inbound' | 'outbound';

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function joinLabels(l: ReadonlyArray<readonly [string, string]>): string {
  return l.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
}

/** `host:port` as Rust's SocketAddr prints it (`[v6]:port`), IPv4-mapped IPv6 shown as IPv4. */
export function socketAddr(ip: string, port: number): { addr: string; ip: string; port: string } {
  const v4 = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  return { addr: v4.includes(':') ? `[${v4}]:${port}` : `${v4}:${port}`, ip: v4, port: String(port) };
}

/** An endpoint address as the mesh holds it (`host:port`, `[v6]:port`) split into ip and port. */
export function splitAddress(address: string): { addr: string; ip: string; port: string } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(address) ?? /^([^:]*):(\d+)$/.exec(address);
  return m ? socketAddr(m[1]!, Number(m[2])) : { addr: address, ip: address, port: '' };
}

/**
 * The proxy's `dst_*` labels: the destination's metric labels (the address set's `namespace` and
 * `service`, extended by the endpoint's own), prefixed `dst_`, sorted by name as the proxy's map is.
 */
export function dstLabels(service: string, namespace: string, endpoint: Readonly<Record<string, string>> | undefined): Array<[string, string]> {
  const m = new Map<string, string>();
  if (namespace) m.set('namespace', namespace);
  if (service) m.set('service', service);
  for (const [k, v] of Object.entries(endpoint ?? {})) m.set(k.replace(/[^a-zA-Z0-9_]/g, '_'), v);
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [`dst_${k}`, v]);
}

const METRIC_LABELS = new Set(['direction', 'authority', 'target_addr', 'target_ip', 'target_port', 'tls', 'client_id', 'server_id', 'status_code', 'classification', 'grpc_status', 'error', 'le']);

/**
 * The workload labels linkerd-viz's Prometheus would add: `namespace`, `pod` (when known), and the
 * pod labels mapped as its linkerd-proxy job maps them — `linkerd.io/proxy-job` → `k8s_job`,
 * `linkerd.io/proxy-<x>` and `linkerd.io/<x>` → `<x>`, any other label → its name (characters
 * outside `[a-zA-Z0-9_]` as `_`). A name the proxy's own labels use is left out.
 */
export function linkerdWorkloadLabels(o: { namespace: string; pod?: string; labels: Readonly<Record<string, string>> }): Array<[string, string]> {
  const out = new Map<string, string>();
  const put = (k: string, v: string) => {
    if (!METRIC_LABELS.has(k) && /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) out.set(k, v);
  };
  const sanitize = (k: string) => k.replace(/[^a-zA-Z0-9_]/g, '_');
  const entries = Object.entries(o.labels);
  // In the job's order: proxy labels, then linkerd.io ones, then every pod label (the last write wins).
  for (const [k, v] of entries) {
    if (k === 'linkerd.io/proxy-job') put('k8s_job', v);
    else if (k.startsWith('linkerd.io/proxy-')) put(sanitize(k.slice('linkerd.io/proxy-'.length)), v);
  }
  for (const [k, v] of entries) if (k.startsWith('linkerd.io/') && !k.startsWith('linkerd.io/proxy-')) put(sanitize(k.slice('linkerd.io/'.length)), v);
  for (const [k, v] of entries) if (!k.startsWith('linkerd.io/')) put(sanitize(k), v);
  out.set('namespace', o.namespace);
  if (o.pod) out.set('pod', o.pod);
  return [...out];
}

/** One response class of one status: `response_total`'s count. */
export class LinkerdClass {
  n = 0;
  constructor(
    /** `classification="…",grpc_status="…",error="…"`, escaped. */
    readonly labels: string,
  ) {}
}

/** One status of one endpoint label set: `response_latency_ms` and its classes. */
export class LinkerdStatus {
  readonly latency = new Float64Array(LINKERD_LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  /** Class key (`h1`/`h0` HTTP failure/success, `g<code>`, `e<error>`) → count. */
  readonly classes = new Map<string, LinkerdClass>();
  constructor(
    /** The HTTP status, undefined when there was no response. */
    readonly status: number | undefined,
  ) {}
}

/** One endpoint label set: `request_total`. */
export class LinkerdTarget {
  requests = 0;
  readonly statuses = new Map<number, LinkerdStatus>();
  constructor(
    readonly direction: LinkerdDirection,
    /** Its labels, escaped and joined (the workload's at the end). */
    readonly labels: string,
  ) {}
}

/** What ended: an HTTP status, a gRPC status, or an error without a response. */
export interface LinkerdOutcome {
  /** HTTP status (undefined: no response). */
  readonly status: number | undefined;
  /** grpc-status, when the call was gRPC and had one. */
  readonly grpc?: number;
  /** Linkerd's error label when there was no (complete) response: `timeout`, `unclassified`. */
  readonly error?: string;
}

type Index = Map<string, Map<string, Map<number | string, Map<string, LinkerdTarget>>>>;

function classKey(out: LinkerdOutcome): string {
  if (out.error !== undefined) return `e${out.error}`;
  if (out.grpc !== undefined) return `g${out.grpc}`;
  return out.status !== undefined && out.status >= 500 && out.status <= 599 ? 'h1' : 'h0';
}

function classLabels(out: LinkerdOutcome): string {
  if (out.error !== undefined) return `classification="failure",grpc_status="",error="${escapeLabel(out.error)}"`;
  if (out.grpc !== undefined) return `classification="${LINKERD_GRPC_FAILURES.has(out.grpc) ? 'failure' : 'success'}",grpc_status="${out.grpc}",error=""`;
  const fail = out.status !== undefined && out.status >= 500 && out.status <= 599;
  return `classification="${fail ? 'failure' : 'success'}",grpc_status="",error=""`;
}

export class LinkerdStats {
  /** The latency bounds (read by the renderer, which imports this module's types only). */
  readonly bounds = LINKERD_LATENCY_BUCKETS;
  readonly #targets: LinkerdTarget[] = [];
  readonly #index: Record<LinkerdDirection, Index> = { inbound: new Map(), outbound: new Map() };
  readonly #other: Partial<Record<LinkerdDirection, LinkerdTarget>> = {};
  readonly #workload: string;
  #cells = 0;

  constructor(workload: ReadonlyArray<readonly [string, string]>) {
    this.#workload = workload.length ? ',' + joinLabels(workload) : '';
  }

  /**
   * An inbound request ended. `authority`: its :authority or Host ('' none); `ip`/`port`: the
   * local address it arrived on; `clientId`: the verified client identity, null without a client
   * certificate (permissive). `ms`: until the response ended.
   */
  inbound(rawAuthority: string, ip: string, port: number, clientId: string | null, out: LinkerdOutcome, ms: number): void {
    const authority = authorityLabel(rawAuthority);
    const t = this.#target('inbound', authority, ip, port, clientId ?? '', () => {
      const a = socketAddr(ip, port);
      return this.#labels('inbound', authority, a, [['tls', 'true'], ['client_id', clientId ?? '']]);
    });
    this.#record(t, out, ms);
  }

  /**
   * An outbound request ended on endpoint `address` (`host:port`) whose identity `serverId` the
   * connection verified. `service`/`namespace`: the destination's (`dst_service`, `dst_namespace`);
   * `endpointLabels`: the endpoint's labels (`dst_<name>`), read when its label set is first seen.
   */
  outbound(rawAuthority: string, address: string, serverId: string, service: string, namespace: string, out: LinkerdOutcome, ms: number, endpointLabels?: Readonly<Record<string, string>>): void {
    const authority = authorityLabel(rawAuthority);
    const t = this.#target('outbound', authority, address, service, serverId, () =>
      this.#labels('outbound', authority, splitAddress(address), [['tls', 'true'], ['server_id', serverId], ...dstLabels(service, namespace, endpointLabels)]),
    );
    this.#record(t, out, ms);
  }

  #labels(direction: LinkerdDirection, authority: string, a: { addr: string; ip: string; port: string }, rest: ReadonlyArray<readonly [string, string]>): string {
    const l: Array<readonly [string, string]> = [['direction', direction]];
    if (authority) l.push(['authority', authority]);
    l.push(['target_addr', a.addr], ['target_ip', a.ip], ['target_port', a.port], ...rest);
    return joinLabels(l) + this.#workload;
  }

  #target(direction: LinkerdDirection, authority: string, k2: string, k3: number | string, k4: string, labels: () => string): LinkerdTarget {
    const by2 = this.#index[direction];
    let by3 = by2.get(authority);
    if (by3 === undefined) by2.set(authority, (by3 = new Map()));
    let by4 = by3.get(k2);
    if (by4 === undefined) by3.set(k2, (by4 = new Map()));
    let byId = by4.get(k3);
    if (byId === undefined) by4.set(k3, (byId = new Map()));
    let t = byId.get(k4);
    if (t !== undefined) return t;
    if (this.#targets.length >= MAX_LINKERD_TARGETS || this.#cells >= MAX_LINKERD_CELLS) {
      if (byId.size === 0) by4.delete(k3);
      if (by4.size === 0) by3.delete(k2);
      if (by3.size === 0) by2.delete(authority);
      return this.#otherTarget(direction);
    }
    t = new LinkerdTarget(direction, labels());
    byId.set(k4, t);
    this.#targets.push(t);
    return t;
  }

  #otherTarget(direction: LinkerdDirection): LinkerdTarget {
    let o = this.#other[direction];
    if (o === undefined) {
      const id = direction === 'inbound' ? 'client_id' : 'server_id';
      o = this.#other[direction] = new LinkerdTarget(direction, this.#labels(direction, OTHER, { addr: OTHER, ip: OTHER, port: OTHER }, [['tls', 'true'], [id, OTHER]]));
      this.#targets.push(o);
    }
    return o;
  }

  #record(t: LinkerdTarget, out: LinkerdOutcome, ms: number): void {
    t.requests++;
    const code = out.status ?? 0;
    let s = t.statuses.get(code);
    if (s === undefined) t.statuses.set(code, (s = new LinkerdStatus(out.status)));
    const key = classKey(out);
    let c = s.classes.get(key);
    if (c === undefined) {
      s.classes.set(key, (c = new LinkerdClass(classLabels(out))));
      this.#cells++;
    }
    c.n++;
    const whole = Math.max(0, Math.floor(ms)); // the proxy's Ms: whole milliseconds
    const b = LINKERD_LATENCY_BUCKETS;
    let i = 0;
    while (i < b.length && whole > b[i]!) i++;
    s.latency[i]!++;
    s.sum += whole;
    s.count++;
  }

  allTargets(): IterableIterator<LinkerdTarget> {
    return this.#targets.values();
  }
}
