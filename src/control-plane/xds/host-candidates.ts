/**
 * Which Listener names to ask an xDS control plane for, for a host an application wrote: a
 * Kubernetes pod's resolver, in Listener names. istiod names an HTTP service's Listener `fqdn:port`
 * (`payments.default.svc.cluster.local:8080`) and needs the port (research §2.4: a name without one
 * gets Listeners an A27 client ignores), so the port is always written — the URL's, else 80 for
 * `http:` and 443 for `https:`.
 *
 * The search list is the pod's (`<ns>.svc.<domain> svc.<domain> <domain>`, ndots 5): a name with
 * fewer than five dots is tried with each search domain first, then as written; one with five or
 * more, as written first; a name ending in a dot only as written. IP literals are asked for as
 * written. `localhost` and IPv6 literals are not asked for at all (never mesh services; they follow
 * the egress rule). Which candidate wins is decided by the first one in this order that exists
 * (xds-tree.ts). Pure.
 */
import { isIP } from 'node:net';
import { DEFAULT_CLUSTER_DOMAIN } from '../../outbound/router.js';

/** Kubernetes' default `options ndots:5`. */
export const NDOTS = 5;

export interface SearchContext {
  readonly namespace: string;
  readonly clusterDomain?: string;
}

export function searchDomains(c: SearchContext): string[] {
  const d = c.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  return [`${c.namespace}.svc.${d}`, `svc.${d}`, d];
}

/**
 * `host` is a URL's host (lower case, optional port, IPv6 in brackets), `protocol` its scheme
 * (`http:`). Returns the Listener names in the order they are tried, or [] for hosts that are
 * never looked up.
 */
export function listenerCandidates(host: string, protocol: string, search: readonly string[]): string[] {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(host.toLowerCase());
  if (!m) return [];
  let name = m[1]!;
  const port = m[2] ?? (protocol === 'https:' ? '443' : '80');
  if (name === '' || name.startsWith('[') || name === 'localhost' || name.endsWith('.localhost')) return [];
  if (isIP(name)) return [`${name}:${port}`];
  if (name.endsWith('.')) return name.length > 1 ? [`${name.slice(0, -1)}:${port}`] : [];
  const expanded = search.map((d) => `${name}.${d}:${port}`);
  const asWritten = `${name}:${port}`;
  const dots = name.split('.').length - 1;
  return dots >= NDOTS ? [asWritten, ...expanded] : [...expanded, asWritten];
}
