// Drives test/helpers/py/jwt_workload_server.py: a Workload API server (JWT profile, plus one
// scripted X.509 stream) on gRPC C-core, listening on a Unix socket in a temp directory of the test.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tempDirFor } from '../tmp.js';
import { startPython } from './stack.js';

export type GrpcCodeName = 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'PERMISSION_DENIED' | 'UNIMPLEMENTED' | 'INTERNAL';
export type JwtAlg = 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512';

export interface FetchCall {
  audience: string[];
  spiffe_id: string;
  header: boolean;
}

export interface JwtWorkloadServer {
  /** `unix:///…/wl.sock`: for the client and for SPIFFE_ENDPOINT_SOCKET. */
  readonly address: string;
  /** Generates a key (in the server's memory) in trust domain `td`'s JWT bundle; answers its public JWK. */
  addKey(td: string, kid: string, alg?: JwtAlg, bits?: number): Promise<Record<string, string>>;
  dropKey(td: string, kid: string): Promise<void>;
  /** FetchJWTSVID signs with this key, tokens valid `ttl` seconds; `override` replaces the returned spiffe_id or claims. */
  setSigner(td: string, kid: string, ttl?: number, override?: { spiffe_id?: string; claims?: Record<string, unknown> }): Promise<void>;
  /** A token signed by a key of the server, with any claims (and header, to forge). */
  sign(td: string, kid: string, claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** Sends the full state (keys now, less `omit`, plus raw `extra`) to every open FetchJWTBundles stream; streams opened later start with it. */
  push(opts?: { omit?: string[]; extra?: Record<string, string>; use?: string }): Promise<number>;
  /** Ends every open FetchJWTBundles stream with a status. */
  failBundles(code: GrpcCodeName, message?: string): Promise<number>;
  /** Whether a new bundle stream gets the last pushed state at once (default true). */
  greet(on: boolean): Promise<void>;
  /** FetchJWTSVID fails with `code` until called with undefined. */
  fetchFail(code: GrpcCodeName | undefined, message?: string): Promise<void>;
  /** What FetchX509SVID streams (DER, base64). */
  setX509(svid: { spiffeId: string; chainDer: Buffer; keyDer: Buffer; bundleDer: Buffer }): Promise<void>;
  calls(): Promise<{ jwt: FetchCall[]; bundles: number; open_bundle_streams: number }>;
  close(): Promise<void>;
}

/** Starts the server; it is killed when `t` ends. */
export async function startJwtWorkloadServer(t: { after(fn: () => Promise<void> | void): void }): Promise<JwtWorkloadServer> {
  const dir = tempDirFor(t as { after(fn: () => Promise<void>): void }, 'sidecarless-jwtwl-');
  const address = `unix://${join(dir, 'wl.sock')}`;
  const child = startPython('jwt_workload_server.py', [address]);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout! });
  const waiting = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let ready!: () => void;
  let failed!: (e: Error) => void;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  lines.on('line', (line) => {
    const msg = JSON.parse(line) as Record<string, unknown>;
    if (msg.ready) return ready();
    const w = waiting.get(msg.id as number);
    waiting.delete(msg.id as number);
    if (msg.error) w?.reject(new Error(`jwt_workload_server.py: ${String(msg.error)}`));
    else w?.resolve(msg);
  });
  let exited = false;
  child.on('exit', (code) => {
    exited = true;
    const err = new Error(`jwt_workload_server.py exited ${code}: ${stderr}`);
    failed(err);
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  });
  let next = 0;
  const send = (op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(`jwt_workload_server.py is not running: ${stderr}`));
      const id = next++;
      waiting.set(id, { resolve, reject });
      child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  const close = async () => {
    if (exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  };
  t.after(close);
  await started;
  return {
    address,
    addKey: async (td, kid, alg = 'ES256', bits = 2048) => (await send('key', { td, kid, alg, bits })).jwk as Record<string, string>,
    dropKey: async (td, kid) => void (await send('drop_key', { td, kid })),
    setSigner: async (td, kid, ttl = 300, override) => void (await send('signer', { td, kid, ttl, ...(override && { override }) })),
    sign: async (td, kid, claims, header) => (await send('sign', { td, kid, claims, ...(header && { header }) })).token as string,
    push: async (opts = {}) => (await send('push', opts)).streams as number,
    failBundles: async (code, message) => (await send('fail_bundles', { code, ...(message && { message }) })).streams as number,
    greet: async (on) => void (await send('greet', { on })),
    fetchFail: async (code, message) => void (await send('fetch_fail', { code: code ?? null, ...(message && { message }) })),
    setX509: async (s) =>
      void (await send('x509', { spiffe_id: s.spiffeId, chain: s.chainDer.toString('base64'), key: s.keyDer.toString('base64'), bundle: s.bundleDer.toString('base64') })),
    calls: async () => (await send('calls')) as never,
    close,
  };
}
