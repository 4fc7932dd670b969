/**
 * @grpc/grpc-js, loaded only when a source that speaks gRPC to a control plane is opened (the
 * SPIFFE Workload API, the Istio CA): a mesh with files or a dev CA never loads it (test/proto).
 * This is the project's own copy (a dependency), not the app's; mesh.grpc (issue 15) takes the app's.
 */
import { ConfigError } from '../errors.js';

export type Grpc = typeof import('@grpc/grpc-js');

let loaded: Promise<Grpc> | undefined;

/** The grpc-js module, imported on first use. */
export function loadGrpc(): Promise<Grpc> {
  loaded ??= import('@grpc/grpc-js').then(
    (m) => ((m as { default?: Grpc }).default ?? m) as Grpc,
    (e: unknown) => {
      loaded = undefined;
      throw new ConfigError(
        `@grpc/grpc-js cannot be loaded (${(e as Error).message}): it is a dependency of sidecarless, needed for the Workload API and control-plane sources; reinstall with npm ci`,
        [{ path: 'identity', message: '@grpc/grpc-js is missing' }],
      );
    },
  );
  return loaded;
}

/** A method of a generated service definition (src/proto/*.ts). */
export interface MethodDef<Req, Res> {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly requestSerialize: (v: Partial<Req>) => Buffer;
  readonly responseDeserialize: (b: Buffer) => Res;
}

/** True when a value is a grpc-js status error (ServiceError) with this code. */
export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
