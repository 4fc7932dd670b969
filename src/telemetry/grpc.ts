/**
 * What the gRPC interceptor (src/grpc/interceptor.ts) records per call, beside the HTTP
 * observer (inbound.ts): the mesh's golden signals per method (the route is the method's path,
 * `/package.Service/Method`), with the call's grpc-status counted as `grpc_response_status`
 * (stats.ts, prometheus.ts). Authorization decisions and audit records are the gate's, counted
 * once wherever a request was judged (events.ts). A call is ended once: by its status, or by its
 * cancellation. With a MeterProvider registered, each call is also an `http.server.request.duration`
 * point (gRPC is HTTP/2: POST, the method's path as `http.route`, status 200) with the RPC
 * semantic-convention attributes `rpc.system` grpc, `rpc.service`, `rpc.method`,
 * `rpc.grpc.status_code`.
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR, MAX_ATTRIBUTE_SETS, instruments } from './instruments.js';
import { type TrafficStats } from './stats.js';

/** grpc-status CANCELLED: the call ended without a status from the server. */
export const GRPC_CANCELLED = 1;

/** One observed call. */
export interface GrpcCallObservation {
  readonly t0: number;
  readonly peer: string;
  readonly path: string;
  denied: boolean;
  ended: boolean;
  /** With the Linkerd dialect on: the local address and port the call arrived on (else undefined, 0). */
  readonly localIp?: string;
  readonly localPort?: number;
  /** Its :authority, once known ('' none; read by the Linkerd dialect only). */
  authority?: string;
}

/** Attribute sets per (peer, path, code), shared by every mesh of the process, capped. */
const attrSets = new Map<string, Map<string, Map<number, Attributes>>>();
let attrCount = 0;

function durationAttrs(service: string, peer: string, path: string, code: number): Attributes {
  const key = `${service} ${peer}`;
  let byPath = attrSets.get(key);
  if (byPath === undefined) attrSets.set(key, (byPath = new Map()));
  let byCode = byPath.get(path);
  if (byCode === undefined) byPath.set(path, (byCode = new Map()));
  let a = byCode.get(code);
  if (a !== undefined) return a;
  const slash = path.lastIndexOf('/');
  a = {
    [ATTR.method]: 'POST',
    [ATTR.status]: 200,
    [ATTR.scheme]: 'https',
    [ATTR.route]: path,
    [ATTR.service]: service,
    [ATTR.tls]: 'mtls',
    [ATTR.peer]: peer,
    'rpc.system': 'grpc',
    'rpc.service': path.slice(1, Math.max(1, slash)),
    'rpc.method': path.slice(slash + 1),
    'rpc.grpc.status_code': code,
  };
  if (attrCount < MAX_ATTRIBUTE_SETS) {
    attrCount++;
    byCode.set(code, a);
  }
  return a;
}

export class GrpcObserver {
  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
  ) {}

  /**
   * A call whose peer is verified (`peer`: its SPIFFE ID or DNS-like name) to `path` begins, on a
   * connection whose local end is `socket` (read only with the Linkerd dialect on).
   */
  start(peer: string, path: string, socket?: { readonly localAddress?: string; readonly localPort?: number }): GrpcCallObservation {
    this.traffic.active.inbound++;
    const t0 = performance.now();
    if (this.traffic.linkerd === null || !socket) return { t0, peer, path, denied: false, ended: false };
    return { t0, peer, path, denied: false, ended: false, localIp: socket.localAddress ?? '', localPort: socket.localPort ?? 0, authority: '' };
  }

  /** The call ended with grpc-status `code` (idempotent). */
  end(o: GrpcCallObservation, code: number): void {
    if (o.ended) return;
    o.ended = true;
    this.traffic.active.inbound--;
    const series = this.traffic.series('inbound', this.service, o.peer, o.path);
    const seconds = (performance.now() - o.t0) / 1000;
    series.recordGrpc(code, seconds);
    if (o.denied) series.denials++;
    // gRPC answers HTTP 200 (a status in trailers, or trailers-only); Linkerd classifies by grpc-status.
    if (o.localIp !== undefined) this.traffic.linkerd?.inbound(o.authority ?? '', o.localIp, o.localPort ?? 0, o.peer, { status: 200, grpc: code }, seconds * 1000);
    instruments()?.serverDuration.record(seconds, durationAttrs(this.service, o.peer, o.path, code));
  }
}
