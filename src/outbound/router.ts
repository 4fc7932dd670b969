/**
 * Maps the host an application wrote (`http://payments/…`) to a mesh service. Each service has
 * its hostnames (default the Kubernetes forms: `name`, `name.ns`, `name.ns.svc`,
 * `name.ns.svc.<clusterDomain>`; or explicit ones, as xDS virtual hosts have them). Lookup, as
 * Envoy picks a virtual host: an exact name (with the port written, then without it), then the
 * longest `*.suffix` wildcard, then the longest `prefix.*`, then `*`. Pure; updated per service
 * (cost grows with what changed, not with the mesh); exact names are found in O(1).
 */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export interface RoutableService {
  readonly name: string;
  readonly namespace: string;
}

interface Wildcard<S> {
  readonly affix: string;
  readonly service: S;
}

export class HostRouter<S extends RoutableService> {
  readonly #exact = new Map<string, S>();
  readonly #of = new Map<S, readonly string[]>();
  #suffixes: Wildcard<S>[] = [];
  #prefixes: Wildcard<S>[] = [];
  #any: S | undefined;

  constructor(services: Iterable<S> = [], clusterDomain = DEFAULT_CLUSTER_DOMAIN) {
    for (const s of services) this.set(s, serviceHostnames(s.name, s.namespace, clusterDomain));
  }

  /**
   * Routes `hostnames` to `service`, replacing the names it had. A name another service holds is
   * taken over (the last one set wins): a snapshot that moves a name from A to B may apply B
   * before A (validate.ts ensures that, once applied whole, each name has one owner), and A giving
   * it up afterwards must not unroute it (delete only removes the names a service still holds).
   */
  set(service: S, hostnames: readonly string[]): void {
    this.delete(service);
    this.#of.set(service, hostnames);
    let wild = false;
    for (const h of hostnames) {
      if (h === '*') this.#any = service;
      else if (h.startsWith('*')) {
        this.#suffixes.unshift({ affix: h.slice(1), service });
        wild = true;
      } else if (h.endsWith('*')) {
        this.#prefixes.unshift({ affix: h.slice(0, -1), service });
        wild = true;
      } else this.#exact.set(h, service);
    }
    // Longest first; among equals (only while a name moves) the last set wins.
    if (wild) {
      this.#suffixes.sort((a, b) => b.affix.length - a.affix.length);
      this.#prefixes.sort((a, b) => b.affix.length - a.affix.length);
    }
  }

  delete(service: S): void {
    const names = this.#of.get(service);
    if (!names) return;
    this.#of.delete(service);
    let wild = false;
    for (const h of names) {
      if (this.#exact.get(h) === service) this.#exact.delete(h);
      else if (h.includes('*')) wild = true;
    }
    if (this.#any === service) this.#any = undefined;
    if (wild) {
      this.#suffixes = this.#suffixes.filter((w) => w.service !== service);
      this.#prefixes = this.#prefixes.filter((w) => w.service !== service);
    }
  }

  /** `host` may carry a port (`payments:8080`) and any case; returns undefined for non-mesh hosts. */
  resolve(host: string): S | undefined {
    let h = host.toLowerCase();
    let bare: string | undefined;
    const colon = h.lastIndexOf(':');
    if (colon > 0 && !h.endsWith(']')) {
      // `shop.example.com.:8080` is `shop.example.com:8080` (the root dot goes, the port stays).
      bare = h.slice(0, colon);
      if (bare.endsWith('.')) {
        bare = bare.slice(0, -1);
        h = bare + h.slice(colon);
      }
    } else if (h.endsWith('.')) h = h.slice(0, -1);
    const exact = this.#exact.get(h);
    if (exact) return exact;
    if (bare !== undefined) {
      const s = this.#exact.get(bare);
      if (s) return s;
    }
    if (this.#suffixes.length === 0 && this.#prefixes.length === 0) return this.#any;
    return this.#wildcard(h) ?? (bare === undefined ? undefined : this.#wildcard(bare)) ?? this.#any;
  }

  #wildcard(h: string): S | undefined {
    // The wildcard stands for at least one character (Envoy: "*.foo.com" does not match "foo.com").
    for (const w of this.#suffixes) if (h.length > w.affix.length && h.endsWith(w.affix)) return w.service;
    for (const w of this.#prefixes) if (h.length > w.affix.length && h.startsWith(w.affix)) return w.service;
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
