/**
 * `sidecarless control-plane status [--admin URL] [--json]`: what the embedded control plane
 * serves and to whom, from its admin endpoint's /status (server/status.ts): the mesh file (and a
 * rejected edit), services with their endpoints, connected workloads with what they subscribe to,
 * the version each ACKed and the last NACK, issued certificates, how many JWT-SVIDs were issued.
 */
import { request } from 'undici';
import { SidecarlessError } from '../errors.js';
import { type Io, defineCommand } from './args.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:15014';

const SHORT_TYPES: Readonly<Record<string, string>> = {
  'type.googleapis.com/envoy.config.listener.v3.Listener': 'LDS',
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration': 'RDS',
  'type.googleapis.com/envoy.config.cluster.v3.Cluster': 'CDS',
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment': 'EDS',
};

/** The admin endpoint did not answer /status. */
export class StatusUnavailableError extends SidecarlessError {
  constructor(url: string, why: string) {
    super('ERR_SIDECARLESS_CONTROL_PLANE_STATUS', `no status from ${url}: ${why}: is "sidecarless control-plane" running, with --admin-listen at that address? (pass --admin URL)`);
  }
}

interface TypeStatus {
  typeUrl: string;
  names: string[] | '*';
  sent?: { version: string };
  acked?: { version: string };
  lastNack?: { version: string; error: string; at: number };
}
interface ClientStatus {
  id: string;
  cluster: string;
  identity?: string;
  plaintext: boolean;
  types: TypeStatus[];
  registration?: { addresses: string[]; notRegistered?: string };
}
export interface StatusDoc {
  sidecarless: string;
  listen: { tls: string; plaintext?: string; admin: string };
  meshFile: { path: string; version: string; loadedAt: string; rejected?: { message: string; at: string } };
  services: Array<{ name: string; namespace: string; port: number; protocol: string; endpoints: Array<{ address: string; source: string; state?: string; removeAt?: string }> }>;
  clients: ClientStatus[];
  certificates: Array<{ serial: string; spiffeId: string; notAfter: number | string }>;
  jwtSvids?: { issued: number; bundleStreams: number };
  inboundNotRendered?: Array<{ workload: string; reason: string }>;
}

export const controlPlaneStatusCommand = defineCommand({
  name: 'control-plane status',
  summary: 'what the embedded control plane serves: mesh file, services, connected workloads, ACK/NACK, certificates',
  options: {
    admin: { type: 'string', value: 'URL', help: `the control plane's admin endpoint (default ${DEFAULT_ADMIN_URL})` },
    json: { type: 'boolean', help: 'print /status as JSON' },
  },
  examples: ['sidecarless control-plane status', 'sidecarless control-plane status --admin http://127.0.0.1:15014 --json'],
  async run(v, io) {
    const url = (v.admin ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
    const doc = await fetchStatus(url);
    if (v.json) io.stdout(JSON.stringify(doc, null, 1));
    else io.stdout(renderStatus(doc));
    return 0;
  },
});

export async function fetchStatus(url: string): Promise<StatusDoc> {
  let res;
  try {
    res = await request(`${url}/status`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
  } catch (e) {
    throw new StatusUnavailableError(url, (e as Error).message);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new StatusUnavailableError(url, `HTTP ${res.statusCode}`);
  try {
    return JSON.parse(text) as StatusDoc;
  } catch {
    throw new StatusUnavailableError(url, 'the answer is not JSON');
  }
}

export function renderStatus(d: StatusDoc): string {
  const out: string[] = [];
  out.push(`control plane ${d.listen.tls} (TLS: ADS + CA)${d.listen.plaintext ? `, ${d.listen.plaintext} (plaintext ADS)` : ''}  sidecarless ${d.sidecarless}`);
  out.push(`mesh file  ${d.meshFile.path}  version ${d.meshFile.version}  loaded ${d.meshFile.loadedAt}`);
  if (d.meshFile.rejected) out.push(`  REJECTED EDIT at ${d.meshFile.rejected.at} (still serving the version above): ${d.meshFile.rejected.message}`);
  out.push('', `services (${d.services.length})`);
  for (const s of d.services) {
    const eps = s.endpoints.map((e) => `${e.address} ${e.source === 'static' ? 'static' : e.state === 'leaving' ? `leaving${e.removeAt ? ` until ${e.removeAt}` : ''}` : 'up'}`);
    out.push(`  ${s.name}.${s.namespace}:${s.port}  ${s.protocol}  ${eps.length === 0 ? 'no endpoints' : eps.join(', ')}`);
  }
  out.push('', `clients (${d.clients.length})`);
  for (const c of d.clients) {
    const reg = c.registration?.addresses.length ? `registered ${c.registration.addresses.join(', ')}` : c.registration?.notRegistered ? `not registered: ${c.registration.notRegistered}` : 'not registered';
    out.push(`  ${c.cluster || '(no cluster)'}  ${c.identity ?? (c.plaintext ? 'plaintext' : 'unauthenticated')}  ${reg}`);
    for (const t of c.types) {
      const names = t.names === '*' ? '*' : t.names.length > 3 ? `${t.names.slice(0, 3).join(', ')} +${t.names.length - 3}` : t.names.join(', ');
      const ack = t.acked ? `ACKed ${t.acked.version}` : t.sent ? `sent ${t.sent.version}, not ACKed` : 'nothing sent';
      const nack = t.lastNack ? `  last NACK of ${t.lastNack.version}: ${t.lastNack.error}` : '';
      out.push(`    ${SHORT_TYPES[t.typeUrl] ?? t.typeUrl}  ${ack}  [${names}]${nack}`);
    }
  }
  out.push('', `certificates issued (${d.certificates.length}${d.certificates.length > 10 ? ', last 10' : ''})`);
  for (const c of d.certificates.slice(-10)) out.push(`  ${c.serial}  ${c.spiffeId}  until ${typeof c.notAfter === 'number' ? new Date(c.notAfter).toISOString() : c.notAfter}`);
  if (d.jwtSvids) out.push(`JWT-SVIDs issued: ${d.jwtSvids.issued}; JWT bundle streams open: ${d.jwtSvids.bundleStreams}`);
  for (const f of d.inboundNotRendered ?? []) out.push(`inbound policy served as deny-all for ${f.workload}: ${f.reason}`);
  return out.join('\n');
}
