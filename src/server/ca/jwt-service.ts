/**
 * The JWT profile of the SPIFFE Workload API (`/SpiffeWorkloadAPI/FetchJWTSVID`, unary, and
 * `/SpiffeWorkloadAPI/FetchJWTBundles`, server stream), served by the embedded control plane on its
 * TLS port beside the CA — never on the plaintext port: a mesh whose identity comes from the
 * control plane's CA gets its JWT-SVIDs and the JWT bundles to validate them from the same place.
 * istiod serves no such thing (a client gets UNIMPLEMENTED there).
 *
 * - `workload.spiffe.io: true` is required (SPIFFE_Workload_Endpoint.md §3): INVALID_ARGUMENT
 *   "security header missing from request", SPIRE's words.
 * - The caller is authenticated as the CA authenticates it (the same authenticator: the control
 *   plane's own tokens and the mesh file's tokenIssuers); any refusal is UNAUTHENTICATED "request
 *   authenticate failure", istiod's words, the reason logged here and never sent.
 * - FetchJWTSVID issues for the TOKEN's SPIFFE ID only: a request naming another spiffe_id is
 *   PERMISSION_DENIED; no audience is INVALID_ARGUMENT. Lifetime 5 minutes (SPIRE's default),
 *   ES256, signed with the key CaState.jwt() derives from the CA key (dev-ca-jwt.ts), kid in the
 *   bundle.
 * - FetchJWTBundles sends `{ bundles: { <trust domain>: JWK Set } }` once and keeps the stream
 *   open (the key only changes with the CA key, i.e. with a restart on other --state); close()
 *   ends every open stream with OK so that a shutdown does not wait for them.
 * A bug inside is INTERNAL with no detail (logged): a caller can never crash the process.
 */
import type { Metadata, ServerUnaryCall, ServerWritableStream, ServiceError, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { type Logger, consoleLogger } from '../../logger.js';
import { printable } from '../../identity/peer-text.js';
import { DEV_CA_JWT_TTL_MS } from '../../identity/dev-ca-jwt.js';
import { type JWTBundlesRequest, type JWTBundlesResponse, type JWTSVIDRequest, type JWTSVIDResponse, SpiffeWorkloadAPI } from '../../proto/workload.js';
import { type Grpc } from '../../sources/grpc.js';
import { AUTHENTICATE_FAILURE, type Authentication } from './ca-service.js';
import { type CaState } from './state.js';

/** Lifetime of a JWT-SVID the control plane issues (SPIRE's default JWT-SVID TTL). */
export const CONTROL_PLANE_JWT_TTL_MS = DEV_CA_JWT_TTL_MS;
/** SPIRE's words for a call without `workload.spiffe.io: true`. */
export const SECURITY_HEADER_MISSING = 'security header missing from request';
const MAX_AUDIENCES = 32;
const MAX_AUDIENCE_LENGTH = 2048;

export interface JwtSvidServiceOptions {
  readonly state: CaState;
  /** Who is calling (the CA's authenticator); a throw counts as a refusal. */
  readonly authenticate: (metadata: Metadata) => Authentication | Promise<Authentication>;
  readonly logger?: Logger;
}

export interface JwtSvidService {
  readonly definition: { readonly FetchJWTSVID: typeof SpiffeWorkloadAPI.FetchJWTSVID; readonly FetchJWTBundles: typeof SpiffeWorkloadAPI.FetchJWTBundles };
  readonly implementation: UntypedServiceImplementation;
  /** How many JWT-SVIDs were issued since start. */
  issued(): number;
  /** How many FetchJWTBundles streams are open. */
  streams(): number;
  /** Ends every open bundle stream (OK) and refuses new ones (UNAVAILABLE). */
  close(): void;
}

type Fail = ServiceError;

export function createJwtSvidService(grpc: Grpc, o: JwtSvidServiceOptions): JwtSvidService {
  const log = o.logger ?? consoleLogger;
  const fail = (code: number, details: string): Fail => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
  const open = new Set<ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>>();
  let issued = 0;
  let closed = false;

  /** The caller's SPIFFE ID, or the failure to answer with. */
  async function caller(md: Metadata, peer: string, what: string): Promise<string> {
    if (md.get('workload.spiffe.io').join(',') !== 'true') throw fail(grpc.status.INVALID_ARGUMENT, SECURITY_HEADER_MISSING);
    let who: Authentication;
    try {
      who = await o.authenticate(md);
    } catch (e) {
      who = { refused: (e as Error)?.message ?? String(e) };
    }
    if ('refused' in who || typeof who.spiffeId !== 'string') {
      log.warn(`${what} refused for ${peer}: ${printable('refused' in who ? who.refused : 'no SPIFFE ID', 2048)}`);
      throw fail(grpc.status.UNAUTHENTICATED, AUTHENTICATE_FAILURE);
    }
    return who.spiffeId;
  }

  async function fetchJwtSvid(call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>): Promise<JWTSVIDResponse> {
    const peer = printable(call.getPeer(), 100);
    const spiffeId = await caller(call.metadata, peer, 'FetchJWTSVID');
    const { audience, spiffeId: asked } = call.request;
    if (asked !== '' && asked !== spiffeId) {
      log.warn(`FetchJWTSVID refused ${peer}: its token is for ${spiffeId}, it asks for ${printable(asked, 512)}`);
      throw fail(grpc.status.PERMISSION_DENIED, `the token is for ${spiffeId} but the request asks for a JWT-SVID for ${printable(asked, 512)}: give this workload its own token`);
    }
    if (audience.length === 0) throw fail(grpc.status.INVALID_ARGUMENT, 'audience must be specified');
    if (audience.length > MAX_AUDIENCES || audience.some((a) => a === '' || a.length > MAX_AUDIENCE_LENGTH)) {
      throw fail(grpc.status.INVALID_ARGUMENT, `audience: at most ${MAX_AUDIENCES} values, each non-empty and at most ${MAX_AUDIENCE_LENGTH} characters`);
    }
    const jwt = await o.state.jwt();
    const svid = jwt.sign(spiffeId, [...new Set(audience)], o.state.clock.now(), CONTROL_PLANE_JWT_TTL_MS);
    issued++;
    log.info(`issued a JWT-SVID for ${spiffeId} to ${peer}`, { audience: printable(audience.join(' '), 512) });
    return { svids: [{ spiffeId, svid, hint: '' }] };
  }

  async function fetchJwtBundles(call: ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>): Promise<void> {
    if (closed) throw fail(grpc.status.UNAVAILABLE, 'the control plane is shutting down');
    await caller(call.metadata, printable(call.getPeer(), 100), 'FetchJWTBundles');
    const jwt = await o.state.jwt();
    if (call.cancelled) return;
    if (closed) throw fail(grpc.status.UNAVAILABLE, 'the control plane is shutting down');
    open.add(call);
    const forget = () => open.delete(call);
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.write({ bundles: new Map([[jwt.trustDomain, Buffer.from(jwt.jwks)]]) });
  }

  /** Answers a failure as the gRPC error it is, anything else as INTERNAL (logged). */
  const asGrpc = (err: unknown, what: string): Fail => {
    if (err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number') return err as Fail;
    log.warn(`${what} failed: ${(err as Error)?.message ?? String(err)}`);
    return fail(grpc.status.INTERNAL, `${what} failed`);
  };

  return {
    definition: { FetchJWTSVID: SpiffeWorkloadAPI.FetchJWTSVID, FetchJWTBundles: SpiffeWorkloadAPI.FetchJWTBundles },
    implementation: {
      FetchJWTSVID: (call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>, callback: sendUnaryData<JWTSVIDResponse>) => {
        fetchJwtSvid(call).then(
          (res) => callback(null, res),
          (err: unknown) => callback(asGrpc(err, 'FetchJWTSVID')),
        );
      },
      FetchJWTBundles: (call: ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>) => {
        fetchJwtBundles(call).catch((err: unknown) => {
          if (!call.cancelled) call.emit('error', asGrpc(err, 'FetchJWTBundles'));
        });
      },
    },
    issued: () => issued,
    streams: () => open.size,
    close: () => {
      closed = true;
      for (const call of [...open]) {
        open.delete(call);
        if (!call.cancelled) call.end();
      }
    },
  };
}
