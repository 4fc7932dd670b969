/**
 * Istio's standard metrics (`telemetry: { dialect: 'istio' }`): the same requests the golden signals
 * count, also kept under the names and labels an Istio sidecar reports, so Istio's Grafana
 * dashboards and Kiali show a sidecarless workload next to proxied ones.
 *
 * Names, labels and value conventions follow Istio's reference, "Istio Standard Metrics"
 * (https://istio.io/latest/docs/reference/config/metrics/):
 * - `istio_requests_total` (COUNTER), `istio_request_duration_milliseconds`, `istio_request_bytes`,
 *   `istio_response_bytes` (DISTRIBUTION: Prometheus histograms);
 * - `reporter` is `destination` when the server side reports (inbound here) and `source` when the
 *   client side does (outbound);
 * - workload, namespace, app and version labels are "unknown" when that side's information is
 *   missing (a peer is known here by its SPIFFE ID only: its namespace and principal, nothing else);
 * - `destination_service` is the service host (`details.default.svc.cluster.local`),
 *   `destination_service_name` the bare name;
 * - `connection_security_policy` is `mutual_tls` on the destination side when the peer proved an
 *   identity, and `unknown` when the source reports ("cannot be properly populated" there);
 * - `response_flags` as Envoy's `%RESPONSE_FLAGS%` (`-` when none);
 * - source/destination cluster: Istio's `global.multiCluster.clusterName`, here `telemetry.cluster`.
 * Bucket boundaries: Istio configures none of its own for these histograms (the
 * `sidecar.istio.io/statsHistogramBuckets` annotation overrides them per pod), so they are Envoy's
 * default ones, `HistogramSettingsImpl::defaultBuckets()` in envoy source/common/stats/histogram_impl.cc:
 * 0.5 … 3600000, for the milliseconds and the bytes histograms alike.
 *
 * Per request, with the dialect on: five nested Map lookups keyed by values the request already
 * holds, three bucket searches and a few adds. Off, the observers read one property (null).
 * Label sets are capped (MAX_ISTIO_SERIES, a quarter of the golden signals' cap); past the cap new ones fold into one
 * series per direction whose peer, service and response code are `_other`.
 */
/**
 * At most this many Istio label sets: each is about 64 lines of 25 labels (three histograms of
 * Envoy's buckets), so the golden signals' 2,000 would make a 116 MB scrape. Past it, new label
 * sets fold into one `_other` series per direction.
 */
export const MAX_ISTIO_SERIES = 500;

/** Envoy's default histogram buckets (see above). */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

const UNKNOWN = 'unknown';
const OTHER = '_other';

/** What this workload says of itself: from the mesh options (service, namespace, labels, SPIFFE ID). */
export interface IstioWorkload {
  readonly workload: string;
  readonly namespace: string;
  readonly principal: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

/**
 * This workload's labels from the mesh options. Canonical service and revision as Istio derives
 * them for a pod: the `service.istio.io/canonical-name` / `-revision` labels, else
 * `app.kubernetes.io/name` / `-version`, else `app` / `version`, else the workload name / `latest`.
 */
export function istioWorkload(o: { service: string; namespace: string; spiffeId: string; labels: Readonly<Record<string, string>>; cluster: string }): IstioWorkload {
  const l = o.labels;
  return {
    workload: o.service,
    namespace: o.namespace,
    principal: o.spiffeId,
    app: l.app ?? UNKNOWN,
    version: l.version ?? UNKNOWN,
    canonicalService: l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l.app ?? o.service,
    canonicalRevision: l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l.version ?? 'latest',
    cluster: o.cluster,
  };
}

/** The namespace in a `spiffe://<td>/ns/<ns>/sa/<sa>` ID, else "unknown". */
export function spiffeNamespace(id: string): string {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(id);
  return m ? m[1]! : UNKNOWN;
}

/** One Istio label set's counts. */
export class IstioSeries {
  count = 0;
  readonly duration = new Float64Array(ISTIO_BUCKETS.length + 1);
  durationSum = 0;
  readonly requestBytes = new Float64Array(ISTIO_BUCKETS.length + 1);
  requestBytesSum = 0;
  readonly responseBytes = new Float64Array(ISTIO_BUCKETS.length + 1);
  responseBytesSum = 0;

  constructor(
    readonly direction: 'inbound' | 'outbound',
    /** Outbound: the service addressed; inbound: this workload's. */
    readonly service: string,
    /** Outbound: the namespace of the service addressed. */
    readonly serviceNamespace: string,
    /** The SPIFFE ID of the other side ('' when unauthenticated). */
    readonly peer: string,
    /** The status, `0` when there was no response, `_other` past the cap. */
    readonly code: string,
    readonly protocol: 'http' | 'grpc',
    readonly flags: string,
  ) {}

  record(ms: number, requestBytes: number, responseBytes: number): void {
    this.count++;
    this.duration[bucketOf(ms)]!++;
    this.durationSum += ms;
    this.requestBytes[bucketOf(requestBytes)]!++;
    this.requestBytesSum += requestBytes;
    this.responseBytes[bucketOf(responseBytes)]!++;
    this.responseBytesSum += responseBytes;
  }
}

function bucketOf(v: number): number {
  const b = ISTIO_BUCKETS;
  let i = 0;
  while (i < b.length && v > b[i]!) i++;
  return i;
}

/** service → peer → code → protocol → flags → series. */
type Index = Map<string, Map<string, Map<number | string, Map<string, Map<string, IstioSeries>>>>>;

export class IstioStats {
  readonly #series: IstioSeries[] = [];
  readonly #index: Record<'inbound' | 'outbound', Index> = { inbound: new Map(), outbound: new Map() };
  readonly #other: Partial<Record<'inbound' | 'outbound', IstioSeries>> = {};

  constructor(readonly self: IstioWorkload) {}

  /**
   * Counts one finished request. `status` undefined: no response (Istio's response_code 0).
   * `serviceNamespace` matters outbound only (inbound: this workload's namespace).
   */
  record(
    direction: 'inbound' | 'outbound',
    service: string,
    serviceNamespace: string,
    peer: string,
    status: number | undefined,
    protocol: 'http' | 'grpc',
    flags: string,
    ms: number,
    requestBytes: number,
    responseBytes: number,
  ): void {
    this.#seriesOf(direction, service, serviceNamespace, peer, status ?? 0, protocol, flags).record(ms, requestBytes, responseBytes);
  }

  #seriesOf(direction: 'inbound' | 'outbound', service: string, ns: string, peer: string, code: number, protocol: 'http' | 'grpc', flags: string): IstioSeries {
    const byService = this.#index[direction];
    let byPeer = byService.get(service);
    if (byPeer === undefined) byService.set(service, (byPeer = new Map()));
    let byCode = byPeer.get(peer);
    if (byCode === undefined) byPeer.set(peer, (byCode = new Map()));
    let byProtocol = byCode.get(code);
    if (byProtocol === undefined) byCode.set(code, (byProtocol = new Map()));
    let byFlags = byProtocol.get(protocol);
    if (byFlags === undefined) byProtocol.set(protocol, (byFlags = new Map()));
    let s = byFlags.get(flags);
    if (s !== undefined) return s;
    if (this.#series.length >= MAX_ISTIO_SERIES) {
      // Unwind what this lookup created, so a flood of distinct label sets leaves no empty maps behind.
      if (byFlags.size === 0) byProtocol.delete(protocol);
      if (byProtocol.size === 0) byCode.delete(code);
      if (byCode.size === 0) byPeer.delete(peer);
      if (byPeer.size === 0) byService.delete(service);
      let o = this.#other[direction];
      if (o === undefined) {
        o = this.#other[direction] = new IstioSeries(direction, OTHER, OTHER, OTHER, OTHER, 'http', '-');
        this.#series.push(o);
      }
      return o;
    }
    s = new IstioSeries(direction, service, ns, peer, String(code), protocol, flags);
    byFlags.set(flags, s);
    this.#series.push(s);
    return s;
  }

  allSeries(): IterableIterator<IstioSeries> {
    return this.#series.values();
  }

  /** The Istio labels of a series. */
  labels(s: IstioSeries): Record<string, string> {
    const me = this.self;
    const peer = s.peer === '' ? UNKNOWN : s.peer;
    const peerNs = s.peer === '' ? UNKNOWN : s.peer === OTHER ? OTHER : spiffeNamespace(s.peer);
    const unknownSide = { workload: UNKNOWN, namespace: peerNs, principal: peer, app: UNKNOWN, version: UNKNOWN, canonicalService: UNKNOWN, canonicalRevision: UNKNOWN, cluster: UNKNOWN };
    const inbound = s.direction === 'inbound';
    const src = inbound ? unknownSide : me;
    const dst = inbound ? me : unknownSide;
    const svc = inbound ? me.workload : s.service;
    const svcNs = inbound ? me.namespace : s.serviceNamespace;
    return {
      reporter: inbound ? 'destination' : 'source',
      source_workload: src.workload,
      source_workload_namespace: src.namespace,
      source_principal: src.principal,
      source_app: src.app,
      source_version: src.version,
      source_canonical_service: src.canonicalService,
      source_canonical_revision: src.canonicalRevision,
      source_cluster: src.cluster,
      destination_workload: dst.workload,
      destination_workload_namespace: dst.namespace,
      destination_principal: dst.principal,
      destination_app: dst.app,
      destination_version: dst.version,
      destination_service: svc === OTHER ? OTHER : `${svc}.${svcNs}.svc.cluster.local`,
      destination_service_name: svc,
      destination_service_namespace: svcNs,
      destination_canonical_service: dst.canonicalService,
      destination_canonical_revision: dst.canonicalRevision,
      destination_cluster: dst.cluster,
      request_protocol: s.protocol,
      response_code: s.code,
      grpc_response_status: '',
      response_flags: s.flags,
      connection_security_policy: inbound ? (s.peer === '' ? 'none' : 'mutual_tls') : UNKNOWN,
    };
  }
}
