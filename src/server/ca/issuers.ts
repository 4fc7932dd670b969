/**
 * External token issuers for the embedded CA: tokens of an OIDC issuer whose keys are in a JWK Set
 * file (a Kubernetes cluster's service-account issuer, /openid/v1/jwks; a cloud's workload identity
 * tokens), mapped to a namespace and a service account — the agentless bootstrap of a serverless
 * function, which has such a token and nothing else. Verified exactly like the control plane's own
 * tokens (tokens.ts verifyToken: signature, iss, aud, exp/nbf/iat, Kubernetes names), with the
 * issuer's keys and audiences. An issuer is trusted for every identity its mapping yields: map
 * only issuers whose subjects you control.
 *
 *   issuers:
 *     - issuer: https://kubernetes.default.svc.cluster.local
 *       jwksFile: /etc/sidecarless/k8s-jwks.json
 *       audiences: [istio-ca]                      # default [istio-ca]
 *       claims:                                    # default: the projected token's kubernetes.io claims (sub checked)
 *         namespace: { value: functions }           # a fixed value, or
 *         serviceAccount: { claim: /sub }           # a JSON Pointer (RFC 6901) into the claims
 *
 * The JWKS is read once, when the issuer is loaded (reload the control plane after a key rotation).
 * Keys with `use: sig` (what OIDC issuers publish) are signing keys; `use: enc` keys are ignored.
 */
import { z } from 'zod';
import { ConfigError } from '../../errors.js';
import { parseJwtBundle } from '../../identity/jwt-bundle.js';
import { readableIssues } from '../../zod-issues.js';
import { CaStateError, CaTokenError } from './errors.js';
import { readText } from './state-files.js';
import { type TokenPolicy, type TokenSubject, TOKEN_AUDIENCE } from './tokens.js';

const Source = z.union([z.strictObject({ claim: z.string().startsWith('/') }), z.strictObject({ value: z.string().min(1) })]);

export const ExternalIssuerSchema = z.strictObject({
  issuer: z.string().min(1),
  jwksFile: z.string().min(1),
  audiences: z.array(z.string().min(1)).min(1).default([TOKEN_AUDIENCE]),
  claims: z.strictObject({ namespace: Source, serviceAccount: Source }).optional(),
});
export type ExternalIssuerConfig = z.input<typeof ExternalIssuerSchema>;

/** Validates an `issuers` list (ConfigError naming each bad path). */
export function parseExternalIssuers(input: unknown, path = 'issuers'): Array<z.output<typeof ExternalIssuerSchema>> {
  const r = z.array(ExternalIssuerSchema).safeParse(input);
  if (r.success) return r.data;
  const issues = readableIssues(r.error.issues, input, z.array(ExternalIssuerSchema)).map((i) => ({ path: [path, ...i.path.map(String)].join('.'), message: i.message }));
  throw new ConfigError(`${path} is invalid: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, issues);
}

/** An issuer's token policy, its keys read from its JWKS file. */
export async function loadExternalIssuer(config: ExternalIssuerConfig, trustDomain: string): Promise<TokenPolicy> {
  const c = parseExternalIssuers([config])[0]!;
  const text = await readText(c.jwksFile);
  let bundle;
  try {
    bundle = parseJwtBundle(trustDomain, signingKeysOnly(text, c.jwksFile));
  } catch (e) {
    throw new CaStateError(c.jwksFile, `the JWK Set of issuer ${c.issuer} (${c.jwksFile}) cannot be used: ${(e as Error).message}`, { cause: e });
  }
  if (bundle.keys.size === 0) throw new CaStateError(c.jwksFile, `the JWK Set of issuer ${c.issuer} (${c.jwksFile}) has no EC or RSA signing key`);
  const claims = c.claims;
  return {
    issuer: c.issuer,
    keys: bundle.keys,
    audiences: c.audiences,
    ...(claims && { subject: (cl: Readonly<Record<string, unknown>>): TokenSubject => ({ namespace: pick(cl, claims.namespace, 'namespace'), serviceAccount: pick(cl, claims.serviceAccount, 'service account') }) }),
  };
}

/** The JWKS with `use: sig` keys taken as signing keys (parseJwtBundle takes JWT-SVID keys: `use` absent or jwt-svid). */
function signingKeysOnly(text: string, file: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CaStateError(file, `${file} is not JSON: ${(e as Error).message}`);
  }
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) return text; // parseJwtBundle says what is wrong
  return JSON.stringify({ keys: keys.map((k) => (k && typeof k === 'object' && (k as { use?: unknown }).use === 'sig' ? { ...k, use: undefined } : k)) });
}

/** A claim (JSON Pointer) or a fixed value, as a string; CaTokenError `claims` otherwise. */
function pick(claims: Readonly<Record<string, unknown>>, s: { claim: string } | { value: string }, what: string): string {
  if ('value' in s) return s.value;
  let v: unknown = claims;
  for (const raw of s.claim.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg] : undefined;
  }
  if (typeof v !== 'string') throw new CaTokenError('claims', `token refused: the ${what} claim ${s.claim} is missing or not a string`);
  return v;
}

