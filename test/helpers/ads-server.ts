// A loopback ADS server for the transport's tests: grpc-js's Server with the project's own xDS
// codecs (src/proto), over TLS with a serving certificate for localhost issued by a dev CA (its
// root written to <dir>/root-cert.pem, what a pod mounts from istio-ca-root-cert; an unrelated
// root to <dir>/other-root.pem). It checks the bearer token like istiod (a wrong or missing token:
// UNAUTHENTICATED before any request is read), records every stream and request, and lets a test
// send responses on, or end, the current stream.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevCa } from '../../src/identity/dev-ca.js';
import {
  AggregatedDiscoveryService,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../src/proto/envoy/service/discovery/v3/discovery.js';
import type { DeepPartial } from '../../src/proto/wire.js';
import { tempDirFor } from './tmp.js';

/** Bytes sent as they are. */
class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

export interface AdsServerStream {
  readonly id: number;
  readonly authorization: string | undefined;
  readonly clusterId: string | undefined;
  readonly requests: DiscoveryRequest[];
  /** Sends one response on this stream. */
  send(response: DeepPartial<DiscoveryResponse>): void;
  /** Sends bytes as one message, whatever they are (a hostile or broken server). */
  sendRaw(bytes: Uint8Array): void;
  /** Ends this stream with a status other than OK. */
  fail(code: grpc.status, details: string): void;
  /** Ends this stream with OK (as istiod does at its max connection age). */
  end(): void;
  ended: boolean;
}

export interface AdsServer {
  readonly port: number;
  readonly address: string;
  readonly rootFile: string;
  readonly otherRootFile: string;
  /** Streams accepted (a good token), in order. */
  readonly streams: AdsServerStream[];
  /** Calls refused for their token. */
  readonly refused: Array<string | undefined>;
  /** Resolves with stream `index` (0-based) once it has `n` requests. */
  requests(index: number, n: number, timeoutMs?: number): Promise<DiscoveryRequest[]>;
  close(): Promise<void>;
}

export interface ServingTls {
  /** The dev CA's root (what a pod mounts from istio-ca-root-cert). */
  readonly rootFile: string;
  /** An unrelated root. */
  readonly otherRootFile: string;
  /** TLS with a serving certificate for localhost (and istiod.istio-system.svc) from that CA. */
  readonly credentials: grpc.ServerCredentials;
}

/** An istiod-like serving identity from a new dev CA, its root written under a temp dir of `t`. */
export async function servingTls(t: { after(fn: () => Promise<void>): void }): Promise<ServingTls> {
  const dir = tempDirFor(t, 'sidecarless-ads-');
  const ca = await DevCa.create();
  const other = await DevCa.create();
  const serving = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/istio-system/sa/istiod', dnsNames: ['localhost', 'istiod.istio-system.svc'] });
  const rootFile = join(dir, 'root-cert.pem');
  const otherRootFile = join(dir, 'other-root.pem');
  await writeFile(rootFile, ca.bundlePem);
  await writeFile(otherRootFile, other.bundlePem);
  const credentials = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(serving.keyPem), cert_chain: Buffer.from(serving.certChainPem) }], false);
  return { rootFile, otherRootFile, credentials };
}

/** Whether the call carries `authorization: Bearer <token>`, as istiod checks it; if not, the call is failed UNAUTHENTICATED. */
export function bearerAccepted(call: grpc.ServerDuplexStream<unknown, unknown>, token: string): boolean {
  if (call.metadata.get('authorization')[0]?.toString() === `Bearer ${token}`) return true;
  call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'authentication failure' });
  return false;
}

export async function startAdsServer(
  t: { after(fn: () => Promise<void>): void },
  o: { token?: string; onRequest?: (stream: AdsServerStream, request: DiscoveryRequest) => void } = {},
): Promise<AdsServer> {
  const { rootFile, otherRootFile, credentials: creds } = await servingTls(t);
  const token = o.token ?? 'good-token';
  const streams: AdsServerStream[] = [];
  const refused: Array<string | undefined> = [];
  const waiters = new Set<() => void>();
  const wake = () => [...waiters].forEach((w) => w());
  const server = new grpc.Server();
  const calls = new Set<grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>>();
  const def = AggregatedDiscoveryService.StreamAggregatedResources;
  const service = {
    StreamAggregatedResources: {
      ...def,
      responseSerialize: (v: DiscoveryResponse | Raw) => (v instanceof Raw ? Buffer.from(v.bytes) : def.responseSerialize(v)),
    },
  };
  server.addService(service as unknown as grpc.ServiceDefinition, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
      const authorization = call.metadata.get('authorization')[0]?.toString();
      if (!bearerAccepted(call, token)) {
        refused.push(authorization);
        wake();
        return;
      }
      calls.add(call);
      const s: AdsServerStream = {
        id: streams.length,
        authorization,
        clusterId: call.metadata.get('clusterid')[0]?.toString(),
        requests: [],
        send: (response) => call.write(response as DiscoveryResponse),
        sendRaw: (bytes) => call.write(new Raw(bytes) as unknown as DiscoveryResponse),
        fail: (code, details) => {
          s.ended = true;
          call.emit('error', { code, details });
        },
        end: () => {
          s.ended = true;
          call.end();
        },
        ended: false,
      };
      streams.push(s);
      call.on('data', (request: DiscoveryRequest) => {
        s.requests.push(request);
        o.onRequest?.(s, request);
        wake();
      });
      call.on('end', () => {
        if (!s.ended) call.end();
        s.ended = true;
      });
      call.on('error', () => {});
      call.on('close', () => calls.delete(call));
      wake();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  const ads: AdsServer = {
    port,
    address: `localhost:${port}`,
    rootFile,
    otherRootFile,
    streams,
    refused,
    requests: (index, n, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const s = streams[index];
          if (!s || s.requests.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(s.requests.slice(0, n));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`the ADS server did not get ${n} requests on stream ${index} in ${timeoutMs} ms: ${JSON.stringify(streams.map((x) => x.requests.length))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of calls) c.cancelled || c.end();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1_000).unref();
      }),
  };
  t.after(() => ads.close());
  return ads;
}
