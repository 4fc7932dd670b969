// A State-of-the-World ADS server that serves one resource set to any number of clients, for the
// differential test: grpc-js's Server with the project's own codecs. Per client stream and type URL:
// - a request with no nonce (the first for that type) or with the latest nonce and a changed
//   subscription is answered with the subscribed resources (LDS/CDS: every subscribed name that
//   exists, all of them for the wildcard "*" or a first empty list; RDS/EDS: the subscribed ones);
// - a request with the latest nonce is recorded as an ACK, or a NACK when it carries error_detail;
// - a request with an older nonce is recorded as stale and not answered (the ping-pong trap, §6.1).
// Versions are per type (bumped when that type's resources change), nonces per response.
// `update(resources)` pushes the changed types to every open stream.
// It listens on two ports with the same state: TLS with a dev CA's serving cert for localhost and
// a bearer token (for our client), and plaintext (for grpc-js-xds, whose bootstrap has only
// insecure and google_default channel credentials).
import * as grpc from '@grpc/grpc-js';
import {
  AggregatedDiscoveryService,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../../src/proto/envoy/service/discovery/v3/discovery.js';
import { bearerAccepted, servingTls } from '../ads-server.js';
import { TYPE, type XdsResource } from './resources.js';

export type XdsEventKind = 'request' | 'ack' | 'nack' | 'stale';

export interface XdsEvent {
  readonly kind: XdsEventKind;
  readonly typeUrl: string;
  /** version_info as the client sent it. */
  readonly version: string;
  readonly nonce: string;
  readonly names: readonly string[];
  /** error_detail of a NACK. */
  readonly error?: { readonly code: number; readonly message: string };
}

export interface XdsClient {
  readonly id: number;
  /** The port it came in on. */
  readonly via: 'tls' | 'plaintext';
  /** node.id of its first request. */
  nodeId: string;
  readonly events: XdsEvent[];
  /** Requests it sent, as decoded. */
  readonly requests: DiscoveryRequest[];
  ended: boolean;
}

export interface XdsServer {
  readonly tlsPort: number;
  readonly plaintextPort: number;
  /** `localhost:<tlsPort>` (the serving cert names localhost). */
  readonly address: string;
  readonly plaintextAddress: string;
  readonly rootFile: string;
  readonly token: string;
  readonly clients: readonly XdsClient[];
  /** The version the server serves now for a type URL ('0' before any resource of it). */
  version(typeUrl: string): string;
  /** Replaces the whole resource set; pushes the types whose resources changed. */
  update(resources: readonly XdsResource[]): void;
  /** Resolves with the first truthy value of `probe` (re-run on every request and connection). */
  waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE.listener, TYPE.cluster]);
const fingerprint = (list: readonly XdsResource[]) => list.map((r) => `${r.name}=${Buffer.from(r.any.value).toString('base64')}`).sort().join(',');

interface Subscription {
  names: readonly string[];
  wildcard: boolean;
  lastNonce: string;
  /** The subscription (joined) the last response answered. */
  answered: string;
}

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
interface Stream {
  readonly client: XdsClient;
  readonly subs: Map<string, Subscription>;
}
const joined = (s: Subscription) => s.names.join('\n') + (s.wildcard ? '\n*' : '');

/** The resource set, its versions, and every open stream's subscriptions: the protocol, no sockets. */
class Sotw {
  private resources: readonly XdsResource[] = [];
  private readonly versions = new Map<string, number>();
  private nonces = 0;
  readonly clients: XdsClient[] = [];
  readonly open = new Map<Call, Stream>();
  private readonly waiters = new Set<() => void>();

  version(typeUrl: string): string {
    return String(this.versions.get(typeUrl) ?? 0);
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  attach(call: Call, via: XdsClient['via']): void {
    const client: XdsClient = { id: this.clients.length, via, nodeId: '', events: [], requests: [], ended: false };
    this.clients.push(client);
    const stream: Stream = { client, subs: new Map() };
    this.open.set(call, stream);
    call.on('data', (req: DiscoveryRequest) => {
      this.onRequest(call, stream, req);
      this.wake();
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
    call.on('close', () => {
      client.ended = true;
      this.open.delete(call);
      this.wake();
    });
    this.wake();
  }

  private respond(call: Call, typeUrl: string, s: Subscription): void {
    s.lastNonce = String(++this.nonces);
    s.answered = joined(s);
    const all = this.resources.filter((r) => r.typeUrl === typeUrl);
    const chosen = s.wildcard ? all : s.names.flatMap((n) => all.filter((r) => r.name === n));
    call.write({ versionInfo: this.version(typeUrl), resources: chosen.map((r) => r.any), canary: false, typeUrl, nonce: s.lastNonce });
  }

  private onRequest(call: Call, { client, subs }: Stream, req: DiscoveryRequest): void {
    if (client.requests.length === 0) client.nodeId = req.node?.id ?? '';
    client.requests.push(req);
    const typeUrl = req.typeUrl;
    const prior = subs.get(typeUrl);
    const base = { typeUrl, version: req.versionInfo, nonce: req.responseNonce, names: [...req.resourceNames] };
    if (prior && req.responseNonce !== '' && req.responseNonce !== prior.lastNonce) {
      client.events.push({ ...base, kind: 'stale' });
      return;
    }
    const error = req.errorDetail && { code: req.errorDetail.code, message: req.errorDetail.message };
    const initial = !prior || req.responseNonce === '';
    client.events.push({ ...base, kind: initial ? 'request' : error ? 'nack' : 'ack', ...(error ? { error } : {}) });
    const named = req.resourceNames.filter((n) => n !== '*');
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (req.resourceNames.includes('*') || (named.length === 0 && (prior?.wildcard ?? true)));
    const s: Subscription = prior ?? { names: [], wildcard, lastNonce: '', answered: '\0' };
    s.names = named;
    s.wildcard = wildcard;
    subs.set(typeUrl, s);
    if (initial || joined(s) !== s.answered) this.respond(call, typeUrl, s);
  }

  update(list: readonly XdsResource[]): void {
    const of = (set: readonly XdsResource[], type: string) => fingerprint(set.filter((r) => r.typeUrl === type));
    // make-before-break order: CDS, EDS, LDS, RDS (xds_protocol.rst)
    const changed = [TYPE.cluster, TYPE.endpoints, TYPE.listener, TYPE.route].filter((type) => of(this.resources, type) !== of(list, type));
    this.resources = [...list];
    for (const type of changed) {
      this.versions.set(type, (this.versions.get(type) ?? 0) + 1);
      for (const [call, { subs }] of this.open) {
        const s = subs.get(type);
        if (s) this.respond(call, type, s);
      }
    }
  }

  waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v === undefined || v === false) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`xDS server: timed out after ${timeoutMs} ms waiting for ${what}; last clients: ${this.describe(3)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private describe(last: number): string {
    const short = (e: XdsEvent) => `${e.kind} ${e.typeUrl.split('.').pop()} v${e.version}${e.error ? ` ${e.error.message}` : ''}`;
    return JSON.stringify(this.clients.slice(-last).map((c) => ({ node: c.nodeId, via: c.via, events: c.events.map(short) })));
  }
}

async function bind(creds: grpc.ServerCredentials, handler: (call: Call) => void): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(AggregatedDiscoveryService as unknown as grpc.ServiceDefinition, { StreamAggregatedResources: handler });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 1_000);
    force.unref();
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

export async function startXdsServer(t: { after(fn: () => Promise<void>): void }, o: { token?: string; resources?: readonly XdsResource[] } = {}): Promise<XdsServer> {
  const tls = await servingTls(t);
  const token = o.token ?? 'tok';
  const sotw = new Sotw();
  const secure = await bind(tls.credentials, (call) => {
    if (bearerAccepted(call as grpc.ServerDuplexStream<unknown, unknown>, token)) sotw.attach(call, 'tls');
  });
  const plain = await bind(grpc.ServerCredentials.createInsecure(), (call) => sotw.attach(call, 'plaintext'));
  sotw.update(o.resources ?? []);
  const xds: XdsServer = {
    tlsPort: secure.port,
    plaintextPort: plain.port,
    address: `localhost:${secure.port}`,
    plaintextAddress: `127.0.0.1:${plain.port}`,
    rootFile: tls.rootFile,
    token,
    clients: sotw.clients,
    version: (typeUrl) => sotw.version(typeUrl),
    update: (list) => sotw.update(list),
    waitFor: (what, probe, timeoutMs = 10_000) => sotw.waitFor(what, probe, timeoutMs),
    close: async () => {
      for (const call of sotw.open.keys()) if (!call.cancelled) call.end();
      await Promise.all([shutdown(secure.server), shutdown(plain.server)]);
    },
  };
  t.after(() => xds.close());
  return xds;
}

/** The last ACK or NACK of `typeUrl` by a client (undefined while it has answered none). */
export function lastAnswer(client: XdsClient, typeUrl: string): XdsEvent | undefined {
  for (let i = client.events.length - 1; i >= 0; i--) {
    const e = client.events[i]!;
    if (e.typeUrl === typeUrl && (e.kind === 'ack' || e.kind === 'nack')) return e;
  }
  return undefined;
}
