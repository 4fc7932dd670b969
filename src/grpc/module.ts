/**
 * Which @grpc/grpc-js mesh.grpc builds with. grpc-js checks credentials with `instanceof`, so
 * credentials made with one copy are refused by a server or channel of another copy: the app's
 * own module (`createMesh({ grpc })`) when given, else the project's copy, loaded synchronously
 * on first use of mesh.grpc only (a mesh that never touches mesh.grpc never loads grpc-js).
 */
import { createRequire } from 'node:module';
import { SidecarlessError } from '../errors.js';

export type GrpcModule = typeof import('@grpc/grpc-js');

/** grpc-js is missing, or lacks what mesh.grpc needs (an older version). */
export class GrpcUnavailableError extends SidecarlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIDECARLESS_GRPC_UNAVAILABLE', message, options);
  }
}

/** What mesh.grpc uses of a grpc-js module (all there since grpc-js 1.12; 1.14 is tested). */
const NEEDED: ReadonlyArray<readonly [string, (m: GrpcModule) => unknown]> = [
  ['ServerInterceptingCall', (m) => m.ServerInterceptingCall],
  ['ServerListenerBuilder', (m) => m.ServerListenerBuilder],
  ['ResponderBuilder', (m) => m.ResponderBuilder],
  ['Metadata', (m) => m.Metadata],
  ['status', (m) => m.status],
  ['experimental.createCertificateProviderServerCredentials', (m) => m.experimental?.createCertificateProviderServerCredentials],
  ['experimental.createServerCredentialsWithInterceptors', (m) => m.experimental?.createServerCredentialsWithInterceptors],
  ['experimental.createCertificateProviderChannelCredentials', (m) => m.experimental?.createCertificateProviderChannelCredentials],
];

/** The parts of `m` mesh.grpc needs that it lacks (empty: usable). */
export function missingGrpcParts(m: unknown): string[] {
  if (typeof m !== 'object' || m === null) return ['the module itself'];
  return NEEDED.filter(([, get]) => {
    try {
      return get(m as GrpcModule) === undefined;
    } catch {
      return true;
    }
  }).map(([name]) => name);
}

let own: GrpcModule | undefined;

/** The project's own grpc-js (a dependency), loaded on first call. */
export function ownGrpc(): GrpcModule {
  if (own) return own;
  let m: GrpcModule;
  try {
    m = createRequire(import.meta.url)('@grpc/grpc-js') as GrpcModule;
  } catch (e) {
    throw new GrpcUnavailableError(
      `@grpc/grpc-js cannot be loaded (${(e as Error).message}): install it (npm install @grpc/grpc-js) and pass it as createMesh({ grpc: require('@grpc/grpc-js') })`,
      { cause: e },
    );
  }
  return (own = m);
}

/** `m` when it has what mesh.grpc needs; throws GrpcUnavailableError naming what is missing. */
export function usableGrpc(m: GrpcModule, given: boolean): GrpcModule {
  const missing = missingGrpcParts(m);
  if (missing.length === 0) return m;
  const which = given ? 'the grpc module given to createMesh({ grpc })' : "sidecarless's own @grpc/grpc-js";
  throw new GrpcUnavailableError(`${which} lacks ${missing.join(', ')}: mesh.grpc needs @grpc/grpc-js 1.12 or later (1.14 is tested); upgrade it`);
}

/**
 * Where the app would load grpc-js from (resolved from the working directory), when that is not
 * the copy mesh.grpc builds with: credentials from one copy are refused by the other's servers and
 * channels ("creds must be a ServerCredentials object", "Channel credentials must be a
 * ChannelCredentials object"). Undefined when they are the same file or the app has none.
 */
export function otherGrpcCopy(cwd: string): string | undefined {
  try {
    const ours = createRequire(import.meta.url).resolve('@grpc/grpc-js');
    const theirs = createRequire(`${cwd.replace(/\/?$/, '/')}noop.js`).resolve('@grpc/grpc-js');
    return ours === theirs ? undefined : theirs;
  } catch {
    return undefined;
  }
}

/** The warning for otherGrpcCopy (a stable code, what to do). */
export function copyMismatchWarning(theirs: string): string {
  return (
    `ERR_SIDECARLESS_GRPC_COPY_MISMATCH: mesh.grpc builds credentials with sidecarless's own @grpc/grpc-js, but this app loads another copy (${theirs}); ` +
    `grpc-js checks credentials with instanceof, so that copy's servers and channels will refuse them ("creds must be a ServerCredentials object"). ` +
    `Pass the app's module: createMesh({ grpc: require('@grpc/grpc-js') })`
  );
}
