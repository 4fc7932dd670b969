/**
 * `/istio.v1.auth.IstioCertificateService/CreateCertificate`, as istiod serves it
 * (security/pkg/server/ca/server.go), for grpc.Server.addService:
 * - the caller is authenticated first (`authenticate`, e.g. tokenAuthenticator: `authorization:
 *   Bearer <jwt>`); any refusal is UNAUTHENTICATED "request authenticate failure", the same words
 *   whatever the reason (a caller learns nothing about which check failed), and the reason is logged
 *   on the server side;
 * - the certificate is for the CALLER's identity, never what the CSR asks: only the CSR's public key
 *   is used, after its signature verifies (proof of possession) and its key meets the key-strength
 *   floor (INVALID_ARGUMENT otherwise, with the reason: the caller is authenticated by then);
 * - validity_duration (seconds) is honoured up to `maxTtlMs` (default 24 h, DESIGN's Istio CA SVID
 *   lifetime; longer asks are shortened, as the answer's notAfter shows); 0 or less means the
 *   default (24 h, istiod's DEFAULT_WORKLOAD_CERT_TTL);
 * - cert_chain: leaf, intermediates, root last, one PEM each ending "\n".
 * A bug inside is INTERNAL with no detail (logged): a caller can never crash the process.
 */
import type { Metadata, ServiceError, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { type Clock } from '../../clock.js';
import { type Logger, consoleLogger } from '../../logger.js';
import { kubernetesSpiffeId } from '../../identity/spiffe-id.js';
import { parseJws } from '../../identity/jwt-svid.js';
import { ConfigError, JwtSvidError } from '../../errors.js';
import { printable } from '../../identity/peer-text.js';
import { IstioCertificateService, type IstioCertificateRequest, type IstioCertificateResponse } from '../../proto/istio/ca.js';
import { type Grpc } from '../../sources/grpc.js';
import { CaTokenError, CsrError } from './errors.js';
import { spiffeIdsAsked } from './csr.js';
import { type CaState } from './state.js';
import { TOKEN_ISSUER, type TokenPolicy, ownTokenPolicy, verifyToken } from './tokens.js';

export const DEFAULT_CA_SVID_TTL_MS = 24 * 3_600_000;
export const MAX_CA_SVID_TTL_MS = 24 * 3_600_000;
/** istiod's words for every authentication failure. */
export const AUTHENTICATE_FAILURE = 'request authenticate failure';

/** Who the caller is, or why not (the reason is logged, never sent). */
export type Authentication = { readonly spiffeId: string } | { readonly refused: string };

/** What tokenAuthenticator says of an accepted token (the ADS side needs namespace and service account too). */
export interface TokenIdentity {
  readonly spiffeId: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** `iss` of the token: the control plane's own (sidecarless-control-plane) or an external issuer's. */
  readonly issuer: string;
}

export interface CaServiceOptions {
  readonly state: CaState;
  /**
   * Who is calling. A SPIFFE ID string counts as `{ spiffeId }`; a throw counts as a refusal (its
   * message logged): whatever it does, the caller only ever sees "request authenticate failure".
   */
  readonly authenticate: (metadata: Metadata) => Authentication | string | Promise<Authentication | string>;
  readonly trustDomain: string;
  /** Longest lifetime issued; default 24 h. */
  readonly maxTtlMs?: number;
  /** Lifetime when validity_duration is 0; default 24 h (at most maxTtlMs). */
  readonly defaultTtlMs?: number;
  readonly logger?: Logger;
}

export interface CaService {
  readonly definition: { readonly CreateCertificate: typeof IstioCertificateService.CreateCertificate };
  readonly implementation: UntypedServiceImplementation;
}

/**
 * Authenticates `authorization: Bearer <jwt>` (exactly one value, "Bearer " as istiod spells it)
 * against the control plane's own tokens and, when given, external issuers (issuers.ts): the
 * token's `iss` picks the one whose keys must verify it. The identity is
 * spiffe://<trustDomain>/ns/<namespace>/sa/<service account> of the token.
 */
export function tokenAuthenticator(o: { state: CaState; trustDomain: string; issuers?: readonly TokenPolicy[]; clock?: Clock }): (md: Metadata) => TokenIdentity | { readonly refused: string } {
  const policies = [ownTokenPolicy(o.state.tokenKey), ...(o.issuers ?? [])];
  const names = policies.map((p) => p.issuer);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new ConfigError(`two token issuers are both "${twice}": each issuer once (and not the control plane's own, ${TOKEN_ISSUER})`, [{ path: 'issuers', message: `"${twice}" twice` }]);
  const clock = o.clock ?? o.state.clock;
  return (md) => {
    const values = md.get('authorization');
    if (values.length !== 1) return { refused: values.length === 0 ? 'no authorization metadata (a bearer token is required)' : 'more than one authorization value' };
    const v = values[0];
    if (typeof v !== 'string' || !v.startsWith('Bearer ')) return { refused: 'the authorization value is not "Bearer <token>"' };
    const token = v.slice('Bearer '.length).trim();
    let policy: TokenPolicy | undefined;
    try {
      const iss = parseJws(token).claims.iss;
      policy = policies.find((p) => p.issuer === iss);
      if (!policy) return { refused: `token refused: iss ${JSON.stringify(String(iss).slice(0, 200))} is not a known issuer (${policies.map((p) => p.issuer).join(', ')})` };
      const s = verifyToken(token, policy, clock.now());
      return { spiffeId: kubernetesSpiffeId(o.trustDomain, s.namespace, s.serviceAccount), namespace: s.namespace, serviceAccount: s.serviceAccount, issuer: s.issuer };
    } catch (e) {
      if (e instanceof CaTokenError || e instanceof JwtSvidError) return { refused: `${policy ? `${policy.issuer}: ` : ''}${e.message.replace(/^JWT-SVID refused: /, 'token refused: ')}` };
      return { refused: `token not usable: ${(e as Error).message}` };
    }
  };
}

/** The SPIFFE IDs other than `identity` a CSR asks for; none when it cannot be read (sign() then says why). */
function otherIdentitiesAsked(csrPem: unknown, identity: string): string[] {
  if (typeof csrPem !== 'string' || csrPem.length > 64 * 1024) return [];
  try {
    return spiffeIdsAsked(csrPem).filter((id) => id !== identity);
  } catch {
    return [];
  }
}

export function createCaService(grpc: Grpc, o: CaServiceOptions): CaService {
  if (o.trustDomain !== o.state.trustDomain) {
    throw new ConfigError(`the CA service is for trust domain ${o.trustDomain} but its state directory ${o.state.dir} signs for ${o.state.trustDomain}: give both the same`, [{ path: 'trustDomain', message: `must be ${o.state.trustDomain}` }]);
  }
  const maxTtlMs = o.maxTtlMs ?? MAX_CA_SVID_TTL_MS;
  const defaultTtlMs = Math.min(o.defaultTtlMs ?? DEFAULT_CA_SVID_TTL_MS, maxTtlMs);
  const log = o.logger ?? consoleLogger;
  const fail = (code: number, details: string): ServiceError => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });

  async function handle(call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>): Promise<IstioCertificateResponse> {
    const peer = printable(call.getPeer(), 100);
    let who: Authentication;
    try {
      const r = await o.authenticate(call.metadata);
      who = typeof r === 'string' ? { spiffeId: r } : r !== null && typeof r === 'object' ? r : { refused: 'the authenticator returned nothing' };
    } catch (e) {
      who = { refused: (e as Error)?.message ?? String(e) };
    }
    if ('refused' in who || typeof who.spiffeId !== 'string') {
      const why = 'refused' in who ? who.refused : 'the authenticator returned no SPIFFE ID';
      log.warn(`CA refused a certificate request from ${peer}: ${printable(why, 2048)}`);
      throw fail(grpc.status.UNAUTHENTICATED, AUTHENTICATE_FAILURE);
    }
    const validity = call.request.validityDuration;
    const ttlMs = Number.isFinite(validity) && validity > 0 ? Math.min(validity * 1000, maxTtlMs) : defaultTtlMs;
    const other = otherIdentitiesAsked(call.request.csr, who.spiffeId);
    if (other.length > 0) {
      log.warn(`CA refused ${peer}: its token is for ${who.spiffeId}, its CSR asks for ${printable(other.join(', '), 512)}`);
      throw fail(grpc.status.PERMISSION_DENIED, `the token is for ${who.spiffeId} but the certificate request asks for ${printable(other.join(', '), 512)}: give this workload its own token`);
    }
    try {
      const certChain = await o.state.sign(call.request.csr, who.spiffeId, ttlMs);
      log.info(`CA issued a certificate for ${who.spiffeId} to ${peer}`, { ttlSeconds: Math.round(ttlMs / 1000) });
      return { certChain };
    } catch (e) {
      if (e instanceof CsrError) {
        log.warn(`CA refused the CSR of ${who.spiffeId} from ${peer}: ${e.message}`);
        throw fail(grpc.status.INVALID_ARGUMENT, `CSR refused: ${e.message}`);
      }
      log.warn(`CA failed to sign for ${who.spiffeId}: ${(e as Error).message}`);
      throw fail(grpc.status.INTERNAL, 'certificate signing failed');
    }
  }

  const CreateCertificate = (call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, callback: sendUnaryData<IstioCertificateResponse>) => {
    handle(call).then(
      (res) => callback(null, res),
      (err: unknown) => {
        const known = err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
        if (!known) log.warn(`CA failed a certificate request: ${(err as Error)?.message ?? String(err)}`);
        callback(known ? (err as ServiceError) : fail(grpc.status.INTERNAL, 'certificate signing failed'));
      },
    );
  };
  return { definition: { CreateCertificate: IstioCertificateService.CreateCertificate }, implementation: { CreateCertificate } };
}
