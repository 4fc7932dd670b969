/**
 * istiod's CA as an Issuer: `/istio.v1.auth.IstioCertificateService/CreateCertificate`, what
 * istio-agent asks for a workload certificate, spoken directly (no agent).
 *
 * - TLS only, whose one trust anchor is the pinned `root` file (never the system roots, never
 *   plaintext); the name checked is the address's host (`istiod.istio-system.svc`). The root file is
 *   read for every call and a changed file re-dials, so a rotated root-cert.pem is picked up; any
 *   failed call re-dials too (as istio-agent does).
 * - Call metadata: `authorization: Bearer <token>`, the token read again for every call (a file is
 *   rotated in place by the kubelet), and `ClusterID` when set. grpc-js sends metadata only on a
 *   connection whose server certificate verified: the token never reaches an unverified server.
 * - Request `{ csr, validity_duration }`; answer `cert_chain`, leaf first, root last, one PEM each.
 *   istiod issues the identity of the TOKEN, not what the CSR asks: a leaf for another SPIFFE ID is
 *   refused here with a message that says the token belongs to another workload.
 * - The bundle of the mesh's trust domain is the chain's root plus the roots in the pinned file
 *   (during a root rotation istiod's root-cert.pem carries both). The CA's root is trusted because
 *   the channel it came over is authenticated by the pinned root: it is the same authority that
 *   signs the SVID. The RenewingSource then verifies the chain against that bundle, the key against
 *   the leaf, and the ID again.
 */
import type { Metadata, ServiceError } from '@grpc/grpc-js';
import { ConfigError } from '../../errors.js';
import { parseCertificate } from '../../identity/certificate.js';
import { pemToCertDers } from '../../identity/pem.js';
import { MAX_CHAIN_CERTIFICATES, MAX_INTERMEDIATES } from '../../identity/svid.js';
import { IstioCertificateService, type IstioCertificateResponse } from '../../proto/istio/ca.js';
import { type Grpc, grpcCode, loadGrpc } from '../grpc.js';
import { type IssuedChain, type Issuer } from '../renewing.js';
import { type TokenSpec, expiredAt, tokenOrigin } from './bearer-token.js';
import { PinnedChannel, callMetadata, hostOf, readRoot } from '../pinned-channel.js';

export interface IstioCaIssuerOptions {
  /** `host:port` of the CA: istiod.istio-system.svc:15012. */
  readonly address: string;
  /** PEM file of the root that signed the CA's serving certificate (/var/run/secrets/istio/root-cert.pem). */
  readonly root: string;
  /** The bearer token, or the file to read it from for every call (/var/run/secrets/tokens/istio-token). */
  readonly token: TokenSpec;
  /** Sent as `ClusterID` metadata (istiod: the cluster the token's service account lives in). */
  readonly clusterId?: string;
  /** The mesh's trust domain: the bundle's. */
  readonly trustDomain: string;
  /**
   * The name the CA's certificate must carry; default the address's host. Set it when the address
   * is an IP address (a test, a bench) and the certificate names istiod.istio-system.svc.
   */
  readonly serverName?: string;
  /** Deadline of one call; default 10 s. */
  readonly callTimeoutMs?: number;
  /** Where a `{ env }` token is read from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export const DEFAULT_ISTIO_CA_CALL_TIMEOUT_MS = 10_000;
/** Largest answer taken from the CA (a chain is a few KiB). */
const MAX_ANSWER_BYTES = 1 << 20;

/** An Issuer that also owns a gRPC channel: close() closes it. */
export interface ClosableIssuer extends Issuer {
  close(): void;
}

export function istioCaIssuer(opts: IstioCaIssuerOptions): ClosableIssuer {
  const description = `Istio CA at ${opts.address}`;
  const channel = new CaChannel(opts);
  return {
    description,
    trustDomain: opts.trustDomain,
    issue: async ({ csrPem, spiffeId, ttlMs }) => {
      const rootPem = await readRoot(opts.root);
      const grpc = await loadGrpc();
      const md = await callMetadata(grpc, opts.token, opts.clusterId, opts.env);
      const validityDuration = validitySeconds(ttlMs ?? 24 * 3_600_000);
      let answer: IstioCertificateResponse;
      try {
        answer = await channel.call(grpc, rootPem, { csr: csrPem, validityDuration }, md);
      } catch (e) {
        channel.reset(); // re-dial on the next call, as istio-agent does after any error
        throw callError(e, opts, description, expiredAt(bearerOf(md), Date.now()));
      }
      return chainOf(answer, rootPem, spiffeId, opts, description);
    },
    close: () => channel.close(),
  };
}

/**
 * `validity_duration` (whole seconds, rounded up) for a lifetime in ms. Throws ConfigError for one
 * that is not a number of ms from 1 s (0 or less asks istiod for its default silently, NaN and
 * Infinity cannot be encoded).
 */
export function validitySeconds(ttlMs: number): number {
  const seconds = Math.ceil(ttlMs / 1000);
  if (typeof ttlMs !== 'number' || !(ttlMs >= 1000) || !Number.isSafeInteger(seconds)) {
    const message = `must be a lifetime in ms from 1000 (1 s; validity_duration is whole seconds), e.g. 86_400_000 for istiod's default 24 h; got ${String(ttlMs)}`;
    throw new ConfigError(`the Istio CA source's ttlMs ${message}`, [{ path: 'ttlMs', message }]);
  }
  return seconds;
}

/** The CA's pinned channel (pinned-channel.ts) and the calls in flight on it. */
class CaChannel {
  readonly #channel: PinnedChannel;
  #closed = false;
  readonly #inFlight = new Set<{ cancel(): void }>();

  constructor(private readonly opts: IstioCaIssuerOptions) {
    this.#channel = new PinnedChannel({ address: opts.address, serverName: opts.serverName, maxReceiveBytes: MAX_ANSWER_BYTES });
  }

  call(grpc: Grpc, rootPem: string, request: { csr: string; validityDuration: number }, md: Metadata): Promise<IstioCertificateResponse> {
    if (this.#closed) return Promise.reject(new Error('the Istio CA issuer is closed'));
    const client = this.#channel.client(grpc, rootPem);
    const def = IstioCertificateService.CreateCertificate;
    const deadline = Date.now() + (this.opts.callTimeoutMs ?? DEFAULT_ISTIO_CA_CALL_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      const call = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, md, { deadline }, (err, res) => {
        this.#inFlight.delete(call);
        if (err || !res) reject(err ?? new Error('no answer'));
        else resolve(res);
      });
      this.#inFlight.add(call);
    });
  }

  reset(): void {
    this.#channel.reset();
  }

  /** Closes the channel; a call in flight is cancelled. */
  close(): void {
    this.#closed = true;
    for (const call of this.#inFlight) call.cancel();
    this.#inFlight.clear();
    this.#channel.reset();
  }
}

const CODE_NAMES: Record<number, string> = {
  1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

/** A failed call as a message that names the CA, the gRPC code and what to do. */
function callError(e: unknown, opts: IstioCaIssuerOptions, description: string, tokenExpiredAt?: number): Error {
  const code = grpcCode(e);
  if (code === undefined) return e instanceof Error ? e : new Error(String(e));
  const name = CODE_NAMES[code] ?? `code ${code}`;
  const details = (e as ServiceError).details || (e as Error).message;
  const where = `the ${description} (TLS pinned to ${opts.root})`;
  switch (name) {
    case 'UNAUTHENTICATED':
      if (tokenExpiredAt !== undefined) {
        return new Error(
          `the ${description} refused ${tokenOrigin(opts.token)} (UNAUTHENTICATED: ${details}): the token expired at ${new Date(tokenExpiredAt).toISOString()} (its exp claim). ` +
            'Its issuer must refresh it (a projected service-account token is rotated by the kubelet; a platform token by its runtime); no SVID is issued until then',
          { cause: e },
        );
      }
      return new Error(
        `the ${description} refused ${tokenOrigin(opts.token)} (UNAUTHENTICATED: ${details}): ` +
          `it must be a service-account token the CA accepts (istiod: audience istio-ca)` +
          (opts.clusterId !== undefined ? `, for cluster ${opts.clusterId}` : '') + ', and not expired',
        { cause: e },
      );
    case 'UNAVAILABLE':
      return new Error(`cannot reach ${where} (UNAVAILABLE: ${details}): check the address, and that its certificate is issued by that root for ${opts.serverName ?? hostOfSafe(opts.address)}`, { cause: e });
    case 'DEADLINE_EXCEEDED':
      return new Error(`${where} did not answer within ${opts.callTimeoutMs ?? DEFAULT_ISTIO_CA_CALL_TIMEOUT_MS} ms (DEADLINE_EXCEEDED)`, { cause: e });
    default:
      return new Error(`${where} failed the certificate request (${name}: ${details})`, { cause: e });
  }
}

/** The token a call's metadata carries (`authorization: Bearer …`). */
function bearerOf(md: Metadata): string {
  const v = md.get('authorization')[0];
  return typeof v === 'string' ? v.replace(/^Bearer /, '') : '';
}

function hostOfSafe(address: string): string {
  try {
    return hostOf(address);
  } catch {
    return address;
  }
}

/** The CA's answer as a chain (leaf first) and the bundle (its root plus the pinned roots). */
function chainOf(answer: IstioCertificateResponse, rootPem: string, spiffeId: string, opts: IstioCaIssuerOptions, description: string): IssuedChain {
  const chain = answer.certChain;
  if (chain.length <= 1) {
    throw new Error(`the ${description} answered a cert_chain of ${chain.length} certificate(s): it must hold the leaf first and the root last`);
  }
  if (chain.length > MAX_CHAIN_CERTIFICATES) {
    // Counted before any is parsed: a CA's answer cannot hold the event loop with a thousand certificates.
    throw new Error(`the ${description} answered a cert_chain of ${chain.length} certificates: more than ${MAX_CHAIN_CERTIFICATES} (the leaf, at most ${MAX_INTERMEDIATES} intermediates and the root)`);
  }
  chain.forEach((pem, i) => {
    let n: number;
    try {
      n = pemToCertDers(pem).length;
    } catch {
      n = 0;
    }
    if (n !== 1) throw new Error(`element ${i} of the cert_chain from the ${description} is not one PEM certificate (${n} found)`);
  });
  const leafUris = parseCertificate(pemToCertDers(chain[0]!)[0]!).uris;
  if (leafUris.length === 1 && leafUris[0] !== spiffeId) {
    throw new Error(
      `the ${description} issued a certificate for ${leafUris[0]}, not for ${spiffeId}: ${tokenOrigin(opts.token)} belongs to another workload ` +
        `(istiod issues the identity of the token's service account, whatever the CSR asks). Refused: mount the token of ${spiffeId}'s service account, or set service/namespace to the token's`,
    );
  }
  const nl = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
  return { certChainPem: chain.map(nl).join(''), bundlePem: nl(chain[chain.length - 1]!) + nl(rootPem) };
}
