/**
 * The bearer token a control plane's CA authenticates a workload by (istiod: the pod's projected
 * service-account token, audience `istio-ca`). A file is read again for every call, as
 * istio-agent's token provider does: the kubelet rotates the projected token in place.
 * Messages name the file, never the token.
 */
import { readSmallFile } from './small-file.js';

/** A projected service-account token is about 1 KiB; a file far larger is not one. */
const MAX_TOKEN_BYTES = 64 * 1024;

/**
 * A token as given, a file read for every call, or an environment variable read for every call (a
 * platform that hands a function its OIDC token in the environment, and may refresh it there).
 */
export type TokenSpec = string | { readonly file: string } | { readonly env: string };

/** Where the token comes from, for messages: `the token file /var/run/…`, `the environment variable X` or `the token given in the options`. */
export function tokenOrigin(token: TokenSpec): string {
  if (typeof token === 'string') return 'the token given in controlPlane.token';
  return 'file' in token ? `the token file ${token.file}` : `the token in the environment variable ${token.env}`;
}

/** A visible-ASCII token (a JWT is base64url and dots): anything else cannot go in a header. */
const TOKEN = /^[\x21-\x7e]+$/;

/** What a missing token file's message tells to do (the control plane's own wording). */
const ISTIO_TOKEN_HINT = 'Mount the service-account token there (istiod: a projected token with audience istio-ca) or fix controlPlane.token.file';

/** The token now: a string as given, a file read now (surrounding whitespace trimmed). */
export async function readToken(token: TokenSpec, env: NodeJS.ProcessEnv = process.env, hint: string = ISTIO_TOKEN_HINT): Promise<string> {
  let text: string;
  if (typeof token === 'string') text = token;
  else if ('env' in token) {
    const value = env[token.env];
    if (value === undefined) throw new Error(`the environment variable ${token.env} (controlPlane.token.env) is not set: no token to authenticate to the control plane's CA with`);
    text = value;
  } else {
    try {
      text = await readSmallFile(token.file, MAX_TOKEN_BYTES);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
      throw new Error(`cannot read the control-plane token file ${token.file}: ${why}. ${hint}`, { cause: e });
    }
  }
  const value = text.trim();
  if (value === '') throw new Error(`${tokenOrigin(token)} is empty: no token to authenticate to the control plane's CA with`);
  if (!TOKEN.test(value)) throw new Error(`${tokenOrigin(token)} holds characters a bearer token cannot have (spaces, control or non-ASCII characters): is it the right file?`);
  return value;
}

/**
 * When a JWT-shaped token's `exp` claim is before `now`: that instant (ms). Read without verifying
 * anything (the CA verifies): only to tell the user why the CA refused it. Undefined otherwise.
 */
export function expiredAt(token: string, now: number): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined || payload.length > 16_384) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) && exp * 1000 <= now ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
