/**
 * grpc-js server interceptors, built with the app's grpc-js (ServerInterceptingCall, grpc-js ≥
 * 1.10). Both run before the handler, on the call's metadata:
 * - verifyInterceptor (inside mesh.grpc.serverCredentials()): the peer's chain checked with the
 *   SPIFFE rules (server-peer.ts); a failure is UNAUTHENTICATED and closes the connection.
 * - policyInterceptor (mesh.grpc.interceptor()): the same, then the mesh's policy
 *   (PolicyGate.decide) on `POST /package.Service/Method` at `:authority`; a denial is
 *   PERMISSION_DENIED (a trailers-only response) and the handler never runs. Identity metadata
 *   (x-forwarded-client-cert, l5d-client-id, …) is removed before the handler sees the call.
 *   Golden signals per method with grpc_response_status (telemetry/grpc.ts).
 */
import { type PolicyGate } from '../inbound/policy-gate.js';
import { DEFAULT_IDENTITY_HEADERS } from '../inbound/http1/sanitize.js';
import { hostKey, hostProblem } from '../policy/authority.js';
import { type PolicyRequest } from '../policy/index.js';
import { type PeerIdentity } from '../identity/peer-identity.js';
import { GRPC_CANCELLED, type GrpcCallObservation, type GrpcObserver } from '../telemetry/grpc.js';
import { peerName } from '../telemetry/peer-name.js';
import { type PeerSocket } from '../tls/peer.js';
import { type GrpcModule } from './module.js';
import { type GrpcPeers } from './server-peer.js';

type Interceptor = NonNullable<ConstructorParameters<GrpcModule['Server']>[0]>['interceptors'] extends (infer I)[] | undefined ? I : never;
type Metadata = InstanceType<GrpcModule['Metadata']>;
type InnerCall = Parameters<Interceptor>[1];
type Descriptor = Parameters<Interceptor>[0];

const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;
const INVALID_ARGUMENT = 3;
const INTERNAL = 13;

/** What a call's metadata step decides: go on with this peer, or end the call with this status. */
type Admission = { readonly ok: true; readonly peer: PeerIdentity } | { readonly ok: false; readonly code: number; readonly details: string };

/**
 * `admit`, never throwing: this runs in grpc-js's stream events, where an exception would end the
 * process. Anything unexpected refuses the call (fail closed).
 */
function safely(admit: () => Admission): Admission {
  try {
    return admit();
  } catch (e) {
    return { ok: false, code: INTERNAL, details: `sidecarless: the call could not be judged (${(e as Error)?.message ?? String(e)})` };
  }
}

/** An interceptor that runs `admit` on the call's metadata before anything reaches the handler. */
function gateInterceptor(
  grpc: GrpcModule,
  admit: (d: Descriptor, call: InnerCall, md: Metadata) => Admission,
  onStatus?: (call: InnerCall, code: number) => void,
): Interceptor {
  return (descriptor, call) => {
    // A refused call's messages and half-close never reach the handler either (grpc-js already
    // holds them until the metadata is passed on, which it never is; this does not rely on it).
    let refused = false;
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const a = safely(() => admit(descriptor, call, metadata));
        if (a.ok) return next(metadata);
        refused = true;
        onStatus?.(call, a.code);
        call.sendStatus({ code: a.code, details: a.details, metadata: new grpc.Metadata() });
      })
      .withOnReceiveMessage((message, next) => {
        if (!refused) next(message);
      })
      .withOnReceiveHalfClose((next) => {
        if (!refused) next();
      })
      .withOnCancel(() => onStatus?.(call, GRPC_CANCELLED))
      .build();
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendStatus((status, next) => {
        onStatus?.(call, status.code);
        next(status);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}

/** The SPIFFE check alone (what serverCredentials() carries). */
export function verifyInterceptor(grpc: GrpcModule, peers: GrpcPeers): Interceptor {
  return gateInterceptor(grpc, (_d, call) => {
    const p = peers.of(call);
    return p.ok ? p : { ok: false, code: UNAUTHENTICATED, details: `sidecarless: the client's identity was refused: ${p.reason}` };
  });
}

export interface PolicyInterceptorDeps {
  readonly grpc: GrpcModule;
  readonly peers: GrpcPeers;
  readonly gate: PolicyGate<unknown>;
  readonly observer: GrpcObserver;
  /** Metadata keys that claim an identity, removed before the handler (the defaults always are). */
  readonly identityHeaders?: readonly string[];
}

/** What the gate sees of a gRPC call: `POST <path>` at `:authority`. */
export function grpcPolicyRequest(peer: PeerIdentity, socket: PeerSocket, path: string, host: string, md: Metadata): PolicyRequest {
  return {
    peer,
    sourceIp: socket.remoteAddress ?? '',
    method: 'POST',
    path,
    host,
    port: socket.localPort ?? 0,
    ...(typeof socket.servername === 'string' && { sni: socket.servername }),
    header: (name) => {
      const v = md.get(name).filter((x): x is string => typeof x === 'string');
      return v.length === 0 ? undefined : v.join(',');
    },
  };
}

/** mesh.grpc.interceptor(): verified peer, policy per method, telemetry. */
export function policyInterceptor(d: PolicyInterceptorDeps): Interceptor {
  const strip = [...new Set([...DEFAULT_IDENTITY_HEADERS, ...(d.identityHeaders ?? []).map((h) => h.toLowerCase())])];
  const calls = new WeakMap<object, GrpcCallObservation>();
  const admit = (descriptor: Descriptor, call: InnerCall, md: Metadata): Admission => {
    const p = d.peers.of(call);
    if (!p.ok) return { ok: false, code: UNAUTHENTICATED, details: `sidecarless: the client's identity was refused: ${p.reason}` };
    const o = d.observer.start(peerName(p.peer), descriptor.path, p.socket);
    calls.set(call, o);
    for (const name of strip) md.remove(name);
    const host: unknown = call.getHost();
    const authority = typeof host === 'string' ? host : ''; // neither :authority nor Host: judged as no host
    if (o.authority !== undefined) o.authority = authority;
    const problem = hostProblem(authority);
    if (problem) {
      d.gate.malformed({ peer: p.peer, sourceIp: p.socket.remoteAddress ?? '', method: 'POST', reason: `:authority: ${problem}` }, call);
      return { ok: false, code: INVALID_ARGUMENT, details: `sidecarless: malformed :authority (${problem})` };
    }
    const decision = d.gate.decide(grpcPolicyRequest(p.peer, p.socket, descriptor.path, hostKey(authority), md), { subject: call });
    if (decision.allowed) return p;
    o.denied = true;
    return { ok: false, code: PERMISSION_DENIED, details: `sidecarless: ${descriptor.path} denied by ${decision.rule}` };
  };
  const onStatus = (call: InnerCall, code: number) => {
    const o = calls.get(call);
    if (o) d.observer.end(o, code);
  };
  return gateInterceptor(d.grpc, admit, onStatus);
}
