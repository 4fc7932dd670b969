// A state-of-the-world xDS server's logic over the loopback ADS server (ads-server.ts): it holds
// resources per type, answers every request whose names (or whose type's version) differ from what
// it last sent on that stream with the subscribed resources that exist (LDS/CDS: all of them, the
// state of the world; `*`: every one), never answers an ACK (no ping-pong), and pushes a new
// version to every stream on `push()`. NACKs (requests with error_detail) are recorded.
import type { DiscoveryRequest } from '../../src/proto/envoy/service/discovery/v3/discovery.js';
import { type AdsServer, type AdsServerStream, startAdsServer } from './ads-server.js';

interface Sent {
  names: string;
  version: number;
}

export interface XdsResponder {
  readonly server: AdsServer;
  readonly nacks: DiscoveryRequest[];
  /** Sets (bytes) or removes (null) one resource; takes effect on push(). */
  set(typeUrl: string, name: string, bytes: Uint8Array | null): void;
  /** New versions of every type changed since the last push go to every stream that subscribes to it. */
  push(): void;
  /** The names the latest request of `typeUrl` asked for on the newest stream. */
  subscribed(typeUrl: string): string[];
}

export async function startXdsResponder(t: { after(fn: () => Promise<void>): void }, o: { token?: string } = {}): Promise<XdsResponder> {
  const resources = new Map<string, Map<string, Uint8Array>>();
  const versions = new Map<string, number>();
  const dirty = new Set<string>();
  const sent = new WeakMap<AdsServerStream, Map<string, Sent>>();
  const names = new WeakMap<AdsServerStream, Map<string, string[]>>();
  const nacks: DiscoveryRequest[] = [];
  let nonce = 0;
  const respond = (s: AdsServerStream, typeUrl: string) => {
    if (s.ended) return;
    const want = names.get(s)?.get(typeUrl) ?? [];
    const have = resources.get(typeUrl) ?? new Map<string, Uint8Array>();
    const list = want.includes('*') ? [...have.keys()] : want.filter((n) => have.has(n));
    const version = versions.get(typeUrl) ?? 0;
    let bySent = sent.get(s);
    if (!bySent) sent.set(s, (bySent = new Map()));
    bySent.set(typeUrl, { names: want.join('\n'), version });
    s.send({ versionInfo: String(version), typeUrl, nonce: String(++nonce), resources: list.map((n) => ({ typeUrl, value: have.get(n)! })) });
  };
  let server: AdsServer | undefined;
  server = await startAdsServer(t, {
    ...o,
    onRequest: (s, r) => {
      if (r.errorDetail !== undefined) nacks.push(r);
      let byType = names.get(s);
      if (!byType) names.set(s, (byType = new Map()));
      byType.set(r.typeUrl, [...r.resourceNames]);
      const last = sent.get(s)?.get(r.typeUrl);
      if (last && last.names === r.resourceNames.join('\n') && last.version === (versions.get(r.typeUrl) ?? 0)) return; // an ACK or NACK of what we sent
      respond(s, r.typeUrl);
    },
  });
  return {
    server,
    nacks,
    set(typeUrl, name, bytes) {
      let m = resources.get(typeUrl);
      if (!m) resources.set(typeUrl, (m = new Map()));
      if (bytes === null) m.delete(name);
      else m.set(name, bytes);
      dirty.add(typeUrl);
    },
    push() {
      for (const typeUrl of dirty) versions.set(typeUrl, (versions.get(typeUrl) ?? 0) + 1);
      for (const s of server!.streams) for (const typeUrl of dirty) if (names.get(s)?.has(typeUrl)) respond(s, typeUrl);
      dirty.clear();
    },
    subscribed(typeUrl) {
      const s = server!.streams.at(-1);
      return s ? [...(names.get(s)?.get(typeUrl) ?? [])] : [];
    },
  };
}
