// What createMesh asks of every identity source: SVIDs for the workload's own SPIFFE ID only, and
// a log line when the SVID's renewal is overdue, when it expires, and when a renewal follows.
// Kept here so that mesh.ts wires it in one place.
import { type Clock } from '../clock.js';
import { type DnsDomainAnchors } from '../identity/bundle.js';
import { type ExpectedIdentity, derivedSpiffeId } from '../identity/workload-id.js';
import { describeLifecycle, type SvidLifecycleEvent } from './lifecycle.js';
import { PinnedSource } from './pinned.js';
import { type X509Source } from './source.js';

interface WorkloadConfig {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly service: string;
  /** A Linkerd workload's DNS-like identity: when set, the SVID must be for it instead of spiffeId (see MeshDnsIdentity). */
  readonly dnsIdentity?: MeshDnsIdentity | undefined;
}

/**
 * Internal (not a createMesh option): the mesh runs as a DNS-like identity, as a Linkerd workload
 * does. Set by the Linkerd control plane's config (`controlPlane.linkerd`), or by createMesh's
 * internals. `name`: the identity every SVID must carry (one DNS SAN, no URI SAN); `domains`:
 * trust anchors added to the source's bundles under `dnsBundleKey(domain)` (a source may also
 * deliver `dns:` bundles itself); `origin`: where the name came from, for refusals.
 */
export interface MeshDnsIdentity {
  readonly name: string;
  readonly domains?: readonly DnsDomainAnchors[];
  readonly origin?: string;
}

interface LogSink {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** The options every source createMesh opens gets: the expected ID and the lifecycle log lines. */
export function workloadSourceOptions(
  config: WorkloadConfig,
  logger: LogSink,
): { expect: ExpectedIdentity; dnsDomains?: readonly DnsDomainAnchors[]; onLifecycle: (e: SvidLifecycleEvent) => void } {
  const derived = derivedSpiffeId(config.trustDomain, config.namespace, config.service);
  const dns = config.dnsIdentity;
  const expect: ExpectedIdentity = dns
    ? { dnsName: dns.name, ...(dns.origin !== undefined && { origin: dns.origin }) }
    : {
        spiffeId: config.spiffeId,
        ...(config.spiffeId === derived && { derivedFrom: { trustDomain: config.trustDomain, namespace: config.namespace, service: config.service } }),
      };
  return {
    expect,
    ...(dns?.domains?.length && { dnsDomains: dns.domains }),
    onLifecycle: (e) => {
      const { level, message } = describeLifecycle(e);
      // A logger without this level still gets the line (the options check only requires warn()).
      (typeof logger[level] === 'function' ? logger[level] : logger.warn).call(logger, message);
    },
  };
}

/**
 * A source the user gave createMesh, held to the same rules (see PinnedSource). The mesh owns the
 * pin (and closes it); the user's source stays theirs.
 */
export function pinUserSource(
  source: X509Source,
  options: ReturnType<typeof workloadSourceOptions> & { clock: Clock; onError: (err: Error) => void },
): PinnedSource {
  return new PinnedSource(source, options);
}
