/**
 * What the gRPC interceptor (src/grpc/interceptor.ts) records per call, beside the HTTP
 * observer (inbound.ts): the mesh's golden signals per method (the route is the method's path,
 * `/package.Service/Method`), with the call's grpc-status counted as `grpc_response_status`
 * (stats.ts, prometheus.ts). Authorization decisions and audit records are the gate's, counted
 * once wherever a request was judged (events.ts). A call is ended once: by its status, or by its
 * cancellation.
 */
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
}

export class GrpcObserver {
  constructor(
    private readonly traffic: TrafficStats,
    private readonly service: string,
  ) {}

  /** A call whose peer is verified (`peer`: its SPIFFE ID) to `path` begins. */
  start(peer: string, path: string): GrpcCallObservation {
    this.traffic.active.inbound++;
    return { t0: performance.now(), peer, path, denied: false, ended: false };
  }

  /** The call ended with grpc-status `code` (idempotent). */
  end(o: GrpcCallObservation, code: number): void {
    if (o.ended) return;
    o.ended = true;
    this.traffic.active.inbound--;
    const series = this.traffic.series('inbound', this.service, o.peer, o.path);
    series.recordGrpc(code, (performance.now() - o.t0) / 1000);
    if (o.denied) series.denials++;
  }
}
