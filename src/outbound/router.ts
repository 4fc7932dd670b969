/**
 * Maps the host an application wrote (`http://payments/…`) to a mesh service, as Kubernetes DNS
 * would: `name`, `name.ns`, `name.ns.svc`, `name.ns.svc.<clusterDomain>`. Pure; built once per
 * change of the service set, looked up per request in O(1).
 */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export interface RoutableService {
  readonly name: string;
  readonly namespace: string;
}

export class HostRouter<S extends RoutableService> {
  readonly #byHost = new Map<string, S>();

  constructor(services: Iterable<S>, clusterDomain = DEFAULT_CLUSTER_DOMAIN) {
    for (const s of services) {
      for (const h of serviceHostnames(s.name, s.namespace, clusterDomain)) {
        if (!this.#byHost.has(h)) this.#byHost.set(h, s);
      }
    }
  }

  /** `host` may carry a port (`payments:8080`) and any case; returns undefined for non-mesh hosts. */
  resolve(host: string): S | undefined {
    let h = host.toLowerCase();
    if (h.endsWith('.')) h = h.slice(0, -1);
    const exact = this.#byHost.get(h);
    if (exact) return exact;
    const colon = h.lastIndexOf(':');
    if (colon > 0 && !h.endsWith(']')) {
      let name = h.slice(0, colon);
      if (name.endsWith('.')) name = name.slice(0, -1);
      return this.#byHost.get(name);
    }
    return undefined;
  }
}

export function serviceHostnames(name: string, namespace: string, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.${clusterDomain}`];
}

/**
 * A host name of one label (`payments`, `paymnets`, `payments.`): what a mesh service is called
 * when written short, so one that is not a mesh service is most likely a typo of one. `localhost`
 * and IP literals are not (loopback and addresses are written on purpose). `hostname` is a URL's
 * hostname: lower case, no port, IPv6 in brackets, IPv4 already in dotted form.
 */
export function isSingleLabel(hostname: string): boolean {
  const h = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  return h !== '' && !h.includes('.') && !h.startsWith('[') && h.toLowerCase() !== 'localhost';
}
