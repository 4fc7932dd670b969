/**
 * The wire side of the SPIFFE Workload API client: one grpc-js channel to the configured address
 * (plaintext, as the Workload Endpoint spec §3.1 has it; never through an HTTP proxy, never any
 * other address), the `workload.spiffe.io: true` header on every call, and the FetchX509SVID
 * server stream delivered as raw message bytes (decoding is the caller's, so that one bad message
 * is refused without ending the stream).
 */
import type * as GrpcJs from '@grpc/grpc-js';
import { systemClock } from '../clock.js';
import { SpiffeWorkloadAPI } from '../proto/workload.js';
import { type WorkloadApiAddress } from './workload-api-address.js';
import { type Grpc, loadGrpc } from './grpc.js';
import { printable } from '../identity/peer-text.js';

/** The security header of SPIFFE_Workload_Endpoint.md §3; a server refuses a call without it (InvalidArgument). */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';

/** How a stream ended: the gRPC status (0 for a stream the server ended cleanly). */
export interface StreamEnd {
  readonly code: number;
  readonly codeName: string;
  readonly details: string;
}

export interface X509StreamHandlers {
  /** One X509SVIDResponse, undecoded. */
  onMessage(bytes: Buffer): void;
  /** Called once, when the stream ends for any reason but our own cancel(). */
  onEnd(end: StreamEnd): void;
}

/** One open FetchX509SVID stream. */
export interface X509Stream {
  /** Ends the stream and closes its channel; onEnd is not called after it. */
  cancel(): void;
}

// grpc-js options: no HTTP proxy (grpc_proxy/https_proxy/http_proxy would route a tcp:// address
// elsewhere), no service config from a resolver, and no channel-level reconnect backoff that would
// answer our own retries with a stale failure (each attempt gets a fresh channel). Every Workload
// API channel (X.509 and JWT) takes these.
export const CHANNEL_OPTIONS: GrpcJs.ChannelOptions = {
  'grpc.enable_http_proxy': 0,
  'grpc.service_config_disable_resolution': 1,
  'grpc.enable_retries': 0,
};

/** Opens a FetchX509SVID stream on a new channel to `address`. */
export async function openX509Stream(address: WorkloadApiAddress, handlers: X509StreamHandlers): Promise<X509Stream> {
  const grpc = await loadGrpc();
  return streamOn(grpc, address, handlers);
}

/** A client of the Workload API at `address`: plaintext (the spec's transport), with CHANNEL_OPTIONS. */
export function workloadApiClient(grpc: Grpc, address: WorkloadApiAddress): InstanceType<Grpc['Client']> {
  return new grpc.Client(address.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** The metadata every Workload API call carries: `workload.spiffe.io: true`. */
export function workloadApiMetadata(grpc: Grpc): InstanceType<Grpc['Metadata']> {
  const metadata = new grpc.Metadata();
  metadata.set(WORKLOAD_API_HEADER, 'true');
  return metadata;
}

function streamOn(grpc: Grpc, address: WorkloadApiAddress, handlers: X509StreamHandlers): X509Stream {
  const client = workloadApiClient(grpc, address);
  const metadata = workloadApiMetadata(grpc);
  const def = SpiffeWorkloadAPI.FetchX509SVID;
  const call = client.makeServerStreamRequest(def.path, def.requestSerialize, (b: Buffer) => b, {}, metadata);
  let done = false;
  call.on('data', (bytes: Buffer) => {
    if (!done) handlers.onMessage(bytes);
  });
  // Every end arrives as 'status'; 'error' repeats it for non-OK codes and must be listened to.
  call.on('error', () => {});
  call.on('status', (s: GrpcJs.StatusObject) => {
    if (done) return;
    done = true;
    client.close();
    handlers.onEnd({ code: s.code, codeName: grpc.status[s.code] ?? `code ${s.code}`, details: s.details });
  });
  return {
    cancel: () => {
      if (done) return;
      done = true;
      call.cancel();
      client.close();
    },
  };
}

/**
 * The first message of a FetchX509SVID stream, then the stream is cancelled (for
 * `sidecarless svid inspect --workload-api`). Rejects with the status the server ended with, or
 * after `timeoutMs` with no message.
 */
export function fetchFirstX509(address: WorkloadApiAddress, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let stream: X509Stream | undefined;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      stream?.cancel();
      fn();
    };
    // systemClock's timer: a plain setTimeout beyond 2^31 − 1 ms (--timeout 25d) would fire at once.
    const timer = systemClock.setTimeout(() => settle(() => reject(new Error(`no message from ${address.uri} within ${timeoutMs} ms`))), timeoutMs, { keepAlive: true });
    openX509Stream(address, {
      onMessage: (bytes) => settle(() => resolve(bytes)),
      onEnd: (end) => settle(() => reject(Object.assign(new Error(describeEnd(address, end)), { grpcCode: end.code }))),
    }).then(
      (s) => {
        stream = s;
        if (settled) s.cancel();
      },
      (e: unknown) => settle(() => reject(e)),
    );
  });
}

/** `the Workload API at unix:///… answered UNAVAILABLE (14): workload attestation failed`. */
export function describeEnd(address: WorkloadApiAddress, end: StreamEnd): string {
  if (end.code === 0) return `the SPIFFE Workload API at ${address.uri} ended the stream`;
  return `the SPIFFE Workload API at ${address.uri} answered ${end.codeName} (${end.code}): ${end.details ? printable(end.details) : '(no details)'}`;
}
