/**
 * The bearer token a control plane's CA authenticates a workload by (istiod: the pod's projected
 * service-account token, audience `istio-ca`). A file is read again for every call, as
 * istio-agent's token provider does: the kubelet rotates the projected token in place.
 * Messages name the file, never the token.
 */
import { readSmallFile } from './small-file.js';

/** A projected service-account token is about 1 KiB; a file far larger is not one. */
const MAX_TOKEN_BYTES = 64 * 1024;

export type TokenSpec = string | { readonly file: string };

/** Where the token comes from, for messages: `the token file /var/run/…` or `the token given in the options`. */
export function tokenOrigin(token: TokenSpec): string {
  return typeof token === 'string' ? 'the token given in controlPlane.token' : `the token file ${token.file}`;
}

/** A visible-ASCII token (a JWT is base64url and dots): anything else cannot go in a header. */
const TOKEN = /^[\x21-\x7e]+$/;

/** The token now: a string as given, a file read now (surrounding whitespace trimmed). */
export async function readToken(token: TokenSpec): Promise<string> {
  let text: string;
  if (typeof token === 'string') text = token;
  else {
    try {
      text = await readSmallFile(token.file, MAX_TOKEN_BYTES);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
      throw new Error(`cannot read the control-plane token file ${token.file}: ${why}. Mount the service-account token there (istiod: a projected token with audience istio-ca) or fix controlPlane.token.file`, { cause: e });
    }
  }
  const value = text.trim();
  if (value === '') throw new Error(`${tokenOrigin(token)} is empty: no token to authenticate to the control plane's CA with`);
  if (!TOKEN.test(value)) throw new Error(`${tokenOrigin(token)} holds characters a bearer token cannot have (spaces, control or non-ASCII characters): is it the right file?`);
  return value;
}
