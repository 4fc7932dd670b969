// The public API of sidecarless. Re-exports only.
export { createMesh, type Http2RequestListener, type Mesh, type MeshStats, type SnapshotStatus } from './mesh.js';
// What mesh.snapshot() returns, and the interface a control plane implements (docs/control-planes.md).
export { type MeshSnapshot, type ServiceSnapshot, type InboundSnapshot, type InboundMode } from './control-plane/snapshot.js';
export { type ControlPlane, type UpdateHint } from './control-plane/control-plane.js';
export { type PendingReference, type SnapshotIssue } from './control-plane/validate.js';
export { type RejectedSnapshot } from './control-plane/reconcile.js';
export {
  type ServiceSettings,
  type ConnectionSettings,
  type RequestPolicy,
  type RouteSpec,
  type RouteMatch,
  type PathMatch,
  type HeaderMatch,
  type ServiceEndpoint,
  type SplitBackend,
} from './outbound/settings.js';
export { peerOf, type GrpcCallLike } from './inbound/peer-of.js';
export { type MeshGrpcApi, type ServerCredentials as GrpcServerCredentials, type ServerInterceptor as GrpcServerInterceptor } from './grpc/mesh-grpc.js';
export { type ChannelCredentials as GrpcChannelCredentials } from './grpc/channel.js';
export { GrpcUnavailableError } from './grpc/module.js';
export { type AuditRecord } from './policy/audit.js';
export {
  loadPolicy,
  compilePolicy,
  normalizeTarget,
  type Policy,
  type PolicyInput,
  type Rule,
  type Decision,
  type PolicyRequest,
  type CompiledPolicy,
  type DefaultPolicy,
} from './policy/index.js';
export { createDevCa, DevCa, type DevCaOptions, type IssuedSvid } from './identity/dev-ca.js';
export { type PeerIdentity } from './identity/peer-identity.js';
export { parseSpiffeId, isSpiffeId, type SpiffeId } from './identity/spiffe-id.js';
export { authorizeAny, authorizeId, authorizeOneOf, authorizeMemberOf, type Authorizer } from './identity/authorizer.js';
export { type X509Source, type X509Svid, type SourceStatus, type SourceState, SourceCore, CoreBackedSource, type SourceCoreOptions } from './sources/source.js';
// The kit for writing an X509Source (as go-spiffe exports x509svid.Parse / Verify): build a verified
// SVID from PEM, group roots into bundles, verify a chain against its own trust domain's bundle.
export { buildSvid } from './sources/svid-set.js';
export { bundlesFromPem, bundleFromDer, splitDerCertificates, createBundle, type BundleSet, type X509Bundle } from './identity/bundle.js';
export { verifySvidChain, validateLeaf, type VerifiedChain } from './identity/svid.js';
export { parseCertificate, type ParsedCertificate } from './identity/certificate.js';
export { type Clock, systemClock } from './clock.js';
export { type ExpectedIdentity } from './identity/workload-id.js';
export { type SvidLifecycleEvent } from './sources/lifecycle.js';
export { CHANNELS as DIAGNOSTICS_CHANNELS, type AuthzMessage, type EjectionMessage, type RotationMessage, type SnapshotMessage, type SnapshotEvent } from './telemetry/events.js';
export { DirSource, createDirSource } from './sources/dir.js';
export { DevCaSource, createDevCaSource } from './sources/dev-ca.js';
export { RenewingSource, type Issuer, type IssuedChain, type RenewingSourceOptions } from './sources/renewing.js';
export { devCaIssuer } from './sources/issuers/dev-ca.js';
export { WorkloadApiSource, createWorkloadApiSource, workloadApiBackoff, type WorkloadApiSourceOptions } from './sources/workload-api.js';
export { parseWorkloadApiAddress, type WorkloadApiAddress, WorkloadApiAddressError } from './sources/workload-api-address.js';
// JWT-SVIDs: pure validation against JWT bundles, and the Workload API client behind mesh.jwtSvid.
export { validateJwtSvid, type ValidatedJwtSvid, type ValidateJwtSvidOptions, type JwtSvidAlgorithm, JWT_SVID_ALGORITHMS } from './identity/jwt-svid.js';
export { parseJwtBundle, type JwtBundle, type JwtBundleSet, type JwtKey } from './identity/jwt-bundle.js';
export { JwtWorkloadClient, type JwtWorkloadClientOptions, type JwtClientStatus, type JwtBundlesState } from './sources/workload-api-jwt.js';
export { istioCaIssuer, type IstioCaIssuerOptions, type ClosableIssuer } from './sources/issuers/istio-ca.js';
export { IstioCaSource, createIstioCaSource, type IstioCaSourceOptions } from './sources/istio-ca.js';
export type { MeshOptionsInput as MeshOptions, EndpointConfig, EndpointInput, Logger } from './config.js';
export { OutboundTimeoutError, EndpointConnectError, EndpointFailedError, MeshClosedError, UnknownServiceError, PendingConfigError, DiscoveryPendingError } from './outbound/errors.js';
export { type OutboundServiceStats, type OutboundEndpointStats } from './outbound/service.js';
export { type SplitStats } from './outbound/split.js';
export type { SplitInput, ServiceInput } from './config.js';
export { type AdminEndpoint } from './admin/server.js';
export { type TrafficSnapshot, HTTP_DURATION_BUCKETS } from './telemetry/stats.js';
export * from './errors.js';
