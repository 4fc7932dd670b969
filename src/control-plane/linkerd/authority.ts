/**
 * Which authority to ask Linkerd about, for a host an application wrote (`host:port`, the port
 * made explicit by the dispatcher). linkerd2-proxy discovers only names under its profile suffixes
 * (`svc.cluster.local.` by default) after the pod's resolver expanded them; here the expansion is
 * Kubernetes' for service names: `web` → `web.<ns>.svc.<domain>`, `web.ns` → `web.ns.svc.<domain>`,
 * `web.ns.svc` → `web.ns.svc.<domain>`, `web.ns.svc.<domain>` as written (a root dot dropped).
 * Anything else (an IP literal, localhost, another domain) is no Linkerd service: undefined (the
 * egress rule applies). Pure.
 */
import { isIP } from 'node:net';

export interface AuthorityContext {
  /** The workload's namespace: single-label names are services of it. */
  readonly namespace: string;
  /** Cluster domain ('cluster.local'). */
  readonly clusterDomain: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function linkerdAuthority(host: string, ctx: AuthorityContext): string | undefined {
  const m = /^(.+?):(\d{1,5})$/.exec(host.toLowerCase());
  if (!m) return undefined;
  let name = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.startsWith('[') || isIP(name)) return undefined;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  const suffix = `.svc.${ctx.clusterDomain}`;
  let fqdn: string | undefined;
  if (name.endsWith(suffix)) fqdn = labels.length === 3 + ctx.clusterDomain.split('.').length ? name : undefined;
  else if (labels.length === 1) fqdn = `${name}.${ctx.namespace}${suffix}`;
  else if (labels.length === 2) fqdn = `${name}${suffix}`;
  else if (labels.length === 3 && labels[2] === 'svc') fqdn = `${name}.${ctx.clusterDomain}`;
  if (fqdn === undefined || fqdn === 'localhost' || fqdn.length > 253) return undefined;
  return `${fqdn}:${port}`;
}
