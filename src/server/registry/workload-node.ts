/**
 * What a connected workload says about itself in its ADS Node, read the way istiod reads a
 * proxyless client (the inverse of control-plane/xds/node.ts): service and namespace from the
 * cluster `<service>.<namespace>` (NAMESPACE metadata wins for the namespace), addresses from
 * INSTANCE_IPS, labels from LABELS (with `app: <service>` added when absent, as DESIGN.md's
 * default), the zone from `locality`, and `SIDECARLESS_ADVERTISE` (comma-separated `host:port`)
 * when the workload is reached somewhere else than where it listens. Pure; every field bounded:
 * a node is a peer's input.
 */
import { isIP } from 'node:net';
import type { Node } from '../../proto/envoy/config/core/v3/base.js';
import type { Struct, Value } from '../../proto/google/protobuf/struct.js';

export interface WorkloadLocality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export interface WorkloadNode {
  readonly service: string;
  readonly namespace: string;
  /** The workload's IPs (INSTANCE_IPS). */
  readonly ips: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly locality?: WorkloadLocality;
  /** `host:port` addresses to register instead of the ones its inbound Listeners name. */
  readonly advertise: readonly string[];
  /** The pod/instance name (NAME), for status. */
  readonly name?: string;
}

export const ADVERTISE_KEY = 'SIDECARLESS_ADVERTISE';
const MAX_LABELS = 64;
const MAX_TEXT = 253;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

/** The workload the node describes, or why it cannot be registered (a sentence for status). */
export function workloadOf(node: Node | undefined): WorkloadNode | { readonly refused: string } {
  if (!node) return { refused: 'no node on the stream' };
  const fields = node.metadata?.fields ?? new Map<string, Value>();
  const dot = node.cluster.indexOf('.');
  const service = dot > 0 ? node.cluster.slice(0, dot) : node.cluster;
  if (!DNS_LABEL.test(service)) return { refused: `node cluster ${quote(node.cluster)} is not "<service>.<namespace>"` };
  const namespace = text(fields.get('NAMESPACE')) ?? (dot > 0 ? node.cluster.slice(dot + 1) : '');
  if (!DNS_LABEL.test(namespace)) return { refused: `namespace ${quote(namespace)} (NAMESPACE metadata or the node cluster's second part) is not a DNS label` };
  const ips = (text(fields.get('INSTANCE_IPS')) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (ips.length > 16 || ips.some((ip) => isIP(ip) === 0)) return { refused: `INSTANCE_IPS ${quote(text(fields.get('INSTANCE_IPS')) ?? '')} is not a list of IP addresses` };
  const labels = labelsOf(fields.get('LABELS'));
  if (typeof labels === 'string') return { refused: labels };
  const advertise = (text(fields.get(ADVERTISE_KEY)) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const badAdvertise = advertise.find((a) => !validHostPort(a));
  if (advertise.length > 16 || badAdvertise !== undefined) return { refused: `${ADVERTISE_KEY} ${quote(badAdvertise ?? '')} is not "host:port"` };
  const name = text(fields.get('NAME'));
  const l = node.locality;
  return {
    service,
    namespace,
    ips,
    labels: { app: service, ...labels },
    advertise,
    ...(l && (l.region || l.zone || l.subZone) && { locality: { region: l.region ?? '', zone: l.zone ?? '', subZone: l.subZone ?? '' } }),
    ...(name !== undefined && name.length <= MAX_TEXT && { name }),
  };
}

export function isRefused(w: WorkloadNode | { readonly refused: string }): w is { readonly refused: string } {
  return 'refused' in w;
}

function validHostPort(a: string): boolean {
  const m = HOST_PORT.exec(a);
  if (!m) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

function labelsOf(v: Value | undefined): Record<string, string> | string {
  if (v === undefined) return {};
  const s: Struct | undefined = v.structValue;
  if (!s) return 'LABELS is not a struct of strings';
  if (s.fields.size > MAX_LABELS) return `LABELS has ${s.fields.size} entries (at most ${MAX_LABELS})`;
  const out: Record<string, string> = {};
  for (const [k, val] of s.fields) {
    const t = text(val);
    if (t === undefined || k.length > MAX_TEXT || t.length > MAX_TEXT) return `label ${quote(k)} is not a short string`;
    out[k] = t;
  }
  return out;
}

function text(v: Value | undefined): string | undefined {
  return typeof v?.stringValue === 'string' ? v.stringValue : undefined;
}

function quote(s: string): string {
  return JSON.stringify(s.slice(0, 100));
}
