/**
 * The mesh's JWT-SVIDs (`mesh.jwtSvid`, `mesh.validateJwtSvid`, and the fronted judge's bundles).
 *
 * Issuers (`mesh.jwtSvid`):
 * - the SPIFFE Workload API, when the identity comes from one — `identity: { workloadApi: { socket? } }`
 *   (socket omitted: SPIFFE_ENDPOINT_SOCKET), or no `identity` with SPIFFE_ENDPOINT_SOCKET set
 *   (config.ts resolves both to the first form): FetchJWTSVID, cached by the client;
 * - a dev CA, when the identity is `{ ca: devCa }`: ES256 tokens signed with the CA's derived JWT
 *   key (identity/dev-ca-jwt.ts), 5 minutes, cached per audience until their refresh point;
 * - the control plane, when the identity comes from its CA (`controlPlane`, no `identity`): the same
 *   Workload API client over the control plane's pinned TLS channel with the bearer token
 *   (controlPlaneJwtChannel). `sidecarless control-plane` serves FetchJWTSVID/FetchJWTBundles;
 *   istiod does not, and the calls then fail saying so.
 * Any other identity (files, a source of the app's) has no JWT issuer: `jwtSvid` rejects with
 * JwtSvidUnavailableError saying so.
 *
 * Bundles (validation): the union, per trust domain, of the Workload API's (or the control
 * plane's) JWT bundles, the dev CA's, and `inbound.jwtSvid.bundle.file`'s (a kid the first source has wins over a later one).
 * With none of these, validation rejects with JwtSvidUnavailableError. Nothing is opened here: the
 * Workload API client dials on first use, the file is read on first use.
 */
import { type Clock } from '../clock.js';
import { type Logger, type MeshConfig } from '../config.js';
import { ConfigError, JwtSvidUnavailableError } from '../errors.js';
import { type JwtBundle, type JwtBundleSet, type JwtKey } from '../identity/jwt-bundle.js';
import { type ValidatedJwtSvid, validateJwtSvid } from '../identity/jwt-svid.js';
import { type DevCaKeySource, devCaJwt } from '../identity/dev-ca-jwt.js';
import { JwtBundleFile } from '../sources/jwt-bundle-file.js';
import { type JwtClientStatus, JwtWorkloadClient, controlPlaneJwtChannel, jwtRefreshAt } from '../sources/workload-api-jwt.js';
import { type WorkloadApiAddress, parseWorkloadApiAddress } from '../sources/workload-api-address.js';

export interface MeshJwt {
  jwtSvid(audience: string | readonly string[]): Promise<string>;
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid>;
  /** The JWT bundles of every source the mesh has (rejects JwtSvidUnavailableError when it has none usable). */
  bundles(): Promise<JwtBundleSet>;
  /** The Workload API client's state, when the mesh has a Workload API. */
  status(): JwtClientStatus | undefined;
  close(): Promise<void>;
}

/**
 * The mesh's Workload API address, when its identity comes from one. config.ts has already put
 * SPIFFE_ENDPOINT_SOCKET in `identity.workloadApi.socket` when that applies, and parsed it; the
 * JWT client dials the same socket as the X.509 source.
 */
export function workloadApiFor(config: MeshConfig): WorkloadApiAddress | undefined {
  const id = config.identity;
  if (!id || !('workloadApi' in id) || id.workloadApi.socket === undefined) return undefined;
  return parseWorkloadApiAddress(id.workloadApi.socket);
}

/** The dev CA of `identity: { ca }`, when the mesh has one. */
function devCaOf(config: MeshConfig): DevCaKeySource | undefined {
  const id = config.identity;
  if (!id || !('ca' in id)) return undefined;
  const ca = id.ca as Partial<DevCaKeySource>;
  return typeof ca.exportPem === 'function' && typeof ca.trustDomain === 'string' ? (ca as DevCaKeySource) : undefined;
}

/** The Workload API client of the mesh's Workload API, or of its control plane when the identity comes from that CA (identity.ts's condition). */
function workloadClientFor(config: MeshConfig, clock: Clock, onError: (err: Error) => void, env: NodeJS.ProcessEnv): JwtWorkloadClient | undefined {
  const address = workloadApiFor(config);
  if (address) return new JwtWorkloadClient({ address, spiffeId: config.spiffeId, clock, onError });
  const cp = config.controlPlane;
  if (config.identity || !cp) return undefined;
  const channel = controlPlaneJwtChannel({ address: cp.address, root: cp.root, token: cp.token, ...(cp.clusterId !== undefined && { clusterId: cp.clusterId }), env });
  return new JwtWorkloadClient({ channel, spiffeId: config.spiffeId, clock, onError });
}

/** The mesh's JWT-SVID side: its issuer and its bundle sources. */
export function openJwtClient(config: MeshConfig, clock: Clock, logger: Logger, env: NodeJS.ProcessEnv = process.env): MeshJwt {
  const onError = (err: Error) => logger.warn(`JWT-SVID: ${err.message}`);
  const wa = workloadClientFor(config, clock, onError, env);
  const ca = devCaOf(config);
  const fileCfg = config.inbound.jwtSvid?.bundle;
  const file = fileCfg ? new JwtBundleFile({ file: fileCfg.file, trustDomain: fileCfg.trustDomain ?? config.trustDomain, clock, onError }) : undefined;
  const issue = wa ? (aud: string | readonly string[]) => wa.jwtSvid(aud) : ca ? devCaIssuer(ca, config.spiffeId, clock) : noIssuer(config);
  let closed = false;
  const bundles = async (): Promise<JwtBundleSet> => {
    if (closed) throw new JwtSvidUnavailableError('the mesh is closed: its JWT bundles are gone');
    return collectBundles(config, wa, ca, file);
  };
  return {
    jwtSvid: (audience) => (closed ? Promise.reject(new JwtSvidUnavailableError('mesh.jwtSvid: the mesh is closed')) : issue(audience)),
    async validateJwtSvid(token, audience) {
      if (typeof audience !== 'string' || audience === '') throw new ConfigError('validateJwtSvid: the audience must be a non-empty string (the audience this service is)', [{ path: 'audience', message: 'must be a non-empty string' }]);
      if (wa && !ca && !file) return wa.validate(token, audience); // the Workload API's own wait and messages
      return validateJwtSvid(token, { audience, bundles: await bundles(), now: clock.now() });
    },
    bundles,
    status: () => wa?.status(),
    async close() {
      closed = true;
      await wa?.close();
    },
  };
}

async function collectBundles(config: MeshConfig, wa: JwtWorkloadClient | undefined, ca: DevCaKeySource | undefined, file: JwtBundleFile | undefined): Promise<JwtBundleSet> {
  const found: JwtBundle[] = [];
  const errors: Error[] = [];
  if (wa) {
    try {
      await wa.ready();
      found.push(...wa.bundles().values());
    } catch (e) {
      errors.push(e as Error);
    }
  }
  if (ca) found.push((await devCaJwt(ca)).bundle);
  if (file) {
    try {
      found.push(await file.bundle());
    } catch (e) {
      errors.push(e as Error);
    }
  }
  if (found.length === 0) {
    if (errors.length > 0) throw errors.length === 1 ? errors[0]! : new JwtSvidUnavailableError(errors.map((e) => e.message).join('; '));
    throw new JwtSvidUnavailableError(`mesh.validateJwtSvid: this mesh has no JWT bundle: its identity (${identityKind(config)}) is not the SPIFFE Workload API, a control plane's CA nor a dev CA, and no inbound.jwtSvid.bundle.file is given. ${HOW}`);
  }
  return mergeBundles(found);
}

/** One bundle per trust domain, the union of the keys given for it (the first of a kid wins). */
export function mergeBundles(list: readonly JwtBundle[]): JwtBundleSet {
  const keys = new Map<string, Map<string, JwtKey>>();
  for (const b of list) {
    const m = keys.get(b.trustDomain) ?? new Map<string, JwtKey>();
    for (const [kid, k] of b.keys) if (!m.has(kid)) m.set(kid, k);
    keys.set(b.trustDomain, m);
  }
  return new Map([...keys].map(([trustDomain, k]) => [trustDomain, { trustDomain, keys: k }]));
}

/** JWT-SVIDs signed by the dev CA's JWT key, cached per audience until their refresh point. */
function devCaIssuer(ca: DevCaKeySource, spiffeId: string, clock: Clock): (audience: string | readonly string[]) => Promise<string> {
  const cache = new Map<string, { token: string; refreshAt: number }>();
  return async (audience) => {
    const list = audienceList(audience);
    const key = JSON.stringify(list);
    const now = clock.now();
    const hit = cache.get(key);
    if (hit && now < hit.refreshAt) return hit.token;
    const jwt = await devCaJwt(ca);
    const token = jwt.sign(spiffeId, list, now);
    const exp = now + 5 * 60 * 1000;
    if (cache.size >= 256) cache.clear();
    cache.set(key, { token, refreshAt: jwtRefreshAt(now, exp) });
    return token;
  };
}

function audienceList(audience: string | readonly string[]): string[] {
  const list = typeof audience === 'string' ? [audience] : Array.isArray(audience) ? [...(audience as string[])] : [];
  if (list.length === 0 || list.some((a) => typeof a !== 'string' || a === '' || a.length > 2048)) {
    throw new ConfigError('jwtSvid: the audience must be a non-empty string (or a non-empty array of them), at most 2048 characters each — e.g. "spiffe://example.org/payments"', [{ path: 'audience', message: 'must be a non-empty string' }]);
  }
  return [...new Set(list)].sort();
}

const HOW = `Set identity: { workloadApi: { socket: 'unix:///run/spire/sockets/agent.sock' } } (or SPIFFE_ENDPOINT_SOCKET with no identity option), controlPlane with no identity (sidecarless control-plane issues JWT-SVIDs), or identity: { ca } with a dev CA from createDevCa().`;

function identityKind(config: MeshConfig): string {
  const id = config.identity;
  return !id ? (config.controlPlane ? "the control plane's CA" : 'an in-process dev CA made for it') : 'dir' in id ? `files (identity.dir ${id.dir})` : 'pem' in id ? 'PEM text (identity.pem)' : 'source' in id ? 'an X509Source (identity.source)' : 'another source';
}

function noIssuer(config: MeshConfig): (audience: string | readonly string[]) => Promise<string> {
  return () =>
    Promise.reject(
      new JwtSvidUnavailableError(`mesh.jwtSvid: JWT-SVIDs are issued by the SPIFFE Workload API or a dev CA given as identity.ca (or by the control plane whose CA gives the identity), and this mesh's identity comes from ${identityKind(config)}. ${HOW}`),
    );
}
