/**
 * The workload's identity source, from `identity` in the options: a user's source (pinned to the
 * mesh's SPIFFE ID), a watched directory, PEM text the platform handed the process, the SPIFFE Workload API, the control plane's CA
 * (`controlPlane` without `identity`; both load grpc-js, only then), Linkerd's identity service
 * (`controlPlane.linkerd` without `identity`, loaded only then), or a dev CA (given, or made in
 * process with a warning). config.ts has applied the precedence of DESIGN.md: explicit identity >
 * SIDECARLESS_IDENTITY_DIR > SPIFFE_ENDPOINT_SOCKET > the control plane's CA > dev CA.
 */
import { type Clock } from '../clock.js';
import { type Logger, type MeshConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { createDevCa, type DevCa } from '../identity/dev-ca.js';
import { createDevCaSource } from '../sources/dev-ca.js';
import { createDirSource } from '../sources/dir.js';
import { PemSource } from '../sources/pem.js';
import { createWorkloadApiSource } from '../sources/workload-api.js';
import { IstioCaSource } from '../sources/istio-ca.js';
import { type X509Source } from '../sources/source.js';
import { pinUserSource, workloadSourceOptions } from '../sources/workload.js';

export const DEFAULT_START_TIMEOUT_MS = 15_000;

export interface OpenedSource {
  readonly source: X509Source;
  /** The mesh closes it (a pin over the user's source, or one it opened). */
  readonly owned: boolean;
  readonly startTimeout: number;
}

export async function openSource(config: MeshConfig, logger: Logger, clock: Clock, env: NodeJS.ProcessEnv = process.env): Promise<OpenedSource> {
  const id = config.identity;
  const opened: { source?: X509Source } = {};
  const onError = (err: Error) => {
    const hasSvid = opened.source !== undefined && opened.source.status().state !== 'starting';
    logger.warn(hasSvid ? `identity update rejected, keeping the previous SVID: ${err.message}` : `no identity yet (retrying): ${err.message}`);
  };
  // Every source serves only SVIDs for config.spiffeId, and logs overdue renewals and expiry.
  const workload = workloadSourceOptions(config, logger);
  if (id && 'source' in id) {
    // The pin is the mesh's (closed with it); the user's source stays open.
    const source = (opened.source = pinUserSource(id.source as X509Source, { ...workload, clock, onError }));
    return { source, owned: true, startTimeout: id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  if (id && 'dir' in id) {
    const source = (opened.source = await createDirSource({ dir: id.dir, trustDomain: config.trustDomain, clock, onError, ...workload, ...(id.pollInterval !== undefined && { pollMs: id.pollInterval }) }));
    return { source, owned: true, startTimeout: id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  if (id && 'pem' in id) {
    // Verified now: a set that cannot be used rejects createMesh at once (nothing to wait for).
    const source = (opened.source = new PemSource({ pem: id.pem, origin: 'identity.pem (or SIDECARLESS_SVID_PEM, _KEY_PEM, _BUNDLE_PEM)', trustDomain: config.trustDomain, clock, ...workload }));
    return { source, owned: true, startTimeout: id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  if (id && 'workloadApi' in id) {
    const w = id.workloadApi;
    // checkWorkloadApi (config.ts) made sure of a socket; the address parsed there too.
    const source = (opened.source = createWorkloadApiSource({
      address: w.socket!,
      clock,
      onError,
      ...workload,
      ...(w.hint !== undefined && { hint: w.hint }),
    }));
    return { source, owned: true, startTimeout: w.startTimeout ?? id.startTimeout ?? DEFAULT_START_TIMEOUT_MS };
  }
  if (!id && config.linkerd) {
    // No identity of its own: Linkerd's identity service issues it (Certify), loaded only now.
    const l = config.linkerd;
    const { LinkerdIdentitySource } = await import('../sources/linkerd-identity.js');
    const source = (opened.source = new LinkerdIdentitySource({
      address: l.identity.address,
      serverName: l.identity.serverName,
      identity: l.localName,
      trustAnchors: l.trustAnchors,
      token: l.token,
      env,
      clock,
      onError,
      ...(workload.onLifecycle && { onLifecycle: workload.onLifecycle }),
    }));
    void source.start();
    return { source, owned: true, startTimeout: DEFAULT_START_TIMEOUT_MS };
  }
  if (!id && config.controlPlane) {
    // No identity of its own (nor SIDECARLESS_IDENTITY_DIR): the control plane's CA issues it (DESIGN.md).
    // Not awaited: ready(startTimeout) bounds the wait for the first SVID, a slow CA included.
    const cp = config.controlPlane;
    const source = (opened.source = new IstioCaSource({ ...cp, env, trustDomain: config.trustDomain, spiffeId: config.spiffeId, clock, onError, onLifecycle: workload.onLifecycle }));
    void source.start();
    return { source, owned: true, startTimeout: DEFAULT_START_TIMEOUT_MS };
  }
  let ca: DevCa;
  if (id && 'ca' in id) ca = id.ca as DevCa;
  else {
    logger.warn(
      `no identity configured: using an in-process dev CA for ${config.spiffeId}. For development only: processes with ` +
        `different dev CAs cannot talk. Set identity.dir (or SIDECARLESS_IDENTITY_DIR), identity.workloadApi (or SPIFFE_ENDPOINT_SOCKET) for a SPIRE agent, or controlPlane for istiod, for real deployments.`,
    );
    ca = await createDevCa({ trustDomain: config.trustDomain, clock });
  }
  if (ca.trustDomain !== config.trustDomain) {
    throw new ConfigError(`invalid sidecarless options:\n  - identity.ca: the dev CA is for trust domain ${ca.trustDomain}, the mesh is in ${config.trustDomain}`, [
      { path: 'identity.ca', message: `trust domain ${ca.trustDomain} is not ${config.trustDomain}` },
    ]);
  }
  const ttl = id && 'ca' in id ? id.ttl : undefined;
  const source = await createDevCaSource({ ca, spiffeId: config.spiffeId, clock, onError, onLifecycle: workload.onLifecycle, ...(ttl !== undefined && { ttlMs: ttl }) });
  return { source, owned: true, startTimeout: (id && 'startTimeout' in id && id.startTimeout) || DEFAULT_START_TIMEOUT_MS };
}

