/**
 * The inbound gate for a request whose TLS a platform front end terminated (a Lambda HTTP event, a
 * functions-framework request), transport-neutral: no sockets, no I/O but the bundles it is
 * handed. In order:
 * 1. the target and host, checked and normalized as the HTTP/1.1 gate does (target-check.ts) → 400;
 * 2. the credential: a bearer JWT-SVID when `inbound.jwtSvid` is set (validated against the JWT
 *    bundle of its own trust domain for one of the accepted audiences), else a client certificate
 *    the NAMED front end forwarded (verified as an X.509-SVID chain against the mesh's bundles, as
 *    mTLS does), else none. A credential that is present but does not verify → 401 (RFC 6750
 *    `error="invalid_token"` for a token); a forwarded-certificate header with no front end named
 *    means nothing and is stripped;
 * 3. the policy, with that peer (marked `authenticatedBy`) → 403; a refused request that had no
 *    credential when one could be given (jwtSvid or frontEnd set) → 401 with the challenge.
 * Every decision is published on the mesh's bus by the gate (as every transport's). Never throws.
 */
import { type BundleSet } from '../../identity/bundle.js';
import { type JwtBundleSet } from '../../identity/jwt-bundle.js';
import { validateJwtSvid, type ValidatedJwtSvid } from '../../identity/jwt-svid.js';
import { type PeerIdentity } from '../../identity/peer-identity.js';
import { kubernetesParts, parseWorkloadId } from '../../identity/spiffe-id.js';
import { type PolicyRequest } from '../../policy/index.js';
import { verifyPeerChain } from '../../tls/verify-peer.js';
import { DEFAULT_IDENTITY_HEADERS } from '../http1/sanitize.js';
import { type PolicyGate } from '../policy-gate.js';
import { checkRequestTarget } from '../target-check.js';
import { type FrontEnd, type Found, bearerToken, forwardedChain } from './credentials.js';
import { type FrontedInput, type FrontedOutcome } from './types.js';

export const FRONTED_MALFORMED = 'ERR_SIDECARLESS_REQUEST_MALFORMED';
export const FRONTED_UNAUTHENTICATED = 'ERR_SIDECARLESS_UNAUTHENTICATED';
export const FRONTED_FORBIDDEN = 'ERR_SIDECARLESS_FORBIDDEN';

/** Headers front ends use to forward a client certificate: identity claims unless that front end is named. */
export const FORWARDED_CERT_HEADERS = [
  'x-amzn-mtls-clientcert',
  'x-amzn-mtls-clientcert-leaf',
  'x-amzn-mtls-clientcert-serial-number',
  'x-amzn-mtls-clientcert-issuer',
  'x-amzn-mtls-clientcert-subject',
  'x-amzn-mtls-clientcert-validity',
  'x-ssl-client-cert',
  'ssl-client-cert',
  'x-client-cert',
];

export interface FrontedJudgeDeps {
  readonly gate: PolicyGate<object>;
  /** `inbound.jwtSvid.audience`: the audiences accepted. Undefined: a bearer token is no identity. */
  readonly audiences: readonly string[] | undefined;
  readonly frontEnd: FrontEnd | undefined;
  /** `inbound.identityHeaders` (the defaults are added here). */
  readonly identityHeaders: readonly string[];
  /** The realm of the challenge (the mesh's SPIFFE ID). */
  readonly realm: string;
  readonly jwtBundles: () => Promise<JwtBundleSet>;
  readonly x509Bundles: () => BundleSet;
  readonly now: () => number;
  /** Where a problem of this mesh's own (no usable JWT bundle) is told in full: the client is only told there is one. */
  readonly logError?: (message: string) => void;
}

type Refusal = Extract<FrontedOutcome, { allowed: false }>;
type Credential = { readonly peer: PeerIdentity | null; readonly presented: boolean; readonly via?: 'jwt' };

/** Judges one fronted request. Never throws: whatever it is handed, the answer is a verdict. */
export async function judgeFronted(d: FrontedJudgeDeps, req: FrontedInput): Promise<FrontedOutcome> {
  try {
    return await judge(d, req);
  } catch (e) {
    return refuse(400, FRONTED_MALFORMED, `the request could not be judged: ${String((e as Error)?.message ?? e).slice(0, 200)}`);
  }
}

async function judge(d: FrontedJudgeDeps, req: FrontedInput): Promise<FrontedOutcome> {
  const shape = shapeProblem(req);
  const method = shape ? '' : req.method;
  const sourceIp = typeof req?.sourceIp === 'string' ? req.sourceIp : '';
  if (shape) return malformed(d, method, sourceIp, shape, {});
  const host = req.host ?? '';
  const t = checkRequestTarget(method, req.target, host, req.host !== undefined);
  if (!t.ok) return malformed(d, method, sourceIp, t.reason, req);
  const strip = stripList(d, req);
  const cred = await credential(d, req);
  if ('status' in cred) return cred;
  const hidden = new Set(strip.map((k) => k.toLowerCase()));
  const policyRequest: PolicyRequest = {
    peer: cred.peer,
    sourceIp,
    method,
    path: t.path,
    host: t.host,
    port: Number.isInteger(req.port) ? req.port : 443,
    header: (name) => (hidden.has(name) ? undefined : headerJoined(req.headers, name)),
  };
  // The subject is the request object (as every transport's): a listener that keeps per-request state finds none on it.
  const decision = d.gate.decide(policyRequest, { subject: req });
  if (decision.allowed) return { allowed: true, peer: cred.peer, path: t.path, decision, stripHeaders: cred.via === 'jwt' ? [...strip, ...keysOf(req.headers, 'authorization')] : strip };
  if (!cred.presented && cred.peer === null && (d.audiences !== undefined || d.frontEnd !== undefined)) {
    return refuse(401, FRONTED_UNAUTHENTICATED, `authentication required: ${d.audiences ? 'present a JWT-SVID (Authorization: Bearer …)' : 'present a client certificate to the front end'} (policy: ${decision.rule})`, d.audiences ? challenge(d) : undefined);
  }
  return refuse(403, FRONTED_FORBIDDEN, `denied by ${decision.rule}`);
}

/** Who the request is from: a verified JWT-SVID, a verified forwarded chain, or nobody; or a 401. */
async function credential(d: FrontedJudgeDeps, req: FrontedInput): Promise<Credential | Refusal> {
  if (d.audiences !== undefined) {
    const bearer = bearerToken(req.headers);
    if (bearer.kind === 'bad') return invalidToken(d, bearer.reason);
    if (bearer.kind === 'found') {
      const v = await validateFor(d, bearer.value);
      if ('status' in v) return v;
      const id = parseWorkloadId(v.spiffeId);
      return { peer: Object.freeze({ id: id.id, kind: 'spiffe' as const, spiffeId: id.id, trustDomain: id.trustDomain, ...kubernetesParts(id), authenticatedBy: 'jwt-svid' as const }), presented: true, via: 'jwt' };
    }
  }
  if (d.frontEnd === undefined) return { peer: null, presented: false };
  const chain: Found<Buffer[]> = forwardedChain(d.frontEnd, req);
  if (chain.kind === 'none') return { peer: null, presented: false };
  if (chain.kind === 'bad') return refuse(401, FRONTED_UNAUTHENTICATED, `the forwarded client certificate was refused: ${chain.reason}`, d.audiences ? challenge(d) : undefined);
  const verdict = verifyPeerChain(chain.value, d.x509Bundles(), d.now());
  if (!verdict.ok) return refuse(401, FRONTED_UNAUTHENTICATED, `the forwarded client certificate was refused: ${verdict.reason.slice(0, 300)}`, d.audiences ? challenge(d) : undefined);
  return { peer: Object.freeze({ ...verdict.verified.peer, authenticatedBy: 'forwarded-certificate' as const }), presented: true };
}

/** The token validated for the first accepted audience it names; the refusal of the first audience otherwise. */
async function validateFor(d: FrontedJudgeDeps, token: string): Promise<ValidatedJwtSvid | Refusal> {
  let bundles: JwtBundleSet;
  try {
    bundles = await d.jwtBundles();
  } catch (e) {
    // The detail (a file path, an address of this function's setup) is for the log, not for any client that sends a token.
    d.logError?.(`inbound.jwtSvid: a JWT-SVID could not be validated: ${String((e as Error)?.message ?? e)}`);
    return invalidToken(d, "no JWT bundle to validate it with (this service's own configuration: see its log)");
  }
  let first: Error | undefined;
  for (const audience of d.audiences!) {
    try {
      return validateJwtSvid(token, { audience, bundles, now: d.now() });
    } catch (e) {
      first ??= e as Error;
      if ((e as { reason?: string }).reason !== 'audience') break;
    }
  }
  return invalidToken(d, first?.message ?? 'refused');
}

const quoted = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

function challenge(d: FrontedJudgeDeps, error?: string, description?: string): string {
  let v = `Bearer realm=${quoted(d.realm)}`;
  if (error) v += `, error="${error}"`;
  // error_description: printable ASCII without " and \ (RFC 6750 §3).
  if (description) v += `, error_description=${quoted(description.replace(/[^\x20-\x7e]|["\\]/g, ' ').slice(0, 200))}`;
  return v;
}

function invalidToken(d: FrontedJudgeDeps, reason: string): Refusal {
  const why = reason.replace(/^JWT-SVID refused: /, '');
  return refuse(401, FRONTED_UNAUTHENTICATED, `invalid JWT-SVID: ${why.slice(0, 300)}`, challenge(d, 'invalid_token', why));
}

function refuse(status: 400 | 401 | 403, code: string, message: string, wwwAuthenticate?: string): Refusal {
  return { allowed: false, status, code, message, ...(wwwAuthenticate !== undefined && { wwwAuthenticate }) };
}

function malformed(d: FrontedJudgeDeps, method: string, sourceIp: string, reason: string, req: object): Refusal {
  d.gate.malformed({ peer: null, sourceIp, method, reason }, req);
  return refuse(400, FRONTED_MALFORMED, `malformed request: ${reason}`);
}

function shapeProblem(req: FrontedInput): string | undefined {
  if (req === null || typeof req !== 'object') return 'no request';
  if (typeof req.method !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(req.method)) return 'the method is not a token';
  if (typeof req.target !== 'string') return 'the target is not a string';
  if (req.host !== undefined && typeof req.host !== 'string') return 'the host is not a string';
  if (req.headers === null || typeof req.headers !== 'object') return 'the headers are not an object';
  return undefined;
}

/** The identity headers present in the request (its own keys), the named front end's excepted. */
function stripList(d: FrontedJudgeDeps, req: FrontedInput): string[] {
  const names = new Set([...DEFAULT_IDENTITY_HEADERS, ...FORWARDED_CERT_HEADERS, ...d.identityHeaders.map((h) => h.toLowerCase())]);
  if (d.frontEnd?.kind === 'header') names.delete(d.frontEnd.header);
  return Object.keys(req.headers).filter((k) => names.has(k.toLowerCase()));
}

function keysOf(headers: FrontedInput['headers'], name: string): string[] {
  return Object.keys(headers).filter((k) => k.toLowerCase() === name);
}

function headerJoined(headers: FrontedInput['headers'], name: string): string | undefined {
  const values: string[] = [];
  for (const k of keysOf(headers, name)) {
    const v = headers[k];
    if (typeof v === 'string') values.push(v);
    else if (Array.isArray(v)) values.push(...v.filter((x): x is string => typeof x === 'string'));
  }
  return values.length === 0 ? undefined : values.join(',');
}
