/**
 * The mesh's JWT-SVIDs (`mesh.jwtSvid`, `mesh.validateJwtSvid`): available when the mesh takes its
 * identity from the SPIFFE Workload API, which is where JWT-SVIDs and their bundles come from —
 * `identity: { workloadApi: { socket? } }` (socket omitted: SPIFFE_ENDPOINT_SOCKET), or no
 * `identity` at all with SPIFFE_ENDPOINT_SOCKET set (config.ts resolves both to the first form). Any other identity (files, a dev CA, a source of the app's) has no JWT issuer:
 * both methods reject with JwtSvidUnavailableError saying so. Nothing is opened here: the client
 * dials on first use.
 */
import { type Clock } from '../clock.js';
import { type Logger, type MeshConfig } from '../config.js';
import { JwtSvidUnavailableError } from '../errors.js';
import { type ValidatedJwtSvid } from '../identity/jwt-svid.js';
import { type JwtClientStatus, JwtWorkloadClient } from '../sources/workload-api-jwt.js';
import { type WorkloadApiAddress, parseWorkloadApiAddress } from '../sources/workload-api-address.js';

export interface MeshJwt {
  jwtSvid(audience: string | readonly string[]): Promise<string>;
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid>;
  /** The client's state, when the mesh has a Workload API. */
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

/** The mesh's JWT-SVID client: over its Workload API, or one that says JWT-SVIDs need one. */
export function openJwtClient(config: MeshConfig, clock: Clock, logger: Logger): MeshJwt {
  const address = workloadApiFor(config);
  if (!address) return unavailable(config);
  const client = new JwtWorkloadClient({ address, spiffeId: config.spiffeId, clock, onError: (err) => logger.warn(`JWT-SVID: ${err.message}`) });
  return {
    jwtSvid: (audience) => client.jwtSvid(audience),
    validateJwtSvid: (token, audience) => client.validate(token, audience),
    status: () => client.status(),
    close: () => client.close(),
  };
}

function unavailable(config: MeshConfig): MeshJwt {
  const id = config.identity;
  const kind = !id ? 'none' : 'dir' in id ? `files (identity.dir ${id.dir})` : 'pem' in id ? 'PEM text (identity.pem)' : 'ca' in id ? 'a dev CA (identity.ca)' : 'source' in id ? 'an X509Source (identity.source)' : 'another source';
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
