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
const key = (r: XdsResource) => `${r.typeUrl}\n${r.name}`;
const fingerprint = (list: readonly XdsResource[]) => list.map((r) => `${r.name}=${Buffer.from(r.any.value).toString('base64')}`).sort().join(',');

interface Subscription {
  names: readonly string[];
  wildcard: boolean;
  lastNonce: string;
  /** The subscription (joined) the last response answered. */
  answered: string;
  /** The version the last response carried. */
  sentVersion: string;
}

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export async function startXdsServer(t: { after(fn: () => Promise<void>): void }, o: { token?: string; resources?: readonly XdsResource[] } = {}): Promise<XdsServer> {
  const tls = await servingTls(t);
  const token = o.token ?? 'tok';
  let resources = new Map<string, XdsResource>();
  const versions = new Map<string, number>();
  const clients: XdsClient[] = [];
  const open = new Map<Call, { client: XdsClient; subs: Map<string, Subscription> }>();
  const waiters = new Set<() => void>();
  const wake = () => [...waiters].forEach((w) => w());
  let nonces = 0;

  const byType = (typeUrl: string) => [...resources.values()].filter((r) => r.typeUrl === typeUrl);
  const versionOf = (typeUrl: string) => String(versions.get(typeUrl) ?? 0);
  const selected = (typeUrl: string, s: Subscription) => {
    const all = byType(typeUrl);
    return s.wildcard ? all : s.names.flatMap((n) => all.filter((r) => r.name === n));
  };
  const respond = (call: Call, typeUrl: string, s: Subscription) => {
    s.lastNonce = String(++nonces);
    s.answered = s.names.join('\n') + (s.wildcard ? '\n*' : '');
    s.sentVersion = versionOf(typeUrl);
    call.write({ versionInfo: s.sentVersion, resources: selected(typeUrl, s).map((r) => r.any), canary: false, typeUrl, nonce: s.lastNonce });
  };

  const onRequest = (call: Call, state: { client: XdsClient; subs: Map<string, Subscription> }, req: DiscoveryRequest) => {
    const { client, subs } = state;
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
    client.events.push({ ...base, kind: !prior || req.responseNonce === '' ? 'request' : error ? 'nack' : 'ack', ...(error ? { error } : {}) });
    const named = req.resourceNames.filter((n) => n !== '*');
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (req.resourceNames.includes('*') || (named.length === 0 && (prior?.wildcard ?? true)));
    const s: Subscription = prior ?? { names: [], wildcard, lastNonce: '', answered: '\0', sentVersion: '' };
    s.names = named;
    s.wildcard = wildcard;
    subs.set(typeUrl, s);
    const now = s.names.join('\n') + (s.wildcard ? '\n*' : '');
    if (!prior || req.responseNonce === '' || now !== s.answered) respond(call, typeUrl, s);
  };

  const handler = (via: XdsClient['via']) => (call: Call) => {
    if (via === 'tls' && !bearerAccepted(call as grpc.ServerDuplexStream<unknown, unknown>, token)) return;
    const client: XdsClient = { id: clients.length, via, nodeId: '', events: [], requests: [], ended: false };
    clients.push(client);
    const state = { client, subs: new Map<string, Subscription>() };
    open.set(call, state);
    call.on('data', (req: DiscoveryRequest) => {
      onRequest(call, state, req);
      wake();
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
    call.on('close', () => {
      client.ended = true;
      open.delete(call);
      wake();
    });
    wake();
  };

  const bind = async (via: XdsClient['via'], creds: grpc.ServerCredentials) => {
    const server = new grpc.Server();
    server.addService(AggregatedDiscoveryService as unknown as grpc.ServiceDefinition, { StreamAggregatedResources: handler(via) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
    return { server, port };
  };
  const secure = await bind('tls', tls.credentials);
  const plain = await bind('plaintext', grpc.ServerCredentials.createInsecure());

  const update = (list: readonly XdsResource[]) => {
    const next = new Map(list.map((r) => [key(r), r]));
    const changed = [TYPE.cluster, TYPE.endpoints, TYPE.listener, TYPE.route].filter((type) => {
      const before = [...resources.values()].filter((r) => r.typeUrl === type);
      const after = list.filter((r) => r.typeUrl === type);
      return fingerprint(before) !== fingerprint(after);
    });
    resources = next;
    // make-before-break: CDS, EDS, LDS, RDS (xds_protocol.rst)
    for (const type of changed) {
      versions.set(type, (versions.get(type) ?? 0) + 1);
      for (const [call, { subs }] of open) {
        const s = subs.get(type);
        if (s) respond(call, type, s);
      }
    }
  };
  update(o.resources ?? []);

  const xds: XdsServer = {
    tlsPort: secure.port,
    plaintextPort: plain.port,
    address: `localhost:${secure.port}`,
    plaintextAddress: `127.0.0.1:${plain.port}`,
    rootFile: tls.rootFile,
    token,
    clients,
    version: versionOf,
    update,
    waitFor: (what, probe, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const v = probe();
          if (v === undefined || v === false) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`xDS server: timed out after ${timeoutMs} ms waiting for ${what}; last clients: ${JSON.stringify(clients.slice(-3).map((c) => ({ node: c.nodeId, via: c.via, events: c.events.map((e) => `${e.kind} ${e.typeUrl.split('.').pop()} v${e.version}${e.error ? ` ${e.error.message}` : ''}`) })))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: async () => {
      for (const call of open.keys()) if (!call.cancelled) call.end();
      await Promise.all(
        [secure.server, plain.server].map(
          (server) =>
            new Promise<void>((resolve) => {
              const force = setTimeout(() => {
                server.forceShutdown();
                resolve();
              }, 1_000);
              force.unref();
              server.tryShutdown(() => {
                clearTimeout(force);
                resolve();
              });
            }),
        ),
      );
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
