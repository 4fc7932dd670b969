// The ADS server's grpc-js driver (ads-service.ts) over a real loopback grpc-js Server and a raw
// grpc-js client stream (the project's codecs, raw bytes when a test sends garbage): refusals
// (no node, bad bytes, authenticate), events, clients() status, coalesced changed(), removal of
// ended streams. One server per test, all in-process (~100 ms); time for the coalescing timer
// comes from a VirtualClock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { VirtualClock } from '../../../src/clock.js';
import { type DiscoveryRequest, type DiscoveryResponse, decodeDiscoveryResponse, encodeDiscoveryRequest } from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import type { DeepPartial } from '../../../src/proto/wire.js';
import { TYPE_URLS } from '../../../src/server/xds/outbound-resources.js';
import { type AdsServiceOptions, createAdsService } from '../../../src/server/xds/ads-service.js';
import type { AdsClient, AdsRequestEvent } from '../../../src/server/xds/ads-session.js';

const PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const NODE = { id: 'sidecar~127.0.0.1~a.default~default.svc.cluster.local', cluster: 'a.default' };
const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoints;
const LDS = TYPE_URLS.listener;
const bytes = (s: string) => new TextEncoder().encode(s);

interface RawStream {
  readonly responses: DiscoveryResponse[];
  send(r: DeepPartial<DiscoveryRequest> | Buffer): void;
  /** Resolves once `n` responses have arrived. */
  until(n: number): Promise<DiscoveryResponse[]>;
  readonly status: Promise<grpc.StatusObject>;
  end(): void;
}

async function start(t: { after(fn: () => Promise<void> | void): void }, o: Partial<AdsServiceOptions> & { data?: Map<string, Map<string, Uint8Array>> }) {
  const data = o.data ?? new Map();
  const log: string[] = [];
  const requests: AdsRequestEvent[] = [];
  const clock = new VirtualClock(1_000);
  const ads = createAdsService(grpc, {
    source: { resolve: (_c, type, names) => new Map([...(data.get(type) ?? [])].filter(([n]) => names === '*' || names.includes(n))) },
    events: {
      connected: (c: AdsClient) => log.push(`connected ${c.node?.id} ${c.identity}`),
      request: (_c, r) => requests.push(r),
      disconnected: (c: AdsClient) => log.push(`disconnected ${c.id}`),
    },
    clock,
    plaintext: true,
    ...o,
  });
  const server = new grpc.Server();
  server.addService(ads.definition, ads.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => {
    ads.close();
    client.close();
    server.forceShutdown();
  });
  const open = (md = new grpc.Metadata()): RawStream => {
    const call = client.makeBidiStreamRequest(PATH, (b: Buffer) => b, (b: Buffer) => decodeDiscoveryResponse(b), md);
    const responses: DiscoveryResponse[] = [];
    const waiters = new Set<() => void>();
    call.on('data', (r: DiscoveryResponse) => {
      responses.push(r);
      for (const w of [...waiters]) w();
    });
    call.on('error', () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    return {
      responses,
      send: (r) => call.write(Buffer.isBuffer(r) ? r : Buffer.from(encodeDiscoveryRequest(r))),
      until: (n) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${responses.length} responses, not ${n}`)), 3_000);
          const check = () => {
            if (responses.length < n) return;
            waiters.delete(check);
            clearTimeout(timer);
            resolve(responses.slice(0, n));
          };
          waiters.add(check);
          check();
        }),
      status,
      end: () => call.end(),
    };
  };
  return { ads, open, log, requests, clock, data };
}

test('refusals end only their own stream: no node, bytes that are not a DiscoveryRequest, authenticate throwing', async (t) => {
  let verdict: (md: grpc.Metadata) => string | undefined | { code: number; details?: string } | Promise<string | undefined> = () => 'spiffe://cluster.local/ns/default/sa/a';
  const { open, ads, log } = await start(t, { authenticate: (md) => verdict(md), data: new Map([[CDS, new Map([['c', bytes('C')]])]]) });
  const noNode = open();
  noNode.send({ typeUrl: CDS, resourceNames: ['c'] });
  const s1 = await noNode.status;
  assert.equal(s1.code, grpc.status.INVALID_ARGUMENT);
  assert.match(s1.details, /must carry node/);

  const garbage = open();
  garbage.send(Buffer.from([0x0a, 0xff, 0xff, 0xff]));
  const s2 = await garbage.status;
  assert.equal(s2.code, grpc.status.INVALID_ARGUMENT);
  assert.match(s2.details, /not a DiscoveryRequest/);

  verdict = () => {
    throw Object.assign(new Error('identity spiffe://x/ns/other/sa/b does not match node metadata NAMESPACE default'), { code: grpc.status.PERMISSION_DENIED });
  };
  const denied = open();
  denied.send({ node: NODE, typeUrl: CDS, resourceNames: ['c'] });
  const s3 = await denied.status;
  assert.deepEqual([s3.code, s3.details], [grpc.status.PERMISSION_DENIED, 'identity spiffe://x/ns/other/sa/b does not match node metadata NAMESPACE default']);
  assert.equal(denied.responses.length, 0);

  verdict = () => ({ code: grpc.status.UNAUTHENTICATED, details: 'token expired' });
  const expired = open();
  expired.send({ node: NODE, typeUrl: CDS, resourceNames: ['c'] });
  const s5 = await expired.status;
  assert.deepEqual([s5.code, s5.details], [grpc.status.UNAUTHENTICATED, 'token expired'], 'a returned status refuses too');

  verdict = () => Promise.reject(new Error('token parser exploded with a secret inside'));
  const broken = open();
  broken.send({ node: NODE, typeUrl: CDS, resourceNames: ['c'] });
  const s4 = await broken.status;
  assert.deepEqual([s4.code, s4.details], [grpc.status.UNAUTHENTICATED, 'authentication failed'], 'fail closed, and the thrown message is not echoed');

  // none of them became a client; a good stream still works, its identity is what authenticate returned (asynchronously)
  verdict = async (md) => `spiffe://cluster.local/ns/default/sa/${md.get('sa')[0]}`;
  const md = new grpc.Metadata();
  md.set('sa', 'a');
  const good = open(md);
  good.send({ node: NODE, typeUrl: CDS, resourceNames: ['c'] });
  good.send({ typeUrl: EDS, resourceNames: ['c'] }); // arrives while authenticate runs: held, then answered
  await good.until(1);
  assert.deepEqual(log, ['connected sidecar~127.0.0.1~a.default~default.svc.cluster.local spiffe://cluster.local/ns/default/sa/a']);
  const [c] = ads.clients();
  assert.equal(c?.identity, 'spiffe://cluster.local/ns/default/sa/a');
  assert.equal(c?.nodeId, NODE.id);
  assert.equal(c?.plaintext, true);
  assert.deepEqual(c?.types.map((x) => x.typeUrl), [CDS, EDS]);
});

test('changed() is coalesced: one recomputation per window, pushes in CDS, EDS, LDS order only where bytes differ; an ended stream is removed', async (t) => {
  const data = new Map([
    [CDS, new Map([['c', bytes('C1')]])],
    [EDS, new Map([['c', bytes('E1')]])],
    [LDS, new Map([['l', bytes('L1')]])],
  ]);
  const { open, ads, clock, requests, log } = await start(t, { data, coalesceMs: 25 });
  const s = open();
  s.send({ node: NODE, typeUrl: LDS, resourceNames: ['l'] });
  s.send({ typeUrl: CDS, resourceNames: ['c'] });
  s.send({ typeUrl: EDS, resourceNames: ['c'] });
  const first = await s.until(3);
  assert.deepEqual(first.map((r) => r.typeUrl), [LDS, CDS, EDS]);
  for (const r of first) s.send({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce, resourceNames: r.typeUrl === LDS ? ['l'] : ['c'] });
  const other = open();
  other.send({ node: { ...NODE, id: 'other' }, typeUrl: CDS, resourceNames: ['elsewhere'] });
  await other.until(1);
  await waitFor(() => requests.filter((r) => r.kind === 'ack').length === 3);
  assert.deepEqual(ads.clients().map((c) => c.types.map((x) => x.acked?.version === x.sent?.version)), [[true, true, true], [false]]);

  data.get(LDS)!.set('l', bytes('L2'));
  ads.changed();
  data.get(CDS)!.set('c', bytes('C2'));
  ads.changed();
  data.get(EDS)!.set('c', bytes('E2'));
  ads.changed();
  assert.deepEqual(clock.pending(), [1_025], 'one timer for the three calls');
  clock.advance(24);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.responses.length, 3, 'nothing before the window closes');
  clock.advance(1);
  const pushed = (await s.until(6)).slice(3);
  assert.deepEqual(pushed.map((r) => r.typeUrl), [CDS, EDS, LDS]);
  assert.equal(other.responses.length, 1, 'the other client watches nothing that changed');
  // nothing changed: changed() pushes nothing
  ads.changed();
  clock.advance(25);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.responses.length, 6);

  s.end();
  assert.equal((await s.status).code, grpc.status.OK);
  await waitFor(() => ads.clients().length === 1);
  assert.ok(log.some((l) => l.startsWith('disconnected ')));
  ads.close();
  assert.equal((await other.status).code, grpc.status.OK);
  assert.deepEqual(ads.clients(), []);
});

test('bounds: requests piling up behind a slow authenticate, and garbage mid-stream, end that stream only', async (t) => {
  let release: (id: string) => void = () => {};
  let asked = 0;
  const authenticate = () => new Promise<string>((r) => ((release = r), asked++));
  const { open, ads } = await start(t, { authenticate, data: new Map([[CDS, new Map([['c', bytes('C')]])]]) });
  const flood = open();
  for (let i = 0; i <= 65; i++) flood.send(i === 0 ? { node: NODE, typeUrl: CDS, resourceNames: ['c'] } : { typeUrl: CDS, resourceNames: [`n${i}`] });
  const st = await flood.status;
  assert.equal(st.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(st.details, /before authentication finished/);
  release('late'); // an authentication that finishes after the stream ended opens nothing
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ads.clients(), []);

  const s = open();
  s.send({ node: NODE, typeUrl: CDS, resourceNames: ['c'] });
  await waitFor(() => asked === 2); // this stream's authentication is the one pending
  release('spiffe://cluster.local/ns/default/sa/a');
  await s.until(1);
  assert.equal(ads.clients().length, 1);
  s.send(Buffer.from([0x22, 0x05, 0x61])); // type_url of 5 bytes, 1 given
  assert.equal((await s.status).code, grpc.status.INVALID_ARGUMENT);
  await waitFor(() => ads.clients().length === 0);
});

async function waitFor(ok: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
