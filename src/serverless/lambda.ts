/**
 * `withMesh(handler, options)`: an AWS Lambda Node.js handler with a mesh. The returned function
 * is an async handler (two parameters, returns a promise: the runtime's callback-less style). Per
 * invocation: the mesh (made on the first, shared after), its thaw check (the instance may have
 * been frozen since the last one), then, for an HTTP event (API Gateway REST v1, HTTP API v2 or a
 * Function URL, ALB), the mesh's judgement: a refusal is answered in the event's shape and the
 * handler never runs; an admission runs it with `context.peer` set (the caller's identity, or null
 * when the policy admits unauthenticated requests). Other events (SQS, schedules, …) pass unjudged:
 * the platform's IAM authorized the invocation.
 */
import { type PeerIdentity } from '../identity/peer-identity.js';
import { type MeshOptionsInput } from '../config.js';
import { type Mesh, createMesh } from '../mesh.js';
import { applyJudgedPath, frontedRequestOf, refusalResponse, stripEventHeaders, unjudgedHttpSource, unsupportedResponse } from './events.js';
import { frontEndOf, judgeOf, thawOf } from './hooks-of.js';
import { LazyMesh } from './lazy-mesh.js';

/** Lambda's context object (only what the wrapper touches), with the peer the mesh admitted. */
export interface MeshLambdaContext {
  /** Who the HTTP request is from (a verified JWT-SVID or forwarded certificate), null when admitted unauthenticated; absent for non-HTTP events. */
  peer?: PeerIdentity | null;
  callbackWaitsForEmptyEventLoop?: boolean;
  [key: string]: unknown;
}

export type MeshLambdaHandler<E = unknown, R = unknown, C extends object = MeshLambdaContext> = (event: E, context: C & MeshLambdaContext, mesh: Mesh) => Promise<R> | R;

export type LambdaHandler<E = unknown, R = unknown, C extends object = MeshLambdaContext> = (event: E, context: C) => Promise<R>;

const EVENT_HINT = 'docs/serverless.md, "Other events"';

export function withMesh<E = unknown, R = unknown, C extends object = MeshLambdaContext>(handler: MeshLambdaHandler<E, R, C>, options: MeshOptionsInput): LambdaHandler<E, R | Record<string, unknown>, C> {
  if (typeof handler !== 'function') throw new TypeError('withMesh(handler, options): handler must be a function (event, context, mesh) => …');
  const lazy = new LazyMesh(() => createMesh(options));
  // Two parameters: the runtime treats it as an async handler and never hands it a callback.
  return async function meshHandler(event: E, context: C): Promise<R | Record<string, unknown>> {
    const mesh = await lazy.get();
    await thawOf(mesh)();
    const ctx = (context ?? {}) as C & MeshLambdaContext;
    const http = frontedRequestOf(event, { frontEnd: frontEndOf(mesh) });
    if (http) {
      const verdict = await judgeOf(mesh)(http.request);
      if (!verdict.allowed) return refusalResponse(http.kind, event, verdict);
      stripEventHeaders(event, verdict.stripHeaders);
      applyJudgedPath(event, http.kind, verdict.path);
      ctx.peer = verdict.peer;
    } else {
      const source = unjudgedHttpSource(event);
      if (source !== undefined) {
        (mesh.config.logger?.error ? mesh.config.logger : console).error(`sidecarless/serverless: refused an event from ${source}: the wrapper judges API Gateway REST and HTTP API, Function URL and ALB events only (${EVENT_HINT})`);
        return unsupportedResponse(source);
      }
      delete ctx.peer; // a context object used again (a local harness) never carries an earlier request's peer
    }
    return handler(event, ctx, mesh);
  };
}
