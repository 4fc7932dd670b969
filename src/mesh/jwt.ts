/**
 * The mesh's JWT-SVIDs (`mesh.jwtSvid`, `mesh.validateJwtSvid`): available when the mesh takes its
 * identity from the SPIFFE Workload API, which is where JWT-SVIDs and their bundles come from —
 * `identity: { workloadApi: { socket? } }` (socket omitted: SPIFFE_ENDPOINT_SOCKET), or no
 * `identity` at all with SPIFFE_ENDPOINT_SOCKET set (and no SIDECARLESS_IDENTITY_DIR, which fills
 * `identity.dir`). Any other identity (files, a dev CA, a source of the app's) has no JWT issuer:
 * both methods reject with JwtSvidUnavailableError saying so. Nothing is opened here: the client
 * dials on first use.
 */
import { type Clock } from '../clock.js';
import { type Logger, type MeshConfig } from '../config.js';
import { ConfigError, JwtSvidUnavailableError } from '../errors.js';
import { type ValidatedJwtSvid } from '../identity/jwt-svid.js';
import { type JwtClientStatus, JwtWorkloadClient } from '../sources/workload-api-jwt.js';
import { type WorkloadApiAddress, WorkloadApiAddressError, parseWorkloadApiAddress } from '../sources/workload-api-address.js';

export interface MeshJwt {
  jwtSvid(audience: string | readonly string[]): Promise<string>;
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid>;
  /** The client's state, when the mesh has a Workload API. */
  status(): JwtClientStatus | undefined;
  close(): Promise<void>;
}

/** Where the mesh's Workload API is, and which option or variable said so; undefined when it has none. */
export function workloadApiFor(config: MeshConfig, env: NodeJS.ProcessEnv): { address: WorkloadApiAddress; from: string } | undefined {
  const id = config.identity as { workloadApi?: { socket?: string } } | undefined;
  const fromEnv = env.SPIFFE_ENDPOINT_SOCKET === '' ? undefined : env.SPIFFE_ENDPOINT_SOCKET;
  let uri: string | undefined;
  let from: string;
  if (id && 'workloadApi' in id) {
    uri = id.workloadApi?.socket ?? fromEnv;
    from = id.workloadApi?.socket !== undefined ? 'identity.workloadApi.socket' : 'SPIFFE_ENDPOINT_SOCKET';
    if (uri === undefined) {
      throw new ConfigError('invalid sidecarless options:\n  - identity.workloadApi.socket: not set, and SPIFFE_ENDPOINT_SOCKET is empty; write unix:///path/to/agent.sock', [
        { path: 'identity.workloadApi.socket', message: 'not set, and SPIFFE_ENDPOINT_SOCKET is empty' },
      ]);
    }
  } else if (id === undefined && fromEnv !== undefined) {
    uri = fromEnv;
    from = 'SPIFFE_ENDPOINT_SOCKET';
  } else {
    return undefined;
  }
  try {
    return { address: parseWorkloadApiAddress(uri), from };
  } catch (e) {
    if (!(e instanceof WorkloadApiAddressError)) throw e;
    const path = from === 'SPIFFE_ENDPOINT_SOCKET' ? 'identity.workloadApi.socket' : from;
    throw new ConfigError(`invalid sidecarless options:\n  - ${from}: ${e.message}`, [{ path, message: e.message, ...(from === 'SPIFFE_ENDPOINT_SOCKET' && { env: from }) }]);
  }
}

/** The mesh's JWT-SVID client: over its Workload API, or one that says JWT-SVIDs need one. */
export function openJwtClient(config: MeshConfig, env: NodeJS.ProcessEnv, clock: Clock, logger: Logger): MeshJwt {
  const api = workloadApiFor(config, env);
  if (!api) return unavailable(config);
  const client = new JwtWorkloadClient({ address: api.address, spiffeId: config.spiffeId, clock, onError: (err) => logger.warn(`JWT-SVID: ${err.message}`) });
  return {
    jwtSvid: (audience) => client.jwtSvid(audience),
    validateJwtSvid: (token, audience) => client.validate(token, audience),
    status: () => client.status(),
    close: () => client.close(),
  };
}

function unavailable(config: MeshConfig): MeshJwt {
  const id = config.identity;
  const kind = !id ? 'none' : 'dir' in id ? `files (identity.dir ${id.dir})` : 'ca' in id ? 'a dev CA (identity.ca)' : 'source' in id ? 'an X509Source (identity.source)' : 'another source';
  const fail = (what: string) =>
    Promise.reject(
      new JwtSvidUnavailableError(
        `${what}: JWT-SVIDs need the SPIFFE Workload API, and this mesh's identity comes from ${kind === 'none' ? 'an in-process dev CA' : kind}. ` +
          `Set identity: { workloadApi: { socket: 'unix:///run/spire/sockets/agent.sock' } }, or SPIFFE_ENDPOINT_SOCKET with no identity option.`,
      ),
    );
  return {
    jwtSvid: () => fail('mesh.jwtSvid'),
    validateJwtSvid: () => fail('mesh.validateJwtSvid'),
    status: () => undefined,
    close: async () => {},
  };
}
