/**
 * One Linkerd WeightedAddr (destination.proto) → our ServiceEndpoint, or the reason the mesh will
 * not talk to it. Pure.
 *
 * - address: `ip:port` (IPv6 in brackets, RFC 5952 text; net-addr.ts);
 * - identity: `tls_identity.dns_like_identity.name` (a Linkerd DNS-like name, lower-case RFC 1123)
 *   or `tls_identity.uri_like_identity.uri` (a SPIFFE ID): the identity the endpoint's certificate
 *   must present;
 * - serverName: `tls_identity.server_name.name`, else the DNS-like name (a Linkerd proxy terminates
 *   TLS only for an SNI equal to its own name); none for a URI-like identity without one;
 * - protocol hint `h2` recorded (the service's protocol decides what is spoken);
 * - weight and metric labels kept (labels bounded).
 *
 * Not meshed — no `tls_identity` — the mesh never talks plaintext: the endpoint is refused (kept
 * aside with its reason, never dialled). An authority override or an opaque-transport hint (a
 * Linkerd gateway or an opaque port: the proxy would rewrite the request or tunnel it) is refused
 * likewise. A malformed address or identity makes the whole update bad (`bad`).
 */
import { isDnsName } from '../../../identity/dns-id.js';
import { isSpiffeId } from '../../../identity/spiffe-id.js';
import type { ServiceEndpoint } from '../../../outbound/settings.js';
import type { WeightedAddr } from '../../../proto/linkerd/destination.js';
import { tcpAddressToString } from '../../../proto/linkerd/net-addr.js';
import { quote } from './findings.js';

/** An endpoint as the mesh dials it (`serverName`: the SNI to send, Linkerd's server_name). */
export type LinkerdEndpoint = ServiceEndpoint;

export type EndpointOutcome =
  | { readonly kind: 'ok'; readonly address: string; readonly endpoint: LinkerdEndpoint; readonly h2: boolean }
  | { readonly kind: 'refused'; readonly address: string; readonly reason: string }
  | { readonly kind: 'bad'; readonly message: string };

const MAX_LABELS = 32;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A run of lower-case RFC 1123 labels (one or more: a suffix may be a single label). */
export function isDnsLabels(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/** The address of a TcpAddress as text, or a message. */
export function addressOf(a: WeightedAddr['addr']): { address: string } | { message: string } {
  if (!a) return { message: 'names no address' };
  if (a.port < 1 || a.port > 65535) return { message: `port ${a.port} is not 1…65535` };
  try {
    return { address: tcpAddressToString(a) };
  } catch (e) {
    return { message: (e as Error).message };
  }
}

function labelsOf(set: ReadonlyMap<string, string> | undefined, own: ReadonlyMap<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let n = 0;
  for (const m of [set, own]) {
    for (const [k, v] of m ?? []) {
      if (n >= MAX_LABELS && !(k in out)) continue;
      if (!(k in out)) n++;
      out[k] = v.slice(0, 256);
    }
  }
  return n > 0 ? out : undefined;
}

function identityOf(w: WeightedAddr): { identity: string; serverName?: string } | { refused: string } | { bad: string } {
  const t = w.tlsIdentity;
  if (!t?.strategy) return { refused: 'not meshed (no tls_identity): the mesh never talks plaintext' };
  const sni = t.serverName?.name;
  if (sni !== undefined && !isDnsName(sni)) return { bad: `tls_identity.server_name ${quote(sni)} is not a lower-case DNS name` };
  if (t.strategy.kind === 'dnsLikeIdentity') {
    const name = t.strategy.dnsLikeIdentity.name;
    if (!isDnsName(name)) return { bad: `tls_identity.dns_like_identity ${quote(name)} is not a lower-case DNS name` };
    return { identity: name, serverName: sni ?? name };
  }
  const uri = t.strategy.uriLikeIdentity.uri;
  if (!isSpiffeId(uri)) return { bad: `tls_identity.uri_like_identity ${quote(uri)} is not a SPIFFE ID` };
  return sni === undefined ? { identity: uri } : { identity: uri, serverName: sni };
}

/** One WeightedAddr (with its set's metric labels) judged. */
export function endpointOf(w: WeightedAddr, setLabels?: ReadonlyMap<string, string>): EndpointOutcome {
  const a = addressOf(w.addr);
  if ('message' in a) return { kind: 'bad', message: `addr: ${a.message}` };
  const address = a.address;
  const id = identityOf(w);
  if ('bad' in id) return { kind: 'bad', message: `${address}: ${id.bad}` };
  if ('refused' in id) return { kind: 'refused', address, reason: id.refused };
  if (w.authorityOverride && w.authorityOverride.authorityOverride !== '') {
    return { kind: 'refused', address, reason: `authority_override ${quote(w.authorityOverride.authorityOverride)} is not supported (a Linkerd gateway endpoint)` };
  }
  if (w.protocolHint?.opaqueTransport) {
    return { kind: 'refused', address, reason: 'opaque_transport is not supported: the mesh speaks HTTP to the endpoint itself' };
  }
  const endpoint: { -readonly [K in keyof LinkerdEndpoint]: LinkerdEndpoint[K] } = { address, identity: id.identity, weight: w.weight };
  if (id.serverName !== undefined) endpoint.serverName = id.serverName;
  const labels = labelsOf(setLabels, w.metricLabels);
  if (labels) endpoint.labels = labels;
  return { kind: 'ok', address, endpoint, h2: w.protocolHint?.protocol?.kind === 'h2' };
}
