/**
 * The embedded control plane's CA (issue 13): CSR signing throughput, ECDSA P-256, in certificates
 * per second — the CSR's signature verified and a leaf signed (CaState.sign), one at a time and 8 at
 * once (webcrypto's work runs off the main thread), and whole CreateCertificate calls over TLS on
 * loopback (grpc-js client and server, token verified, 8 in flight). CSRs are made beforehand: the
 * client's cost is not counted. Medians over rounds with min–max; the machine is shared.
 *   node --import tsx bench/ca.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createCsr, generateKeyPair } from '../src/identity/keys.js';
import { IstioCertificateService } from '../src/proto/istio/ca.js';
import { createCaService, tokenAuthenticator } from '../src/server/ca/ca-service.js';
import { type CaState, openCaState } from '../src/server/ca/state.js';
import { issueToken } from '../src/server/ca/tokens.js';

const TD = 'cluster.local';
const ID = `spiffe://${TD}/ns/default/sa/orders`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quiet = { info() {}, warn() {} };

/** Certificates per second of `n` calls of `one`, `concurrency` at a time. */
async function rate(n: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await one(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

async function overTls(state: CaState): Promise<{ call: (csr: string) => Promise<unknown>; close: () => Promise<void> }> {
  const serving = await state.issueServing(['localhost']);
  const svc = createCaService(grpc, { state, trustDomain: TD, authenticate: tokenAuthenticator({ state, trustDomain: TD }), logger: quiet as never });
  const server = new grpc.Server();
  server.addService(svc.definition, svc.implementation);
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.certPem), private_key: Buffer.from(serving.keyPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(state.rootPem)), { 'grpc.ssl_target_name_override': 'localhost' });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${issueToken(state, { namespace: 'default', serviceAccount: 'orders' })}`);
  const def = IstioCertificateService.CreateCertificate;
  const call = (csr: string) =>
    new Promise((resolve, reject) => client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, { csr, validityDuration: 3600 }, md, (e, r) => (e ? reject(e) : resolve(r))));
  return { call, close: async () => { client.close(); await new Promise<void>((r) => server.tryShutdown(() => r())); } };
}

export async function benchCa(opts: { quick: boolean }): Promise<{ name: string; rows: Array<Record<string, number | string>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-ca-'));
  try {
    const state = await openCaState(join(dir, 'state'), { trustDomain: TD, maxIssuedRecords: 10 });
    const csrs = await Promise.all(Array.from({ length: 64 }, async () => createCsr(await generateKeyPair(), ID)));
    const n = opts.quick ? 100 : 500;
    const rounds = opts.quick ? 3 : 7;
    const tls = await overTls(state);
    const cases: Array<[string, number, (i: number) => Promise<unknown>]> = [
      ['sign (CSR verified + leaf signed), 1 at a time', 1, (i) => state.sign(csrs[i % 64]!, ID, 3_600_000)],
      ['sign, 8 at a time', 8, (i) => state.sign(csrs[i % 64]!, ID, 3_600_000)],
      ['CreateCertificate over TLS (grpc-js, token checked), 8 in flight', 8, (i) => tls.call(csrs[i % 64]!)],
    ];
    const results = new Map<string, number[]>();
    try {
      for (const [, c, fn] of cases) await rate(20, c, fn); // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const [name, c, fn] of cases) (results.get(name) ?? results.set(name, []).get(name)!).push(await rate(n, c, fn));
      }
    } finally {
      await tls.close();
    }
    const rows = cases.map(([name]) => {
      const xs = results.get(name)!;
      return { what: name, 'certificates/s (median)': Math.round(median(xs)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)), key: 'ECDSA P-256' };
    });
    return { name: 'ca (CSR signing throughput)', rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchCa({ quick: process.argv.includes('--quick') });
  console.log(r.name);
  console.table(r.rows);
}
