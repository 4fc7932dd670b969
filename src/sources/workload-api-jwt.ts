/**
 * JWT-SVIDs from the SPIFFE Workload API (SPIFFE_Workload_API.md, JWT-SVID profile): a client that
 * fetches this workload's own JWT-SVIDs (FetchJWTSVID) and keeps the JWT bundles of every trust
 * domain it is told about (a FetchJWTBundles stream) to validate tokens that peers present.
 *
 * - Every call carries `workload.spiffe.io: true` (the spec; a server refuses a call without it).
 * - `jwtSvid(audience)`: FetchJWTSVID for the mesh's own SPIFFE ID. The answer is checked before it
 *   is handed out (a compact JWS with a JWT-SVID alg, `sub` = our ID, `aud` has what we asked for,
 *   `exp` in the future); its signature is the agent's to vouch for, as go-spiffe's FetchJWTSVID
 *   (ParseInsecure) does: our bundle view may lag a key the agent already signs with. Cached per
 *   audience until its refresh point: half of the lifetime left when it was fetched, or 30 s before
 *   `exp`, whichever comes first. Concurrent calls for one audience share one fetch. A refresh that
 *   fails hands out the cached token while it has not expired (and reports the error).
 * - Bundles: one FetchJWTBundles stream, opened on first use (`validate`, `bundles`, `start`). Each
 *   message is the full state: a trust domain no longer sent is dropped (its tokens stop
 *   validating). A message with one bad bundle is refused whole and the last good set stays.
 *   InvalidArgument or Unimplemented: stop and say why (no retry, as the spec says); every other end
 *   (Unavailable, PermissionDenied, the stream ending): reconnect after 1 s, 2 s, 4 s … 30 s (±20 %
 *   jitter), reset by a message that is taken (one refused does not: a server that sends only
 *   unusable bundles and drops the stream is failing); the last good bundles stay in use meanwhile.
 * Time for the cache and the backoff is the injectable Clock; gRPC deadlines are wall-clock.
 *
 * The same client speaks to any server of this API given a `channel` instead of an `address`: a
 * grpc-js client factory and the metadata of each call. controlPlaneJwtChannel() is the control
 * plane's (TLS pinned to controlPlane.root, the bearer token read per call, `workload.spiffe.io`):
 * the embedded control plane serves the JWT profile; istiod does not (UNIMPLEMENTED, said so).
 */
import { type Clock, type Timer, systemClock } from '../clock.js';
import { ConfigError, JwtSvidError, JwtSvidUnavailableError } from '../errors.js';
import { type JwtBundle, type JwtBundleSet, jwtBundlesFromMap } from '../identity/jwt-bundle.js';
import { type ValidatedJwtSvid, checkTimes, jwtSvidClaims, parseJws, validateJwtSvid } from '../identity/jwt-svid.js';
import { type JWTBundlesResponse, type JWTSVIDResponse, SpiffeWorkloadAPI } from '../proto/workload.js';
import { type Grpc, loadGrpc } from './grpc.js';
import { type WorkloadApiAddress, parseWorkloadApiAddress } from './workload-api-address.js';
import { WORKLOAD_API_HEADER, workloadApiClient, workloadApiMetadata } from './workload-api-client.js';
import { printable } from '../identity/peer-text.js';
import { type TokenSpec } from './issuers/bearer-token.js';
import { PinnedChannel, callMetadata, readRoot } from './pinned-channel.js';

export const JWT_REFRESH_BEFORE_EXPIRY_MS = 30_000;
export const DEFAULT_JWT_FETCH_TIMEOUT_MS = 10_000;
export const DEFAULT_JWT_BUNDLES_TIMEOUT_MS = 15_000;
const MAX_AUDIENCE_LENGTH = 2048;

/**
 * Another server of the Workload API's JWT profile than a local agent: how to reach it. The
 * client calls `client()` and `metadata()` for every call and stream (a factory may re-dial, a
 * token may have been rotated); `close()` when the client closes.
 */
export interface JwtChannel {
  /** For status and messages: `host:port`. */
  readonly uri: string;
  /** Who it is, in messages: "the control plane at host:port". */
  readonly name: string;
  client(grpc: Grpc): Promise<InstanceType<Grpc['Client']>>;
  /** The metadata of one call; it must carry `workload.spiffe.io: true`. */
  metadata(grpc: Grpc): Promise<InstanceType<Grpc['Metadata']>>;
  /** What a status code means from this server (replaces the Workload API's hint for it). */
  readonly hints?: Readonly<Record<number, string>>;
  close(): void;
}

export interface JwtWorkloadClientOptions {
  /** `unix:///path` or `tcp://IP:port` (parsed strictly), or an address already parsed. Required unless `channel` is given. */
  readonly address?: string | WorkloadApiAddress;
  /** Instead of `address`: another server of the API (controlPlaneJwtChannel). */
  readonly channel?: JwtChannel;
  /** The workload's own SPIFFE ID: asked for, and required as the `sub` of what comes back. */
  readonly spiffeId: string;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Told of errors the caller does not see: a refused bundle update, a stream lost, a refresh that failed. */
  readonly onError?: (err: Error) => void;
  /** Deadline of one FetchJWTSVID call. Default 10 s. */
  readonly fetchTimeoutMs?: number;
  /** How long `validate` waits for the first bundles message. Default 15 s. */
  readonly bundlesTimeoutMs?: number;
}

export type JwtBundlesState = 'idle' | 'starting' | 'ready' | 'stale' | 'stopped';

export interface JwtClientStatus {
  readonly address: string;
  /** idle: the stream was never needed; starting: no bundles yet; stale: disconnected, last good kept; stopped: refused for good. */
  readonly bundles: JwtBundlesState;
  readonly trustDomains: string[];
  readonly lastError?: string;
  readonly nextRetryAt?: string;
}

interface Cached {
  readonly token: string;
  readonly expiresAt: number;
  readonly refreshAt: number;
}

type GrpcClient = InstanceType<Grpc['Client']>;
type BundleCall = ReturnType<GrpcClient['makeServerStreamRequest']>;

/** When to fetch again a token fetched at `fetchedAt`: half its remaining life, or 30 s before exp, whichever is first. */
export function jwtRefreshAt(fetchedAt: number, expiresAt: number): number {
  return Math.min(fetchedAt + (expiresAt - fetchedAt) / 2, expiresAt - JWT_REFRESH_BEFORE_EXPIRY_MS);
}

/** Reconnect delay after `attempt` failures in a row: 1 s, 2 s, 4 s … 30 s, ±20 % jitter, within [1 s, 30 s]. */
export function jwtBackoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.min(30_000, Math.max(1000, base * (0.8 + 0.4 * random())));
}

export class JwtWorkloadClient {
  /** The Workload API's address; undefined when the client was given a `channel`. */
  readonly address: WorkloadApiAddress | undefined;
  readonly spiffeId: string;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #opts: JwtWorkloadClientOptions;
  readonly #uri: string;
  readonly #where: string;
  readonly #hints: Readonly<Record<number, string>>;
  #client: Promise<GrpcClient> | undefined;
  #closed = false;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<string>>();
  #bundles: Map<string, JwtBundle> | undefined;
  #state: JwtBundlesState = 'idle';
  #call: BundleCall | undefined;
  #retry: Timer | undefined;
  #retryAt: number | undefined;
  #attempt = 0;
  #lastError: Error | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(opts: JwtWorkloadClientOptions) {
    if (opts.channel) this.address = undefined;
    else if (opts.address !== undefined) this.address = typeof opts.address === 'string' ? parseWorkloadApiAddress(opts.address) : opts.address;
    else throw new ConfigError('JwtWorkloadClient: give the Workload API address (unix:///path or tcp://IP:port) or a channel', [{ path: 'address', message: 'is required' }]);
    this.#uri = opts.channel?.uri ?? this.address!.uri;
    this.#where = opts.channel?.name ?? `the Workload API at ${this.#uri}`;
    this.#hints = { ...HINTS, ...opts.channel?.hints };
    this.spiffeId = opts.spiffeId;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#opts = opts;
  }

  /** This workload's JWT-SVID for `audience` (one, or several: one token naming all). */
  async jwtSvid(audience: string | readonly string[]): Promise<string> {
    const list = audienceList(audience);
    const key = JSON.stringify(list); // not a join: an audience may contain any separator
    const hit = this.#cache.get(key);
    if (hit && this.#clock.now() < hit.refreshAt) return hit.token;
    let fetching = this.#inflight.get(key);
    if (!fetching) {
      fetching = this.#fetch(list, key).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, fetching);
    }
    try {
      return await fetching;
    } catch (e) {
      const still = this.#cache.get(key);
      if (still && this.#clock.now() < still.expiresAt && !this.#closed) {
        this.#report(e as Error);
        return still.token;
      }
      throw e;
    }
  }

  /** Validates a JWT-SVID a peer presented, against the JWT bundles of the Workload API. */
  async validate(token: string, audience: string): Promise<ValidatedJwtSvid> {
    if (typeof audience !== 'string' || audience === '') throw new ConfigError('validateJwtSvid: the audience must be a non-empty string (the audience this service is)', [{ path: 'audience', message: 'must be a non-empty string' }]);
    const bundles = await this.#bundlesReady();
    return validateJwtSvid(token, { audience, bundles, now: this.#clock.now() });
  }

  /** The JWT bundles now (empty before the first message); opens the stream if it is not open. */
  bundles(): JwtBundleSet {
    this.start();
    return this.#bundles ?? new Map();
  }

  /** Opens the bundle stream now instead of at first use. */
  start(): void {
    if (this.#state !== 'idle' || this.#closed) return;
    this.#state = 'starting';
    void this.#connect();
  }

  /** Resolves when the first bundles have arrived; rejects after `timeoutMs` or when the client stops. */
  async ready(timeoutMs = this.#opts.bundlesTimeoutMs ?? DEFAULT_JWT_BUNDLES_TIMEOUT_MS): Promise<void> {
    await this.#bundlesReady(timeoutMs);
  }

  status(): JwtClientStatus {
    return {
      address: this.#uri,
      bundles: this.#state,
      trustDomains: [...(this.#bundles?.keys() ?? [])].sort(),
      ...(this.#lastError && { lastError: this.#lastError.message }),
      ...(this.#retryAt !== undefined && { nextRetryAt: new Date(this.#retryAt).toISOString() }),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#retry?.cancel();
    this.#retryAt = undefined;
    this.#call?.cancel();
    this.#call = undefined;
    this.#wake();
    const client = this.#client;
    this.#client = undefined;
    if (client) (await client.catch(() => undefined))?.close();
    this.#opts.channel?.close();
  }

  #grpc(): Promise<GrpcClient> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const channel = this.#opts.channel;
    if (channel) return loadGrpc().then((grpc) => channel.client(grpc));
    // The X.509 stream's channel options: above all, never through an HTTP proxy of the environment
    // (grpc_proxy/https_proxy/http_proxy would send a tcp:// address's tokens and bundles elsewhere).
    this.#client ??= loadGrpc().then((grpc) => workloadApiClient(grpc, this.address!));
    return this.#client;
  }

  async #metadata(): Promise<InstanceType<Grpc['Metadata']>> {
    const grpc = await loadGrpc();
    return this.#opts.channel ? this.#opts.channel.metadata(grpc) : workloadApiMetadata(grpc);
  }

  /** The client and the call's metadata: both may fail (a root or token file that cannot be read). */
  async #callParts(): Promise<{ client: GrpcClient; md: InstanceType<Grpc['Metadata']> }> {
    return { client: await this.#grpc(), md: await this.#metadata() };
  }

  async #fetch(audience: string[], key: string): Promise<string> {
    let client: GrpcClient;
    let md: InstanceType<Grpc['Metadata']>;
    try {
      ({ client, md } = await this.#callParts());
    } catch (e) {
      if (this.#closed || e instanceof JwtSvidUnavailableError) throw e;
      throw new JwtSvidUnavailableError(`FetchJWTSVID at ${this.#uri}: ${(e as Error).message}`, { cause: e });
    }
    const deadline = Date.now() + (this.#opts.fetchTimeoutMs ?? DEFAULT_JWT_FETCH_TIMEOUT_MS);
    const m = SpiffeWorkloadAPI.FetchJWTSVID;
    const res = await new Promise<JWTSVIDResponse>((resolve, reject) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { audience, spiffeId: this.spiffeId }, md, { deadline }, (err, value) =>
        err || !value ? reject(this.#fetchError(err)) : resolve(value),
      );
    });
    const token = this.#checkFetched(res, audience);
    const expiresAt = jwtSvidClaims(parseJws(token).claims).expiresAt;
    const now = this.#clock.now();
    if (!this.#closed) this.#cache.set(key, { token, expiresAt, refreshAt: jwtRefreshAt(now, expiresAt) });
    return token;
  }

  /** The token of our own SPIFFE ID in a FetchJWTSVID answer, checked as far as we can without the agent's keys. */
  #checkFetched(res: JWTSVIDResponse, audience: string[]): string {
    const where = this.#where;
    const svid = res.svids.find((s) => s.spiffeId === this.spiffeId);
    if (!svid) {
      const got = res.svids.slice(0, 10).map((s) => printable(s.spiffeId, 200)).join(', ') || 'none';
      throw new JwtSvidUnavailableError(`${where} sent no JWT-SVID for ${this.spiffeId} (it sent: ${got}); register this workload under that SPIFFE ID, or set the mesh's spiffeId to the one it has`);
    }
    try {
      const claims = jwtSvidClaims(parseJws(svid.svid).claims);
      if (claims.spiffeId !== this.spiffeId) throw new JwtSvidError('subject', `its sub is ${claims.spiffeId}, not ${this.spiffeId}`);
      checkTimes(claims, this.#clock.now());
      const missing = audience.filter((a) => !claims.audience.includes(a));
      if (missing.length > 0) throw new JwtSvidError('audience', `its aud lacks ${missing.join(', ')}`);
    } catch (e) {
      throw new JwtSvidUnavailableError(`${where} handed out a JWT-SVID that cannot be used: ${(e as Error).message}`, { cause: e });
    }
    return svid.svid;
  }

  #fetchError(err: unknown): Error {
    if (this.#closed) return this.#closedError();
    return new JwtSvidUnavailableError(`FetchJWTSVID at ${this.#uri} failed: ${describeGrpcError(err, this.#hints)}`, { cause: err });
  }

  async #bundlesReady(timeoutMs = this.#opts.bundlesTimeoutMs ?? DEFAULT_JWT_BUNDLES_TIMEOUT_MS): Promise<JwtBundleSet> {
    this.start();
    if (this.#closed) throw this.#closedError();
    if (this.#bundles) return this.#bundles;
    if (this.#state !== 'stopped') {
      await new Promise<void>((resolve) => {
        const finish = () => {
          timer.cancel();
          this.#waiters.delete(finish);
          resolve();
        };
        const timer = this.#clock.setTimeout(finish, timeoutMs, { keepAlive: true });
        this.#waiters.add(finish);
      });
    }
    if (this.#closed) throw this.#closedError();
    if (this.#bundles) return this.#bundles;
    const why = this.#lastError ? `: ${this.#lastError.message}` : ` within ${timeoutMs} ms (no answer yet)`;
    throw new JwtSvidUnavailableError(`no JWT bundles from ${this.#where}${why}; JWT-SVIDs cannot be validated without them`, this.#lastError && { cause: this.#lastError });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  async #connect(): Promise<void> {
    let client: GrpcClient;
    let md: InstanceType<Grpc['Metadata']>;
    try {
      ({ client, md } = await this.#callParts());
    } catch (e) {
      // A root or token file that cannot be read now may be readable later: retried, as a lost stream.
      if (this.#closed) return;
      if (this.#opts.channel) this.#onEnd({ code: 14, details: (e as Error).message });
      else this.#stop(e as Error);
      return;
    }
    if (this.#closed) return;
    const m = SpiffeWorkloadAPI.FetchJWTBundles;
    const call = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, md, {});
    this.#call = call;
    call.on('data', (msg: JWTBundlesResponse) => {
      if (this.#call === call) this.#onMessage(msg);
    });
    call.on('error', () => {}); // the status below says the same
    call.on('status', (st: { code: number; details: string }) => {
      // Messages read before the status are delivered first.
      setImmediate(() => {
        if (this.#call !== call) return;
        this.#call = undefined;
        this.#onEnd(st);
      });
    });
  }

  #onMessage(msg: JWTBundlesResponse): void {
    try {
      this.#bundles = jwtBundlesFromMap(msg.bundles);
      this.#attempt = 0;
      this.#state = 'ready';
      this.#lastError = undefined;
    } catch (e) {
      const err = new JwtSvidUnavailableError(`JWT bundle update from ${this.#where} refused, keeping the previous bundles: ${(e as Error).message}`, { cause: e });
      this.#lastError = err;
      this.#report(err);
    }
    this.#wake();
  }

  #onEnd(st: { code: number; details: string }): void {
    if (this.#closed) return;
    const grpcErr = Object.assign(new Error(st.details), { code: st.code, details: st.details });
    if (st.code === 3 /* INVALID_ARGUMENT */ || st.code === 12 /* UNIMPLEMENTED */) {
      const hint = st.code === 3 ? 'the server refused our request (the spec says not to retry)' : 'it has no JWT profile';
      this.#stop(new JwtSvidUnavailableError(`FetchJWTBundles at ${this.#uri} stopped: ${describeGrpcError(grpcErr, this.#hints)}; ${hint}. Not retried: fix the server or the address and restart`, { cause: grpcErr }));
      return;
    }
    const delay = jwtBackoffDelay(this.#attempt++, this.#random);
    const what = st.code === 0 ? 'the stream ended' : describeGrpcError(grpcErr, this.#hints);
    const err = new JwtSvidUnavailableError(`FetchJWTBundles at ${this.#uri}: ${what}; reconnecting in ${Math.round(delay)} ms${this.#bundles ? ', keeping the last JWT bundles' : ''}`, { cause: grpcErr });
    this.#state = this.#bundles ? 'stale' : 'starting';
    this.#lastError = err;
    this.#report(err);
    this.#retryAt = this.#clock.now() + delay;
    this.#retry = this.#clock.setTimeout(() => {
      this.#retry = undefined;
      this.#retryAt = undefined;
      if (!this.#closed) return this.#connect();
      return undefined;
    }, delay);
  }

  #stop(err: Error): void {
    this.#state = 'stopped';
    this.#lastError = err;
    this.#report(err);
    this.#wake();
  }

  #report(err: Error): void {
    try {
      this.#opts.onError?.(err);
    } catch {
      // a listener's failure is not ours to surface
    }
  }

  #closedError(): Error {
    return new JwtSvidUnavailableError(`the JWT-SVID client for ${this.#uri} is closed (the mesh was closed)`);
  }
}

function audienceList(audience: string | readonly string[]): string[] {
  const list = typeof audience === 'string' ? [audience] : Array.isArray(audience) ? [...(audience as string[])] : [];
  const bad = list.length === 0 || list.some((a) => typeof a !== 'string' || a === '' || a.length > MAX_AUDIENCE_LENGTH);
  if (bad) throw new ConfigError('jwtSvid: the audience must be a non-empty string (or a non-empty array of them), at most 2048 characters each — e.g. "spiffe://example.org/payments"', [{ path: 'audience', message: 'must be a non-empty string' }]);
  return [...new Set(list)].sort();
}

const STATUS_NAMES: Record<number, string> = { 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED' };
const HINTS: Record<number, string> = {
  3: 'the request was refused (a missing workload.spiffe.io header, or no audience)',
  4: 'no answer within the deadline',
  7: 'no identity for this workload yet: is it registered with the agent?',
  12: 'this Workload API does not serve the JWT profile',
  14: 'the agent is not reachable or not ready',
};

function describeGrpcError(err: unknown, hints: Readonly<Record<number, string>> = HINTS): string {
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'number' ? e.code : undefined;
  const details = typeof e?.details === 'string' ? e.details : typeof e?.message === 'string' ? e.message : String(err);
  if (code === undefined) return details;
  const hint = hints[code];
  return `${STATUS_NAMES[code] ?? `status ${code}`} (${printable(details, 300)})${hint ? `: ${hint}` : ''}`;
}

/** What the control plane's answers mean (istiod has no JWT profile: UNIMPLEMENTED). */
export const CONTROL_PLANE_JWT_HINTS: Readonly<Record<number, string>> = {
  7: 'the token is for another workload than this mesh\'s spiffeId: give the mesh its own token',
  12: 'this control plane does not issue JWT-SVIDs (istiod does not; sidecarless control-plane does): use the SPIFFE Workload API (identity.workloadApi) or a JWK Set file (inbound.jwtSvid.bundle.file)',
  14: 'the control plane is not reachable',
  16: 'the control plane refused the token (expired, or not one it trusts): check controlPlane.token',
};

export interface ControlPlaneJwtOptions {
  /** `host:port` of the control plane. */
  readonly address: string;
  /** The pinned root file (read for every call; a changed one re-dials). */
  readonly root: string;
  readonly token: TokenSpec;
  readonly clusterId?: string;
  readonly serverName?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The control plane as a JWT channel: TLS pinned to `root` (pinned-channel.ts, as its CA is
 * reached), `authorization: Bearer <token>` read again for every call, `workload.spiffe.io: true`.
 */
export function controlPlaneJwtChannel(o: ControlPlaneJwtOptions): JwtChannel {
  const pinned = new PinnedChannel({ address: o.address, ...(o.serverName !== undefined && { serverName: o.serverName }), maxReceiveBytes: 1 << 20 });
  return {
    uri: o.address,
    name: `the control plane at ${o.address}`,
    client: async (grpc) => pinned.client(grpc, await readRoot(o.root)),
    async metadata(grpc) {
      const md = await callMetadata(grpc, o.token, o.clusterId, o.env);
      md.set(WORKLOAD_API_HEADER, 'true');
      return md;
    },
    hints: CONTROL_PLANE_JWT_HINTS,
    close: () => pinned.reset(),
  };
}
