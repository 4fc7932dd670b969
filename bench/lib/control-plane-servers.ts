/**
 * Loopback servers of the control-plane protocols for bench/identity.ts, on grpc-js with the
 * project's generated codecs (the tests use servers on a second stack; a bench needs no Python):
 * a Workload API that answers FetchX509SVID after a delay it records, and an Istio-compatible CA
 * (TLS, bearer token) that signs CSRs with a dev CA.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { decodePem, pemToCertDers } from '../../src/identity/pem.js';
import { IstioCertificateService } from '../../src/proto/istio/ca.js';
import { SpiffeWorkloadAPI, type X509SVIDResponse } from '../../src/proto/workload.js';

const unary = <A, B>(fn: (req: A, md: grpc.Metadata) => Promise<B>) =>
  (call: grpc.ServerUnaryCall<A, B>, cb: grpc.sendUnaryData<B>) =>
    void fn(call.request, call.metadata).then((v) => cb(null, v), (e: Error & { code?: number }) => cb({ code: e.code ?? grpc.status.INTERNAL, details: e.message }));

export interface WorkloadApiBenchServer {
  readonly address: string;
  /** performance.now() when the first message of the latest stream was written. */
  lastFirstMessageAt: number;
  close(): Promise<void>;
}

/** Serves `svid` (issued by `ca`) to every FetchX509SVID stream, `delayMs` after the call arrives. */
export async function workloadApiServer(ca: DevCa, spiffeId: string, delayMs: number): Promise<WorkloadApiBenchServer> {
  const svid = await ca.issue({ spiffeId });
  const key = decodePem(svid.keyPem).find((b) => b.label === 'PRIVATE KEY')!.der;
  const message: Partial<X509SVIDResponse> = {
    svids: [{ spiffeId, x509Svid: Buffer.concat(pemToCertDers(svid.certChainPem)), x509SvidKey: key, bundle: Buffer.concat(pemToCertDers(ca.bundlePem)), hint: '' }],
  };
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-wl-'));
  const server = new grpc.Server();
  const state: WorkloadApiBenchServer = {
    address: `unix://${join(dir, 'agent.sock')}`,
    lastFirstMessageAt: 0,
    close: async () => {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  server.addService(SpiffeWorkloadAPI as unknown as grpc.ServiceDefinition, {
    FetchX509SVID: (call: grpc.ServerWritableStream<unknown, Partial<X509SVIDResponse>>) => {
      if (call.metadata.get('workload.spiffe.io')[0] !== 'true') {
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' });
        return;
      }
      setTimeout(() => {
        state.lastFirstMessageAt = performance.now();
        call.write(message);
      }, delayMs);
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(state.address, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return state;
}

export interface IstioCaBenchServer {
  readonly address: string;
  readonly rootFile: string;
  readonly token: string;
  readonly ca: DevCa;
  /** How long each signing took on the server (ms): the CA's share of a round trip. */
  readonly signMs: number[];
  close(): Promise<void>;
}

/** An Istio-compatible CA on 127.0.0.1 (serving certificate for localhost), one token, one identity. */
export async function istioCaServer(spiffeId: string): Promise<IstioCaBenchServer> {
  const ca = await createDevCa({ trustDomain: 'cluster.local' });
  const serving = await ca.issue({ spiffeId: 'spiffe://cluster.local/ns/istio-system/sa/istiod', dnsNames: ['localhost'] });
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-ca-'));
  const rootFile = join(dir, 'root-cert.pem');
  writeFileSync(rootFile, ca.bundlePem);
  const token = 'bench-token';
  const signMs: number[] = [];
  const server = new grpc.Server();
  server.addService(IstioCertificateService as unknown as grpc.ServiceDefinition, {
    CreateCertificate: unary(async (req: { csr: string; validityDuration: number }, md: grpc.Metadata) => {
      if (md.get('authorization')[0] !== `Bearer ${token}`) throw Object.assign(new Error('request authenticate failure'), { code: grpc.status.UNAUTHENTICATED });
      const t0 = performance.now();
      const issued = await ca.signCsr(req.csr, { spiffeId, ttlMs: req.validityDuration * 1000 });
      signMs.push(performance.now() - t0);
      return { certChain: [...pemBlocks(issued.certChainPem), ...pemBlocks(ca.bundlePem)] };
    }),
  });
  const creds = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(serving.keyPem), cert_chain: Buffer.from(serving.certChainPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `localhost:${port}`,
    rootFile,
    token,
    ca,
    signMs,
    close: async () => {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}
