/**
 * The load generator of bench/control-plane.ts: N light ADS clients in one process, each a raw
 * grpc-js duplex stream on its own HTTP/2 connection (a local subchannel pool per client), speaking
 * SotW like a proxyless gRPC client: LDS for its K Listeners, then (each after the previous type's
 * first response) RDS, CDS, EDS for the names those reference (bench/lib/ads-scale.ts), ACKing every
 * response with its version and nonce. Responses are decoded with the project's DiscoveryResponse
 * codec; the resources inside are only counted (a light client: nothing is translated).
 *
 * Commands, one JSON object a line on stdin; events, one a line on stdout:
 *   {op:'open', address, n, k, concurrency}  → {event:'synced', ms, perClient, cpuMs, rss, errors}
 *   {op:'mark', id, typeUrl}                  → {event:'marked', id}, then {event:'pushed', id, arrivals, missing, sameVersion, cpuMs}
 *        arrivals: per client, the wall-clock ms (epochMs) its next response of typeUrl arrived;
 *        sameVersion: responses so far that repeated the version the client had (0 when the server pushes changes only)
 *   {op:'close'}                              → {event:'closed', cpuMs}, then exits
 */
import * as grpc from '@grpc/grpc-js';
import { createInterface } from 'node:readline';
import { AggregatedDiscoveryService, decodeDiscoveryResponse, encodeDiscoveryRequest, type DiscoveryRequest } from '../src/proto/envoy/service/discovery/v3/discovery.js';
import { TYPE_URLS } from '../src/server/xds/outbound-resources.js';
import { epochMs, subscription } from './lib/ads-scale.js';

const PATH = AggregatedDiscoveryService.StreamAggregatedResources.path;
const ORDER = [TYPE_URLS.listener, TYPE_URLS.routes, TYPE_URLS.cluster, TYPE_URLS.endpoints];
const PUSH_TIMEOUT_MS = 15_000;
const emit = (e: object) => process.stdout.write(JSON.stringify(e) + '\n');
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Watch {
  id: number;
  typeUrl: string;
  arrivals: Array<number | undefined>;
  left: number;
  timer: NodeJS.Timeout;
}

class LightClient {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<Partial<DiscoveryRequest>, Buffer>;
  readonly #names: Record<string, string[]>;
  readonly #got = new Map<string, number>();
  readonly #versions = new Map<string, string>();
  /** Responses whose version was the one this client already had for the type (should never happen: the server pushes changed bytes only). */
  sameVersion = 0;
  #next = 0;
  error: string | undefined;

  constructor(
    readonly index: number,
    address: string,
    k: number,
    private readonly onSynced: (c: LightClient) => void,
    private readonly onResponse: (c: LightClient, typeUrl: string) => void,
  ) {
    const s = subscription(index, k);
    this.#names = { [TYPE_URLS.listener]: s.listeners, [TYPE_URLS.routes]: s.routes, [TYPE_URLS.cluster]: s.clusters, [TYPE_URLS.endpoints]: s.clusters };
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    this.#call = this.#client.makeBidiStreamRequest(PATH, (r: Partial<DiscoveryRequest>) => Buffer.from(encodeDiscoveryRequest(r)), (b: Buffer) => b);
    this.#call.on('data', (b: Buffer) => this.#data(b));
    this.#call.on('error', (e: Error) => {
      if (!this.closing) this.error ??= e.message;
    });
    const node = { id: `sidecar~10.1.${index >> 8}.${index & 255}~client-${index}.default~default.svc.cluster.local`, cluster: 'client.default', userAgentName: 'sidecarless-bench', clientFeatures: [] };
    this.#subscribe(node);
  }

  closing = false;

  /** The next type of the chain: LDS first (with the Node), then RDS, CDS, EDS. */
  #subscribe(node?: DiscoveryRequest['node']): void {
    const typeUrl = ORDER[this.#next++]!;
    this.#call.write({ typeUrl, resourceNames: this.#names[typeUrl]!, ...(node && { node }) });
  }

  #data(b: Buffer): void {
    const r = decodeDiscoveryResponse(b);
    this.#call.write({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce, resourceNames: this.#names[r.typeUrl] ?? [] });
    const first = !this.#got.has(r.typeUrl);
    if (this.#versions.get(r.typeUrl) === r.versionInfo) this.sameVersion++;
    this.#versions.set(r.typeUrl, r.versionInfo);
    this.#got.set(r.typeUrl, r.resources.length);
    if (first && r.typeUrl === ORDER[this.#next - 1]) {
      if (this.#next < ORDER.length) this.#subscribe();
      else this.onSynced(this);
    }
    this.onResponse(this, r.typeUrl);
  }

  /** Resources received per type against those named (the server sends every one that exists). */
  complete(): boolean {
    return ORDER.every((t) => this.#got.get(t) === this.#names[t]!.length);
  }

  close(): void {
    this.closing = true;
    this.#call.cancel();
    this.#client.close();
  }
}

const clients: LightClient[] = [];
let watch: Watch | undefined;

function open(o: { address: string; n: number; k: number; concurrency: number }): void {
  const t0 = performance.now();
  const c0 = cpuMs();
  const started: number[] = [];
  const took: number[] = [];
  let next = 0;
  let synced = 0;
  const start = () => {
    const i = next++;
    started[i] = performance.now();
    clients.push(new LightClient(i, o.address, o.k, onSynced, onResponse));
  };
  const onSynced = (c: LightClient) => {
    took.push(performance.now() - started[c.index]!);
    if (++synced === o.n) {
      const s = [...took].sort((a, b) => a - b);
      const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
      const incomplete = clients.filter((x) => !x.complete()).length;
      emit({ event: 'synced', ms: performance.now() - t0, perClient: { p50: q(0.5), p99: q(0.99), max: s.at(-1) }, cpuMs: cpuMs() - c0, cpuTotalMs: cpuMs(), rss: process.memoryUsage().rss, incomplete, errors: clients.filter((x) => x.error).length });
    } else if (next < o.n) start();
  };
  for (let i = 0; i < Math.min(o.concurrency, o.n); i++) start();
}

function onResponse(c: LightClient, typeUrl: string): void {
  const w = watch;
  if (!w || w.typeUrl !== typeUrl || w.arrivals[c.index] !== undefined) return;
  w.arrivals[c.index] = epochMs();
  if (--w.left === 0) finish(w);
}

function finish(w: Watch): void {
  clearTimeout(w.timer);
  watch = undefined;
  const sameVersion = clients.reduce((n, c) => n + c.sameVersion, 0);
  emit({ event: 'pushed', id: w.id, arrivals: w.arrivals.map((a) => a ?? null), missing: w.arrivals.filter((a) => a === undefined).length, sameVersion, cpuMs: cpuMs() });
}

function mark(o: { id: number; typeUrl: string }): void {
  const w: Watch = { id: o.id, typeUrl: o.typeUrl, arrivals: Array.from({ length: clients.length }, () => undefined), left: clients.length, timer: setTimeout(() => finish(w), PUSH_TIMEOUT_MS) };
  watch = w;
  emit({ event: 'marked', id: o.id });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line) as { op: string } & Record<string, unknown>;
  if (m.op === 'open') open(m as unknown as Parameters<typeof open>[0]);
  else if (m.op === 'mark') mark(m as unknown as Parameters<typeof mark>[0]);
  else if (m.op === 'close') {
    for (const c of clients) c.close();
    emit({ event: 'closed', cpuMs: cpuMs(), errors: clients.filter((x) => x.error).map((x) => x.error).slice(0, 3) });
    process.exit(0);
  }
});
rl.on('close', () => process.exit(0));
