/**
 * Linkerd's identity service as an Issuer: `/io.linkerd.proxy.identity.Identity/Certify`, what
 * linkerd2-proxy asks for its workload certificate, spoken directly (no proxy).
 *
 * - TLS only, whose trust anchors are Linkerd's (LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS: never the
 *   system roots, never plaintext), and the name checked is the identity service's own identity
 *   (`linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local`): Node's host-name
 *   check of that DNS SAN is the server identity check. The anchors are read for every call (a
 *   file re-read, a changed one re-dials); any failed call re-dials.
 * - The request carries the identity asked for, the token (read from its file for every call: the
 *   kubelet rotates the projected token in place) and the CSR as DER, in the BODY, not metadata:
 *   grpc-js sends a message only on a connection whose server certificate verified, so the token
 *   never reaches an unverified server.
 * - The answer is checked before use (linkerd-certify-check.ts): key ours, one DNS SAN = the
 *   identity asked for, chain to the anchors, valid_until consistent.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { IdentityUnavailableError, SvidError } from '../../errors.js';
import { createDnsBundle } from '../../identity/bundle.js';
import { type ParsedCertificate, parseCertificate } from '../../identity/certificate.js';
import { identityDomainOfKey } from '../../identity/dns-id.js';
import { decodePem, pemToCertDers } from '../../identity/pem.js';
import { type CertifyRequest, type CertifyResponse, Identity } from '../../proto/linkerd/identity.js';
import { type DeepPartial } from '../../proto/wire.js';
import { type Grpc, grpcCode, loadGrpc } from '../grpc.js';
import { PinnedChannel, readRoot } from '../pinned-channel.js';
import { type IssuedChain, type Issuer } from '../renewing.js';
import { type TokenSpec, readToken, tokenOrigin } from './bearer-token.js';
import { checkCertifyResponse } from './linkerd-certify-check.js';
import { csrSubjectPublicKeyInfo } from './csr-spki.js';

/** Linkerd's trust anchors: a PEM file (re-read for every call) or the PEM itself. */
export type TrustAnchorsSpec = { readonly file: string } | { readonly pem: string };

export interface LinkerdIdentityIssuerOptions {
  /** `host:port` of the identity service: linkerd-identity-headless.linkerd.svc.cluster.local:8080. */
  readonly address: string;
  /** The identity service's TLS identity, checked against its certificate's DNS SAN. */
  readonly serverName: string;
  /** Our identity: `<sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<trust-domain>`. */
  readonly identity: string;
  /** The BundleSet key the anchors live under (`dns:identity.<linkerd-ns>.<trust-domain>`). */
  readonly bundleKey: string;
  readonly trustAnchors: TrustAnchorsSpec;
  /** The projected token (audience identity.l5d.io); a file is read for every call. */
  readonly token: TokenSpec;
  /** Deadline of one call; default 10 s. */
  readonly callTimeoutMs?: number;
  /** `now` for the answer's checks; default Date.now. */
  readonly now?: () => number;
  readonly env?: NodeJS.ProcessEnv;
}

export const DEFAULT_LINKERD_CALL_TIMEOUT_MS = 10_000;
const LINKERD_TOKEN_HINT =
  'Mount the projected service-account token there (audience identity.l5d.io, as Linkerd\'s injector does) or fix controlPlane.linkerd.token.file (LINKERD2_PROXY_IDENTITY_TOKEN_FILE)';
/** Largest answer taken (a leaf and an issuer are a few KiB). */
const MAX_ANSWER_BYTES = 1 << 20;

export interface ClosableLinkerdIssuer extends Issuer {
  close(): void;
}

export function linkerdIdentityIssuer(opts: LinkerdIdentityIssuerOptions): ClosableLinkerdIssuer {
  const description = `Linkerd identity service at ${opts.address} (${opts.serverName})`;
  const channel = new PinnedChannel({ address: opts.address, serverName: opts.serverName, maxReceiveBytes: MAX_ANSWER_BYTES });
  const inFlight = new Set<{ cancel(): void }>();
  let closed = false;
  const call = (grpc: Grpc, anchorsPem: string, request: DeepPartial<CertifyRequest>): Promise<CertifyResponse> => {
    if (closed) return Promise.reject(new Error('the Linkerd identity issuer is closed'));
    const client = channel.client(grpc, anchorsPem);
    const def = Identity.Certify;
    const deadline = Date.now() + (opts.callTimeoutMs ?? DEFAULT_LINKERD_CALL_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      const c = client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, new grpc.Metadata(), { deadline }, (err, res) => {
        inFlight.delete(c);
        if (err || !res) reject(err ?? new Error('no answer'));
        else resolve(res);
      });
      inFlight.add(c);
    });
  };
  return {
    description,
    trustDomain: opts.bundleKey,
    issue: async ({ csrPem }): Promise<IssuedChain> => {
      const anchorsPem = await readAnchors(opts.trustAnchors);
      const anchors = pemToCertDers(anchorsPem).map(parseCertificate);
      const csrDer = csrDerOf(csrPem);
      const token = Buffer.from(await readToken(opts.token, opts.env, LINKERD_TOKEN_HINT), 'utf8');
      const grpc = await loadGrpc();
      let answer: CertifyResponse;
      try {
        answer = await call(grpc, anchorsPem, { identity: opts.identity, token, certificateSigningRequest: csrDer });
      } catch (e) {
        channel.reset(); // re-dial on the next call, as after any error
        throw callError(e, opts, description);
      }
      return issued(answer, anchors, anchorsPem, csrDer, opts, description);
    },
    close: () => {
      closed = true;
      for (const c of inFlight) c.cancel();
      inFlight.clear();
      channel.reset();
    },
  };
}

function issued(answer: CertifyResponse, anchors: ParsedCertificate[], anchorsPem: string, csrDer: Buffer, opts: LinkerdIdentityIssuerOptions, description: string): IssuedChain {
  const checked = checkCertifyResponse(answer, {
    identity: opts.identity,
    spki: csrSubjectPublicKeyInfo(csrDer),
    anchors,
    description,
    now: (opts.now ?? Date.now)(),
  });
  // The anchors under their `dns:` key only: they vouch for this identity domain, never a SPIFFE trust domain.
  const bundle = createDnsBundle(identityDomainOfKey(opts.bundleKey) ?? opts.bundleKey, anchors);
  const bundles = new Map([[bundle.trustDomain, bundle]]);
  return { certChainPem: checked.certChainPem, bundlePem: anchorsPem, bundles, validUntil: checked.validUntil };
}

/** The anchors' PEM now: the file read again, or the PEM given (both must hold certificates). */
export async function readAnchors(spec: TrustAnchorsSpec): Promise<string> {
  if ('file' in spec) return readRoot(spec.file);
  let n = 0;
  try {
    n = pemToCertDers(spec.pem).map(parseCertificate).length;
  } catch (e) {
    throw new SvidError(`the Linkerd trust anchors (PEM given) hold a certificate that cannot be parsed: ${(e as Error).message}`, { cause: e });
  }
  if (n === 0) throw new SvidError('the Linkerd trust anchors (PEM given) hold no PEM CERTIFICATE block: set LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS or controlPlane.linkerd.trustAnchors');
  return spec.pem;
}

/** The DER of a PEM CSR (Linkerd's server parses DER, whatever its proto says). */
function csrDerOf(csrPem: string): Buffer {
  const block = decodePem(csrPem).find((b) => b.label === 'CERTIFICATE REQUEST');
  if (!block) throw new Error('the CSR is not a PEM CERTIFICATE REQUEST');
  return block.der;
}

const CODE_NAMES: Record<number, string> = {
  1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED', 11: 'OUT_OF_RANGE',
  12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

/** A failed call (IdentityUnavailableError) whose message names the service, the gRPC code and what to do. */
function callError(e: unknown, opts: LinkerdIdentityIssuerOptions, description: string): Error {
  const code = grpcCode(e);
  if (code === undefined) return e instanceof Error ? e : new Error(String(e));
  const name = CODE_NAMES[code] ?? `code ${code}`;
  const details = (e as ServiceError).details || (e as Error).message;
  const fail = (what: string) => new IdentityUnavailableError(`the ${description} ${what}`, { cause: e });
  switch (name) {
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
    case 'FAILED_PRECONDITION':
    case 'INVALID_ARGUMENT':
      return fail(
        `refused to certify ${opts.identity} (${name}: ${details}): ${tokenOrigin(opts.token)} must be this workload's projected service-account token ` +
          '(audience identity.l5d.io, not expired), and the identity must be <serviceAccount>.<namespace>.serviceaccount.identity.<linkerd-ns>.<trust-domain> of that service account',
      );
    case 'UNAVAILABLE':
      return fail(
        `cannot be reached (UNAVAILABLE: ${details}): check the address (LINKERD2_PROXY_IDENTITY_SVC_ADDR), and that its certificate names ${opts.serverName} ` +
          '(LINKERD2_PROXY_IDENTITY_SVC_NAME) and chains to the trust anchors. The identity service answers Unavailable too while its issuer is not ready',
      );
    case 'DEADLINE_EXCEEDED':
      return fail(`did not answer within ${opts.callTimeoutMs ?? DEFAULT_LINKERD_CALL_TIMEOUT_MS} ms (DEADLINE_EXCEEDED)`);
    default:
      return fail(`failed the Certify call (${name}: ${details})`);
  }
}
